"""The engine: walks any compiled protocol graph for many episodes at once.

It asks the bus for each seat's view, asks the seat for its turn, and posts the reply back to
the bus. It never builds a view itself and never writes to the store: everything it does is
an event on the bus. Every protocol runs through the same loop: a phase's kind (speech,
question, verdict, choose) says what to do with the replies, and the graph's conditions say
where to go next.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import anyio

from moot import quotes as quoting
from moot.agents.base import Reply, Seat, Turn, View
from moot.bus import Bus, SeatSight
from moot.events import (
    EpisodeFinished,
    EpisodeStarted,
    MemoryEntry,
    Message,
    Qualification,
    Rating,
    Verdict,
)
from moot.models.gateway import ModelCallFailed
from moot.protocols.graph import END, CompiledProtocol, Phase, PhaseState
from moot.protocols.rules import approves, final_number


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


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # another anyio backend (trio)
        return False
    return True


class EpisodeFailed(Exception):
    """An episode cannot go on (e.g. a seat named no answer to defend)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


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
        self.seats = seats
        self.bus = bus
        self.concurrency = concurrency
        self._specs = {s.id: s for s in protocol.seats}
        self._seat_info = {
            s.id: {"role": s.role, "sees_source": s.sees_source} for s in protocol.seats
        }
        self._speech_phases = [p.name for p in protocol.phases.values() if p.kind == "speech"]
        self._quotes = bool(protocol.settings.get("quotes"))
        self._fuzzy = protocol.settings.get("quote_fuzzy")
        self._rounds = protocol.settings.get("rounds", 1)
        self._best_of = protocol.settings.get("best_of") or 1
        self._rubric = protocol.settings.get("rubric") or ""
        self._phase_rounds = protocol.settings.get("phase_rounds")  # a game's rounds, by phase
        self._turns: dict[tuple[str, int], Turn] = {}
        # seats that carry a memory from one episode to the next
        self._remembering = [s for s, seat in seats.items() if getattr(seat, "memory", None) is not None]
        if self._remembering:
            # each episode must read what the ones before it wrote: one at a time, in order
            self.concurrency = 1

    async def run(
        self, episodes: Iterable[EpisodeSpec], stop: Callable[[], bool] | None = None
    ) -> None:
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
        bus = self.bus
        ep = spec.index
        protocol = self.protocol
        sides = self.sides(spec)
        await bus.open_episode(
            EpisodeStarted(
                episode=ep,
                question_id=spec.question_id,
                question=spec.question,
                answers=spec.answers,
                correct=spec.correct,
                source=spec.source,
                protocol=protocol.name,
                assignments={k: v for k, v in sides.items() if v is not None},
                seats=self._seat_info,
                started_at=time.time(),
                cell=self.cell,
                attributes=None if spec.target is None else {"target": spec.target},
            ),
            {
                s.id: SeatSight(role=s.role, side=sides[s.id], sees_source=s.sees_source)
                for s in protocol.seats
            },
        )
        state = PhaseState(visits={}, settings=protocol.settings)
        outcome: dict = {}
        status, stop_reason, error = "done", "completed", None
        try:
            phase_name = protocol.start
            while phase_name != END:
                phase = protocol.phases[phase_name]
                state.visits[phase_name] = state.visits.get(phase_name, 0) + 1
                await self._run_phase(spec, phase, self._round(phase, state), state)
                phase_name = protocol.next_phase(phase_name, state)
            if "outcome" in state.facts:  # a game's, as its referee settled it
                outcome = dict(state.facts["outcome"])
            if state.ruling is not None:
                outcome = {"choice": state.ruling.choice, "correct": state.ruling.correct}
                if state.ruling.method == "ranking":
                    outcome["ranking"] = json.loads(state.ruling.raw)
            if state.ended:  # the judge decided it had heard enough (a person)
                stop_reason = "judge_ended"
            elif state.belief is not None and protocol.settings.get("stop_threshold"):
                early = max(state.belief) >= protocol.settings["stop_threshold"]
                stop_reason = "judge_confident" if early else "rounds_done"
            for seat_id in self._remembering:
                await self._remember(ep, seat_id, state.ruling)
        except ModelCallFailed as exc:
            status, stop_reason, error = "failed", "model_error", str(exc)
        except EpisodeFailed as exc:
            status, stop_reason, error = "failed", exc.reason, str(exc)
        except Exception as exc:  # a bug must fail its episode loudly, not the whole run
            status, stop_reason = "failed", "error"
            error = "".join(traceback.format_exception_only(exc)).strip()
            error += "\n" + traceback.format_exc(limit=-8)
        final = bus.sides(ep)
        await bus.close_episode(
            EpisodeFinished(
                ep, status, stop_reason, time.time(), outcome, error,  # type: ignore[arg-type]
                assignments={k: v for k, v in final.items() if v is not None},
            )
        )

    def _round(self, phase: Phase, state: PhaseState) -> int:
        """The debate round a turn belongs to: speeches so far (a verdict after round 2 is
        a round-2 verdict), or the phase's own count in a protocol without speeches."""
        if self._phase_rounds is not None:
            return self._phase_rounds[phase.name]
        visits = state.visits
        if len(self._speech_phases) == 1:  # most protocols: one speech phase
            speeches = visits.get(self._speech_phases[0], 0)
        else:
            speeches = max((visits.get(p, 0) for p in self._speech_phases), default=0)
        return speeches or visits[phase.name]

    async def _run_phase(
        self, spec: EpisodeSpec, phase: Phase, round_: int, state: PhaseState
    ) -> None:
        if phase.kind == "aggregate":
            if self.protocol.settings.get("submissions"):
                self._record(state, await self._rank(spec, phase, round_, state))
            else:
                self._record(state, await self._aggregate(spec, phase, round_, state))
            return
        if phase.kind == "rate":
            await self._rate(spec, phase, round_, state)
            return
        if phase.kind == "score":
            self._record(state, await self._score(spec, phase, round_))
            return
        if phase.kind == "referee":
            await self._referee(spec, phase, round_, state)
            return
        if phase.kind == "qualify":
            await self._qualify(spec, phase, round_, state)
            return
        turn = self._turns.get((phase.name, round_))
        if turn is None:  # the same for every episode: made once
            turn = self._turns[phase.name, round_] = Turn(
                kind=phase.kind,
                phase=phase.name,
                round=round_,
                rounds=self._rounds,
                simultaneous=phase.simultaneous,
                max_tokens=0,
                rubric=self._rubric if phase.kind == "review" else "",
            )
        ep = spec.index
        if phase.kind == "verdict":
            state.choices = {}
        if phase.simultaneous and len(phase.seats) > 1:
            self.bus.seal(ep)
            views = [self.bus.view(ep, seat) for seat in phase.seats]
            replies: list[Reply | None] = [None] * len(views)

            async def act(i: int) -> None:
                replies[i] = await self._act(spec, phase, round_, phase.seats[i], views[i], turn)

            try:
                async with anyio.create_task_group() as tg:
                    for i in range(len(views)):
                        tg.start_soon(act, i)
            except BaseExceptionGroup as group:  # surface the first failure as itself
                raise group.exceptions[0] from None
            for seat, reply in zip(phase.seats, replies):
                self._record(state, await self._post(spec, phase, round_, seat, reply))  # type: ignore[arg-type]
                state.ended |= bool(reply and reply.judgement and reply.judgement.end)
            self.bus.release(ep)
        else:
            for seat in phase.seats:
                view = self.bus.view(ep, seat)
                if self._best_of > 1:
                    reply = await self._act(spec, phase, round_, seat, view, turn)
                else:
                    reply = await self.seats[seat].act(view, turn)
                self._record(state, await self._post(spec, phase, round_, seat, reply))
                state.ended |= bool(reply.judgement and reply.judgement.end)
                if phase.kind == "review":
                    state.approved = approves(reply.content)

    async def _act(
        self, spec: EpisodeSpec, phase: Phase, round_: int, seat: str, view: View, turn: Turn
    ) -> Reply:
        """One turn; for a speech under best-of-N, N drafts and the selector's pick.

        The drafts and the pick are stored as messages no seat can see (audience: nobody),
        so the transcript shows what was chosen from, and the judge sees only the choice."""
        if self._best_of < 2 or phase.kind != "speech":
            return await self.seats[seat].act(view, turn)
        drafts: list[Reply | None] = [None] * self._best_of

        async def draft(i: int) -> None:
            drafts[i] = await self.seats[seat].act(view, replace(turn, candidate=i))

        async with anyio.create_task_group() as tg:
            for i in range(self._best_of):
                tg.start_soon(draft, i)
        posted = []
        for reply in drafts:
            assert reply is not None
            posted.append(await self._post_hidden(spec, phase.name + ":draft", round_, seat, reply))
        pick = await self.seats["selector"].act(
            View(spec.index, "selector", "selector", spec.question, spec.answers,
                 view.side, None, tuple(posted)),
            Turn("select", phase.name, round_, self._rounds, False, 0),
        )  # fmt: skip
        await self._post_hidden(spec, phase.name + ":select", round_, "selector", pick)
        choice = pick.judgement.choice if pick.judgement else None
        return drafts[choice if choice is not None else 0]  # type: ignore[return-value]

    async def _rate(self, spec: EpisodeSpec, phase: Phase, round_: int, state: PhaseState) -> None:
        """Every reviewer rates every submission (pointwise) or every ordered pair of them
        (pairwise: both orders, so a preference for the first shown cancels out)."""
        ep = spec.index
        source = self.protocol.settings["submissions"]
        latest: dict[str, Message] = {}
        for m in self.bus.transcript(ep):
            if m.phase == source:
                latest[m.seat] = m
        subs = list(latest.values())
        shows: list[tuple[Message, Message | None]]
        if self.protocol.settings.get("pairwise"):
            shows = [(x, y) for x in subs for y in subs if x.seat != y.seat]
        else:
            shows = [(x, None) for x in subs]
        turn = Turn("rate", phase.name, round_, self._rounds, True, 0)

        async def rate(rater: str, target: Message, other: Message | None) -> None:
            shown = (target,) if other is None else (target, other)
            view = View(ep, rater, "reviewer", spec.question, spec.answers, None,
                        self.bus.view(ep, rater).source, shown)  # fmt: skip
            reply = await self.seats[rater].act(view, turn)
            j = reply.judgement
            probs = j.probabilities if j else None
            if other is None:  # expected score on the 1-9 scale
                score = (
                    sum(p * (i + 1) for i, p in enumerate(probs)) if probs
                    else (j.choice + 1 if j and j.choice is not None else None)
                )  # fmt: skip
            else:  # the probability that the first shown (target) is the better one
                score = probs[0] if probs else (1.0 - j.choice if j and j.choice is not None else None)
            rating = Rating(
                ep, rater, target.seat, other.seat if other else None, round_, score, probs,
                j.method if j else "none", j.parse_status if j else "invalid", reply.content,
                reply.call_seqs[-1] if reply.call_seqs else None, time.time(),
            )  # fmt: skip
            state.ratings.append(rating)
            await self.bus.publish(rating)

        async with anyio.create_task_group() as tg:
            for rater in phase.seats:
                for target, other in shows:
                    tg.start_soon(rate, rater, target, other)

    async def _qualify(
        self, spec: EpisodeSpec, phase: Phase, round_: int, state: PhaseState
    ) -> None:
        """Each reviewer answers the episode's check questions (known answers, passages
        shown); its weight in the ranking is its smoothed accuracy, (right + 1) / (n + 2)."""
        turn = Turn("verdict", phase.name, round_, self._rounds, True, 0)

        async def answer(rater: str, check: EpisodeSpec) -> None:
            view = View(spec.index, rater, "reviewer", check.question, check.answers, None,
                        check.source, ())  # fmt: skip
            reply = await self.seats[rater].act(view, turn)
            j = reply.judgement
            choice = j.choice if j else None
            q = Qualification(
                spec.index, rater, check.question_id, choice,
                None if choice is None else choice == check.correct,
                j.probabilities if j else None, j.method if j else "none",
                reply.call_seqs[-1] if reply.call_seqs else None, time.time(),
            )  # fmt: skip
            right = state.qualification.setdefault(rater, [0, 0])
            right[0] += q.correct is True
            right[1] += 1
            await self.bus.publish(q)

        async with anyio.create_task_group() as tg:
            for rater in phase.seats:
                for check in spec.checks:
                    tg.start_soon(answer, rater, check)

    async def _rank(self, spec: EpisodeSpec, phase: Phase, round_: int, state: PhaseState) -> Verdict:
        """Rank submissions by mean score (pointwise) or mean preference (pairwise, each
        comparison counted for both sides); the top one's answer is the ruling."""
        totals: dict[str, list[tuple[float, float]]] = {a: [] for a in phase.seats}
        for r in state.ratings:
            if r.score is None:
                continue
            right, asked = state.qualification.get(r.rater, (0, 0))
            w = (right + 1) / (asked + 2) if asked else 1.0  # unqualified: equal weights
            totals.setdefault(r.target, []).append((r.score, w))
            if r.other is not None:
                totals.setdefault(r.other, []).append((1.0 - r.score, w))
        means = {
            a: sum(s * w for s, w in v) / sum(w for _, w in v) for a, v in totals.items() if v
        }
        ranking = sorted(means.items(), key=lambda kv: (-kv[1], kv[0]))
        sides = self.bus.sides(spec.index)
        mass = [0.0] * len(spec.answers)
        for author, score in means.items():
            if sides.get(author) is not None:
                mass[sides[author]] += score  # type: ignore[index]
        top = ranking[0][0] if ranking else None
        choice = sides.get(top) if top else None
        total = sum(mass)
        return await self._rule(
            spec, "peer_review", round_, choice,
            tuple(m / total for m in mass) if total else None,
            method="ranking",
            parse_status="ok" if choice is not None else "invalid",
            raw=json.dumps([[a, round(v, 4)] for a, v in ranking]),
        )  # fmt: skip

    async def _post_hidden(
        self, spec: EpisodeSpec, phase: str, round_: int, seat: str, reply: Reply
    ) -> Message:
        s = self._specs[seat]
        message = Message(
            episode=spec.index,
            seq=self.bus.next_message_seq(spec.index),
            round=round_,
            phase=phase,
            seat=seat,
            role=s.role,
            side=self.bus.side(spec.index, seat) if seat in self._specs else None,
            content=reply.content,
            audience=frozenset(),  # stored, read by no seat
            created_at=time.time(),
            call_seq=reply.call_seqs[-1] if reply.call_seqs else None,
        )
        await self.bus.post(message)
        return message

    @staticmethod
    def _record(state: PhaseState, verdict: Verdict | None) -> None:
        if verdict is not None:
            state.latest[verdict.judge] = verdict
            state.choices[verdict.judge] = verdict.choice
            state.belief = verdict.probabilities
            state.ruling = verdict

    async def _aggregate(
        self, spec: EpisodeSpec, phase: Phase, round_: int, state: PhaseState
    ) -> Verdict:
        """A majority vote over the seats' latest verdicts (a tie rules nothing), or for a
        jury that says so, the mean of their probabilities."""
        n = len(spec.answers)
        if self.protocol.settings.get("jury") == "mean":
            return await self._mean(spec, phase, round_, state)
        votes = [v.choice for s in phase.seats if (v := state.latest.get(s)) and v.choice is not None]
        counts = [votes.count(i) for i in range(n)]
        top = max(counts) if votes else 0
        winners = [i for i, c in enumerate(counts) if c == top]
        choice = winners[0] if votes and len(winners) == 1 else None
        return await self._rule(
            spec, phase.name, round_, choice,
            tuple(c / len(votes) for c in counts) if votes else None,
            method="majority",
            parse_status="ok" if choice is not None else ("tie" if votes else "invalid"),
            raw=json.dumps({s: v.choice for s in phase.seats if (v := state.latest.get(s))}),
        )  # fmt: skip

    async def _remember(self, ep: int, seat_id: str, ruling: Verdict | None) -> None:
        """A seat with a memory keeps something of the episode, told how it went for it: its
        side chosen by the ruling, or (a judge) its ruling right."""
        side = self.bus.side(ep, seat_id)
        won = None
        if ruling is not None and ruling.choice is not None:
            won = ruling.choice == side if side is not None else ruling.correct
        kept = await self.seats[seat_id].remember(self.bus.view(ep, seat_id), won)  # type: ignore[attr-defined]
        if kept is not None:
            kind, text = kept
            await self.bus.publish(MemoryEntry(seat_id, ep, kind, text, won, time.time()))

    async def _referee(self, spec: EpisodeSpec, phase: Phase, round_: int, state: PhaseState) -> None:
        """The protocol's referee reads the seat's last move, updates the game's facts and
        says what happened; at the end its outcome and each player's gain are stored."""
        seat = phase.seats[-1]
        said = [m.content for m in self.bus.transcript(spec.index) if m.seat == seat]
        rulings = self.protocol.settings["referee"].step(
            phase.name, seat, said[-1] if said else None, state.facts, spec.game
        )
        for ruling in rulings:
            await self.bus.post(
                Message(
                    episode=spec.index, seq=self.bus.next_message_seq(spec.index), round=round_,
                    phase=phase.name, seat="referee", role="referee", side=None,
                    content=ruling.text, audience=ruling.audience, created_at=time.time(),
                )
            )  # fmt: skip
            if ruling.outcome is not None:
                state.facts["outcome"] = ruling.outcome
                for player, gain in ruling.outcome["gains"].items():
                    await self.bus.publish(
                        Rating(
                            episode=spec.index, rater="referee", target=player, other=None,
                            round=round_, score=gain, probabilities=None, method="game",
                            parse_status="ok", raw=json.dumps(ruling.outcome), call_seq=None,
                            created_at=time.time(),
                        )
                    )  # fmt: skip

    async def _score(self, spec: EpisodeSpec, phase: Phase, round_: int) -> Verdict:
        """An open task's outcome: the number the scored seat concluded, against the target.
        Nothing a seat writes can mark itself correct: the comparison is made here."""
        seat = phase.seats[-1]
        said = [m.content for m in self.bus.transcript(spec.index) if m.seat == seat]
        found = final_number(said[-1]) if said else None
        correct = None
        if found is not None and spec.target is not None:
            correct = abs(float(found) - float(spec.target)) <= 1e-6 * max(1.0, abs(float(spec.target)))
        return await self._rule(
            spec, "scorer", round_, None, None,
            method="numeric_match", parse_status="ok" if found is not None else "invalid",
            raw=found or "", correct=correct,
        )  # fmt: skip

    async def _mean(self, spec: EpisodeSpec, phase: Phase, round_: int, state: PhaseState) -> Verdict:
        """The panel's belief is the jurors' mean probability; jurors whose probabilities
        could not be read are left out (and named in `raw`)."""
        latest = {s: state.latest.get(s) for s in phase.seats}
        probs = [v.probabilities for v in latest.values() if v is not None and v.probabilities]
        mean = tuple(sum(p[i] for p in probs) / len(probs) for i in range(len(spec.answers))) if probs else None
        choice = None
        if mean is not None:
            top = max(mean)
            choice = mean.index(top) if mean.count(top) == 1 else None
        return await self._rule(
            spec, phase.name, round_, choice, mean,
            method="mean",
            parse_status="ok" if choice is not None else ("tie" if probs else "invalid"),
            raw=json.dumps({s: None if v is None else v.probabilities for s, v in latest.items()}),
        )  # fmt: skip

    async def _post(
        self, spec: EpisodeSpec, phase: Phase, round_: int, seat: str, reply: Reply
    ) -> Verdict | None:
        s = self._specs[seat]
        ep = spec.index
        now = time.time()
        call_seq = reply.call_seqs[-1] if reply.call_seqs else None
        if phase.kind == "choose":
            j = reply.judgement
            if j is None or j.choice is None:
                raise EpisodeFailed("invalid_choice", f"{seat} named no answer to defend: {reply.content!r}")
            self.bus.assign(ep, seat, j.choice)
        quotes = None
        if self._quotes and phase.kind == "speech" and spec.source is not None:
            quotes = tuple(quoting.verify(reply.content, spec.source, fuzzy=self._fuzzy))
        seq, side = self.bus.message_slot(ep, seat)
        await self.bus.post(
            Message(
                ep, seq, round_, phase.name, seat, s.role, side, reply.content, phase.audience,
                now, call_seq, quotes or None,
            )
        )  # fmt: skip
        if phase.kind != "verdict":
            return None
        j = reply.judgement
        if j is None:
            raise RuntimeError(f"seat {seat} returned no judgement for a verdict turn")
        return await self._rule(
            spec, seat, round_, j.choice, j.probabilities,
            method=j.method, parse_status=j.parse_status, raw=reply.content,
            model=reply.model, call_seq=call_seq, created_at=now,
        )  # fmt: skip

    async def _rule(
        self,
        spec: EpisodeSpec,
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
        await self.bus.publish(verdict)
        return verdict
