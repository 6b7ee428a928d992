"""A deterministic stand-in model for tests and benchmarks: instant, or after a fixed latency.

The latency is waited to the millisecond: calls due in the same millisecond share one timer
(`Alarm`), so ten thousand calls in flight cost the event loop a timer per millisecond rather
than one each, as a provider's replies arriving on one connection would.

Replies depend only on the request, so the same scenario and seed give the same transcript.
"""

from __future__ import annotations

import asyncio
import math
import zlib
from collections.abc import Awaitable
from functools import lru_cache
from typing import Any

import anyio

from moot.models.base import GenerateRequest, GenerateResult
from moot.models.forms import Form, example, problem

ARGUMENT = (
    "I maintain that answer {label} holds because the passage states it plainly, while the "
    "opposing side relies on a selective reading of one sentence and ignores the rest. The "
    "details in the second half of the passage settle the matter in favour of {label}."
)


class ScriptedModel:
    """Replies are cycled from `replies` when given, else an argument naming the prompt's side.

    For a judging request (`answer_labels` set) it returns label log-probabilities derived
    from a hash of the prompt (or, with `logprobs=False`, only text: `verdict` if given).
    Given a reply form, it answers in it (`generate_in_form`), as a constrained decoder does.
    """

    def __init__(
        self,
        name: str = "scripted",
        *,
        latency: float = 0.0,
        replies: list[str] | None = None,
        verdict: str | None = None,
        logprobs: bool = True,
        forms: bool = True,
    ) -> None:
        self.name = name
        self.latency = latency
        self._alarm = Alarm()
        self.replies = replies
        self.verdict = verdict
        self.logprobs = logprobs
        self.forms = forms

    def describe(self) -> dict[str, Any]:
        return {"provider": "scripted", "latency": self.latency}

    async def generate_in_form(self, request: GenerateRequest, form: Form) -> GenerateResult:
        """As a constrained decoder would: its own reply where that fits the form, else one
        made to fit (varied by the prompt and seed, reproducible). With `forms=False` it
        ignores forms, as an unconstrained provider does (the gateway then asks again)."""
        result = await self.generate(request)
        if not self.forms or problem(form, result.text) is None:
            return result
        prompt = request.messages[-1]["content"] if request.messages else ""
        text = example(form, zlib.crc32(prompt.encode()) + (request.seed or 0))
        result.text, result.completion_tokens = text, len(text) // 4 + 1
        return result

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        # The reply is worked out first, then the latency waited: what depends on the request
        # is read while it is fresh in memory, not after half a second of other episodes.
        result = self.reply(request)
        if self.latency:
            await self._alarm.sleep(self.latency)
        return result

    def reply(self, request: GenerateRequest) -> GenerateResult:
        prompt = request.messages[-1]["content"] if request.messages else ""
        labels = request.answer_labels
        logprobs = None
        if labels or self.replies:
            h = zlib.crc32(prompt.encode())
        if labels:
            # A prompt-dependent, reproducible preference between the labels.
            text, logprobs = _judgement(tuple(labels), h % 1000, self.logprobs, self.verdict)
            if logprobs is not None:
                logprobs = dict(logprobs)  # the caller's own: the cached one stays as it is
        elif self.replies:  # the seed varies the pick: best-of-N drafts differ
            text = self.replies[(h + (request.seed or 0)) % len(self.replies)]
        else:
            text = _argument(_side_label(prompt))
        return GenerateResult(text, len(prompt) // 4 + 1, len(text) // 4 + 1, 0.0, logprobs)


class Alarm:
    """Sleeps rounded up to the next millisecond, one timer per millisecond for every sleeper
    due then (on asyncio; anyio's sleep elsewhere)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due: dict[int, list[asyncio.Future[None]]] = {}

    def sleep(self, seconds: float) -> Awaitable[None]:
        """Something to await (a plain future on asyncio: no coroutine of its own to run)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return anyio.sleep(seconds)
        if loop is not self._loop:  # a new run's loop: what the old one had is gone
            self._loop, self._due = loop, {}
        tick = math.ceil((loop.time() + seconds) * 1000)
        future = loop.create_future()
        waiting = self._due.get(tick)
        if waiting is None:
            waiting = self._due[tick] = []
            loop.call_at(tick / 1000, self._ring, tick)
        waiting.append(future)
        return future

    def _ring(self, tick: int) -> None:
        for future in self._due.pop(tick):
            if not future.done():  # a cancelled sleeper's future is done already
                future.set_result(None)


@lru_cache(maxsize=4096)
def _judgement(
    labels: tuple[str, ...], bucket: int, logprobs: bool, verdict: str | None
) -> tuple[str, dict[str, float] | None]:
    """A judge's reply and label log-probabilities for one of 1,000 preferences: worked out
    once each (a run of 10,000 judges repeats them)."""
    p_first = 0.15 + 0.7 * (bucket / 999)
    lp = None
    if logprobs:
        rest = (1 - p_first) / (len(labels) - 1)
        lp = {lab: math.log(p_first if i == 0 else rest) for i, lab in enumerate(labels)}
    if verdict is not None:
        return verdict, lp
    best = labels[0] if p_first >= 0.5 else labels[1]
    return f"Answer: {best}\nConfidence: {round(100 * max(p_first, 1 - p_first))}%", lp


@lru_cache(maxsize=64)
def _argument(label: str) -> str:
    return ARGUMENT.format(label=label)


def _side_label(prompt: str) -> str:
    marker = "You argue for answer "
    i = prompt.find(marker)
    return prompt[i + len(marker)] if i >= 0 and i + len(marker) < len(prompt) else "A"
