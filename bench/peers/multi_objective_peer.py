"""Peer of bench/multi_objective_bench.ts: Optuna 5's NSGAIISampler and TPESampler (MOTPE), with
their defaults, on ZDT1, ZDT2, ZDT3 (30 variables) and DTLZ2 (3 objectives, 12 variables).
Writes every evaluated objective vector as JSON; the Deno side computes the hypervolumes, so both
sides are measured by the same code. With --latency, also Optuna's time per suggestion.

    .venv/bin/python bench/peers/multi_objective_peer.py --seeds 10 --evals 200 --out peer.json

The problem definitions mirror bench/multi_objective_bench.ts; keep them in step.
"""

import argparse
import json
import logging
import math
import re
import time


def zdt_g(x):
    return 1 + 9 * sum(x[1:]) / (len(x) - 1)


def zdt1(x):
    g = zdt_g(x)
    return [x[0], g * (1 - math.sqrt(x[0] / g))]


def zdt2(x):
    g = zdt_g(x)
    return [x[0], g * (1 - (x[0] / g) ** 2)]


def zdt3(x):
    g = zdt_g(x)
    f1 = x[0]
    return [f1, g * (1 - math.sqrt(f1 / g) - f1 / g * math.sin(10 * math.pi * f1))]


def dtlz2(x, m=3):
    g = sum((v - 0.5) ** 2 for v in x[m - 1 :])
    out = []
    for i in range(m):
        f = 1 + g
        for v in x[: m - 1 - i]:
            f *= math.cos(v * math.pi / 2)
        if i > 0:
            f *= math.sin(x[m - 1 - i] * math.pi / 2)
        out.append(f)
    return out


PROBLEMS = {
    "zdt1": (zdt1, 30, 2),
    "zdt2": (zdt2, 30, 2),
    "zdt3": (zdt3, 30, 2),
    "dtlz2": (dtlz2, 12, 3),
}


def run(solver, name, seed, evals):
    import optuna

    f, dim, m = PROBLEMS[name]
    sampler = (
        optuna.samplers.NSGAIISampler(seed=seed)
        if solver == "optuna-nsga2"
        else optuna.samplers.TPESampler(seed=seed)
        if solver == "optuna-motpe"
        else optuna.samplers.RandomSampler(seed=seed)
    )
    study = optuna.create_study(directions=["minimize"] * m, sampler=sampler)
    points = []

    def objective(trial):
        x = [trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(dim)]
        y = f(x)
        points.append(y)
        return tuple(y)

    study.optimize(objective, n_trials=evals)
    return points


def latency(solver, name, n, reps=20):
    """Seconds per suggestion with n finished trials (the mean of `reps` suggestions)."""
    import optuna

    f, dim, m = PROBLEMS[name]
    sampler = (
        optuna.samplers.NSGAIISampler(seed=0)
        if solver == "optuna-nsga2"
        else optuna.samplers.TPESampler(seed=0)
    )
    study = optuna.create_study(directions=["minimize"] * m, sampler=sampler)
    dists = {f"x{i}": optuna.distributions.FloatDistribution(0.0, 1.0) for i in range(dim)}
    import random

    rnd = random.Random(0)
    trials = []
    for _ in range(n):
        params = {k: rnd.random() for k in dists}
        trials.append(
            optuna.trial.create_trial(
                params=params, distributions=dists, values=f([params[f"x{i}"] for i in range(dim)])
            )
        )
    study.add_trials(trials)
    t0 = time.perf_counter()
    for _ in range(reps):
        t = study.ask()
        for i in range(dim):
            t.suggest_float(f"x{i}", 0.0, 1.0)
        study.tell(t, state=optuna.trial.TrialState.FAIL)
    return (time.perf_counter() - t0) / reps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--evals", type=int, default=200)
    ap.add_argument("--seed-offset", type=int, default=0)
    ap.add_argument("--problems", default="")
    ap.add_argument("--solvers", default="optuna-nsga2,optuna-motpe")
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    names = [p for p in PROBLEMS if not a.problems or re.search(a.problems, p)]
    points, elapsed, lat = {}, {}, {}

    def save():
        # Written after every run, so that a long run stopped early still leaves its seeds.
        with open(a.out, "w") as f:
            json.dump(
                {
                    "points": points,
                    "elapsed": elapsed,
                    "latency": lat,
                    "versions": f"optuna {optuna.__version__}",
                },
                f,
            )

    for solver in a.solvers.split(","):
        points[solver] = {}
        t0 = time.perf_counter()
        for name in names:
            points[solver][name] = []
        for s in range(a.seeds):  # seeds outermost: a run stopped early has every problem
            for name in names:
                points[solver][name].append(run(solver, name, a.seed_offset + s, a.evals))
                elapsed[solver] = time.perf_counter() - t0
                save()
        print(f"{solver}: {elapsed[solver]:.1f} s", flush=True)
        if a.latency and solver != "optuna-random":
            lat[solver] = {str(n): latency(solver, "zdt1", n) for n in (100, 1000)}
            save()


if __name__ == "__main__":
    main()
