"""Continuous batching on the embedded model: aggregate tokens/s at 1, 4, 8 and 16 concurrent
requests through moot, raw llama.cpp at the same batch sizes in the same process as the
ceiling, and the quickstart's wall time and prompt tokens saved by prefix reuse.

    python bench/batching.py throughput [--sizes 1,4,8,16] [--max-tokens 64]
    python bench/batching.py quickstart [--mode fast|exact]
    python bench/batching.py rate

Each prints one JSON line. Throughput: every request has its own prompt (a story about a
different subject, ~30 tokens, the first ~20 of them alike: moot reads that head once and
shares its cells, the raw loop reads every prompt whole) and generates up to --max-tokens at
temperature 0; tokens/s is
completion tokens over the wall time from the first request to the last reply, prompt
reading included; generation tokens/s is the same for the steps that only generate (one new
token per sequence, no prompt being read: decoding and sampling), as #24's own figures for
llama.cpp were measured. The raw ceiling does the same with llama-cpp-python's low-level API and
nothing else: one context, all prompts in one batch, then one token per sequence per
`llama_decode` for --max-tokens steps (never stopping early), greedy by argmax.

The quickstart also reports its floor: every token the run put through the model (prompt
tokens read, not those the prefix cache held, and completion tokens) at raw llama.cpp's best
rate on this machine (`rate`: one sequence's tokens in a single `llama_decode`, batches of
128 to 512 tokens, the best of three each; bigger batches are slower, their attention
grows). No scheduler does better: a completion token costs a forward pass at least as dear
as a prompt token in the biggest batch, and it can only be batched with the other requests
in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SUBJECTS = [
    "a lighthouse", "a red fox", "a clockmaker", "the moon", "a lost key", "a river town",
    "a violin", "an old map", "a snowstorm", "a tiny robot", "a bakery", "a mountain goat",
    "a paper boat", "a desert well", "a lantern", "a chess game",
]  # fmt: skip


def messages(i: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You are a storyteller."},
        {"role": "user", "content": f"Tell a long story about {SUBJECTS[i % len(SUBJECTS)]}."},
    ]


async def through_moot(n: int, max_tokens: int) -> tuple[float, int, float, int]:
    from moot.models.base import GenerateRequest
    from moot.models.gateway import ModelSettings, make_api
    from moot.models.local import load

    api = make_api("local/smollm2-135m", ModelSettings())
    model = load(api.path, api.n_ctx, api.n_threads)
    await model.call(lambda m: None)
    requests = [GenerateRequest(messages(i), max_tokens=max_tokens) for i in range(n)]
    await api.generate(requests[0])  # warm (the context, the OpenMP team)
    # from the state the raw loop starts in: nothing cached (the warm-up's prompt, the last
    # size's sequences, whose cells every step's attention would still pass over)
    await model.call(lambda m: m.batcher.forget_idle())
    stats = model.batcher.stats
    stats.reused_tokens = stats.generation_tokens = 0
    stats.generation_s = 0.0
    start = time.perf_counter()
    results = await asyncio.gather(*[api.generate(r) for r in requests])
    wall = time.perf_counter() - start
    return wall, sum(r.completion_tokens for r in results), stats.generation_s, stats.generation_tokens


def raw_llama(n: int, max_tokens: int, loaded: object) -> tuple[float, int, float, int]:
    """The ceiling: llama.cpp's own batching with nothing of moot around it, on the model's
    thread, in a context like moot's."""
    import llama_cpp as lc
    import numpy as np

    llm = loaded.llm  # type: ignore[attr-defined]
    fmt = loaded.formatter  # type: ignore[attr-defined]
    prompts = [llm.tokenize(fmt(messages=messages(i)).prompt.encode(), special=True) for i in range(n)]
    params = lc.llama_context_params()
    ctypes.pointer(params)[0] = llm.context_params
    params.n_ctx, params.n_seq_max, params.kv_unified = 4096, 16, True
    ctx = lc.llama_init_from_model(llm.model, params)
    n_vocab = lc.llama_vocab_n_tokens(llm._model.vocab)
    batch = lc.llama_batch_init(512 + 16, 0, 1)
    try:
        start = time.perf_counter()
        last: list[int] = []
        k = 0
        for s, toks in enumerate(prompts):
            for p, t in enumerate(toks):
                batch.token[k], batch.pos[k], batch.n_seq_id[k] = t, p, 1
                batch.seq_id[k][0] = s
                batch.logits[k] = p == len(toks) - 1
                if p == len(toks) - 1:
                    last.append(k)
                k += 1
        batch.n_tokens = k
        assert lc.llama_decode(ctx, batch) == 0
        pos = [len(t) for t in prompts]
        generating = time.perf_counter()
        for _ in range(max_tokens):
            nxt = []
            for i in last:
                ptr = lc.llama_get_logits_ith(ctx, i)
                row = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), (n_vocab,))
                nxt.append(int(row.argmax()))
            for s, t in enumerate(nxt):
                batch.token[s], batch.pos[s], batch.n_seq_id[s] = t, pos[s], 1
                batch.seq_id[s][0] = s
                batch.logits[s] = 1
                pos[s] += 1
            batch.n_tokens = n
            assert lc.llama_decode(ctx, batch) == 0
            last = list(range(n))
        end = time.perf_counter()
        return end - start, n * max_tokens, end - generating, n * max_tokens
    finally:
        lc.llama_batch_free(batch)
        lc.llama_free(ctx)


def throughput(sizes: list[int], max_tokens: int) -> dict:
    from moot.models.gateway import ModelSettings, make_api
    from moot.models.local import load

    os.environ["MOOT_LLAMA_BATCHING"] = "fast"
    api = make_api("local/smollm2-135m", ModelSettings())
    out: dict = {"max_tokens": max_tokens, "n_threads": api.n_threads, "moot": {}, "raw": {}}
    for n in sizes:
        wall, toks, gen_s, gen_toks = asyncio.run(through_moot(n, max_tokens))
        out["moot"][n] = {"tokens_per_s": toks / wall, "tokens": toks, "wall_s": wall,
                          "generation_tokens_per_s": gen_toks / gen_s if gen_s else None}  # fmt: skip
        loaded = load(api.path, api.n_ctx, api.n_threads)
        wall, toks, gen_s, gen_toks = loaded.run(lambda m, n=n: raw_llama(n, max_tokens, m))
        out["raw"][n] = {"tokens_per_s": toks / wall, "tokens": toks, "wall_s": wall,
                         "generation_tokens_per_s": gen_toks / gen_s}  # fmt: skip
    one = out["moot"][sizes[0]]["tokens_per_s"]
    out["speedup"] = {n: out["moot"][n]["tokens_per_s"] / one for n in sizes}
    out["vs_raw"] = {n: out["moot"][n]["tokens_per_s"] / out["raw"][n]["tokens_per_s"] for n in sizes}
    gen_one = out["moot"][sizes[0]]["generation_tokens_per_s"]
    out["generation_speedup"] = {
        n: out["moot"][n]["generation_tokens_per_s"] / gen_one if gen_one and out["moot"][n]["generation_tokens_per_s"] else None
        for n in sizes
    }
    return out


def passages() -> str:
    """The shipped reading set's passages as one text: plain prose to time and compare on."""
    with (ROOT / "moot" / "data" / "reading.jsonl").open() as f:
        return " ".join(json.loads(line)["passage"] for line in f)


def quickstart_text(model: str = "local/smollm2-135m") -> str:
    """The README's quickstart, on `model`, with every call made (none from the response cache)."""
    text = (ROOT / "scenarios" / "quickstart.yaml").read_text().replace("local/smollm2-135m", model)
    return text + "\ncache: false\n"


RATE_BATCHES = (128, 256, 512)


def forward_rate(loaded: object) -> dict:
    """llama.cpp's best tokens/s on this machine, on the model's thread, in a context like
    the batcher's (flash attention, one unified cache): one sequence's tokens decoded in a
    single call, the only logits those of its last token, as a prompt is read."""
    import llama_cpp as lc

    llm = loaded.llm  # type: ignore[attr-defined]
    tokens = llm.tokenize(passages().encode())
    top = max(RATE_BATCHES)
    if len(tokens) < top:
        raise SystemExit(f"bench: the reading set has {len(tokens)} tokens, fewer than {top}")
    params = lc.llama_context_params()
    ctypes.pointer(params)[0] = llm.context_params
    params.n_ctx, params.n_batch, params.n_ubatch, params.kv_unified = 2 * top, top, top, True
    params.flash_attn_type = lc.LLAMA_FLASH_ATTN_TYPE_ENABLED
    ctx = lc.llama_init_from_model(llm.model, params)
    batch = lc.llama_batch_init(top, 0, 1)
    rates: dict[int, float] = {}
    try:
        mem = lc.llama_get_memory(ctx)
        for size in RATE_BATCHES:
            best = float("inf")
            for _ in range(3):
                lc.llama_memory_clear(mem, True)
                for k, t in enumerate(tokens[:size]):
                    batch.token[k], batch.pos[k], batch.n_seq_id[k] = t, k, 1
                    batch.seq_id[k][0] = 0
                    batch.logits[k] = k == size - 1
                batch.n_tokens = size
                start = time.perf_counter()
                if lc.llama_decode(ctx, batch) != 0:
                    raise SystemExit("bench: llama_decode failed")
                best = min(best, time.perf_counter() - start)
            rates[size] = size / best
    finally:
        lc.llama_batch_free(batch)
        lc.llama_free(ctx)
    return {"tokens_per_s": max(rates.values()), "by_batch": rates}


def rate() -> dict:
    from moot.models.gateway import ModelSettings, make_api
    from moot.models.local import load

    api = make_api("local/smollm2-135m", ModelSettings())
    return load(api.path, api.n_ctx, api.n_threads).run(forward_rate)


def quickstart(mode: str) -> dict:
    os.environ["MOOT_LLAMA_BATCHING"] = mode
    from moot.models import local
    from moot.scenario.load import parse
    from moot.workflows.run import run_scenario

    text = quickstart_text()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = run_scenario(parse(text), text, out=Path(tmp) / "qs.db")
        wall = time.perf_counter() - start
    (loaded,) = local._loaded.values()  # the quickstart's seats share one model
    stats = loaded.batcher.stats
    best = loaded.run(forward_rate)["tokens_per_s"]
    through = stats.prompt_tokens - stats.reused_tokens + stats.completion_tokens
    return {
        "mode": mode,
        "wall_s": wall,
        "episodes": summary.episodes,
        "failed": summary.failed,
        "requests": stats.requests,
        "prompt_tokens": stats.prompt_tokens,
        "prompt_tokens_reused": stats.reused_tokens,
        "completion_tokens": stats.completion_tokens,
        "decode_calls": stats.decode_calls,
        # the least time any schedule could take: see the module's docstring
        "tokens_through_model": through,
        "best_tokens_per_s": best,
        "floor_s": through / best,
        # where the run's time went: llama.cpp's steps that read prompts, and those that only
        # generated (with the scheduling between them)
        "reading_s": stats.reading_s,
        "reading_tokens": stats.reading_tokens,
        "generation_s": stats.generation_s,
        "generation_tokens": stats.generation_tokens,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["throughput", "quickstart", "rate"])
    ap.add_argument("--sizes", default="1,4,8,16")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--mode", choices=["fast", "exact"], default="fast")
    args = ap.parse_args()
    if args.what == "throughput":
        try:
            sizes = [int(s) for s in args.sizes.split(",")]
        except ValueError:
            sys.exit("bench: --sizes takes numbers separated by commas")
        result = throughput(sizes, args.max_tokens)
    elif args.what == "rate":
        result = rate()
    else:
        result = quickstart(args.mode)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
