"""Tokens per second of the embedded model through moot vs llama-cpp-python called directly.

Same llama.cpp instance (so the same weights in the same memory), same prompt, same
settings (temperature 0, same max_tokens), and the same calling thread: the model's own,
where moot runs every call to it (llama.cpp keeps an OpenMP team per calling thread, and a
call from another thread than the last one's ran ~2x slower). Only the path differs:
moot's gateway, chat-template rendering and reset, or `create_chat_completion` called
directly. The two are interleaved so machine noise hits both; the figure is the median of
the per-pair ratios. Prints one JSON line.

    python bench/local_model.py [--repeats 5] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from moot.models.base import GenerateRequest
from moot.models.gateway import CallTag, Model, ModelSettings, make_api
from moot.models.local import LoadedModel, load
from moot.workflows import aio

MESSAGES = [
    {"role": "system", "content": "You are a debater. Argue for your answer, citing the passage."},
    {
        "role": "user",
        "content": "Passage:\nMara runs the only bakery in the village. On Tuesday a storm "
        "knocked down a power line and her electric oven stopped working, so she closed at "
        "ten and spent the afternoon helping her neighbour carry sandbags.\n\n"
        "Question: Why did Mara close the bakery early on Tuesday?\n"
        "A: Her oven lost power in the storm\nB: She wanted to help her neighbour\n\n"
        "You argue for answer A. Write your argument in under 80 words.",
    },
]


class _Sink:
    def next_call_seq(self, episode: int) -> int:
        return 0

    async def publish(self, event: object) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args()

    # `exact`: one request at a time from a clean cache, as the direct call after reset().
    # In `fast` mode moot would read the repeated prompt from its prefix cache, which the
    # direct call cannot, and the ratio would measure the cache rather than the path.
    settings = ModelSettings(max_concurrency=1, batching="exact")
    api = make_api("local/smollm2-135m", settings)
    model = Model("local/smollm2-135m", api, settings, _Sink())
    loaded = load(api.path, api.n_ctx, api.n_threads, api.batching)  # the instance (and thread) moot uses
    request = GenerateRequest(MESSAGES, max_tokens=args.max_tokens, temperature=0.0, seed=0)
    tag = CallTag(0, "bench", "debater")

    def direct_call(m: LoadedModel) -> tuple[float, int]:
        m.llm.reset()
        t = time.perf_counter()
        out = m.llm.create_chat_completion(
            messages=MESSAGES, max_tokens=args.max_tokens, temperature=0.0, seed=0
        )
        return time.perf_counter() - t, out["usage"]["completion_tokens"]

    def run_direct() -> tuple[float, int]:
        return loaded.run(direct_call)

    async def run_moot() -> tuple[float, int]:
        t = time.perf_counter()
        result, _ = await model.generate(request, tag)
        return time.perf_counter() - t, result.completion_tokens

    aio.run(run_moot)  # load + warm both (on the loop moot runs on)
    run_direct()
    d_rates, m_rates, ratios = [], [], []
    for _ in range(args.repeats):
        wall, toks = run_direct()
        d = toks / wall
        wall, toks = aio.run(run_moot)
        m = toks / wall
        d_rates.append(d)
        m_rates.append(m)
        ratios.append(m / d)
    d, m = statistics.median(d_rates), statistics.median(m_rates)
    print(json.dumps({
        "bench": "local_model",
        "model": "local/smollm2-135m",
        "max_tokens": args.max_tokens,
        "direct_tokens_per_s": round(d, 1),
        "moot_tokens_per_s": round(m, 1),
        "moot_vs_direct": round(statistics.median(ratios), 3),
    }))


if __name__ == "__main__":
    main()
