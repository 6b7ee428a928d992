"""The embedded model's weights in other formats: how fast each reads prompts and generates,
how closely each computes the shipped weights' own model, and the quickstart's wall time.

The shipped file is Q4_1. llama.cpp multiplies Q4_1 weights by activations it first rounds
to 8 bits (Q8_1), and has no fast batched kernel for it: reading prompts is what bounds the
quickstart (bench/batching.py's floor). The same weights dequantized to F32 are the weights'
exact model (a Q4_1 weight is d * q + m in half floats: exact in single precision), so it
is the reference here; F16 rounds each weight to half precision, Q8_0 requantizes them.

For each format, in a process of its own: prompt tokens/s (bench/batching.py's `rate`),
one sequence's generation tokens/s, and the logits at every position of the reading set's
first passages, compared with F32's (mean KL divergence, how often the most likely token is
F32's); with --quickstart, the README's quickstart (fast mode, every call made) on it.

    .venv/bin/python bench/weights.py [--quickstart]

Prints one JSON line per format, then a summary. The converted files live in a temporary
directory: moot runs the shipped file; another format is `local/PATH.gguf` in a scenario.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("f32", "q4_1", "f16", "q8_0")  # the reference first
POSITIONS = 400


def convert(src: Path, dst: Path, fmt: str) -> None:
    import llama_cpp.llama_cpp as low

    params = low.llama_model_quantize_default_params()
    params.ftype = {"f32": low.LLAMA_FTYPE_ALL_F32, "f16": low.LLAMA_FTYPE_MOSTLY_F16,
                    "q8_0": low.LLAMA_FTYPE_MOSTLY_Q8_0}[fmt]  # fmt: skip
    params.allow_requantize = True
    if low.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params)) != 0:
        raise SystemExit(f"bench: could not convert {src} to {fmt}")


def measure(path: Path, logits_out: Path, quickstart: bool) -> dict:
    """In this process: the rates, the logits (saved for the parent to compare), the quickstart."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "bench"))
    from batching import forward_rate, passages, quickstart_text

    from moot.models.local import default_threads, load

    model = load(path, 2048, default_threads())
    prompt_rate = model.run(forward_rate)["tokens_per_s"]

    def logits_and_generation(m: object) -> tuple[np.ndarray, float]:
        llm = m.llm  # type: ignore[attr-defined]
        tokens = llm.tokenize(passages().encode())[:POSITIONS]
        rows = []
        llm.reset()
        for tok in tokens:  # one position at a time: the logits llama.cpp gives a generated token
            llm.eval([tok])
            rows.append(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64))
        llm.reset()
        start = time.perf_counter()
        for tok in tokens[:64]:  # as a reply is generated: one token per decode
            llm.eval([tok])
        return np.stack(rows), 64 / (time.perf_counter() - start)

    logits, gen_rate = model.run(logits_and_generation)
    np.save(logits_out, logits)
    out = {"file": path.name, "bytes": path.stat().st_size, "prompt_tokens_per_s": round(prompt_rate, 1),
           "generation_tokens_per_s": round(gen_rate, 1)}  # fmt: skip
    if quickstart:
        import os

        os.environ["MOOT_LLAMA_BATCHING"] = "fast"
        from moot.scenario.load import parse
        from moot.workflows.run import run_scenario

        text = quickstart_text(f"local/{path}")
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            summary = run_scenario(parse(text), text, out=Path(tmp) / "qs.db")
            out["quickstart_s"] = round(time.perf_counter() - start, 1)
        assert summary.failed == 0 and summary.episodes == 4, summary
    return out


def compare(reference: object, other: object) -> dict:
    import numpy as np

    def log_softmax(x: np.ndarray) -> np.ndarray:
        x = x - x.max(axis=1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True))

    ref, lp = log_softmax(reference), log_softmax(other)  # type: ignore[arg-type]
    kl = (np.exp(ref) * (ref - lp)).sum(axis=1)
    return {"mean_kl_vs_f32": float(kl.mean()), "max_kl_vs_f32": float(kl.max()),
            "top1_as_f32": float((ref.argmax(axis=1) == lp.argmax(axis=1)).mean())}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quickstart", action="store_true", help="also run the quickstart on each format")
    ap.add_argument("--one", nargs=2, metavar=("FILE", "LOGITS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(Path(args.one[0]), Path(args.one[1]), args.quickstart)))
        return
    import numpy as np

    from moot.models.local import model_path

    shipped = model_path("local/smollm2-135m")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FORMATS:
            path = shipped
            if fmt != "q4_1":
                path = Path(tmp) / f"smollm2-135m.{fmt}.gguf"
                convert(shipped, path, fmt)  # loads no model in this process
            logits = Path(tmp) / f"{fmt}.npy"
            proc = subprocess.run(
                [sys.executable, __file__, "--one", str(path), str(logits)] + (["--quickstart"] if args.quickstart else []),
                capture_output=True, text=True,
            )  # fmt: skip
            if proc.returncode != 0:
                raise SystemExit(f"bench: {fmt}: {proc.stderr.strip().splitlines()[-1:]}")
            row = json.loads(proc.stdout.strip().splitlines()[-1]) | {"format": fmt}
            row |= compare(np.load(Path(tmp) / "f32.npy"), np.load(logits))
            rows[fmt] = row
            print(json.dumps(row), flush=True)
    base = rows["q4_1"]
    for fmt, r in rows.items():
        print(
            f"{fmt:>5}: prompt x{r['prompt_tokens_per_s'] / base['prompt_tokens_per_s']:.2f}, one sequence"
            f" x{r['generation_tokens_per_s'] / base['generation_tokens_per_s']:.2f} of Q4_1's;"
            f" KL to F32 {r['mean_kl_vs_f32']:.1e}, top token F32's {r['top1_as_f32']:.1%}"
            + (f"; quickstart {r['quickstart_s']} s" if "quickstart_s" in r else "")
        )


if __name__ == "__main__":
    main()
