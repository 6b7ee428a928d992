"""The Ray executor against the local one, on the same scenario, on a local Ray cluster.

    python bench/ray_bench.py                       # 2,000 debates, scripted model, 2 CPUs
    python bench/ray_bench.py -n 2000 --latency 0.5 --concurrency 2000
    python bench/ray_bench.py --limited             # the model with a cluster-wide limit
    python bench/ray_bench.py --quickstart          # scenarios/quickstart.yaml (embedded model)

The debate is bench/workloads.py's (7 calls per episode, everything persisted). Each
executor's wall time runs from the first episode started to the run's last row committed
(the run's own clock); the cluster's start-up and the workers' first imports are printed
apart. Both runs must store the same messages (the quickstart's, in the default `fast`
batching, may differ in their words: the same episodes must be done). Prints one JSON line
per executor.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from batching import quickstart_text  # noqa: E402
from workloads import scenario, topics_file  # noqa: E402

from moot.scenario.load import parse  # noqa: E402
from moot.workflows.run import run_scenario  # noqa: E402


def messages(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT episode, seq, content FROM messages ORDER BY episode, seq").fetchall()
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=None)
    ap.add_argument("--limited", action="store_true", help="max_concurrency on the model: a cluster-wide limit")
    ap.add_argument("--quickstart", action="store_true", help="scenarios/quickstart.yaml, response cache off")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="moot-ray-bench-"))
    if args.quickstart:
        text = quickstart_text()  # as bench/batching.py's quickstart
        sc = parse(text)
        args.n, args.latency, args.concurrency = sc.dataset.limit or 0, None, sc.concurrency
        # The workers load the model in the warm-up: a run on it, one episode per CPU. Its
        # prompts share nothing with the quickstart's (another protocol, its own prompts,
        # another dataset): the workers' prefix caches must not hold the measured run's.
        warm = type(sc).model_validate(
            {
                "name": "warm-up",
                "protocol": {"name": "direct_qa", "passage": False},
                "seats": {"judge": {"model": "local/smollm2-135m", "max_tokens": 2,
                                    "prompts": {"system": "Warm-up.", "turn": "Reply {label_list}."}}},
                "dataset": {"source": "builtin:arithmetic", "limit": args.cpus},
                "cache": False,
            }
        )  # fmt: skip
    else:
        sc = scenario(args.n, topics_file(args.n, tmp), "scripted", args.latency, args.concurrency)
        warm = scenario(4 * args.cpus, topics_file(4 * args.cpus, tmp), "scripted", 0.0, 4 * args.cpus)
    if args.limited:
        data = sc.model_dump()
        data["models"]["scripted"] = data["models"].get("scripted", {}) | {"max_concurrency": args.concurrency}
        sc = type(sc).model_validate(data)

    local = run_scenario(sc, "", out=tmp / "local.db")
    base = {"episodes": args.n, "latency_s": args.latency, "concurrency": args.concurrency, "limited": args.limited,
            "scenario": "quickstart" if args.quickstart else "debate"}  # fmt: skip
    print(json.dumps(base | {"executor": "local", "wall_s": round(local.wall_s, 3),
                             "episodes_per_s": round(args.n / local.wall_s, 1)}))  # fmt: skip

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    from moot.executors.ray_exec import RayOptions, run_scenario_ray

    t0 = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter() - t0
    try:
        # the workers' first task imports moot and builds the models: once per worker
        # process for the cluster's life, so it is timed apart
        t0 = time.perf_counter()
        run_scenario_ray(warm, "", out=tmp / "warm.db", options=RayOptions(chunk=1))
        warm_up = time.perf_counter() - t0
        t0 = time.perf_counter()
        spread = run_scenario_ray(sc, "", out=tmp / "ray.db", options=RayOptions(chunk=args.chunk))
        total = time.perf_counter() - t0
    finally:
        ray.shutdown()
    assert spread.done == local.done == args.n, (spread, local)
    if not args.quickstart:
        assert messages(tmp / "ray.db") == messages(tmp / "local.db")
    print(json.dumps(base | {
        "executor": "ray", "cpus": args.cpus, "wall_s": round(spread.wall_s, 3),
        "wall_with_setup_s": round(total, 3), "cluster_start_s": round(started, 2),
        "workers_warm_up_s": round(warm_up, 2),
        "episodes_per_s": round(args.n / spread.wall_s, 1),
        "ray_over_local": round(spread.wall_s / local.wall_s, 2),
    }))  # fmt: skip
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
