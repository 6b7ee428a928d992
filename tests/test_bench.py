"""The benchmarks' driver runs as the README shows it (small sizes, two of its sections): its
rows are printed and its figures written. What the figures are is the benchmark's business,
not a test's: nothing here is timed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_bench_runs_and_writes_its_figures(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--only", "concurrency,startup", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "1,000 debates" in proc.stdout and "moot validate quickstart.yaml" in proc.stdout
    figures = json.loads(out.read_text())
    run = figures["concurrency"]["1000"]
    # every call and message of the 1,000 debates stored, and the median run is the one shown
    assert run["model_calls"] == run["messages"] == 7000
    assert run["runs"] == [run["wall_over_ideal"]] and run["wall_over_ideal"] >= 1.0
    assert figures["startup"]["help_s"] > 0


def test_a_childs_peak_memory_is_its_own_not_its_parents():
    """The writer's memory in the bench is the child's own peak after it became its program,
    not the parent's pages it shared between fork and exec (getrusage counted those)."""
    from bench.workloads import ChildPeak

    ballast = b"p" * (300 << 20)  # this process: 300 MB the child never has
    peak = ChildPeak(every=0.02)
    subprocess.run([sys.executable, "-c", "import time; x = b'c' * (40 << 20); time.sleep(0.4)"], check=True)
    mb = peak.stop()
    assert mb is not None and 40 <= mb < 200, mb
    assert len(ballast) == 300 << 20


def test_the_quickstart_bench_reports_its_floor_from_its_own_token_counts():
    """`bench/batching.py quickstart` runs the README's quickstart (fast mode, every call made)
    and sets its wall time against a floor: the tokens it put through the model at raw
    llama.cpp's best rate, measured on this machine in the same process."""
    proc = subprocess.run(
        [sys.executable, "bench/batching.py", "quickstart", "--mode", "fast"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    qs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (qs["episodes"], qs["failed"], qs["requests"]) == (4, 0, 20)
    # the debaters' second speeches extend their first: the prefix cache held those tokens
    assert 0 < qs["prompt_tokens_reused"] < qs["prompt_tokens"]
    through = qs["prompt_tokens"] - qs["prompt_tokens_reused"] + qs["completion_tokens"]
    assert qs["tokens_through_model"] == through
    assert qs["best_tokens_per_s"] > 0
    assert abs(qs["floor_s"] - through / qs["best_tokens_per_s"]) < 1e-9
    # every token through the model was decoded in a step that read a prompt or one that
    # only generated (the last token of each reply is sampled, never decoded)
    decoded = qs["reading_tokens"] + qs["generation_tokens"]
    assert through - qs["requests"] <= decoded <= through
    assert qs["reading_s"] > 0 and qs["generation_s"] > 0
