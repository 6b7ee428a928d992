"""The gateway: one wrapper owns what every provider shares.

A provider writes one `generate`. The wrapper adds a per-model concurrency limit, a per-call
timeout, retries with exponential backoff (honouring Retry-After) on rate limits, 5xx and
timeouts, and a `ModelCall` record of every call: prompt, reply, tokens, cost, latency,
attempts, error.

Providers are chosen by the model name's prefix and imported only when first used, so
`import moot` never pays for litellm or llama.cpp:

    scripted[/label]        the deterministic stand-in (tests, benchmarks)
    local/smollm2-135m      the embedded default, in-process llama.cpp
    local/PATH.gguf         any other GGUF file, the same way
    anything else           litellm (openai/..., anthropic/..., ollama/..., hosted_vllm/...)
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import anyio

from moot.models import forms as forming
from moot.models.base import GenerateRequest, GenerateResult, ModelAPI, ProviderError
from moot.transcript.events import ModelCall

if TYPE_CHECKING:
    from moot.models.cache import ResponseCache

DEFAULT_MODEL = "local/smollm2-135m"


@dataclass(slots=True)
class ModelSettings:
    """Per-model settings; scenario files give them under `models:`."""

    max_concurrency: int | None = None  # None: unlimited
    timeout: float | None = None  # seconds per attempt; None: no limit
    retries: int = 4
    backoff: float = 1.0  # first retry delay in seconds, doubled each time
    max_backoff: float = 60.0
    api_base: str | None = None
    api_key_env: str | None = None  # the NAME of the environment variable, never the key
    params: dict[str, Any] = field(default_factory=dict)  # extra provider parameters
    rpm: float | None = None  # requests per minute, for this model across the run
    tpm: float | None = None  # tokens (prompt + completion) per minute
    # several servers of one model, spread by litellm's Router (moot/models/router.py)
    endpoints: list[dict[str, Any]] | None = None
    routing: dict[str, Any] | None = None
    vision: bool | None = None  # takes images; None: as litellm's model map says
    # scripted model only
    latency: float = 0.0
    replies: list[str] | None = None
    verdict: str | None = None
    logprobs: bool = True
    forms: bool = True  # replies in a declared form (False: ignores forms, like an API without)
    # a reply out of its declared form is asked for again this many times, the problem stated
    form_retries: int = forming.DEFAULT_RETRIES
    # local model only
    n_ctx: int = 4096
    n_threads: int | None = None
    batching: str | None = None  # fast | exact (moot.models.local); None: MOOT_LLAMA_BATCHING, else fast


class CallSink(Protocol):
    """Where calls are recorded (the bus)."""

    def next_call_seq(self, episode: int) -> int: ...

    async def publish(self, event: Any) -> None: ...


class CallTag(NamedTuple):  # a tuple: made on every call, and a frozen dataclass is slow to make
    episode: int
    seat: str
    role: str


class ModelCallFailed(Exception):
    """A call that failed for good, after its retries. Its record is already stored."""

    def __init__(self, model: str, error: str, call_seq: int):
        super().__init__(f"{model}: {error}")
        self.model = model
        self.error = error
        self.call_seq = call_seq


class RateLimiter:
    """Token buckets for requests and tokens per minute, refilled continuously, holding one
    second's worth (so a limit spreads calls out instead of letting a minute's burst through).
    A call may overdraw the token bucket (its size is known only afterwards); the next
    waits until it is paid back."""

    def __init__(self, rpm: float | None, tpm: float | None) -> None:
        self.rpm, self.tpm = rpm, tpm
        self._requests = (rpm or 0) / 60
        self._tokens = (tpm or 0) / 60
        self._last = time.monotonic()
        self._lock = anyio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        dt, self._last = now - self._last, now
        if self.rpm:
            self._requests = min(self.rpm / 60, self._requests + dt * self.rpm / 60)
        if self.tpm:
            self._tokens = min(self.tpm / 60, self._tokens + dt * self.tpm / 60)

    async def acquire(self) -> None:
        async with self._lock:  # first come, first served
            while True:
                self._refill()
                wait = 0.0
                if self.rpm and self._requests < 1:
                    wait = (1 - self._requests) / (self.rpm / 60)
                if self.tpm and self._tokens < 0:
                    wait = max(wait, -self._tokens / (self.tpm / 60))
                if wait <= 0:
                    break
                await anyio.sleep(wait)
            if self.rpm:
                self._requests -= 1

    def spend(self, tokens: int) -> None:
        if self.tpm:
            self._refill()
            self._tokens -= tokens


class Model:
    def __init__(
        self,
        name: str,
        api: ModelAPI,
        settings: ModelSettings,
        sink: CallSink,
        cache: ResponseCache | None = None,
    ):
        self.name = name
        self.api = api
        self.settings = settings
        self.sink = sink
        self.cache = cache
        # what else decides a reply besides the request: the endpoint and extra parameters
        self._cache_extra: dict[str, Any] = {"api_base": settings.api_base, "params": settings.params}
        if settings.endpoints:  # any of them may answer: the servers are the model's identity
            self._cache_extra["endpoints"] = sorted(e["api_base"] for e in settings.endpoints)
        limit = settings.max_concurrency
        self._limiter = anyio.CapacityLimiter(limit) if limit else None
        self._rate = RateLimiter(settings.rpm, settings.tpm) if settings.rpm or settings.tpm else None
        self._direct = self._unlimited()

    def share_limits(self, limiter: Any, rate: Any) -> None:
        """Use limits held elsewhere (a cluster's, shared by every worker) instead of this
        process's own: `limiter` is entered around each attempt (`async with`), `rate` has
        `acquire()` and `spend(tokens)`. None keeps no limit of that kind."""
        self._limiter, self._rate = limiter, rate
        self._direct = self._unlimited()

    def _unlimited(self) -> bool:
        """Nothing to wait for or time out: a call goes straight to the provider (each
        wrapper is a coroutine frame more to enter and resume, on every call)."""
        return self._limiter is None and self._rate is None and self.settings.timeout is None

    async def generate_in_form(
        self, request: GenerateRequest, tag: CallTag, form: forming.Form
    ) -> tuple[GenerateResult, list[int], str | None]:
        """A reply in `form`: constrained where the backend can be (a llama.cpp grammar for
        local models, `response_format` for providers with JSON-schema support), checked
        always, and asked for again (up to `form_retries` times, the problem stated) when it
        does not fit. Every attempt is a stored call. Returns the last result, the calls'
        sequence numbers, and the problem with the last reply (None: it fits)."""
        if self.name.startswith("local/") and "grammar" in GenerateRequest.__dataclass_fields__:
            request = replace(request, grammar=forming.grammar(form))
        seqs: list[int] = []
        attempt = request
        while True:
            result, seq = await self.generate(attempt, tag, form)
            seqs.append(seq)
            why = forming.problem(form, result.text)
            if why is None or len(seqs) > self.settings.form_retries:
                return result, seqs, why
            attempt = replace(attempt, messages=forming.retry_messages(attempt.messages, result.text, why, form))

    async def generate(
        self, request: GenerateRequest, tag: CallTag, form: forming.Form | None = None
    ) -> tuple[GenerateResult, int]:
        """Returns the result and the call's sequence number in its episode. A provider
        that can constrain a reply itself (`generate_in_form`) is given the form."""
        seq = self.sink.next_call_seq(tag.episode)
        started = time.time()
        t0 = time.perf_counter()
        attempts = 0
        result: GenerateResult | None = None
        error: str | None = None
        s = self.settings
        cache_key = None
        if self.cache is not None:
            extra = self._cache_extra if form is None else {**self._cache_extra, "form": form.record()}
            cache_key = self.cache.key(self.name, request, extra)
            hit = self.cache.get(cache_key)
            if hit is not None:
                hit.cost = 0.0  # nothing paid this time; the first run recorded the price
                await self.sink.publish(
                    ModelCall(
                        tag.episode, seq, tag.seat, tag.role, self.name, request, hit.text,
                        hit.prompt_tokens, hit.completion_tokens, 0.0,
                        time.perf_counter() - t0, 0, started, None, cached=True,
                    )
                )  # fmt: skip
                return hit, seq
        while True:
            attempts += 1
            try:
                if self._direct:
                    result = await self._call(request, form)
                else:
                    result = await self._attempt(request, form)
                break
            except TimeoutError:
                error, retryable, wait = f"timeout after {s.timeout:g}s", True, None
            except ProviderError as exc:
                error, retryable, wait = str(exc), exc.retryable, exc.retry_after
            except Exception as exc:  # a provider bug: recorded like any failure, not retried
                error, retryable, wait = f"{type(exc).__name__}: {exc}", False, None
            if not retryable or attempts > s.retries:
                break
            delay = min(s.max_backoff, s.backoff * 2 ** (attempts - 1))
            delay *= 0.5 + random.random() / 2  # jitter: retries of many episodes spread out
            await anyio.sleep(max(delay, wait or 0.0))
        latency = time.perf_counter() - t0
        await self.sink.publish(
            ModelCall(
                tag.episode, seq, tag.seat, tag.role, self.name, request,
                result.text if result else None,
                result.prompt_tokens if result else 0,
                result.completion_tokens if result else 0,
                result.cost if result else None,
                latency, attempts, started, None if result else error,
            )
        )  # fmt: skip
        if result is None:
            raise ModelCallFailed(self.name, error or "unknown error", seq)
        if cache_key is not None:
            self.cache.put(cache_key, self.name, result)  # type: ignore[union-attr]
        return result, seq


    def _call(self, request: GenerateRequest, form: forming.Form | None) -> Awaitable[GenerateResult]:
        if form is not None:
            constrained = getattr(self.api, "generate_in_form", None)
            if constrained is not None:
                return constrained(request, form)
        return self.api.generate(request)

    async def _attempt(self, request: GenerateRequest, form: forming.Form | None = None) -> GenerateResult:
        if self._rate is not None:
            await self._rate.acquire()
            result = await self._attempt_now(request, form)
            self._rate.spend(result.prompt_tokens + result.completion_tokens)
            return result
        return await self._attempt_now(request, form)

    async def _attempt_now(self, request: GenerateRequest, form: forming.Form | None = None) -> GenerateResult:
        # No cancel scope when there is nothing to time out: it is a real cost per call.
        timeout = self.settings.timeout
        if self._limiter is None:
            if timeout is None:
                return await self._call(request, form)
            with anyio.fail_after(timeout):
                return await self._call(request, form)
        async with self._limiter:
            if timeout is None:
                return await self._call(request, form)
            with anyio.fail_after(timeout):
                return await self._call(request, form)


def make_api(name: str, settings: ModelSettings) -> ModelAPI:
    """The provider for a model name; its SDK is imported here, on first use."""
    if is_scripted(name):
        from moot.models.scripted import ScriptedModel

        return ScriptedModel(
            name,
            latency=settings.latency,
            replies=settings.replies,
            verdict=settings.verdict,
            logprobs=settings.logprobs,
            forms=settings.forms,
        )
    if name.startswith("local/"):
        from moot.models.local import LocalModel

        return LocalModel(name, settings)
    if settings.endpoints:
        from moot.models.router import RouterModel

        return RouterModel(name, settings)
    from moot.models.litellm_api import LiteLLMModel

    return LiteLLMModel(name, settings)

def takes_images(name: str, settings: ModelSettings) -> bool:
    """Whether the model can be shown images: the scenario's word (`vision:`), else what the
    provider is known to take. The scripted stand-in takes them (it reads none); llama.cpp
    here runs text models only."""
    if settings.vision is not None:
        return settings.vision
    if is_scripted(name):
        return True
    if name.startswith("local/"):
        return False
    from moot.models.litellm_api import supports_vision

    return supports_vision(name)



def is_scripted(name: str) -> bool:
    return name == "scripted" or name.startswith("scripted/")


def with_defaults(name: str, settings: ModelSettings) -> ModelSettings:
    """Fill what the scenario left open with the provider's defaults."""
    local = name.startswith("local/")
    scripted = is_scripted(name)
    if settings.max_concurrency is None and not scripted:
        # local calls are batched by the loaded model (moot/models/batcher.py): as many in
        # flight as it has slots; beyond them they queue there
        settings.max_concurrency = 16
    if settings.timeout is None and not scripted:
        settings.timeout = 600.0 if local else 120.0
    return settings
