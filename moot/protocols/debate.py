"""Two-sided debate (Irving et al. 2018; Michael et al. 2023; Khan et al. 2024).

    [choose] -> speeches --(rounds_left)--> [question] -> speeches
                speeches --(rounds_done)--> verdict -> end

Variants are parameters, not new control flow:
- `turns`: simultaneous (sealed until the round closes) or sequential speeches;
- `open`: each debater first chooses the answer it defends (else A defends answer A, B
  defends B, and the run alternates the answer order so each argues the correct one
  equally often);
- `judge_questions`: the judge asks a question between rounds (interactive debate);
- `stop_threshold`: the judge rules after every round and the debate ends once its
  probability for one answer reaches the threshold (adaptive stopping).
The judge is blind to the source by default.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from moot.protocols.graph import END, Phase, Protocol, SeatSpec, Terms

DEBATERS = ("debater_a", "debater_b")


def build(
    rounds: int,
    simultaneous: bool = True,
    *,
    open_sides: bool = False,
    judge_questions: bool = False,
    stop_threshold: float | None = None,
) -> Protocol:
    sides: tuple[Any, Any] = ("open", "open") if open_sides else (0, 1)
    seats = (
        SeatSpec("debater_a", "debater", side=sides[0]),
        SeatSpec("debater_b", "debater", side=sides[1]),
        SeatSpec("judge", "judge", sees_source=False),
    )
    g = nx.DiGraph()
    g.add_node("speeches", phase=Phase("speeches", "speech", DEBATERS, simultaneous=simultaneous))
    g.add_node("verdict", phase=Phase("verdict", "verdict", ("judge",)))
    g.add_node(END)
    start = "speeches"
    if open_sides:
        g.add_node("choose", phase=Phase("choose", "choose", DEBATERS, simultaneous=True))
        g.add_edge("choose", "speeches")
        start = "choose"
    next_round = "speeches"
    if judge_questions:
        g.add_node("question", phase=Phase("question", "question", ("judge",)))
        g.add_edge("question", "speeches")
        next_round = "question"
    if stop_threshold is None:
        g.add_edge("speeches", next_round, when="rounds_left")
        g.add_edge("speeches", "verdict", when="rounds_done")
        g.add_edge("verdict", END)
    else:  # the judge rules every round: go on while it is unsure and rounds are left
        g.add_edge("speeches", "verdict")
        g.add_edge("verdict", next_round, when="unsure_rounds_left", of="speeches")
        g.add_edge("verdict", END)  # otherwise: sure, or out of rounds
    terms = Terms(rounds, stop_threshold=stop_threshold)
    return Protocol("debate", seats, g, start=start, terms=terms)
