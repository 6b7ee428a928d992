"""One episode's walk: its spec, the state its phases share, and how its turns are posted.

The engine makes an `Episode` per spec and hands it to the phase handlers
(`moot.engine.phases`); every handler posts through it, so a message, a verdict or a rating
is made one way whatever the phase. Correctness is always computed here from the gold,
never taken from what a seat wrote.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from moot.agents.base import EpisodeFailed, Reply, Seat, Turn
from moot.engine.bus import Bus
from moot.protocols.graph import CompiledProtocol, Phase, PhaseState, SeatSpec
from moot.transcript import quotes as quoting
from moot.transcript.events import Message, Verdict
from moot.transcript.images import Image


@dataclass(frozen=True, slots=True)
class EpisodeSpec:
    """One question put to one protocol, with the answers in the order they are shown."""

    index: int
    question_id: str
    question: str
    answers: tuple[str, ...]
    correct: int | None
    source: str | None
    # other questions with known answers (peer review qualifies its reviewers on them)
    checks: tuple[EpisodeSpec, ...] = ()
    target: str | None = None  # an open task's answer, for the scorer; no seat sees it
    game: dict[str, Any] | None = None  # a game instance's numbers, for the referee
    private: bool = False  # the row is not for publication (stored with the episode)
    # a multiple-choice question reduced to two answers: which were kept, and the seed (stored)
    reduced: dict[str, Any] | None = None
    images: tuple[Image, ...] = ()  # shown with the question to the seats that see the source


@dataclass(slots=True)
class Table:
    """What every episode of one engine shares: the protocol (its phases carry their own
    parameters, its terms the walk's), the seats, the bus."""

    protocol: CompiledProtocol
    seats: dict[str, Seat]
    specs: dict[str, SeatSpec]
    bus: Bus
    turns: dict[tuple[str, int], Turn]  # a phase's turn per round: the same for every episode

    def turn(self, phase: Phase, round_: int) -> Turn:
        turn = self.turns.get((phase.name, round_))
        if turn is None:
            turn = self.turns[phase.name, round_] = Turn(
                kind=phase.kind,  # type: ignore[arg-type]  # the seats' kinds of phase
                phase=phase.name,
                round=round_,
                rounds=self.protocol.terms.rounds,
                simultaneous=phase.simultaneous,
                max_tokens=0,
                rubric=phase.rubric,  # a review's; empty for every other kind
                form=phase.form,
            )
        return turn


@dataclass(slots=True)
class Episode:
    spec: EpisodeSpec
    state: PhaseState
    table: Table

    @property
    def index(self) -> int:
        return self.spec.index

    def said(self, seat: str) -> list[str]:
        """What a seat has said so far in this episode, in order."""
        return [m.content for m in self.table.bus.transcript(self.spec.index) if m.seat == seat]

    def record(self, verdict: Verdict | None) -> None:
        if verdict is not None:
            state = self.state
            state.latest[verdict.judge] = verdict
            state.choices[verdict.judge] = verdict.choice
            state.belief = verdict.probabilities
            state.ruling = verdict

    async def post(self, phase: Phase, round_: int, seat: str, reply: Reply) -> Verdict | None:
        """A seat's reply as a message (quotes checked), and as a verdict on a verdict turn."""
        t = self.table
        spec, ep = self.spec, self.spec.index
        now = time.time()
        call_seq = reply.call_seqs[-1] if reply.call_seqs else None
        if phase.kind == "choose":
            j = reply.judgement
            if j is None or j.choice is None:
                raise EpisodeFailed("invalid_choice", f"{seat} named no answer to defend: {reply.content!r}")
            t.bus.assign(ep, seat, j.choice)
        quotes = None
        terms = t.protocol.terms
        if terms.quotes and phase.kind == "speech" and spec.source is not None:
            quotes = tuple(quoting.verify(reply.content, spec.source, fuzzy=terms.quote_fuzzy))
        seq, side = t.bus.message_slot(ep, seat)
        await t.bus.post(
            Message(
                ep, seq, round_, phase.name, seat, t.specs[seat].role, side, reply.content, phase.audience,
                now, call_seq, quotes or None,
            )
        )  # fmt: skip
        if phase.kind != "verdict":
            return None
        j = reply.judgement
        if j is None:
            raise RuntimeError(f"seat {seat} returned no judgement for a verdict turn")
        return await self.rule(
            seat, round_, j.choice, j.probabilities,
            method=j.method, parse_status=j.parse_status, raw=reply.content,
            model=reply.model, call_seq=call_seq, created_at=now,
        )  # fmt: skip

    async def post_hidden(self, phase: str, round_: int, seat: str, reply: Reply) -> Message:
        """A message stored but read by no seat (best-of-N's drafts and the pick)."""
        t, ep = self.table, self.spec.index
        message = Message(
            episode=ep,
            seq=t.bus.next_message_seq(ep),
            round=round_,
            phase=phase,
            seat=seat,
            role=t.specs[seat].role,
            side=t.bus.side(ep, seat) if seat in t.specs else None,
            content=reply.content,
            audience=frozenset(),  # stored, read by no seat
            created_at=time.time(),
            call_seq=reply.call_seqs[-1] if reply.call_seqs else None,
        )
        await t.bus.post(message)
        return message

    async def rule(
        self,
        judge: str,
        round_: int,
        choice: int | None,
        probabilities: tuple[float, ...] | None,
        *,
        method: str,
        parse_status: str,
        raw: str,
        model: str = "",
        call_seq: int | None = None,
        created_at: float | None = None,
        correct: bool | None = None,
    ) -> Verdict:
        """Publish a ruling, a seat's or an aggregate's; correctness is always the engine's
        comparison with the gold, never something a model wrote."""
        spec = self.spec
        verdict = Verdict(
            episode=spec.index,
            judge=judge,
            model=model,
            round=round_,
            choice=choice,
            probabilities=probabilities,
            correct=(
                correct if spec.correct is None and choice is None
                else None if choice is None or spec.correct is None else choice == spec.correct
            ),
            method=method,
            parse_status=parse_status,
            raw=raw,
            call_seq=call_seq,
            created_at=created_at if created_at is not None else time.time(),
        )
        await self.table.bus.publish(verdict)
        return verdict
