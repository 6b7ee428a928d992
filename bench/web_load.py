"""The web study under load: N simulated participants judging offline at once against one
`moot serve` process on loopback.

    .venv/bin/python bench/web_load.py                  # 50 participants, 4 debates each
    .venv/bin/python bench/web_load.py -n 20 --per-person 2 --json out.json

A stored run of 48 finished two-round debates (scripted models: 24 questions x consultancy
and debate, built once in a temporary directory) is served by a real `moot serve` subprocess
(uvicorn, its own process, as in a study). Each participant is an HTTP client of its own
(httpx, in one asyncio loop here): they arrive over `--ramp` seconds, each consents, then
loads its turn, submits a verdict, loads the next, ... until the server says it is done or
the bench's time runs out, thinking `--think` seconds between a page and its submit (real
judges think for minutes: one second keeps all 50 busy at once). Page loads (GET) and submits (POST, up to the redirect: the
verdict is committed when the answer comes back) are timed apart. Afterwards the database
is checked: every submit the server acknowledged is exactly one verdict row (none lost, none
twice) and no episode has more than K judges.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENARIO = """
name: web-load
protocol: {rounds: 2, turns: sequential}
seats:
  debater: {model: scripted}
  consultant: {model: scripted}
  judge: {model: scripted}
dataset: {source: builtin:reading}
sweep:
  protocol.name: [consultancy, debate]
concurrency: 8
"""
FIELD = re.compile(r"name=(csrf|episode|round) value='?([^'> ]+)")


def build(directory: Path) -> Path:
    from moot.scenario.load import parse
    from moot.workflows.run import run_scenario

    path = directory / "load.db"
    run_scenario(parse(SCENARIO), SCENARIO, out=path)
    return path


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def participant(url: str, deadline: float, think: float, pages: list[float], submits: list[float],
                      acked: list[tuple[str, int, int]], pid: str, start: float) -> None:  # fmt: skip
    import httpx

    await asyncio.sleep(start)
    async with httpx.AsyncClient(timeout=30) as http:

        async def get(path: str) -> str:
            t = time.perf_counter()
            r = await http.get(url + path)
            pages.append(time.perf_counter() - t)
            r.raise_for_status()
            return r.text

        async def post(path: str, data: dict[str, str]) -> httpx.Response:
            t = time.perf_counter()
            r = await http.post(url + path, data=data)
            submits.append(time.perf_counter() - t)
            return r

        page = await get("/")
        csrf = dict(FIELD.findall(page))["csrf"]
        await post("/consent", {"csrf": csrf})
        while time.monotonic() < deadline:
            page = await get("/judge")
            if "All done" in page:
                return
            f = dict(FIELD.findall(page))
            await asyncio.sleep(think)
            r = await post("/judge", {"csrf": f["csrf"], "episode": f["episode"], "round": f["round"],
                                      "p0": "65", "p1": "35", "reason": "load"})  # fmt: skip
            if r.status_code == 303:
                acked.append((pid, int(f["episode"]), int(f["round"])))
                where = r.headers["location"]  # /p/TOKEN/feedback/N after an episode's last round
                if "/feedback/" in where:
                    await get(where[where.index("/feedback/") :])
            else:
                raise RuntimeError(f"submit refused: {r.status_code}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=50, help="participants (default 50)")
    ap.add_argument("--per-person", type=int, default=4, help="debates each judges (default 4)")
    ap.add_argument("--k", type=int, default=5, help="people per debate (default 5)")
    ap.add_argument("--think", type=float, default=1.0, help="seconds between a page and its submit (default 1)")
    ap.add_argument("--ramp", type=float, default=5.0, help="participants arrive over this many seconds (default 5)")
    ap.add_argument("--seconds", type=float, default=120, help="the bench's time bound")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()

    from moot.store.study import StudyTables

    tmp = Path(tempfile.mkdtemp(prefix="moot-web-load-"))
    db = build(tmp)
    tables = StudyTables(db)
    people = [tables.add_participant() for _ in range(args.n)]
    tables.close()
    port = 18000 + os.getpid() % 1000
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys; from moot.cli import main; sys.exit(main(sys.argv[1:]))", "serve", str(db), "--port", str(port), "--k", str(args.k),
         "--per-person", str(args.per_person)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "admin: ..." once it is about to listen
        base = f"http://127.0.0.1:{port}"
        import httpx

        for _ in range(100):
            try:
                httpx.get(base + "/")
                break
            except httpx.TransportError:
                if server.poll() is not None:
                    raise SystemExit(
                        f"bench/web_load.py: the server did not start (exit {server.returncode})"
                    ) from None
                time.sleep(0.1)
        pages: list[float] = []
        submits: list[float] = []
        acked: list[tuple[str, int, int]] = []
        deadline = time.monotonic() + args.seconds
        started = time.perf_counter()

        async def everyone() -> None:
            await asyncio.gather(*(participant(f"{base}/p/{tok}", deadline, args.think, pages, submits, acked, pid,
                                               args.ramp * i / len(people)) for i, (pid, tok) in enumerate(people)))  # fmt: skip

        asyncio.run(everyone())
        wall = time.perf_counter() - started
        # the server's open files (its SQLite connections among them), with everyone served
        open_files = len(os.listdir(f"/proc/{server.pid}/fd")) if Path("/proc").is_dir() else None
    finally:
        server.send_signal(signal.SIGINT)  # as Ctrl-C: it stops cleanly
        server.wait(20)
    conn = sqlite3.connect(db)
    stored = conn.execute("SELECT judge, episode, round FROM verdicts WHERE judge LIKE 'human:%'").fetchall()
    per_episode = conn.execute(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM study_assignments WHERE expired_at IS NULL GROUP BY episode)"
    ).fetchone()[0]
    conn.close()
    want = sorted((f"human:{p}", e, r) for p, e, r in acked)
    lost = len(set(want) - set(stored))
    duplicated = len(stored) - len(set(stored))
    extra = len(set(stored) - set(want))
    figures = {
        "participants": args.n, "verdicts": len(stored), "wall_s": round(wall, 1),
        "pages": len(pages), "page_p50_ms": round(1000 * percentile(pages, 0.5), 1),
        "page_p95_ms": round(1000 * percentile(pages, 0.95), 1),
        "submits": len(submits), "submit_p50_ms": round(1000 * percentile(submits, 0.5), 1),
        "submit_p95_ms": round(1000 * percentile(submits, 0.95), 1),
        "lost": lost, "duplicated": duplicated, "unacknowledged": extra, "max_judges_per_episode": per_episode,
        "server_open_files": open_files, "server_exit": server.returncode,
    }  # fmt: skip
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    ok = (lost == duplicated == extra == 0 and figures["page_p95_ms"] < 200 and figures["submit_p95_ms"] < 200
          and per_episode <= args.k and server.returncode == 0)  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
