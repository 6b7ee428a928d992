"""The embedded model, for real: SmolLM2-135M through llama.cpp, in-process."""

import json
import sqlite3

import anyio
import pytest

pytest.importorskip("llama_cpp", reason="the local extra is not installed")

from moot.models.base import GenerateRequest
from moot.models.gateway import ModelSettings, make_api
from moot.scenario.load import parse
from moot.workflows.run import run_scenario

pytestmark = pytest.mark.anyio

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Name three colours of the rainbow."},
]


@pytest.fixture(scope="module", autouse=True)
def exact_mode():
    """These tests pin llama-cpp-python's own numbers: `exact` batching (one request at a
    time, no prefix reuse), the mode for tests, replay and fork. `fast` is tests/test_batching."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOOT_LLAMA_BATCHING", "exact")
        yield


@pytest.fixture(scope="module")
def smollm(exact_mode):
    return make_api("local/smollm2-135m", ModelSettings())


async def test_temperature_zero_is_deterministic(smollm):
    request = GenerateRequest(MESSAGES, max_tokens=24, temperature=0.0, seed=1)
    first = await smollm.generate(request)
    # A different prompt in between would leave a KV prefix behind without reset().
    await smollm.generate(GenerateRequest(MESSAGES[:1] + [{"role": "user", "content": "Hi"}], 8))
    second = await smollm.generate(request)
    assert first.text and first.text == second.text
    assert first.completion_tokens == second.completion_tokens > 0
    assert first.prompt_tokens > 10


async def test_judge_probabilities_come_from_token_logits(smollm):
    request = GenerateRequest(
        [{"role": "user", "content": "Passage: The cat is black.\nQuestion: What colour is "
          "the cat?\nA: black\nB: white\nReply with the letter only: A or B."}],
        max_tokens=2, answer_labels=("A", "B"), assistant_prefix="Answer:",
    )
    result = await smollm.generate(request)
    lp = result.label_logprobs
    assert set(lp) == {"A", "B"} and all(v < 0 for v in lp.values())
    assert lp["A"] > lp["B"]  # an easy passage: the model prefers the right letter


async def test_concurrent_calls_are_serialised_safely(smollm):
    request = GenerateRequest(MESSAGES, max_tokens=12, temperature=0.0, seed=1)
    results = []

    async def call():
        results.append((await smollm.generate(request)).text)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(call)
    assert len(set(results)) == 1


def test_end_to_end_debate_on_the_embedded_model(tmp_path):
    text = """
name: local-e2e
protocol: {name: debate, rounds: 1}
seats:
  debater: {model: local/smollm2-135m, max_tokens: 24}
  judge: {model: local/smollm2-135m}
dataset: {source: builtin:reading, limit: 2}
"""
    summary = run_scenario(parse(text), text, out=tmp_path / "local.db")
    assert summary.episodes == 2 and summary.failed == 0 and summary.invalid == 0
    db = sqlite3.connect(tmp_path / "local.db")
    verdicts = db.execute("SELECT method, probabilities FROM verdicts").fetchall()
    assert [m for m, _ in verdicts] == ["token_logprobs", "token_logprobs"]
    assert all(abs(sum(json.loads(p)) - 1) < 1e-6 for _, p in verdicts)
    calls = db.execute("SELECT prompt_tokens, completion_tokens, response FROM model_calls").fetchall()
    assert len(calls) == 6 and all(p > 0 and c > 0 and r for p, c, r in calls)
    (models,) = db.execute("SELECT models FROM runs").fetchone()
    info = json.loads(models)["local/smollm2-135m"]
    assert info["file"] == "SmolLM2-135M-Instruct.Q4_1.gguf" and len(info["sha256"]) == 64


# -- loading safely on every CPU, and one thread per loaded model ---------------------------

AMX_CPUINFO = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f amx_bf16 amx_tile amx_int8\n"
AVX2_CPUINFO = "processor\t: 0\nflags\t\t: fpu sse avx2 fma\n"


def test_amx_is_read_from_the_cpu_flags_or_from_llama_cpps_build():
    from moot.models.local import has_amx

    assert has_amx(AMX_CPUINFO, "CPU : AVX2 = 1 | REPACK = 1 |")
    assert has_amx(AVX2_CPUINFO, "CPU : AVX2 = 1 | AMX_INT8 = 1 | REPACK = 1 |")
    assert not has_amx(AVX2_CPUINFO, "CPU : AVX2 = 1 | REPACK = 1 |")
    assert not has_amx("", "")


@pytest.mark.parametrize("amx", [True, False])
def test_the_loader_keeps_weights_out_of_extra_buffers_on_amx_hosts(monkeypatch, amx):
    """On a host with AMX, llama.cpp's AMX buffer segfaults in the first decode: moot's
    loader must load without extra buffer types there, whatever host runs this test."""
    from moot.models import local

    host_has_amx = local.plain_buffers()  # this machine's own answer, read before it is replaced
    monkeypatch.setattr(local, "plain_buffers", lambda: amx)
    llm = local.open_llama(local.model_path("local/smollm2-135m"), n_ctx=256, n_threads=1, verbose=False)
    try:
        assert llm.model_params.use_extra_bufts is (not amx)
        if amx or not host_has_amx:  # extra buffers on an AMX host: the very crash this prevents
            out = llm.create_completion("The sky is", max_tokens=3, temperature=0.0)  # a real decode
            assert out["usage"]["completion_tokens"] > 0
    finally:
        llm.close()


def test_every_call_to_a_loaded_model_runs_on_its_one_thread(smollm):
    """llama.cpp keeps an OpenMP team per calling thread: one model, one thread."""
    import threading

    from moot.models.local import load

    model = load(smollm.path, smollm.n_ctx, smollm.n_threads)
    seen = []

    def where(m):
        seen.append(threading.get_ident())
        return m.llm is not None

    async def from_tasks():
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(model.call, where)

    anyio.run(from_tasks)
    threads = [threading.Thread(target=model.run, args=(where,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 5 and len(set(seen)) == 1
    assert seen[0] != threading.get_ident()


async def test_a_caller_cancelled_before_its_turn_is_skipped(smollm):
    import threading

    from moot.models.local import load

    model = load(smollm.path, smollm.n_ctx, smollm.n_threads)
    release, ran = threading.Event(), []
    busy = threading.Thread(target=model.run, args=(lambda m: release.wait(10),))
    busy.start()  # the model's thread is taken until `release`
    with anyio.move_on_after(0.05) as scope:
        await model.call(lambda m: ran.append(1))
    assert scope.cancelled_caught
    release.set()
    busy.join()
    await model.call(lambda m: ran.append(2))  # the next caller is served
    assert ran == [2]
