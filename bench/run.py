"""All of moot's benchmarks in one run, with the peers measured beside it.

    .venv/bin/python bench/run.py            # full: 1k/10k episodes, peers, memory to 100k
    .venv/bin/python bench/run.py --quick    # the same figures at small sizes, < 2 minutes
    .venv/bin/python bench/run.py --json out.json
    .venv/bin/python bench/run.py --only batching,ray   # some sections (see SECTIONS)

Every workload runs in a fresh process (so peak RSS is its own). Figures are printed with
the targets and as ratios against the peers measured in this same run: machines are noisy,
ratios measured together are what compare.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402

SECTIONS = ("overhead", "peers", "concurrency", "memory", "local", "batching", "ray", "analyze", "tui", "startup")


def workload(*args: str, timeout: float = 1800) -> dict:
    proc = subprocess.run(
        [sys.executable, str(HERE / "workloads.py"), *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"bench: workload {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_of(k: int, *args: str, by: str = "calls_per_s") -> dict:
    """The median run of k by one figure (the machine is shared and noisy), with that figure
    of every run, lowest first, under "runs"."""
    runs = sorted((workload(*args) for _ in range(k)), key=lambda r: r[by])
    return {**runs[len(runs) // 2], "runs": [r[by] for r in runs]}


def mb(value: float | None) -> str:
    """A figure in MB, or "?" where it could not be read (the writer's, off Linux)."""
    return "?" if value is None else f"{value:.0f}"


def timed(cmd: list[str], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "moot": metadata.version("moot"),
        "litellm": metadata.version("litellm"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, under two minutes")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--json", help="also write every figure to this file")
    ap.add_argument("--only", help=f"comma-separated sections, of: {', '.join(SECTIONS)} (default: all)")
    args = ap.parse_args()
    only = set(SECTIONS if args.only is None else args.only.split(","))
    if only - set(SECTIONS):
        raise SystemExit(f"bench: unknown section {', '.join(sorted(only - set(SECTIONS)))}")
    if "peers" in only and not args.no_peers:
        only.add("overhead")  # the peers' ratios are against moot's figure of this run
    q = args.quick
    results: dict = {"machine": machine(), "quick": q}
    rows: list[tuple[str, str, str]] = []

    started = time.perf_counter()

    def section(title: str) -> None:
        print(f"\n{title}  [{time.perf_counter() - started:.0f} s]")

    def row(name: str, value: str, target: str = "") -> None:
        rows.append((name, value, target))
        print(f"  {name:<52} {value:>16}  {target}", flush=True)

    print(f"moot benchmarks ({'quick' if q else 'full'}) on {results['machine']}")

    def script(name: str, *argv: str, timeout: float = 1800) -> list[dict]:
        """A bench script's JSON lines."""
        proc = subprocess.run(
            [sys.executable, str(HERE / name), *argv],
            capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        )  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"bench: {name} failed:\n{proc.stderr[-2000:]}")
        return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]

    sizes = [1000] if q else [1000, 10000]
    overhead = {}
    if "overhead" in only:
        section("overhead: 7-call debates, scripted model, zero latency, everything persisted")
        reps = 1 if q else 3
        for n in sizes:
            r = median_of(reps, "overhead", "-n", str(n), "--concurrency", "1000")
            overhead[n] = r
            row(f"moot, {n:,} episodes", f"{r['calls_per_s']:,.0f} calls/s", ">= 10,000")
        lit = median_of(1, "overhead", "-n", "200", "--concurrency", "1000", "--litellm")
        row(
            "moot via litellm, 200 episodes",
            f"{lit['calls_per_s']:,.0f} calls/s",
            f"x{overhead[sizes[0]]['calls_per_s'] / lit['calls_per_s']:.0f} slower: litellm's own cost",
        )
        results["overhead"] = {"moot": overhead, "moot_litellm": lit}

    if "peers" in only and not args.no_peers:
        n_peer = sizes[0]
        moot_cps = overhead[n_peer]["calls_per_s"]
        section(f"peers, same shape, {n_peer:,} episodes (moot / peer; target: moot >= 10x)")
        results["peers"] = []
        for peer in peers.PEERS:
            n = peer.quick_n if q and peer.quick_n else n_peer
            r = peers.run(peer, n)
            r["episodes"] = n
            if peer.venv and "error" not in r:
                r["version"] = peers.version(peer.venv)
            results["peers"].append(r)
            if "error" in r:
                row(peer.label, "error", r["error"][:60])
                continue
            ratio = moot_cps / r["calls_per_s"]
            r["moot_ratio"] = round(ratio, 2)
            verdict = "" if peer.venv is None else ("ok" if ratio >= 10 else "MISSED")
            label = f"{peer.label} {r.get('version', '')}".strip()
            if n != n_peer:
                label += f" [{n} episodes]"
            row(label, f"{r['calls_per_s']:,.0f} calls/s", f"moot x{ratio:,.2f} {verdict}")

    if "concurrency" in only:
        section("concurrency: scripted model at 500 ms, unlimited concurrency (wall / 7 x 0.5 s)")
        conc = {}
        reps = 1 if q else 3
        for n in [1000] if q else [1000, 10000]:
            # the median of `reps` runs: one run of 10,000 moves by +-0.01 on a shared machine
            r = conc[n] = median_of(reps, "overhead", "-n", str(n), "--latency", "0.5", by="wall_over_ideal")
            span = f" (runs {r['runs'][0]:.3f}-{r['runs'][-1]:.3f})" if reps > 1 else ""
            row(
                f"{n:,} debates (event loop: {r['loop_cpu_us_per_call']:.0f} us CPU per call)",
                f"{r['wall_over_ideal']:.3f}{span}",
                "<= 1.10 (median)" if reps > 1 else "<= 1.10",
            )
            row(
                f"{n:,} debates: peak RSS, run / its store writer",
                f"{r['peak_rss_mb']:.0f} / {mb(r['writer_rss_mb'])} MB",
                "< 400 MB",
            )
        results["concurrency"] = conc

    if "memory" in only:
        section("memory: peak RSS, episodes streamed to the database")
        mem = {}
        for n in [1000, 5000] if q else [1000, 10000, 100000]:
            r = workload("overhead", "-n", str(n), "--concurrency", "1000")
            mem[n] = r
            row(
                f"{n:,} episodes (its store writer: {mb(r['writer_rss_mb'])} MB)",
                f"{r['peak_rss_mb']:.0f} MB",
                "< 400 MB, flat",
            )
        results["memory"] = mem

    if "overhead" in only:
        section("store")
        ref = overhead[sizes[-1]]
        row("messages written per second (end to end)", f"{ref['messages'] / ref['wall_s']:,.0f} /s")
        row("database bytes per 1,000 messages (with prompts)", f"{ref['db_bytes_per_1000_messages'] / 1e6:.2f} MB")

    if "local" in only:
        section("local model: embedded SmolLM2-135M, moot vs llama-cpp-python direct")
        try:
            proc = subprocess.run(
                [sys.executable, str(HERE / "local_model.py"), "--repeats", "3" if q else "7"],
                capture_output=True, text=True, timeout=900, check=True,
            )  # fmt: skip
            lm = json.loads(proc.stdout.strip().splitlines()[-1])
            results["local_model"] = lm
            row(
                "tokens/s direct / through moot",
                f"{lm['direct_tokens_per_s']:.1f} / {lm['moot_tokens_per_s']:.1f}",
                f"ratio {lm['moot_vs_direct']:.3f} (>= 0.95)",
            )
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            row("local model", "skipped", str(exc)[:60])

    if "batching" in only:
        section("local model: continuous batching (moot, fast mode) vs raw llama.cpp batches, same run")
        (bt,) = script("batching.py", "throughput", "--sizes", "1,4,8,16", "--max-tokens", "32" if q else "64")
        results["batching"] = bt
        for n in ("1", "4", "8", "16"):
            m, r = bt["moot"][n], bt["raw"][n]
            row(
                f"{n:>2} concurrent: tokens/s moot / raw llama.cpp",
                f"{m['tokens_per_s']:.0f} / {r['tokens_per_s']:.0f}",
                f"x{bt['speedup'][n]:.2f} of 1, {bt['vs_raw'][n]:.2f} of raw" + (" (>= 2 at 8)" if n == "8" else ""),
            )
        for n in ("1", "4", "8", "16"):  # as #24 measured llama.cpp: decoding alone
            m, r = bt["moot"][n]["generation_tokens_per_s"], bt["raw"][n]["generation_tokens_per_s"]
            up = bt["generation_speedup"][n]
            row(
                f"{n:>2} concurrent: generating alone, moot / raw",
                f"{m:.0f} / {r:.0f}" if m else "-",
                (f"x{up:.2f} of 1" if up else "") + (" (>= 2 at 8)" if n == "8" else ""),
            )
        for mode in ("exact", "fast"):
            (qs,) = script("batching.py", "quickstart", "--mode", mode)
            results[f"quickstart_{mode}"] = qs
            row(
                f"quickstart wall time, {mode} mode",
                f"{qs['wall_s']:.1f} s",
                "<= 15 s" if mode == "fast" else "(one request at a time)",
            )
            if mode == "fast":
                row(
                    "quickstart prompt tokens saved by prefix reuse",
                    f"{qs['prompt_tokens_reused']:,} of {qs['prompt_tokens']:,}",
                )
            row(  # the 15 s target against what this machine can do at all (bench/batching.py)
                f"quickstart floor, {mode} mode: its tokens at raw llama.cpp's best rate",
                f"{qs['floor_s']:.1f} s",
                f"{qs['tokens_through_model']:,} tokens read or written, {qs['best_tokens_per_s']:.0f}/s",
            )
            row(
                f"quickstart steps, {mode} mode: reading prompts / only generating",
                f"{qs['reading_s']:.1f} / {qs['generation_s']:.1f} s",
                f"{qs['reading_tokens']:,} / {qs['generation_tokens']:,} tokens decoded",
            )

    if "ray" in only:
        section("Ray executor vs local: the quickstart (embedded model, fast mode), local Ray cluster of 2 CPUs")
        if importlib.util.find_spec("ray") is None:
            row("quickstart on Ray", "skipped", "ray is not installed")
        else:
            local, ray = script("ray_bench.py", "--quickstart", "--cpus", "2")
            results["ray_quickstart"] = {"local": local, "ray": ray}
            row(
                "quickstart wall time, local / Ray",
                f"{local['wall_s']:.1f} / {ray['wall_s']:.1f} s",
                f"Ray/local {ray['ray_over_local']:.2f}",
            )
            row(
                "Ray: cluster start-up / workers' warm-up (apart)",
                f"{ray['cluster_start_s']:.1f} / {ray['workers_warm_up_s']:.1f} s",
            )

    if "analyze" in only:
        n_analyze = 5_000 if q else 100_000
        section(f"analysis: moot analyze on a {n_analyze:,}-episode database (made once, cached)")
        (an,) = script("analyze.py", "--episodes", str(n_analyze))
        results["analyze"] = an
        row(
            f"moot analyze, {n_analyze:,} episodes ({an['db_mb']} MB)",
            f"{an['analyze_wall_s']:.2f} s",
            f"cpu {an['analyze_cpu_s']:.2f} s",
        )

    if "tui" in only:
        n_tui = 100_000 if q else 1_000_000
        section(f"TUI: replay of a {n_tui:,}-message database (made once, cached), live at 1,000 msgs/s")
        (tui,) = script("tui.py", "--messages", str(n_tui), "--seconds", "3" if q else "10")
        results["tui"] = tui
        row("replay: first screen (start-up included)", f"{tui['first_screen_s'] * 1000:.0f} ms", "< 1 s")
        row("replay: jump to the last episode", f"{tui['jump_to_last_s'] * 1000:.0f} ms")
        row("live: max lag at 1,000 messages/s", f"{tui['live_max_lag_messages']:,} msgs",
            "<= a poll's worth")  # fmt: skip

    if "startup" in only:
        section("start-up")
        moot = str(Path(sys.executable).with_name("moot"))
        help_s = timed([moot, "--help"])
        validate_s = timed([moot, "validate", str(ROOT / "scenarios" / "quickstart.yaml")])
        row("moot --help", f"{help_s * 1000:.0f} ms", "< 300 ms")
        row("moot validate quickstart.yaml", f"{validate_s * 1000:.0f} ms", "< 300 ms")
        results["startup"] = {"help_s": help_s, "validate_s": validate_s}

    print(f"\ndone in {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
