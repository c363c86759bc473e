"""Optuna peer of the in-process driver benchmark: the same objective, 64 trials x 20 reports
and 10,000 trials x 1 report, random sampler (as Tunebox's default searcher), in-memory storage.

    bench/.venv-ray/bin/python bench/peers/optuna_inprocess.py [--quick]
    .venv/bin/python bench/peers/optuna_inprocess.py --row TRIALS REPORTS   # one row (perf_bench.ts)
"""
import json
import resource
import sys
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)
QUICK = "--quick" in sys.argv


def run(trials, reports):
    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        loss = None
        for i in range(reports):
            loss = (x - 0.5) ** 2 + 1 / (i + 1)
            trial.report(loss, i)
        return loss

    t_create = time.perf_counter()
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=1))
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    t1 = time.perf_counter()
    # optimize() alone, and with create_study() (Tunebox's figure includes making the experiment)
    return t1 - t0, t1 - t_create


if __name__ == "__main__" and sys.argv[1:2] == ["--row"]:
    wall, with_create = run(int(sys.argv[2]), int(sys.argv[3]))
    print(json.dumps({
        "optuna_version": optuna.__version__,
        "wall_s": wall,
        "wall_with_create_s": with_create,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))
elif __name__ == "__main__":
    small = run(8 if QUICK else 64, 20)[0]
    n = 1000 if QUICK else 10_000
    big = run(n, 1)[0]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "optuna_version": optuna.__version__,
        "optuna_64x20_wall_s": small,
        "optuna_10000x1_wall_s": big,
        "optuna_10000x1_trials_per_s": n / big,
        "optuna_max_rss_mb": rss_mb,
    }))
