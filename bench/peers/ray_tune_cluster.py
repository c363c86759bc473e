"""Ray Tune on the two-node test cluster of bench/ray_bench.ts: TRIALS trials x 20 reports of a
trivial objective, CONCURRENT at a time, 1 CPU each; prints the wall time.

    RAY_AUTH_MODE=token RAY_AUTH_TOKEN=... python bench/peers/ray_tune_cluster.py HEAD:GCS_PORT 64 8
"""
import os
import sys
import tempfile
import time

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

import ray  # noqa: E402
from ray import tune  # noqa: E402

address, trials, concurrent = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def trivial(config):
    for i in range(20):
        tune.report({"loss": (config["x"] - 0.5) ** 2 + 1 / (i + 1)})


ray.init(address=address, _node_ip_address=address.split(":")[0], log_to_driver=False)
t0 = time.perf_counter()
tune.Tuner(
    tune.with_resources(trivial, {"cpu": 1}),
    param_space={"x": tune.uniform(0, 1)},
    tune_config=tune.TuneConfig(
        metric="loss", mode="min", num_samples=trials, max_concurrent_trials=concurrent
    ),
    run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(), verbose=0),
).fit()
print(f"ray_tune_wall_s {time.perf_counter() - t0:.2f}")
