"""Peers of bench/searchers_bench.ts: hyperopt's tpe.suggest, Optuna's default TPESampler, GPSampler
and CmaEsSampler, and random search on the same problems, seeds and budgets. Writes best-so-far
curves (and, with --latency, Optuna's time per suggestion) as JSON for the Deno side to score.

    .venv/bin/python bench/peers/searchers_peer.py --seeds 20 --evals 100 --out peer.json --latency

Optuna's GPSampler needs torch (not in tests/peers/requirements.txt: it is large); without it the
optuna-gp peer is skipped with a note. --gp-seeds runs it on fewer seeds (it is slow).

The problem definitions mirror bench/searchers_problems.ts; keep them in step.
"""

import argparse
import json
import logging
import math
import re
import sys
import time

import numpy as np

# ---- problems (minimise) --------------------------------------------------------------------


def branin(x):
    x1, x2 = x
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


H3_A = [[3, 10, 30], [0.1, 10, 35], [3, 10, 30], [0.1, 10, 35]]
H3_P = [[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]
H6_A = [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
]
H6_P = [
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
]
ALPHA = [1, 1.2, 3, 3.2]


def hartmann(x, A, P):
    s = 0.0
    for i in range(4):
        e = sum(A[i][j] * (x[j] - P[i][j] * 1e-4) ** 2 for j in range(len(x)))
        s -= ALPHA[i] * math.exp(-e)
    return s


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (x[i] - 1) ** 2 for i in range(len(x) - 1))


def levy(x):
    w = [1 + (v - 1) / 4 for v in x]
    s = math.sin(math.pi * w[0]) ** 2
    for i in range(len(w) - 1):
        s += (w[i] - 1) ** 2 * (1 + 10 * math.sin(math.pi * w[i] + 1) ** 2)
    return s + (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)


def ackley(x):
    d = len(x)
    sq = sum(v * v for v in x)
    cs = sum(math.cos(2 * math.pi * v) for v in x)
    return -20 * math.exp(-0.2 * math.sqrt(sq / d)) - math.exp(cs / d) + 20 + math.e


def styblinski_tang(x):
    return sum(v**4 - 16 * v * v + 5 * v for v in x) / 2


def box(name, f, lo, hi):
    return {"name": name, "kind": "box", "f": f, "lo": lo, "hi": hi}


PROBLEMS = [
    box("Branin", branin, [-5, 0], [10, 15]),
    box("Branin-shift", branin, [-2, -3], [13, 12]),
    box("Hartmann3", lambda x: hartmann(x, H3_A, H3_P), [0] * 3, [1] * 3),
    box("Hartmann3-shift", lambda x: hartmann(x, H3_A, H3_P), [-0.1] * 3, [0.9] * 3),
    box("Hartmann6", lambda x: hartmann(x, H6_A, H6_P), [0] * 6, [1] * 6),
    box("Hartmann6-shift", lambda x: hartmann(x, H6_A, H6_P), [-0.1] * 6, [0.9] * 6),
    box("Rosenbrock4", rosenbrock, [-5] * 4, [10] * 4),
    box("Rosenbrock4-shift", rosenbrock, [-2] * 4, [13] * 4),
    box("Levy8", levy, [-10] * 8, [10] * 8),
    box("Levy8-shift", levy, [-5] * 8, [15] * 8),
    box("Rosenbrock6-shift", rosenbrock, [-2] * 6, [13] * 6),
    box("Ackley10-shift", ackley, [-15] * 10, [30] * 10),
    box("StyblinskiTang8-shift", styblinski_tang, [-4] * 8, [6] * 8),
    box("Hartmann6in10-shift", lambda x: hartmann(x[:6], H6_A, H6_P), [-0.1] * 10, [0.9] * 10),
    {"name": "Jenatton", "kind": "jenatton", "lo": 0.0, "hi": 1.0},
    {"name": "Jenatton-shift", "kind": "jenatton", "lo": -0.3, "hi": 0.7},
]


def jenatton(c):
    """c: dict with keys x1 (0/1), x2 or x3 (0/1), the leaf x4..x7, r8 or r9."""
    if c["x1"] == 0:
        return c["r8"] + (c["x4"] ** 2 + 0.1 if c["x2"] == 0 else c["x5"] ** 2 + 0.2)
    return c["r9"] + (c["x6"] ** 2 + 0.3 if c["x3"] == 0 else c["x7"] ** 2 + 0.4)


def best_so_far(values):
    out, best = [], math.inf
    for v in values:
        best = min(best, v)
        out.append(best)
    return out


# ---- Optuna -----------------------------------------------------------------------------------


def make_sampler(kind, seed):
    import optuna

    if kind == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if kind == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)  # Optuna 5 defaults


def run_optuna(p, seed, evals, kind="tpe"):
    import optuna

    sampler = make_sampler(kind, seed)
    study = optuna.create_study(sampler=sampler, direction="minimize")

    def objective(trial):
        if p["kind"] == "box":
            x = [trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(zip(p["lo"], p["hi"]))]
            return p["f"](x)
        lo, hi = p["lo"], p["hi"]
        c = {"x1": trial.suggest_categorical("x1", [0, 1])}
        if c["x1"] == 0:
            c["x2"] = trial.suggest_categorical("x2", [0, 1])
            c["r8"] = trial.suggest_float("r8", 0, 1)
            leaf = "x4" if c["x2"] == 0 else "x5"
        else:
            c["x3"] = trial.suggest_categorical("x3", [0, 1])
            c["r9"] = trial.suggest_float("r9", 0, 1)
            leaf = "x6" if c["x3"] == 0 else "x7"
        c[leaf] = trial.suggest_float(leaf, lo, hi)
        return jenatton(c)

    study.optimize(objective, n_trials=evals)
    return best_so_far([t.value for t in study.trials])


# ---- hyperopt ---------------------------------------------------------------------------------


def run_hyperopt(p, seed, evals):
    from hyperopt import Trials, fmin, hp, tpe

    if p["kind"] == "box":
        space = [hp.uniform(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(zip(p["lo"], p["hi"]))]
        fn = p["f"]
    else:
        lo, hi = p["lo"], p["hi"]
        space = hp.choice(
            "x1",
            [
                {
                    "x1": 0,
                    "x2": hp.choice("x2", [{"x2": 0, "x4": hp.uniform("x4", lo, hi)}, {"x2": 1, "x5": hp.uniform("x5", lo, hi)}]),
                    "r8": hp.uniform("r8", 0, 1),
                },
                {
                    "x1": 1,
                    "x3": hp.choice("x3", [{"x3": 0, "x6": hp.uniform("x6", lo, hi)}, {"x3": 1, "x7": hp.uniform("x7", lo, hi)}]),
                    "r9": hp.uniform("r9", 0, 1),
                },
            ],
        )

        def fn(c):
            flat = {"x1": c["x1"]}
            inner = c["x2"] if c["x1"] == 0 else c["x3"]
            flat.update(inner)
            flat["r8" if c["x1"] == 0 else "r9"] = c["r8" if c["x1"] == 0 else "r9"]
            return jenatton(flat)

    trials = Trials()
    fmin(fn, space, algo=tpe.suggest, max_evals=evals, trials=trials,
         rstate=np.random.default_rng(seed), show_progressbar=False)
    return best_so_far(trials.losses())


# ---- random -----------------------------------------------------------------------------------


def run_random(p, seed, evals):
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(evals):
        if p["kind"] == "box":
            x = [rng.uniform(lo, hi) for lo, hi in zip(p["lo"], p["hi"])]
            values.append(p["f"](x))
        else:
            lo, hi = p["lo"], p["hi"]
            c = {"x1": int(rng.integers(2))}
            if c["x1"] == 0:
                c["x2"], c["r8"] = int(rng.integers(2)), rng.uniform(0, 1)
                c["x4" if c["x2"] == 0 else "x5"] = rng.uniform(lo, hi)
            else:
                c["x3"], c["r9"] = int(rng.integers(2)), rng.uniform(0, 1)
                c["x6" if c["x3"] == 0 else "x7"] = rng.uniform(lo, hi)
            values.append(jenatton(c))
    return best_so_far(values)


# ---- Optuna suggestion latency ----------------------------------------------------------------


def optuna_latency(d, n, reps=20, kind="tpe"):
    """Median ms per ask() (all parameters sampled) once n trials have finished (d-D sphere)."""
    import optuna
    from optuna.distributions import FloatDistribution

    dists = {f"x{i}": FloatDistribution(-5, 5) for i in range(d)}
    study = optuna.create_study(sampler=make_sampler(kind, 1), direction="minimize")
    rng = np.random.default_rng(1)
    trials = []
    for _ in range(n):
        params = {k: float(rng.uniform(-5, 5)) for k in dists}
        trials.append(optuna.trial.create_trial(params=params, distributions=dists,
                                                value=sum(v * v for v in params.values())))
    study.add_trials(trials)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        trial = study.ask(fixed_distributions=dists)
        times.append((time.perf_counter() - t0) * 1000)
        study.tell(trial, sum(v * v for v in trial.params.values()))
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--seed-offset", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--problems", default=None, help="regular expression on problem names")
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--solvers", default="optuna-tpe,optuna-gp,optuna-cmaes,hyperopt-tpe,numpy-random")
    ap.add_argument("--gp-seeds", type=int, default=None, help="seeds for optuna-gp (slow)")
    ap.add_argument("--gp-problems", default=None, help="regular expression for optuna-gp")
    args = ap.parse_args()

    import optuna
    import hyperopt

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("hyperopt").setLevel(logging.WARNING)
    try:
        import torch  # noqa: F401  (GPSampler needs it)

        has_torch = True
    except ImportError:
        has_torch = False
    runners = {
        "optuna-tpe": run_optuna,
        "optuna-gp": lambda p, s, e: run_optuna(p, s, e, "gp"),
        "optuna-cmaes": lambda p, s, e: run_optuna(p, s, e, "cmaes"),
        "hyperopt-tpe": run_hyperopt,
        "numpy-random": run_random,
    }
    problems = [p for p in PROBLEMS if not args.problems or re.search(args.problems, p["name"])]
    curves, elapsed = {}, {}
    for name in args.solvers.split(","):
        if name == "optuna-gp" and not has_torch:
            print("optuna-gp skipped: torch is not installed", file=sys.stderr)
            continue
        run = runners[name]
        curves[name] = {}
        seeds = args.gp_seeds if name == "optuna-gp" and args.gp_seeds else args.seeds
        t0 = time.perf_counter()
        for p in problems:
            if name == "optuna-gp" and args.gp_problems and not re.search(args.gp_problems, p["name"]):
                continue
            curves[name][p["name"]] = [run(p, args.seed_offset + s, args.evals) for s in range(seeds)]
            print(f"{name} {p['name']}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            elapsed[name] = time.perf_counter() - t0
            write(args.out, curves, elapsed, {}, "partial")  # a long run can be stopped early
        elapsed[name] = time.perf_counter() - t0
        print(f"{name}: {elapsed[name]:.1f} s", file=sys.stderr)
    latency = {}
    if args.latency:
        kinds = [("optuna-tpe", "tpe", (100, 200, 1000)), ("optuna-cmaes", "cmaes", (100, 200, 1000))]
        if has_torch and "optuna-gp" in args.solvers:
            kinds.append(("optuna-gp", "gp", (100, 200)))
        for solver, kind, ns in kinds:
            latency[solver] = {}
            for d in (2, 10):
                latency[solver][str(d)] = {}
                for n in ns:
                    ms = optuna_latency(d, n, 10 if kind == "gp" else 20, kind)
                    latency[solver][str(d)][str(n)] = ms
                    print(f"{solver} latency d={d} n={n}: {ms:.2f} ms", file=sys.stderr)
    versions = f"optuna {optuna.__version__}, hyperopt {hyperopt.__version__}, numpy {np.__version__}, Python {sys.version.split()[0]}"
    if has_torch:
        versions += f", torch {torch.__version__}"
    write(args.out, curves, elapsed, latency, versions)


def write(path, curves, elapsed, latency, versions):
    with open(path, "w") as f:
        json.dump({"curves": curves, "elapsed": elapsed, "latency": latency, "versions": versions}, f)


if __name__ == "__main__":
    main()
