"""Ray Tune peer of bench/driver_bench.ts: 64 trials x 20 reports of a trivial objective,
2 at a time, FIFO and ASHA. Prints wall time and per-trial time.

    bench/.venv-ray/bin/python bench/peers/ray_driver.py [--quick]
"""
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

import ray  # noqa: E402
from ray import tune  # noqa: E402
from ray.tune.schedulers import ASHAScheduler  # noqa: E402

QUICK = "--quick" in sys.argv
TRIALS = 8 if QUICK else 64


def trivial(config):
    for i in range(20):
        tune.report({"loss": (config["x"] - 0.5) ** 2 + 1 / (i + 1)})


def run(scheduler=None):
    storage = tempfile.mkdtemp()
    t0 = time.perf_counter()
    tune.Tuner(
        tune.with_resources(trivial, {"cpu": 1}),
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", num_samples=TRIALS, max_concurrent_trials=2, scheduler=scheduler
        ),
        run_config=tune.RunConfig(storage_path=storage, verbose=0),
    ).fit()
    return time.perf_counter() - t0


if __name__ == "__main__":
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    fifo = run()
    asha = run(ASHAScheduler(max_t=20, grace_period=1, reduction_factor=4))
    ray.shutdown()
    print(json.dumps({
        "ray_version": ray.__version__,
        "ray_fifo_wall_s": fifo,
        "ray_fifo_per_trial_ms": fifo * 2 / TRIALS * 1000,
        "ray_asha_wall_s": asha,
        "ray_asha_per_trial_ms": asha * 2 / TRIALS * 1000,
    }))
