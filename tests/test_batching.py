"""Continuous batching on the embedded model, for real: concurrent requests share llama.cpp's
forward passes (`moot.models.batcher`), prompts reuse cached prefixes, and `exact` mode
keeps llama-cpp-python's own numbers."""

import asyncio
import math
import re

import pytest

pytest.importorskip("llama_cpp", reason="the local extra is not installed")

from moot.models.base import GenerateRequest, ProviderError
from moot.models.batcher import MIN_SHARE, Batcher, _common
from moot.models.gateway import ModelSettings, make_api
from moot.models.local import LoadedModel, load

pytestmark = pytest.mark.anyio

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
WORDS = ["apple", "river", "candle", "tiger", "violin", "pepper"]
JUDGE = GenerateRequest(
    [{"role": "user", "content": "Passage: The cat is black.\nQuestion: What colour is the cat?"
      "\nA: black\nB: white\nReply with the letter only: A or B."}],
    max_tokens=2, answer_labels=("A", "B"), assistant_prefix="Answer:",
)  # fmt: skip
# How far batching may move a judge's probability for a label (normalised over the labels):
# llama.cpp's CPU kernels round differently for different batch shapes, and 8-bit activation
# blocks amplify that (seen: up to 0.032 in P(A) on this judge).
P_TOLERANCE = 0.05


def repeat(word: str, max_tokens: int = 24) -> GenerateRequest:
    text = f"Repeat exactly: {word} {word} {word} {word} {word}"
    return GenerateRequest(
        [SYSTEM, {"role": "user", "content": text}],
        max_tokens=max_tokens,
        assistant_prefix=f"{word} {word}",  # keeps a 135M model on its task
    )


def p_first(labels: dict[str, float]) -> float:
    a, b = math.exp(labels["A"]), math.exp(labels["B"])
    return a / (a + b)


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setenv("MOOT_LLAMA_BATCHING", "fast")
    return make_api("local/smollm2-135m", ModelSettings())


@pytest.fixture
def exact(monkeypatch):
    monkeypatch.setenv("MOOT_LLAMA_BATCHING", "exact")
    return make_api("local/smollm2-135m", ModelSettings())


async def loaded(api) -> LoadedModel:
    model = load(api.path, api.n_ctx, api.n_threads, api.batching)
    await model.call(lambda m: None)
    return model


async def test_concurrent_requests_each_get_their_own_reply(fast):
    lengths = [8, 9, 16, 24, 12, 20]
    stats = (await loaded(fast)).batcher.stats
    before = (stats.generation_steps, stats.generation_tokens)
    results = await asyncio.gather(*[fast.generate(repeat(w, n)) for w, n in zip(WORDS, lengths, strict=True)])
    # the steps that only generated carried one token for each sequence still generating
    steps, made = stats.generation_steps - before[0], stats.generation_tokens - before[1]
    assert 0 < steps < made <= sum(r.completion_tokens for r in results) and stats.generation_s > 0
    for word, n, result in zip(WORDS, lengths, results, strict=True):
        assert word in result.text.lower(), (word, result.text)
        assert not any(other in result.text.lower() for other in WORDS if other != word)
        assert 0 < result.completion_tokens <= n
    assert len({r.completion_tokens for r in results}) > 1  # they left at different steps


async def test_each_sequence_stops_at_its_own_stop_strings(fast):
    model = await loaded(fast)
    jobs = [fast._job(model, repeat(w, 30)) for w in WORDS[:4]]
    stops = [[b"\n"], [], [b"."], [b"zzz-never"]]
    for job, stop in zip(jobs, stops, strict=True):
        job.stop = stop
        model.submit(job)
    replies = [await asyncio.wrap_future(job.future) for job in jobs]
    texts = [text for text, *_ in replies]
    for word, text, stop in zip(WORDS[:4], texts, stops, strict=True):
        assert word in text.lower() and not any(s.decode() in text for s in stop)
    assert replies[0][2] < 30 and replies[2][2] < 30  # cut by their own stop strings
    assert "\n" in texts[3] or "." in texts[3]  # what cut the others did not cut this one


async def test_exact_mode_matches_llama_cpp_python_under_concurrency(exact):
    """`exact` (tests, replay, fork): the same text and label probabilities as
    llama-cpp-python's `create_completion` after `reset()`, whatever runs beside it."""
    model = await loaded(exact)
    requests = [repeat(w, 12) for w in WORDS[:3]] + [JUDGE]
    alone = [await model.call(exact._generate, r) for r in requests]
    together = await asyncio.gather(*[exact.generate(r) for r in requests])
    for a, b in zip(alone, together, strict=True):
        assert (a.text, a.completion_tokens, a.prompt_tokens) == (
            b.text, b.completion_tokens, b.prompt_tokens,
        )  # fmt: skip
    assert together[-1].label_logprobs == alone[-1].label_logprobs


async def test_judge_probabilities_survive_batching(fast, exact):
    reference = (await exact.generate(JUDGE)).label_logprobs
    crowd = [repeat(w, 20) for w in WORDS] + [JUDGE]
    batched = (await asyncio.gather(*[fast.generate(r) for r in crowd]))[-1].label_logprobs
    assert reference and batched and set(batched) == {"A", "B"}
    assert abs(p_first(batched) - p_first(reference)) <= P_TOLERANCE
    assert batched["A"] > batched["B"]  # the verdict itself holds


async def test_prefix_cache_is_used_bounded_and_evicted_lru(fast):
    model = LoadedModel(fast.path, 512, fast.n_threads)
    # Three slots, cells for two cached prompts of ~95 tokens beside a running one.
    model.batcher = Batcher(n_ctx=512, slots=3, cells=250, n_threads=fast.n_threads)
    await model.call(lambda m: None)
    stats = model.batcher.stats

    def ask(word: str, extra: str = "", max_tokens: int = 4) -> GenerateRequest:
        text = f"Here is a note about the {word}. " * 8 + f"Write the word {word}." + extra
        return GenerateRequest([SYSTEM, {"role": "user", "content": text}], max_tokens)

    prompts: dict[str, list[int]] = {}

    async def run(word: str, extra: str = "") -> int:
        job = fast._job(model, ask(word, extra))
        model.submit(job)
        *_, reused = await asyncio.wrap_future(job.future)
        held = sum(len(s.tokens) for s in model.batcher.slots)
        assert held <= model.batcher.cells  # bounded
        prompts[word + extra] = job.prompt
        return reused

    def shared(a: str, b: str) -> int:
        return _common(prompts[a], prompts[b])

    assert await run("apple") == 0
    # The system prompt and the whole note were not read again:
    assert await run("apple", " Then stop.") == shared("apple", "apple Then stop.") > 60
    # An empty slot, not apple's: the two share only a head (the system prompt and "Here is a
    # note about the"), which river takes from apple's cells instead of reading it again
    assert await run("river") == shared("apple", "river") >= MIN_SHARE
    apple = prompts["apple Then stop."]
    assert any(s.tokens[: len(apple)] == apple for s in model.batcher.slots)  # apple's cache kept
    assert stats.evictions == 0
    await run("tiger")  # no room for three cached prompts: the oldest (apple) goes
    assert stats.evictions >= 1
    assert await run("river", " Again.") == shared("river", "river Again.")  # still cached
    assert await run("apple", " Now.") < shared("apple", "apple Now.")  # evicted
    assert stats.reused_tokens > 0 and stats.prompt_tokens > stats.reused_tokens
    # a clean start (bench/): every idle slot's cache dropped, nothing reused after it
    assert await model.call(lambda m: m.batcher.forget_idle()) >= 2
    assert all(not s.tokens for s in model.batcher.slots)
    assert await run("river", " Again.") == 0


async def test_drafts_of_one_prompt_read_it_once_and_share_its_cells(fast):
    """Best-of-N: N requests with one prompt arrive together. The first reads it; the others
    wait for that, then share its cells (reading only the last token, for its logits) while it
    goes on generating, and greedy drafts come out alike."""
    model = LoadedModel(fast.path, 512, fast.n_threads)
    model.batcher = Batcher(n_ctx=512, slots=4, cells=1024, n_threads=fast.n_threads)
    await model.call(lambda m: None)
    stats = model.batcher.stats
    jobs = [fast._job(model, repeat("violin", 16)) for _ in range(3)]
    for job in jobs:
        model.submit(job)
    replies = [await asyncio.wrap_future(job.future) for job in jobs]
    n = len(jobs[0].prompt)
    assert stats.prompt_tokens == 3 * n
    assert stats.shared_tokens == stats.reused_tokens == 2 * (n - 1)
    assert sorted(reused for *_, reused in replies) == [0, n - 1, n - 1]
    texts = {text for text, *_ in replies}
    assert len(texts) == 1 and "violin" in texts.pop().lower()


async def test_prompts_arriving_together_read_their_common_head_once(fast):
    """Two different prompts with one long head (a seat's system prompt in two episodes),
    less than half of each: the second waits for the first to read the head, takes its
    cells, and reads the rest."""
    model = LoadedModel(fast.path, 512, fast.n_threads)
    model.batcher = Batcher(n_ctx=512, slots=4, cells=1024, n_threads=fast.n_threads)
    await model.call(lambda m: None)
    stats = model.batcher.stats
    head = "You are a careful reader. Read the whole note before you answer. " * 4
    jobs = [fast._job(model, GenerateRequest([{"role": "system", "content": head}, {"role": "user", "content": f"Write the word {w}. " * 16}], 6)) for w in ("tiger", "violin")]  # fmt: skip
    for job in jobs:
        model.submit(job)
    replies = [await asyncio.wrap_future(job.future) for job in jobs]
    common = _common(jobs[0].prompt, jobs[1].prompt)
    assert 40 < common < len(jobs[1].prompt) / 2
    assert [reused for *_, reused in replies] == [0, common]
    assert stats.shared_tokens == common and stats.prompt_tokens == len(jobs[0].prompt) + len(jobs[1].prompt)


async def test_cancelling_one_request_leaves_the_others_running(fast):
    model = await loaded(fast)
    requests = [repeat(w, 40) for w in WORDS[:3]]
    tasks = [asyncio.create_task(fast.generate(r)) for r in requests]
    while model.batcher.stats.decode_calls < 3:  # all three are decoding
        await asyncio.sleep(0.01)
    tasks[1].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]
    done = [await tasks[0], await tasks[2]]
    assert all(r.completion_tokens > 0 and r.text for r in done)
    assert WORDS[0] in done[0].text.lower() and WORDS[2] in done[1].text.lower()
    assert all(s.job is None for s in model.batcher.slots)  # the cancelled slot was freed


async def test_grammar_constrains_the_reply(fast):
    request = GenerateRequest(
        [SYSTEM, {"role": "user", "content": "Name three colours of the rainbow."}],
        max_tokens=10, grammar='root ::= "OFFER: " [0-9]+',
    )  # fmt: skip
    result = await fast.generate(request)
    assert re.fullmatch(r"OFFER: [0-9]+", result.text), result.text
    free = await fast.generate(GenerateRequest(request.messages, max_tokens=10))
    assert not free.text.startswith("OFFER")  # the constraint did it, not the prompt
    bad = GenerateRequest(request.messages, max_tokens=4, grammar="root ::= (")
    with pytest.raises(ProviderError, match="grammar"):
        await fast.generate(bad)


def test_grammar_is_stored_only_when_set():
    plain = GenerateRequest([{"role": "user", "content": "hi"}], max_tokens=5, seed=3)
    assert plain.params_json() == '{"max_tokens":5,"temperature":0.0,"seed":3}'
    assert "grammar" not in plain.record()
    shaped = GenerateRequest(plain.messages, max_tokens=5, seed=3, grammar='root ::= "x"')
    assert shaped.params_json().endswith(',"grammar":"root ::= \\"x\\""}')
    assert shaped.record()["grammar"] == 'root ::= "x"'


def test_a_scenario_chooses_a_local_models_batching_over_the_process_default(monkeypatch, tmp_path):
    """`models: {local/...: {batching: exact}}` fixes the mode for that model, whatever
    MOOT_LLAMA_BATCHING says; without it the process's mode holds (a fork sets `exact`); the
    run records the mode its local models used."""
    from moot.errors import ConfigError
    from moot.scenario.load import parse

    monkeypatch.delenv("MOOT_LLAMA_BATCHING", raising=False)
    assert make_api("local/smollm2-135m", ModelSettings()).describe()["batching"] == "fast"
    monkeypatch.setenv("MOOT_LLAMA_BATCHING", "exact")
    assert make_api("local/smollm2-135m", ModelSettings()).describe()["batching"] == "exact"
    text = "name: b\nseats: {judge: {model: local/smollm2-135m}}\nmodels: {local/smollm2-135m: {batching: fast}}\n"
    settings = parse(text).model_for("local/smollm2-135m")
    assert make_api("local/smollm2-135m", settings).describe()["batching"] == "fast"
    with pytest.raises(ConfigError, match=r"models\.local/smollm2-135m\.batching"):
        parse(text.replace("batching: fast", "batching: sloppy"))


async def test_greedy_reads_the_logits_in_place_as_llama_cpps_greedy_sampler_picks(fast, monkeypatch):
    """At temperature 0 the batcher takes the first highest logit itself instead of running
    llama.cpp's sampler chain (which copies every candidate first): the same token, each time."""
    compared: list[tuple[int, int]] = []
    sample = Batcher._sample

    def both(self, slot, i):
        if slot.job.sampler is None:  # greedy: no chain of its own, so llama.cpp's greedy sampler here
            greedy = self.lc.llama_sampler_init_greedy()
            compared.append((int(self._scores(i).argmax()), self.lc.llama_sampler_sample(greedy, self.ctx, i)))
            self.lc.llama_sampler_free(greedy)
        return sample(self, slot, i)

    monkeypatch.setattr(Batcher, "_sample", both)
    await asyncio.gather(*[fast.generate(repeat(w, 16)) for w in WORDS[:4]])
    assert len(compared) >= 16 and all(mine == llamas for mine, llamas in compared)
