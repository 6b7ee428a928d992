"""Time `moot analyze` on a large database (the benchmark issue's 100,000 episodes).

    .venv/bin/python bench/analyze.py                 # 100,000 one-round debates
    .venv/bin/python bench/analyze.py --episodes 10000

The database is made once by a real scripted run (50,000 questions in both orders: three
calls per episode, prompts stored) and kept in the temporary directory; the analysis is then
timed three times in fresh processes, and the best wall and CPU times are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCENARIO = """name: bench-analyze
protocol: {{name: debate, rounds: 1}}
seats:
  debater: {{model: scripted, max_tokens: 20}}
  judge: {{model: scripted}}
dataset: {{source: {data}, both_orders: true}}
concurrency: 256
"""


def database(episodes: int) -> Path:
    d = Path(tempfile.gettempdir()) / f"moot-bench-analyze-{episodes}"
    db = d / "run.db"
    if db.exists():
        return db
    d.mkdir(exist_ok=True)
    data = d / "questions.jsonl"
    with data.open("w") as f:
        for i in range(episodes // 2):
            f.write(json.dumps({"id": f"b{i}", "question": f"Which holds for item {i}?",
                                "options": [f"yes {i}", f"no {i}"], "answer": i % 2,
                                "passage": "A short passage about the item."}) + "\n")  # fmt: skip
    (d / "s.yaml").write_text(SCENARIO.format(data=data))
    subprocess.run([sys.executable, "-m", "moot", "run", str(d / "s.yaml"), "--out", str(db), "--quiet"],
                   check=True, cwd=ROOT)  # fmt: skip
    return db


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--episodes", type=int, default=100_000)
    args = p.parse_args()
    db = database(args.episodes)
    code = (
        "import resource, sys, time; t = time.perf_counter();"
        "from moot.analysis import analyze; analyze([sys.argv[1]]).render();"
        "r = resource.getrusage(resource.RUSAGE_SELF);"
        "print(time.perf_counter() - t, r.ru_utime + r.ru_stime)"
    )
    runs = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True,
                             check=True, cwd=ROOT).stdout.split()  # fmt: skip
        runs.append((float(out[0]), float(out[1])))
    wall, cpu = min(runs)
    print(json.dumps({"episodes": args.episodes, "db_mb": round(db.stat().st_size / 1e6),
                      "analyze_wall_s": round(wall, 2), "analyze_cpu_s": round(cpu, 2)}))  # fmt: skip


if __name__ == "__main__":
    main()
