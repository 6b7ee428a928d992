"""The Model wrapper: retries with backoff, Retry-After, timeouts, the concurrency limit and
the ModelCall record of every call.

What a test pins in time is read on a virtual clock (VirtualClockLoop) wherever the waits are
the event loop's (sleeps, backoffs, timeouts): exact, and the same however busy the machine.
The call records' latencies are the wall clock's; they are bounded by the span of the call."""

from __future__ import annotations

import asyncio
import selectors
import time
from typing import Any

import anyio
import pytest
from helpers import RecordingSink

from moot.models.base import GenerateRequest, GenerateResult, ProviderError
from moot.models.gateway import (
    CallTag,
    Model,
    ModelCallFailed,
    ModelSettings,
    make_api,
    with_defaults,
)
from moot.models.scripted import ScriptedModel


@pytest.fixture
def anyio_backend():
    return "asyncio"


Sink = RecordingSink


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock (`loop.time()`, anyio.current_time()) starts at 0 and moves
    only when every task waits: where the loop would block until its next timer, the clock
    jumps to it. Sleeps, timeouts and backoffs then last exactly their length on this clock and
    next to no time on the wall clock. Every timer made is kept, as its public TimerHandle, in
    `timers`. For code without threads or sockets: what they would bring is not waited for
    while a timer is due."""

    def __init__(self) -> None:
        self.clock = 0.0
        self.timers: list[asyncio.TimerHandle] = []
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.clock

    def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> asyncio.TimerHandle:
        handle = super().call_at(when, callback, *args, context=context)
        self.timers.append(handle)
        return handle


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualClockLoop) -> None:
        super().__init__()
        self.loop = loop

    def select(self, timeout: float | None = None) -> list:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer due: only I/O (a thread's wake-up) can come
            return super().select(None)
        self.loop.clock += timeout  # the loop would sleep until its next timer: it is there
        return []


# A test on the virtual clock (the module's `anyio_backend` is the ordinary asyncio loop).
on_a_virtual_clock = pytest.mark.parametrize(
    "anyio_backend", [pytest.param(("asyncio", {"loop_factory": VirtualClockLoop}), id="virtual-clock")]
)


class FlakyProvider:
    """Fails `failures` times with the given error, then answers."""

    name = "flaky"

    def __init__(
        self,
        failures: int = 0,
        *,
        retryable: bool = True,
        retry_after: float | None = None,
        delay: float = 0.0,
        text: str = "ok",
    ) -> None:
        self.failures = failures
        self.retryable = retryable
        self.retry_after = retry_after
        self.delay = delay
        self.text = text
        self.calls = 0
        self.call_times: list[float] = []

    def describe(self) -> dict:
        return {"provider": "flaky"}

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        self.calls += 1
        self.call_times.append(anyio.current_time())  # the loop's clock: virtual or monotonic
        if self.delay:
            await anyio.sleep(self.delay)
        if self.calls <= self.failures:
            raise ProviderError(
                f"boom {self.calls}", retryable=self.retryable, retry_after=self.retry_after
            )
        return GenerateResult(
            text=self.text, prompt_tokens=12, completion_tokens=5, cost=0.25, label_logprobs=None
        )


class SleepyProvider:
    name = "sleepy"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def describe(self) -> dict:
        return {"provider": "sleepy"}

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        self.calls += 1
        await anyio.sleep(self.seconds)
        return GenerateResult(text="late")


class CountingProvider:
    """Tracks how many calls are in flight at once."""

    name = "counting"

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0

    def describe(self) -> dict:
        return {"provider": "counting"}

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await anyio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        return GenerateResult(text=request.messages[-1]["content"])


def request(content: str = "hello") -> GenerateRequest:
    return GenerateRequest(messages=[{"role": "user", "content": content}], max_tokens=16, seed=7)


TAG = CallTag(episode=2, seat="debater_a", role="debater")
EPS = 1e-9  # float rounding on the virtual clock


@pytest.mark.anyio
async def test_success_records_the_call():
    sink = Sink()
    provider = FlakyProvider(text="hi there")
    model = Model("fake/model", provider, ModelSettings(), sink)
    before = time.time()
    result, seq = await model.generate(request(), TAG)
    after = time.time()
    assert result.text == "hi there"
    assert seq == 0
    (call,) = sink.calls
    assert call.episode == 2 and call.seq == 0
    assert call.seat == "debater_a" and call.role == "debater"
    assert call.model == "fake/model"
    assert call.request == request()
    assert call.response == "hi there"
    assert call.prompt_tokens == 12 and call.completion_tokens == 5
    assert call.cost == 0.25
    assert call.attempts == 1
    assert call.error is None
    assert call.latency_s >= 0
    assert before <= call.started_at <= after  # a wall-clock timestamp, taken as the call started


@pytest.mark.anyio
async def test_sequence_numbers_per_episode():
    sink = Sink()
    model = Model("fake", FlakyProvider(), ModelSettings(), sink)
    seqs = [
        (await model.generate(request(), CallTag(ep, "judge", "judge")))[1]
        for ep in (0, 0, 1, 0, 1)
    ]
    assert seqs == [0, 1, 0, 2, 1]
    assert [c.seq for c in sink.calls] == seqs


@on_a_virtual_clock
@pytest.mark.anyio
async def test_retryable_errors_are_retried_with_backoff():
    sink = Sink()
    provider = FlakyProvider(failures=3)
    model = Model("fake", provider, ModelSettings(backoff=0.01, retries=4), sink)
    t0 = anyio.current_time()
    result, _ = await model.generate(request(), TAG)
    elapsed = anyio.current_time() - t0
    assert result.text == "ok"
    assert provider.calls == 4
    (call,) = sink.calls  # one record for the call, however many attempts
    assert call.attempts == 4
    assert call.error is None
    assert call.response == "ok"
    # Exponential backoff with jitter in [0.5, 1] of 0.01, 0.02, 0.04 (the attempts take no time).
    gaps = [b - a for a, b in zip(provider.call_times, provider.call_times[1:])]
    assert len(gaps) == 3
    assert gaps[0] >= 0.005 and gaps[1] >= 0.01 and gaps[2] >= 0.02
    assert gaps[0] <= 0.01 + EPS and gaps[1] <= 0.02 + EPS and gaps[2] <= 0.04 + EPS
    assert elapsed >= 0.035
    assert elapsed <= 0.07 + EPS


@on_a_virtual_clock
@pytest.mark.anyio
async def test_backoff_is_capped_by_max_backoff():
    sink = Sink()
    provider = FlakyProvider(failures=3)
    settings = ModelSettings(backoff=10.0, max_backoff=0.01, retries=3)
    t0 = anyio.current_time()
    await Model("fake", provider, settings, sink).generate(request(), TAG)
    # three waits of 0.01 s with jitter in [0.5, 1] (uncapped: 10, 20 and 40 s)
    assert 3 * 0.005 <= anyio.current_time() - t0 <= 3 * 0.01 + EPS
    assert sink.calls[0].attempts == 4


@pytest.mark.anyio
async def test_retries_exhausted_fails_with_record():
    sink = Sink()
    provider = FlakyProvider(failures=100)
    model = Model("fake", provider, ModelSettings(backoff=0.001, retries=2), sink)
    with pytest.raises(ModelCallFailed) as info:
        await model.generate(request(), TAG)
    assert provider.calls == 3  # the first attempt and two retries
    (call,) = sink.calls
    assert call.attempts == 3
    assert call.error == "boom 3"
    assert call.response is None
    assert call.prompt_tokens == 0 and call.completion_tokens == 0 and call.cost is None
    assert info.value.model == "fake"
    assert info.value.error == "boom 3"
    assert info.value.call_seq == call.seq == 0


@on_a_virtual_clock
@pytest.mark.anyio
async def test_non_retryable_error_fails_at_once():
    sink = Sink()
    provider = FlakyProvider(failures=1, retryable=False)
    model = Model("fake", provider, ModelSettings(backoff=5.0, retries=4), sink)
    t0 = anyio.current_time()
    with pytest.raises(ModelCallFailed) as info:
        await model.generate(request(), TAG)
    assert anyio.current_time() == t0  # no backoff sleep: the clock never moved
    assert provider.calls == 1
    (call,) = sink.calls
    assert call.attempts == 1
    assert call.error == "boom 1"
    assert call.response is None
    assert call.request == request()
    assert "boom 1" in str(info.value)
    assert info.value.call_seq == call.seq


@pytest.mark.anyio
async def test_retry_after_is_honoured():
    sink = Sink()
    provider = FlakyProvider(failures=1, retry_after=0.3)
    model = Model("fake", provider, ModelSettings(backoff=0.01), sink)
    t0 = time.perf_counter()
    result, _ = await model.generate(request(), TAG)
    elapsed = time.perf_counter() - t0
    assert result.text == "ok"
    assert elapsed >= 0.3
    assert provider.call_times[1] - provider.call_times[0] >= 0.3
    assert sink.calls[0].attempts == 2
    assert sink.calls[0].latency_s >= 0.3


@on_a_virtual_clock
@pytest.mark.anyio
async def test_retry_after_on_non_retryable_error_is_not_waited_for():
    sink = Sink()
    provider = FlakyProvider(failures=1, retryable=False, retry_after=5.0)
    t0 = anyio.current_time()
    with pytest.raises(ModelCallFailed):
        await Model("fake", provider, ModelSettings(), sink).generate(request(), TAG)
    assert anyio.current_time() == t0  # not a moment waited
    assert provider.calls == 1


@on_a_virtual_clock
@pytest.mark.anyio
async def test_timeout_is_retried_then_recorded():
    sink = Sink()
    provider = SleepyProvider(1.0)
    settings = ModelSettings(timeout=0.05, retries=2, backoff=0.01)
    model = Model("slow", provider, settings, sink)
    t0 = anyio.current_time()
    with pytest.raises(ModelCallFailed) as info:
        await model.generate(request(), TAG)
    elapsed = anyio.current_time() - t0
    assert provider.calls == 3  # a timeout is retryable
    # each attempt was cut off at 0.05 s (not let run its 1 s), with backoffs of
    # 0.005-0.01 and 0.01-0.02 s between them
    assert 3 * 0.05 + 0.015 - EPS <= elapsed <= 3 * 0.05 + 0.03 + EPS
    assert elapsed < 0.9
    (call,) = sink.calls
    assert call.attempts == 3
    assert call.error is not None and "timeout" in call.error
    assert call.error == "timeout after 0.05s"
    assert call.response is None
    assert "timeout" in info.value.error


@pytest.mark.anyio
async def test_timeout_then_success():
    class SlowOnce:
        name = "slow-once"
        calls = 0

        def describe(self):
            return {}

        async def generate(self, req):
            self.calls += 1
            if self.calls == 1:
                await anyio.sleep(1.0)
            return GenerateResult(text="second try")

    sink = Sink()
    model = Model("x", SlowOnce(), ModelSettings(timeout=0.05, backoff=0.01), sink)
    result, _ = await model.generate(request(), TAG)
    assert result.text == "second try"
    assert sink.calls[0].attempts == 2 and sink.calls[0].error is None


@on_a_virtual_clock
@pytest.mark.anyio
async def test_max_concurrency_holds():
    sink = Sink()
    provider = CountingProvider(delay=0.03)
    model = Model("fake", provider, ModelSettings(max_concurrency=2), sink)
    results: dict[int, str] = {}

    async def one(i: int) -> None:
        result, _ = await model.generate(request(f"q{i}"), CallTag(i, "s", "debater"))
        results[i] = result.text

    t0 = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(one, i)
    elapsed = anyio.current_time() - t0
    assert provider.max_in_flight == 2
    assert results == {i: f"q{i}" for i in range(10)}
    assert len(sink.calls) == 10
    assert elapsed == pytest.approx(5 * 0.03)  # five waves of two


@pytest.mark.anyio
async def test_unlimited_concurrency_runs_all_at_once():
    provider = CountingProvider(delay=0.03)
    model = Model("fake", provider, ModelSettings(max_concurrency=None), Sink())
    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(model.generate, request(), CallTag(i, "s", "debater"))
    assert provider.max_in_flight == 10


@on_a_virtual_clock
@pytest.mark.anyio
async def test_time_queued_for_the_limiter_does_not_count_towards_the_timeout():
    sink = Sink()
    provider = CountingProvider(delay=0.04)
    settings = ModelSettings(max_concurrency=1, timeout=0.2, retries=0)
    model = Model("fake", provider, settings, sink)
    t0 = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for i in range(8):  # 8 x 0.04 s queued behind one slot: well over the 0.2 s timeout
            tg.start_soon(model.generate, request(), CallTag(i, "s", "debater"))
    assert anyio.current_time() - t0 == pytest.approx(8 * 0.04)  # one after another
    assert provider.max_in_flight == 1
    assert [c.error for c in sink.calls] == [None] * 8
    assert all(c.attempts == 1 for c in sink.calls)


@pytest.mark.anyio
async def test_latency_and_tokens_recorded():
    sink = Sink()
    provider = FlakyProvider(delay=0.05)
    t0 = time.perf_counter()
    await Model("fake", provider, ModelSettings(), sink).generate(request(), TAG)
    span = time.perf_counter() - t0
    (call,) = sink.calls
    assert 0.05 <= call.latency_s <= span  # in seconds, and within the call
    assert call.prompt_tokens == 12
    assert call.completion_tokens == 5
    assert call.cost == 0.25


@pytest.mark.anyio
async def test_latency_includes_retries():
    sink = Sink()
    provider = FlakyProvider(failures=1, retry_after=0.1, delay=0.02)
    await Model("fake", provider, ModelSettings(backoff=0.01), sink).generate(request(), TAG)
    assert sink.calls[0].latency_s >= 0.14


@pytest.mark.anyio
async def test_scripted_through_make_api():
    sink = Sink()
    settings = ModelSettings(replies=["one", "two"], latency=0.01)
    api = make_api("scripted/x", settings)
    assert isinstance(api, ScriptedModel)
    assert api.describe() == {"provider": "scripted", "latency": 0.01}
    model = Model("scripted/x", api, settings, sink)
    result, _ = await model.generate(request("abc"), TAG)
    assert result.text in ("one", "two")
    call = sink.calls[0]
    assert call.latency_s >= 0.01
    assert call.prompt_tokens == len("abc") // 4 + 1
    assert call.completion_tokens == len(result.text) // 4 + 1
    assert call.cost == 0.0


def test_provider_defaults_fill_what_the_scenario_left_open():
    local = with_defaults("local/smollm2-135m", ModelSettings())
    assert (local.max_concurrency, local.timeout) == (16, 600.0)  # batched by the loaded model
    api = with_defaults("openai/gpt-4o-mini", ModelSettings())
    assert (api.max_concurrency, api.timeout) == (16, 120.0)
    for name in ("scripted", "scripted/judge"):  # in-process and instant: no limits
        scripted = with_defaults(name, ModelSettings())
        assert (scripted.max_concurrency, scripted.timeout) == (None, None)
    mine = with_defaults("openai/gpt-4o-mini", ModelSettings(max_concurrency=64, timeout=5))
    assert (mine.max_concurrency, mine.timeout) == (64, 5)


def test_request_record_never_has_extra_fields():
    rec = GenerateRequest(messages=[{"role": "user", "content": "x"}], max_tokens=4).record()
    assert rec == {
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 4,
        "temperature": 0.0,
        "seed": None,
    }
    rec = GenerateRequest(
        messages=[], max_tokens=4, answer_labels=("A", "B"), assistant_prefix="Answer:"
    ).record()
    assert rec["answer_labels"] == ["A", "B"] and rec["assistant_prefix"] == "Answer:"


def test_the_scripted_latency_is_waited_in_full_with_one_timer_per_millisecond():
    from moot.models.scripted import Alarm

    alarm = Alarm()
    woke: list[float] = []
    alarms: list[float] = []  # when each timer made while the sleepers set out is due

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualClockLoop)  # its clock stands still while tasks run

        async def sleeper() -> None:
            t = loop.time()
            await alarm.sleep(0.05)
            woke.append(loop.time() - t)

        async with anyio.create_task_group() as tg:
            timers_before = len(loop.timers)
            for _ in range(200):
                tg.start_soon(sleeper)
            await anyio.sleep(0)  # every sleeper has set out (they ran before this task)
            alarms.extend(timer.when() for timer in loop.timers[timers_before:])
            with anyio.move_on_after(0.01):  # a cancelled sleeper leaves the others be
                await alarm.sleep(1.0)

    anyio.run(main, backend_options={"loop_factory": VirtualClockLoop})
    # 200 sleepers due in the same millisecond share one timer, due then
    assert alarms == [0.05]
    assert len(woke) == 200 and min(woke) >= 0.05 and max(woke) <= 0.051
