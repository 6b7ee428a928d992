"""The engine: walks any compiled protocol graph for many episodes at once.

It asks the bus for each seat's view, asks the seat for its turn, and posts the reply back to
the bus. It never builds a view itself and never writes to the store: everything it does is
an event on the bus. Every protocol runs through the same loop: a phase's kind picks its
handler (`moot.engine.phases`), and the graph's conditions say where to go next.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import anyio

from moot.agents.base import EpisodeFailed, LearningSeat, Seat
from moot.engine.bus import Bus, SeatSight
from moot.engine.episode import Episode, EpisodeSpec, Table
from moot.engine.phases import HANDLERS
from moot.models.gateway import ModelCallFailed
from moot.protocols.graph import END, CompiledProtocol, Phase, PhaseState
from moot.transcript.events import EpisodeFinished, EpisodeStarted, MemoryEntry, Verdict


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # another anyio backend (trio)
        return False
    return True


class Engine:
    def __init__(
        self,
        protocol: CompiledProtocol,
        seats: Mapping[str, Seat],
        bus: Bus,
        *,
        concurrency: int,
        cell: str | None = None,
    ) -> None:
        self.protocol = protocol
        self.cell = cell
        self.bus = bus
        self.concurrency = concurrency
        self.table = Table(protocol, dict(seats), {s.id: s for s in protocol.seats}, bus, {})
        self._seat_info = {s.id: {"role": s.role, "sees_source": s.sees_source} for s in protocol.seats}
        self._speech_phases = [p.name for p in protocol.phases.values() if p.kind == "speech"]
        # seats that carry a memory from one episode to the next
        self._remembering = {
            s: seat for s, seat in seats.items() if isinstance(seat, LearningSeat) and seat.memory is not None
        }
        if self._remembering:
            # each episode must read what the ones before it wrote: one at a time, in order
            self.concurrency = 1

    async def run(self, episodes: Iterable[EpisodeSpec], stop: Callable[[], bool] | None = None) -> None:
        """Run every episode, at most `concurrency` at once, with a fixed pool of workers;
        once `stop()` is true (a budget spent), no new episode starts."""
        source: Iterator[EpisodeSpec] = iter(episodes)

        async def worker() -> None:
            for spec in source:  # shared iterator: each worker takes the next episode
                if stop is not None and stop():
                    return
                await self.run_episode(spec)

        if _on_asyncio():
            # asyncio's own task group: anyio's wraps each task (a handle, an event, a cancel
            # scope), which cost ~6 us per model call with 10,000 episodes in flight (bench/).
            # Everything inside an episode still uses anyio, which runs in any asyncio task.
            async with asyncio.TaskGroup() as native:
                for _ in range(self.concurrency):
                    native.create_task(worker())
            return
        async with anyio.create_task_group() as tg:
            for _ in range(self.concurrency):
                tg.start_soon(worker)

    def sides(self, spec: EpisodeSpec) -> dict[str, int | None]:
        """Each seat's answer for this episode. "assigned" seats (consultants) argue the
        correct answer in half the episodes, balanced against the answer order (which the
        run alternates with the episode index); "open" seats choose during the episode."""
        out: dict[str, int | None] = {}
        for s in self.protocol.seats:
            if isinstance(s.side, int):
                out[s.id] = s.side
            elif s.side == "assigned" and spec.correct is not None:
                honest = (spec.index // 2) % 2 == 0
                out[s.id] = spec.correct if honest else 1 - spec.correct
            else:
                out[s.id] = None
        return out

    async def run_episode(self, spec: EpisodeSpec) -> None:
        bus, protocol = self.bus, self.protocol
        sides = self.sides(spec)
        await bus.open_episode(
            EpisodeStarted(
                episode=spec.index, question_id=spec.question_id, question=spec.question,
                answers=spec.answers, correct=spec.correct, source=spec.source, protocol=protocol.name,
                assignments={k: v for k, v in sides.items() if v is not None}, seats=self._seat_info,
                started_at=time.time(), cell=self.cell,
                attributes=self._attributes(spec), images=spec.images,
            ),
            {s.id: SeatSight(role=s.role, side=sides[s.id], sees_source=s.sees_source) for s in protocol.seats},
        )  # fmt: skip
        ep = Episode(spec, PhaseState(visits={}, terms=protocol.terms), self.table)
        state = ep.state
        outcome: dict[str, Any] = {}
        status, stop_reason, error = "done", "completed", None
        try:
            name = protocol.start
            while name != END:
                phase = protocol.phases[name]
                state.visits[name] = state.visits.get(name, 0) + 1
                await HANDLERS[phase.kind](ep, phase, self._round(phase, state))
                name = protocol.next_phase(name, state)
            if "outcome" in state.facts:  # a game's, as its referee settled it
                outcome = dict(state.facts["outcome"])
            if state.ruling is not None:
                outcome = {"choice": state.ruling.choice, "correct": state.ruling.correct}
                if state.ruling.method == "ranking":
                    outcome["ranking"] = json.loads(state.ruling.raw)
            threshold = protocol.terms.stop_threshold
            if state.ended:  # the judge decided it had heard enough (a person)
                stop_reason = "judge_ended"
            elif state.belief is not None and threshold:
                stop_reason = "judge_confident" if max(state.belief) >= threshold else "rounds_done"
            for seat_id in self._remembering:
                await self._remember(spec.index, seat_id, state.ruling)
        except ModelCallFailed as exc:
            status, stop_reason, error = "failed", "model_error", str(exc)
        except EpisodeFailed as exc:
            status, stop_reason, error = "failed", exc.reason, str(exc)
        except Exception as exc:  # a bug must fail its episode loudly, not the whole run
            status, stop_reason = "failed", "error"
            error = "".join(traceback.format_exception_only(exc)).strip()
            error += "\n" + traceback.format_exc(limit=-8)
        final = bus.sides(spec.index)
        await bus.close_episode(
            EpisodeFinished(
                spec.index, status, stop_reason, time.time(), outcome, error,  # type: ignore[arg-type]
                assignments={k: v for k, v in final.items() if v is not None},
            )
        )

    @staticmethod
    def _attributes(spec: EpisodeSpec) -> dict[str, Any] | None:
        """Facts about the episode no seat is shown: an open task's target, a private row, how
        a multiple-choice question was reduced to two answers."""
        facts: dict[str, Any] = {}
        if spec.target is not None:
            facts["target"] = spec.target
        if spec.private:
            facts["private"] = True
        if spec.reduced is not None:
            facts["reduced"] = spec.reduced
        return facts or None

    def _round(self, phase: Phase, state: PhaseState) -> int:
        """The debate round a turn belongs to: the phase's own where the graph unrolls its
        rounds (a game's), else speeches so far (a verdict after round 2 is a round-2
        verdict; one before any speech is the judge's prior, round 0), or the phase's own
        count in a protocol without speeches."""
        if phase.round is not None:
            return phase.round
        visits = state.visits
        if len(self._speech_phases) == 1:  # most protocols: one speech phase
            speeches = visits.get(self._speech_phases[0], 0)
        else:
            speeches = max((visits.get(p, 0) for p in self._speech_phases), default=0)
        if not speeches and self._speech_phases and phase.kind == "verdict":
            return 0
        return speeches or visits[phase.name]

    async def _remember(self, ep: int, seat_id: str, ruling: Verdict | None) -> None:
        """A seat with a memory keeps something of the episode, told how it went for it: its
        side chosen by the ruling, or (a judge) its ruling right."""
        side = self.bus.side(ep, seat_id)
        won = None
        if ruling is not None and ruling.choice is not None:
            won = ruling.choice == side if side is not None else ruling.correct
        kept = await self._remembering[seat_id].remember(self.bus.view(ep, seat_id), won)
        if kept is not None:
            kind, text = kept
            await self.bus.publish(MemoryEntry(seat_id, ep, kind, text, won, time.time()))
