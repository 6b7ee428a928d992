"""The one small interface a model provider implements, and the values it trades in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from moot.transcript.images import Image


@lru_cache(maxsize=256)
def _json(value: str | tuple[str, ...]) -> str:
    return json.dumps(list(value) if isinstance(value, tuple) else value)


@lru_cache(maxsize=256)
def _params_around_seed(
    max_tokens: int,
    temperature: float,
    labels: tuple[str, ...] | None,
    prefix: str | None,
    grammar: str | None = None,
) -> tuple[str, str]:
    head = f'{{"max_tokens":{int(max_tokens)},"temperature":{float(temperature)!r},"seed":'
    tail = ""
    if labels:
        tail += ',"answer_labels":' + _json(labels)
    if prefix:
        tail += ',"assistant_prefix":' + _json(prefix)
    if grammar:
        tail += ',"grammar":' + _json(grammar)
    return head, tail + "}"


@dataclass(slots=True)
class GenerateRequest:
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float = 0.0
    seed: int | None = None
    # When set, the provider also reports the log-probability of each label ("A", "B") at the
    # position where the reply names its answer, if the backend exposes token probabilities.
    answer_labels: tuple[str, ...] | None = None
    # Text the reply is made to start with, where the backend allows it (llama.cpp does):
    # with "Answer:", the very next token is the answer, and its probabilities are the verdict.
    assistant_prefix: str | None = None
    # A GBNF grammar (rule "root") the reply must match, where the backend can constrain its
    # sampling (llama.cpp can); None leaves the reply unconstrained.
    grammar: str | None = None
    # Images shown with the first user message (a vision model's); the store keeps their
    # names and hashes with the call, the bytes once per run.
    images: tuple[Image, ...] = ()

    def params_json(self) -> str:
        """The sampling parameters as the store keeps them: JSON, built without a generic
        encoder because it runs once per call on the hot path (only the seed varies)."""
        head, tail = _params_around_seed(
            self.max_tokens,
            self.temperature,
            self.answer_labels,
            self.assistant_prefix,
            self.grammar,
        )
        text = f"{head}{'null' if self.seed is None else int(self.seed)}{tail}"
        if self.images:
            shown = json.dumps([{"name": i.name, "digest": i.digest} for i in self.images], separators=(",", ":"))
            text = f'{text[:-1]},"images":{shown}}}'
        return text

    def record(self) -> dict[str, Any]:
        """What the store keeps of the request (never credentials)."""
        out: dict[str, Any] = {
            "messages": self.messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
        }
        if self.answer_labels:
            out["answer_labels"] = list(self.answer_labels)
        if self.assistant_prefix:
            out["assistant_prefix"] = self.assistant_prefix
        if self.grammar:
            out["grammar"] = self.grammar
        if self.images:
            out["images"] = [{"name": i.name, "digest": i.digest} for i in self.images]
        return out


@dataclass(slots=True)
class GenerateResult:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    # label -> log-probability at the answer position; None when the backend gave none
    label_logprobs: dict[str, float] | None = None


class ProviderError(Exception):
    """A provider's failure, classified once so the gateway can decide to retry."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class ModelAPI(Protocol):
    """A provider: one async method. Limits, retries, timeouts and records live in the gateway."""

    name: str

    async def generate(self, request: GenerateRequest) -> GenerateResult: ...

    def describe(self) -> dict[str, Any]:
        """Facts to store with the run (model file and hash, server), never secrets."""
        ...
