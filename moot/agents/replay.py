"""Seats that answer from a stored run: a replay's (every turn) and a fork's (rounds 1..K).

A turn the stored run already answered is answered from its stored call, matched by seat,
prompt and sampling parameters (so a turn whose prompt changed cannot be mistaken for it),
and its record is copied into the new run as a cached call (cost 0: the parent holds what it
cost). The workflows that use them are in moot.workflows.replay.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from moot.agents import judging
from moot.agents.base import EpisodeFailed, Judgement, Reply, Turn, View
from moot.agents.model_seat import ModelSeat
from moot.models.base import GenerateRequest, GenerateResult, ProviderError
from moot.models.gateway import CallSink
from moot.store.reader import RunReader
from moot.store.writer import call_columns
from moot.transcript.events import ModelCall


@dataclass(slots=True)
class StoredCall:
    seq: int
    model: str
    response: str
    prompt_tokens: int
    completion_tokens: int


class StoredOutputs:
    """What a stored run's seats answered, ready to be served again: calls by episode, seat
    and exact request; the probabilities read from them (verdicts, ratings, checks); the
    sides seats chose; the speeches best-of-N selected."""

    def __init__(self, reader: RunReader, episodes: set[int]) -> None:
        self.calls: dict[tuple, deque[StoredCall]] = {}
        for ep, seq, seat, model, system, prompt, middle, params, response, pt, ct in reader.answered_calls():
            if ep in episodes:
                key = (ep, seat, system, prompt, middle, params)
                self.calls.setdefault(key, deque()).append(StoredCall(seq, model, response, pt, ct))
        self.judged: dict[tuple[int, str, int], tuple[Any, str, str]] = {}
        for ep, seat, seq, probs, method, status in reader.readings():
            if ep in episodes and seq is not None:
                self.judged[(ep, seat, seq)] = (probs, method, status)
        self.sides = {ep: a for ep, a in reader.assignments().items() if ep in episodes}
        self.speeches: dict[tuple[int, str, str, int], tuple[str, int | None]] = {}
        for ep, seat, phase, round_, content, call_seq in reader.speeches():
            if ep in episodes:
                self.speeches[(ep, seat, phase, round_)] = (content, call_seq)

    def judgement(
        self, view: View, turn: Turn, seat: str, call: StoredCall, labels: tuple[str, ...]
    ) -> Judgement:
        """The ruling the stored run read from this call, exactly: text is parsed again (the
        same text gives the same reading); probabilities from logits come from the rows."""
        ep = view.episode
        if turn.kind == "choose":
            side = self.sides.get(ep, {}).get(seat)
            if side is not None:
                return Judgement(side, None, "stored", "ok")
        if turn.kind == "select":
            chosen = self.speeches.get((ep, view.messages[0].seat, turn.phase, turn.round))
            # the pick is the draft whose call became the speech (calls are numbered as
            # in the stored run); else the one with its text
            for same in (lambda m: (m.content, m.call_seq) == chosen, lambda m: chosen is not None and m.content == chosen[0]):
                fits = [i for i, m in enumerate(view.messages) if chosen and same(m)]
                if fits:
                    return Judgement(fits[0], None, "stored", "ok")
        row = self.judged.get((ep, seat, call.seq))
        if row is not None and row[1] == "token_logprobs" and row[0]:
            probs = row[0]
            return Judgement(max(range(len(probs)), key=probs.__getitem__), probs, row[1], row[2])
        return judging.from_text(call.response, labels)


class ReplaySeat:
    """A seat that answers from the stored run up to round `until` (every turn when None),
    and plays live after it."""

    def __init__(self, inner: ModelSeat, stored: StoredOutputs, bus: CallSink, until: int | None):
        self.id = inner.id
        self.role = inner.role
        self.inner = inner
        self.stored = stored
        self.bus = bus
        self.until = until

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)  # what else the engine asks of a seat (its memory)

    async def act(self, view: View, turn: Turn) -> Reply:
        if self.until is not None and turn.round > self.until:
            return await self.inner.act(view, turn)
        request = self.inner.request(view, turn)
        key = (view.episode, self.id, *call_columns(request))
        queue = self.stored.calls.get(key)
        if not queue:
            raise EpisodeFailed(
                "replay_mismatch",
                f"{self.id}, {turn.phase} round {turn.round}: the stored run has no call with "
                "this prompt and these parameters",
            )
        call = queue.popleft()
        ep = view.episode
        seq = self.bus.next_call_seq(ep)
        await self.bus.publish(
            ModelCall(
                ep, seq, self.id, self.role, call.model, request, call.response,
                call.prompt_tokens, call.completion_tokens, 0.0, 0.0, 0, time.time(), None,
                cached=True,
            )
        )  # fmt: skip
        reply = Reply(call.response, call_seqs=[seq], model=call.model)
        if request.answer_labels:
            reply.judgement = self.stored.judgement(view, turn, self.id, call, request.answer_labels)
        return reply


class StoredCache:
    """The response cache of a replay's models: calls a seat makes outside its turns (a
    lesson written after an episode) are answered from the stored run by their request, and
    recorded as cached, like the turns."""

    def __init__(self, stored: StoredOutputs) -> None:
        self.by_request: dict[tuple, deque[StoredCall]] = {}
        for (_, _, *request), calls in stored.calls.items():
            self.by_request.setdefault(tuple(request), deque()).extend(calls)

    def key(self, model: str, request: GenerateRequest, extra: Any = None) -> tuple:
        return tuple(call_columns(request))

    def get(self, key: tuple) -> GenerateResult | None:
        queue = self.by_request.get(key)
        if not queue:
            return None
        c = queue.popleft()
        return GenerateResult(c.response, c.prompt_tokens, c.completion_tokens, 0.0)

    def put(self, key: tuple, model: str, result: GenerateResult) -> None:
        pass


class NoCalls:
    """The model behind a replay's seats: never called (every turn has a stored answer)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def describe(self) -> dict[str, Any]:
        return {"provider": "replay"}

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        raise ProviderError("replay: this call has no stored output", retryable=False)
