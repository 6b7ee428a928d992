"""The engine's phase handlers, one example each: a protocol walked with scripted stand-ins
for its seats, and what the walk put on the bus.

Each stand-in answers by a rule of the test's (`say`), so what a handler does with the
replies is all that is being looked at: sealed rounds, sides chosen, drafts hidden, reviews
that end a loop, ratings and rankings, votes and means, scores and a referee's settlement.
A handler reads its phase's own typed parameters (a speech's `best_of`, a rate phase's
`submissions` and `pairwise`, an aggregate's `rule`, a referee phase's `referee`): most
examples get them from a scenario's options, one writes its graph by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import networkx as nx
import pytest

from moot.agents.base import Judgement, Reply, Turn, View
from moot.engine import Engine, EpisodeSpec
from moot.engine.bus import Bus
from moot.protocols.graph import END, Phase, Protocol, SeatSpec
from moot.protocols.registry import build
from moot.scenario.model import Scenario
from moot.transcript.events import EpisodeFinished, Message, Qualification, Rating, Verdict

pytestmark = pytest.mark.anyio

SPEC = EpisodeSpec(0, "q1", "What colour was the lighthouse?", ("red", "blue"), 0,
                   "The lighthouse was painted red in 1901.")  # fmt: skip


class Stand:
    """A scripted stand-in for a seat: its reply is `say(view, turn)`."""

    def __init__(self, seat: str, role: str, say: Callable[[View, Turn], Reply | str]) -> None:
        self.id, self.role, self.say = seat, role, say

    async def act(self, view: View, turn: Turn) -> Reply:
        reply = self.say(view, turn)
        return reply if isinstance(reply, Reply) else Reply(reply)


class Recorder:
    """Everything the walk published, in order (a sink, as the store's writer is)."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def accept(self, event: Any) -> bool:
        self.events.append(event)
        return False

    async def drain(self) -> None:
        pass

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def ruling(choice: int | None, probs: tuple[float, ...] | None = None, text: str = "") -> Reply:
    return Reply(text or f"Answer: {'ABC'[choice] if choice is not None else '?'}",
                 Judgement(choice, probs, "text", "ok" if choice is not None else "invalid"))  # fmt: skip


async def walk(protocol: dict[str, Any] | Protocol, say: Callable[[View, Turn], Reply | str],
               spec: EpisodeSpec = SPEC) -> Recorder:  # fmt: skip
    """Walk a scenario's protocol (its options, as a scenario file gives them) or a graph."""
    if isinstance(protocol, dict):
        protocol = build(Scenario.model_validate({"name": "engine-example", "protocol": protocol}))
    compiled = protocol.compile()
    seats = {s.id: Stand(s.id, s.role, say) for s in compiled.seats}
    bus, seen = Bus(), Recorder()
    bus.attach(seen)
    await Engine(compiled, seats, bus, concurrency=1).run([spec])
    return seen


def said(seen: Recorder, seat: str) -> list[str]:
    return [m.content for m in seen.of(Message) if m.seat == seat]


# -- turns: speech, verdict, choose, review; best-of-N ---------------------------------------


async def test_a_simultaneous_round_is_sealed_and_the_engine_judges_the_verdict():
    def say(view: View, turn: Turn) -> Reply | str:
        if turn.kind == "verdict":
            return ruling(1, (0.2, 0.8), "Answer: B. I am right, trust me.")
        return f"{view.seat} read {len(view.messages)} speeches"

    seen = await walk({"name": "debate", "rounds": 1, "turns": "simultaneous"}, say)
    assert said(seen, "debater_a") == ["debater_a read 0 speeches"]
    assert said(seen, "debater_b") == ["debater_b read 0 speeches"]  # A's speech was sealed
    (verdict,) = seen.of(Verdict)
    assert (verdict.choice, verdict.correct) == (1, False)  # the gold says A, whatever B claims
    (end,) = seen.of(EpisodeFinished)
    assert end.outcome == {"choice": 1, "correct": False}


async def test_open_debaters_choose_their_sides():
    def say(view: View, turn: Turn) -> Reply | str:
        if turn.kind == "choose":
            return ruling(0 if view.seat == "debater_a" else 1)
        if turn.kind == "verdict":
            return ruling(0, (0.9, 0.1))
        return f"I defend {view.answers[view.side]}" if view.side is not None else "no side"

    seen = await walk({"name": "debate", "rounds": 1, "open": True}, say)
    assert said(seen, "debater_a")[-1] == "I defend red" and said(seen, "debater_b")[-1] == "I defend blue"
    assert seen.of(EpisodeFinished)[0].assignments == {"debater_a": 0, "debater_b": 1}


@pytest.mark.parametrize(("decision", "drafts"), [("approve", 1), ("revise", 3)])
async def test_a_review_that_approves_ends_the_feedback_loop(decision, drafts):
    def say(view: View, turn: Turn) -> Reply | str:
        if turn.kind == "review":
            return f"Looks {'fine' if decision == 'approve' else 'thin'}. Decision: {decision}"
        if turn.kind == "verdict":
            return ruling(0, (0.6, 0.4))
        return f"draft {sum(m.seat == 'generator' for m in view.messages) + 1}"

    seen = await walk({"name": "feedback", "rounds": 3}, say)
    assert said(seen, "generator") == [f"draft {i}" for i in range(1, drafts + 1)]


async def test_best_of_n_stores_every_draft_and_the_judge_reads_only_the_pick():
    def say(view: View, turn: Turn) -> Reply | str:
        if turn.kind == "select":
            return ruling(2)  # the third draft
        if turn.kind == "verdict":
            return ruling(0, (0.7, 0.3), "Answer: A | " + " / ".join(m.content for m in view.messages))
        return f"{view.seat} draft {turn.candidate}"

    seen = await walk({"name": "debate", "rounds": 1, "best_of": 3}, say)
    drafts = [m for m in seen.of(Message) if m.phase.endswith(":draft")]
    assert len(drafts) == 6 and all(m.audience == frozenset() for m in drafts)  # read by no seat
    (verdict,) = seen.of(Verdict)
    assert verdict.raw == "Answer: A | debater_a draft 2 / debater_b draft 2"


# -- peer review: qualify, rate, rank -------------------------------------------------------


async def test_peer_review_qualifies_reviewers_and_ranks_by_weighted_preference():
    check = EpisodeSpec(-1, "c1", "Is fire hot?", ("yes", "no"), 0, "Fire is hot.")
    spec = EpisodeSpec(0, "q1", SPEC.question, SPEC.answers, 0, SPEC.source, checks=(check,))

    def say(view: View, turn: Turn) -> Reply | str:
        if turn.kind == "choose":  # author_1 defends red, the others blue
            return ruling(0 if view.seat == "author_1" else 1)
        if turn.kind == "verdict":  # the qualification: reviewer_1 right, reviewer_2 wrong
            return ruling(0 if view.seat == "reviewer_1" else 1)
        if turn.kind == "rate":  # pairwise: reviewer_1 prefers author_1's, reviewer_2 the other
            first = view.messages[0].seat
            likes = (first == "author_1") == (view.seat == "reviewer_1")
            return ruling(0 if likes else 1, (0.9, 0.1) if likes else (0.1, 0.9))
        return f"{view.seat}'s answer"

    seen = await walk({"name": "peer_review", "authors": 2, "reviewers": 2, "pairwise": True,
                       "qualification": 1}, say, spec)  # fmt: skip
    assert {(q.rater, q.correct) for q in seen.of(Qualification)} == {("reviewer_1", True), ("reviewer_2", False)}
    assert len(seen.of(Rating)) == 4  # 2 reviewers x 2 ordered pairs
    (ranked,) = [v for v in seen.of(Verdict) if v.method == "ranking"]
    # reviewer_1 weighs (1 + 1) / (1 + 2), reviewer_2 (0 + 1) / (1 + 2): author_1 (red) wins
    assert [a for a, _ in json.loads(ranked.raw)] == ["author_1", "author_2"]
    assert (ranked.choice, ranked.correct) == (0, True)


async def test_a_rate_phase_scores_the_phase_it_names_and_a_ranking_rules():
    # a graph by hand: each phase carries its own kind's parameters
    g = nx.DiGraph()
    g.add_node("pitch", phase=Phase("pitch", "speech", ("author_a", "author_b"), simultaneous=True))
    g.add_node("score", phase=Phase("score", "rate", ("critic",), submissions="pitch"))  # pointwise
    g.add_node("rank", phase=Phase("rank", "aggregate", ("author_a", "author_b"), rule="ranking"))
    g.add_node(END)
    for a, b in (("pitch", "score"), ("score", "rank"), ("rank", END)):
        g.add_edge(a, b)
    seats = (SeatSpec("author_a", "author", side=0), SeatSpec("author_b", "author", side=1),
             SeatSpec("critic", "reviewer"))  # fmt: skip
    protocol = Protocol("pitches", seats, g, start="pitch")
    assert protocol.problems() == []

    def say(view: View, turn: Turn) -> Reply | str:
        if turn.kind == "rate":  # 1-9: author_b's pitch is the better one
            (shown,) = view.messages
            score = 7 if shown.seat == "author_b" else 3
            return ruling(score - 1, text=f"Score: {score}")
        return f"{view.seat}: pick {view.answers[view.side or 0]}"

    seen = await walk(protocol, say)
    assert {(r.target, r.other, r.score) for r in seen.of(Rating)} == {("author_a", None, 3), ("author_b", None, 7)}
    (ranked,) = seen.of(Verdict)
    assert json.loads(ranked.raw) == [["author_b", 7], ["author_a", 3]]
    assert (ranked.choice, ranked.correct) == (1, False)  # author_b defends blue; the gold is red
    assert seen.of(EpisodeFinished)[0].outcome["ranking"] == [["author_b", 7], ["author_a", 3]]


# -- aggregates: a majority, a jury's mean ----------------------------------------------------


@pytest.mark.parametrize(("votes", "choice", "status"), [((0, 0, 1), 0, "ok"), ((0, 1, None), None, "tie")])
async def test_the_majority_of_the_agents_rules_and_a_tie_rules_nothing(votes, choice, status):
    def say(view: View, turn: Turn) -> Reply | str:
        return ruling(votes[int(view.seat[-1]) - 1])

    seen = await walk({"name": "multi_agent", "agents": 3, "rounds": 1, "final": "majority"}, say)
    majority = [v for v in seen.of(Verdict) if v.method == "majority"]
    assert (majority[-1].choice, majority[-1].parse_status) == (choice, status)


async def test_a_jury_rules_by_its_mean_probability():
    sure = {"juror_1": (0.95, 0.05), "juror_2": (0.4, 0.6), "juror_3": (0.45, 0.55)}

    def say(view: View, turn: Turn) -> Reply | str:
        if turn.kind == "verdict":
            p = sure[view.seat]
            return ruling(p.index(max(p)), p)
        return "an argument"

    seen = await walk({"name": "debate", "rounds": 1, "jury": {"size": 3, "aggregate": "mean"}}, say)
    (mean,) = [v for v in seen.of(Verdict) if v.method == "mean"]
    assert mean.choice == 0 and mean.probabilities == pytest.approx((0.6, 0.4))  # one sure juror outweighs two


# -- code, not a model: the scorer and the referee --------------------------------------------


@pytest.mark.parametrize(("final", "correct"), [("So the total is 40. Answer: 42", True), ("Answer: 41 (correct!)", False)])
async def test_the_scorer_checks_the_refiners_final_number_against_the_target(final, correct):
    task = EpisodeSpec(0, "t1", "6 boxes of 7 apples: how many?", (), None, None, target="42")

    def say(view: View, turn: Turn) -> Reply | str:
        return {"refiner": final, "verifier": "Decision: approve"}.get(view.seat, "6 x 7 = 42")

    seen = await walk({"name": "chain", "rounds": 1}, say, task)
    (scored,) = [v for v in seen.of(Verdict) if v.judge == "scorer"]
    assert (scored.method, scored.correct) == ("numeric_match", correct)


async def test_the_referee_settles_a_deal_and_rates_each_players_gain():
    game = EpisodeSpec(0, "g1", "Divide $100 between Alice and Bob.", (), None, None,
                       game={"money": 100, "discount": [0.9, 0.9]})  # fmt: skip

    def say(view: View, turn: Turn) -> Reply | str:
        return "OFFER: 40" if view.seat == "alice" else "ACCEPT"

    seen = await walk({"name": "bargaining", "rounds": 4}, say, game)
    assert any("offers" in m.content for m in seen.of(Message) if m.seat == "referee")
    gains = {r.target: r.score for r in seen.of(Rating) if r.rater == "referee"}
    assert gains == {"alice": 60, "bob": 40}  # a deal in round 1: no discount yet
    assert seen.of(EpisodeFinished)[0].outcome["gains"] == gains
