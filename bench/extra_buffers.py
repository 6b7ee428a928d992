"""llama.cpp's extra buffer types on and off: tokens/s of the embedded model (Q4_1) and of
the same weights requantized to Q4_0 (the type llama.cpp's CPU repacking targets).

The figures behind moot's choice to turn the extra buffers off only on AMX hosts
(moot.models.local.open_llama). Each configuration loads in a process of its own; prompt
processing and generation are timed apart, median of 5. Prints one JSON line per
configuration, then a summary.

    .venv/bin/python bench/extra_buffers.py [--threads 2]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = (
    "<|im_start|>user\n"
    + "Write a short story about a baker whose oven broke during a storm, and what she did next. " * 3
    + "<|im_end|>\n<|im_start|>assistant\n"
)


def measure(path: str, extra: bool, threads: int) -> dict:
    """In this process: load with extra buffers on or off, time prompt and generation."""
    import llama_cpp.llama_cpp as low
    from llama_cpp import Llama, LogitsProcessorList

    defaults = low.llama_model_default_params

    def params():  # the same seam moot uses (moot.models.local.protect_defaults)
        p = defaults()
        p.use_extra_bufts = extra
        return p

    low.llama_model_default_params = params
    llm = Llama(model_path=path, n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    assert llm.model_params.use_extra_bufts == extra
    eos = llm.token_eos()

    def no_eos(input_ids, scores):  # every reply runs to max_tokens: equal work on and off
        scores[eos] = -float("inf")
        return scores

    keep_going = LogitsProcessorList([no_eos])
    prompt_rates, gen_rates = [], []
    for _ in range(5):
        llm.reset()
        t = time.perf_counter()
        first = llm.create_completion(PROMPT, max_tokens=1, temperature=0.0)
        prompt_s = time.perf_counter() - t
        llm.reset()
        t = time.perf_counter()
        out = llm.create_completion(PROMPT, max_tokens=128, temperature=0.0, seed=0,
                                    logits_processor=keep_going)
        wall = time.perf_counter() - t
        prompt_rates.append(first["usage"]["prompt_tokens"] / prompt_s)
        gen_rates.append((out["usage"]["completion_tokens"] - 1) / max(wall - prompt_s, 1e-6))
    return {
        "file": Path(path).name,
        "extra_buffers": extra,
        "prompt_tokens_per_s": round(statistics.median(prompt_rates), 1),
        "generation_tokens_per_s": round(statistics.median(gen_rates), 1),
        "text": out["choices"][0]["text"][:60],
    }


def requantize_q4_0(src: Path, dst: Path) -> None:
    import llama_cpp.llama_cpp as low

    params = low.llama_model_quantize_default_params()
    params.ftype = low.LLAMA_FTYPE_MOSTLY_Q4_0
    params.allow_requantize = True
    if low.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params)) != 0:
        raise SystemExit(f"bench: could not requantize {src}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one", nargs=2, metavar=("FILE", "on|off"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1] == "on", args.threads)))
        return
    from moot.models.local import model_path

    q4_1 = model_path("local/smollm2-135m")
    with tempfile.TemporaryDirectory() as tmp:
        q4_0 = Path(tmp) / "smollm2-135m.Q4_0.gguf"
        requantize_q4_0(q4_1, q4_0)  # loads no model in this process
        rows = []
        for path in (q4_1, q4_0):
            for extra in ("on", "off"):
                proc = subprocess.run(
                    [sys.executable, __file__, "--threads", str(args.threads), "--one", str(path), extra],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), flush=True)
    for name in (q4_1.name, q4_0.name):
        on, off = (r for r in rows if r["file"] == name)
        print(f"{name}: off/on prompt {off['prompt_tokens_per_s'] / on['prompt_tokens_per_s']:.2f}, "
              f"generation {off['generation_tokens_per_s'] / on['generation_tokens_per_s']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
