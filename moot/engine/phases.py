"""One handler per kind of phase: what the engine does when the walk reaches it.

A handler takes the episode, the phase and the round; it asks seats for turns (or reads what
they said), posts through the episode, and leaves what the graph's conditions read in the
episode's state. A new kind of phase is a new handler in `HANDLERS`, not a branch in the
engine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import anyio

from moot.agents.base import Reply, Turn, View
from moot.engine.episode import Episode
from moot.protocols.graph import Phase
from moot.protocols.rules import approves, final_number
from moot.transcript.events import Message, Qualification, Rating, Verdict

Handler = Callable[[Episode, Phase, int], Awaitable[None]]


# -- the seats' own turns: speech, question, verdict, choose, review --------------------------


async def turns(ep: Episode, phase: Phase, round_: int) -> None:
    """Each seat of the phase takes its turn; together, they speak unseen by one another
    until all have spoken (the bus seals the round)."""
    t = ep.table
    turn = t.turn(phase, round_)
    if phase.form_for is not None:  # the form for this episode's game (a bargaining offer's range)
        turn = replace(turn, form=phase.form_for(ep.spec.game))
    i = ep.index
    if phase.kind == "verdict":
        ep.state.choices = {}
    if phase.simultaneous and len(phase.seats) > 1:
        t.bus.seal(i)
        views = [t.bus.view(i, seat) for seat in phase.seats]
        replies: list[Reply | None] = [None] * len(views)

        async def act(k: int) -> None:
            replies[k] = await _act(ep, phase, round_, phase.seats[k], views[k], turn)

        try:
            async with anyio.create_task_group() as tg:
                for k in range(len(views)):
                    tg.start_soon(act, k)
        except BaseExceptionGroup as group:  # surface the first failure as itself
            raise group.exceptions[0] from None
        for seat, reply in zip(phase.seats, replies):
            assert reply is not None
            ep.record(await ep.post(phase, round_, seat, reply))
            ep.state.ended |= bool(reply.judgement and reply.judgement.end)
        t.bus.release(i)
        return
    for seat in phase.seats:
        view = t.bus.view(i, seat)
        if phase.best_of > 1:
            reply = await _act(ep, phase, round_, seat, view, turn)
        else:
            reply = await t.seats[seat].act(view, turn)
        ep.record(await ep.post(phase, round_, seat, reply))
        ep.state.ended |= bool(reply.judgement and reply.judgement.end)
        if phase.kind == "review":
            ep.state.approved = approves(reply.content)


async def _act(ep: Episode, phase: Phase, round_: int, seat: str, view: View, turn: Turn) -> Reply:
    """One turn; for a speech under best-of-N, N drafts and the selector's pick.

    The drafts and the pick are stored as messages no seat can see (audience: nobody), so
    the transcript shows what was chosen from, and the judge sees only the choice."""
    t = ep.table
    n = phase.best_of  # a speech's parameter: 1 for every other kind
    if n < 2:
        return await t.seats[seat].act(view, turn)
    drafts: list[Reply | None] = [None] * n

    async def draft(k: int) -> None:
        drafts[k] = await t.seats[seat].act(view, replace(turn, candidate=k))

    async with anyio.create_task_group() as tg:
        for k in range(n):
            tg.start_soon(draft, k)
    posted = []
    for reply in drafts:
        assert reply is not None
        posted.append(await ep.post_hidden(phase.name + ":draft", round_, seat, reply))
    spec = ep.spec
    pick = await t.seats["selector"].act(
        View(spec.index, "selector", "selector", spec.question, spec.answers, view.side, None, tuple(posted)),
        Turn("select", phase.name, round_, t.protocol.terms.rounds, False, 0),
    )
    await ep.post_hidden(phase.name + ":select", round_, "selector", pick)
    choice = pick.judgement.choice if pick.judgement else None
    chosen = drafts[choice if choice is not None else 0]
    assert chosen is not None
    return chosen


# -- peer review: qualify, rate, rank ---------------------------------------------------------


async def qualify(ep: Episode, phase: Phase, round_: int) -> None:
    """Each reviewer answers the episode's check questions (known answers, passages shown);
    its weight in the ranking is its smoothed accuracy, (right + 1) / (n + 2)."""
    t = ep.table
    turn = Turn("verdict", phase.name, round_, t.protocol.terms.rounds, True, 0)

    async def answer(rater: str, check: Any) -> None:
        view = View(ep.index, rater, "reviewer", check.question, check.answers, None, check.source, ())
        reply = await t.seats[rater].act(view, turn)
        j = reply.judgement
        choice = j.choice if j else None
        q = Qualification(
            ep.index, rater, check.question_id, choice,
            None if choice is None else choice == check.correct,
            j.probabilities if j else None, j.method if j else "none",
            reply.call_seqs[-1] if reply.call_seqs else None, time.time(),
        )  # fmt: skip
        right = ep.state.qualification.setdefault(rater, [0, 0])
        right[0] += q.correct is True
        right[1] += 1
        await t.bus.publish(q)

    async with anyio.create_task_group() as tg:
        for rater in phase.seats:
            for check in ep.spec.checks:
                tg.start_soon(answer, rater, check)


async def rate(ep: Episode, phase: Phase, round_: int) -> None:
    """Every reviewer rates every submission (the latest message of each seat in the phase
    `phase.submissions`) on its own (pointwise) or every ordered pair of them (pairwise: both
    orders, so a preference for the first shown cancels out)."""
    t, i, spec = ep.table, ep.index, ep.spec
    latest: dict[str, Message] = {}
    for m in t.bus.transcript(i):
        if m.phase == phase.submissions:
            latest[m.seat] = m
    subs = list(latest.values())
    shows: list[tuple[Message, Message | None]]
    if phase.pairwise:
        shows = [(x, y) for x in subs for y in subs if x.seat != y.seat]
    else:
        shows = [(x, None) for x in subs]
    turn = Turn("rate", phase.name, round_, t.protocol.terms.rounds, True, 0, form=phase.form, pairwise=phase.pairwise)

    async def one(rater: str, target: Message, other: Message | None) -> None:
        seen = t.bus.view(i, rater)
        shown: tuple[Message, ...] = (target,) if other is None else (target, other)
        if other is None and any(m.seat == rater for m in seen.messages):
            shown = seen.messages  # a seat rating a conversation it took part in reads all of it
        view = View(i, rater, "reviewer", spec.question, spec.answers, None, seen.source, shown)
        reply = await t.seats[rater].act(view, turn)
        j = reply.judgement
        probs = j.probabilities if j else None
        if other is None:  # expected score on the 1-9 scale
            score = (
                sum(p * (k + 1) for k, p in enumerate(probs)) if probs
                else (j.choice + 1 if j and j.choice is not None else None)
            )  # fmt: skip
        else:  # the probability that the first shown (target) is the better one
            score = probs[0] if probs else (1.0 - j.choice if j and j.choice is not None else None)
        rating = Rating(
            i, rater, target.seat, other.seat if other else None, round_, score, probs,
            j.method if j else "none", j.parse_status if j else "invalid", reply.content,
            reply.call_seqs[-1] if reply.call_seqs else None, time.time(),
        )  # fmt: skip
        ep.state.ratings.append(rating)
        await t.bus.publish(rating)

    async with anyio.create_task_group() as tg:
        for rater in phase.seats:
            for target, other in shows:
                tg.start_soon(one, rater, target, other)


async def _rank(ep: Episode, phase: Phase, round_: int) -> Verdict:
    """Rank submissions by mean score (pointwise) or mean preference (pairwise, each
    comparison counted for both sides); the top one's answer is the ruling."""
    state = ep.state
    totals: dict[str, list[tuple[float, float]]] = {a: [] for a in phase.seats}
    for r in state.ratings:
        if r.score is None:
            continue
        right, asked = state.qualification.get(r.rater, (0, 0))
        w = (right + 1) / (asked + 2) if asked else 1.0  # unqualified: equal weights
        totals.setdefault(r.target, []).append((r.score, w))
        if r.other is not None:
            totals.setdefault(r.other, []).append((1.0 - r.score, w))
    means = {a: sum(s * w for s, w in v) / sum(w for _, w in v) for a, v in totals.items() if v}
    ranking = sorted(means.items(), key=lambda kv: (-kv[1], kv[0]))
    sides = ep.table.bus.sides(ep.index)
    mass = [0.0] * len(ep.spec.answers)
    for author, score in means.items():
        side = sides.get(author)
        if side is not None:
            mass[side] += score
    top = ranking[0][0] if ranking else None
    choice = sides.get(top) if top else None
    total = sum(mass)
    return await ep.rule(
        "peer_review", round_, choice,
        tuple(m / total for m in mass) if total else None,
        method="ranking",
        parse_status="ok" if choice is not None else "invalid",
        raw=json.dumps([[a, round(v, 4)] for a, v in ranking]),
    )  # fmt: skip


# -- rulings made from others' verdicts: a majority, a jury's mean, a ranking ----------------


async def aggregate(ep: Episode, phase: Phase, round_: int) -> None:
    """The phase's rule combines what its seats said into a ruling (`AGGREGATES`)."""
    ep.record(await AGGREGATES[phase.rule](ep, phase, round_))


async def _majority(ep: Episode, phase: Phase, round_: int) -> Verdict:
    """A majority vote over the seats' latest verdicts (a tie rules nothing)."""
    latest = ep.state.latest
    votes = [v.choice for s in phase.seats if (v := latest.get(s)) and v.choice is not None]
    counts = [votes.count(k) for k in range(len(ep.spec.answers))]
    top = max(counts) if votes else 0
    winners = [k for k, c in enumerate(counts) if c == top]
    choice = winners[0] if votes and len(winners) == 1 else None
    return await ep.rule(
        phase.name, round_, choice,
        tuple(c / len(votes) for c in counts) if votes else None,
        method="majority",
        parse_status="ok" if choice is not None else ("tie" if votes else "invalid"),
        raw=json.dumps({s: v.choice for s in phase.seats if (v := latest.get(s))}),
    )  # fmt: skip


async def _mean(ep: Episode, phase: Phase, round_: int) -> Verdict:
    """The panel's belief is the jurors' mean probability; jurors whose probabilities could
    not be read are left out (and named in `raw`)."""
    latest = {s: ep.state.latest.get(s) for s in phase.seats}
    probs = [v.probabilities for v in latest.values() if v is not None and v.probabilities]
    n = len(ep.spec.answers)
    mean = tuple(sum(p[k] for p in probs) / len(probs) for k in range(n)) if probs else None
    choice = None
    if mean is not None:
        top = max(mean)
        choice = mean.index(top) if mean.count(top) == 1 else None
    return await ep.rule(
        phase.name, round_, choice, mean,
        method="mean",
        parse_status="ok" if choice is not None else ("tie" if probs else "invalid"),
        raw=json.dumps({s: None if v is None else v.probabilities for s, v in latest.items()}),
    )  # fmt: skip


# -- code, not a model: the scorer of an open task, the referee of a game ---------------------


async def score(ep: Episode, phase: Phase, round_: int) -> None:
    """An open task's outcome: the number the scored seat concluded, against the target.
    Nothing a seat writes can mark itself correct: the comparison is made here."""
    said = ep.said(phase.seats[-1])
    found = final_number(said[-1]) if said else None
    target = ep.spec.target
    correct = None
    if found is not None and target is not None:
        correct = abs(float(found) - float(target)) <= 1e-6 * max(1.0, abs(float(target)))
    ruling = await ep.rule(
        "scorer", round_, None, None,
        method="numeric_match", parse_status="ok" if found is not None else "invalid",
        raw=found or "", correct=correct,
    )  # fmt: skip
    ep.record(ruling)


async def referee(ep: Episode, phase: Phase, round_: int) -> None:
    """The protocol's referee reads the seat's last move, updates the game's facts and says
    what happened; at the end its outcome and each player's gain are stored."""
    t, i = ep.table, ep.index
    seat = phase.seats[-1]
    said = ep.said(seat)
    assert phase.referee is not None  # a referee phase without one is a graph's problem
    rulings = phase.referee.step(phase.name, seat, said[-1] if said else None, ep.state.facts, ep.spec.game)
    for ruling in rulings:
        await t.bus.post(
            Message(
                episode=i, seq=t.bus.next_message_seq(i), round=round_,
                phase=phase.name, seat="referee", role="referee", side=None,
                content=ruling.text, audience=ruling.audience, created_at=time.time(),
            )
        )  # fmt: skip
        if ruling.outcome is not None:
            ep.state.facts["outcome"] = ruling.outcome
            for player, gain in ruling.outcome["gains"].items():
                await t.bus.publish(
                    Rating(
                        episode=i, rater="referee", target=player, other=None,
                        round=round_, score=gain, probabilities=None, method="game",
                        parse_status="ok", raw=json.dumps(ruling.outcome), call_seq=None,
                        created_at=time.time(),
                    )
                )  # fmt: skip


# An aggregate phase's rules: a new rule is a new entry here, and a new value of
# `moot.protocols.graph.AggregateRule`.
AGGREGATES: dict[str, Callable[[Episode, Phase, int], Awaitable[Verdict]]] = {
    "majority": _majority,
    "mean": _mean,
    "ranking": _rank,
}

HANDLERS: dict[str, Handler] = {
    "speech": turns,
    "question": turns,
    "verdict": turns,
    "choose": turns,
    "review": turns,
    "qualify": qualify,
    "rate": rate,
    "aggregate": aggregate,
    "score": score,
    "referee": referee,
}
