"""moot's side of the benchmarks. Each workload runs in its own process and prints one JSON line.

    python bench/workloads.py overhead -n 1000 [--litellm] [--latency 0.5] [--concurrency N]
    python bench/workloads.py store -n 10000

The debate shape is the peers' (../shared/peers): 2 debaters x 3 sequential rounds + 1 judge
= 7 model calls per episode, a ~60-word scripted reply, a one-line topic and no passage, and
every message and model call (with its full prompt) persisted to SQLite, visibility enforced.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

from moot.scenario.model import Scenario
from moot.workflows import aio
from moot.workflows.run import execute, prepare


def topics_file(n: int, directory: Path) -> Path:
    """n one-line topics (the peers' "Topic #i"), two answers each, no passage."""
    path = directory / f"topics-{n}.jsonl"
    if not path.exists():
        with open(path, "w") as f:
            for i in range(n):
                f.write(
                    json.dumps(
                        {
                            "id": str(i),
                            "question": f"Topic #{i}: does the proposition hold?",
                            "options": ["It holds", "It does not hold"],
                            "answer": i % 2,
                        }
                    )
                    + "\n"
                )
    return path


def scenario(n: int, data: Path, model: str, latency: float, concurrency: int) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "bench",
            "protocol": {"name": "debate", "rounds": 3, "turns": "sequential"},
            "seats": {"debater": {"model": model}, "judge": {"model": model}},
            "models": {model: {"latency": latency}} if model.startswith("scripted") else {},
            "dataset": {"source": str(data), "limit": n},
            "concurrency": concurrency,
            "cache": False,  # every call made: a cached reply would measure the cache
        }
    )


class ChildPeak:
    """The peak resident memory of this process's children (the store's writer process), each
    as its own program: their VmHWM, polled. getrusage's RUSAGE_CHILDREN would count a child's
    pages from between fork and exec, which are this process's (119 MB "for the writer" of a
    100,000-episode run whose writer peaked at 27 MB)."""

    def __init__(self, every: float = 0.02) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, args=(every,), daemon=True)
        self._thread.start()

    def _poll(self, every: float) -> None:
        try:
            with open("/proc/self/cmdline", "rb") as f:
                mine = f.read()
        except OSError:
            return
        while not self._stop.wait(every):
            for pid in self._children():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if f.read() == mine:  # forked, not yet its own program: our pages
                            continue
                    with open(f"/proc/{pid}/status") as f:
                        hwm = next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
                except (OSError, ValueError):
                    continue  # gone, or not ours to read
                self.peak_kb = max(self.peak_kb, hwm)

    @staticmethod
    def _children() -> list[int]:
        pids: list[int] = []
        try:
            for tid in os.listdir("/proc/self/task"):
                with open(f"/proc/self/task/{tid}/children") as f:
                    pids += [int(p) for p in f.read().split()]
        except OSError:  # not Linux, or no children file: nothing to report
            pass
        return pids

    def stop(self) -> float | None:
        """MB, or None where /proc cannot tell."""
        self._stop.set()
        self._thread.join()
        return round(self.peak_kb / 1024, 1) if self.peak_kb else None


def overhead(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="moot-bench-"))
    model = "moot-scripted/bench" if args.litellm else "scripted"
    sc = scenario(args.n, topics_file(args.n, tmp), model, args.latency, args.concurrency or args.n)
    prep = prepare(sc, "", None)
    db = tmp / "run.db"
    if args.litellm:  # import litellm outside the timed window, as a long run would
        from moot.models.litellm_api import _import_litellm

        _import_litellm()
    children = ChildPeak()
    t0 = time.perf_counter()
    cpu0 = time.thread_time()
    summary = aio.run(lambda: execute(prep, db))
    # The run's own clock: first episode started -> last row committed. Like the peers'
    # timers, it leaves out set-up (opening the database) and the summary queries after.
    wall = summary.wall_s
    total = time.perf_counter() - t0
    cpu = time.thread_time() - cpu0  # the event loop's thread only (the writer has its own)
    writer_mb = children.stop()
    assert summary.model_calls == 7 * args.n and summary.failed == 0, summary
    conn = sqlite3.connect(db)
    messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = os.path.getsize(db)
    out = {
        "workload": "moot-litellm" if args.litellm else "moot",
        "episodes": args.n,
        "model_calls": summary.model_calls,
        "wall_s": round(wall, 4),
        "wall_with_setup_s": round(total, 4),
        "calls_per_s": round(summary.model_calls / wall, 1),
        "loop_cpu_us_per_call": round(cpu / summary.model_calls * 1e6, 1),
        "messages": messages,
        "db_bytes_per_1000_messages": round(size / messages * 1000),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        # the store's writer process (moot.store.writer), this process's one child
        "writer_rss_mb": writer_mb,
    }
    if args.latency:
        ideal = 7 * args.latency
        out["latency_s"] = args.latency
        out["wall_over_ideal"] = round(wall / ideal, 3)
    if not args.keep:
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=["overhead"])
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--litellm", action="store_true", help="reach the scripted model via litellm")
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--concurrency", type=int, default=0, help="0: all episodes at once")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    print(json.dumps(overhead(args)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
