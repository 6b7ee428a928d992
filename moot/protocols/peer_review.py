"""Peer review (as in PRD, Li et al. 2023, and LLM-as-reviewer panels): several authors each
choose an answer and write a submission defending it; several reviewers rate every
submission (pointwise, 1-9) or compare every pair of submissions in both orders (pairwise,
so position bias cancels); the ratings are aggregated into a ranking, and the top
submission's answer is the protocol's answer.

    choose -> submit -> [qualify] -> rate -> rank -> end

With `qualification: K`, each reviewer first answers K other questions of the dataset
(known answers, passages shown) and its ratings count with weight (right + 1) / (K + 2);
those answers go to `qualifications`, never to the episode's verdicts.

Every rating is stored in `ratings` (rater, submission, the other one in a pair, score or
preference, how it was read); the ranking is the episode's outcome, and the verdict of
"peer_review" carries the answer of the top submission with, as its probabilities, each
answer's share of the total score.
"""

from __future__ import annotations

import itertools

import networkx as nx

from moot.models.forms import Form
from moot.protocols.graph import END, Phase, Protocol, SeatSpec

# A rating's form: a digit 1-9 for one submission, the better one's letter for a pair
POINTWISE_FORM = Form.of_labels(*"123456789")
PAIRWISE_FORM = Form.of_labels("A", "B")


def author_ids(n: int) -> tuple[str, ...]:
    return tuple(f"author_{i}" for i in range(1, n + 1))


def reviewer_ids(n: int) -> tuple[str, ...]:
    return tuple(f"reviewer_{i}" for i in range(1, n + 1))


def build(authors: int, reviewers: int, *, pairwise: bool = False, qualification: int = 0) -> Protocol:
    a, r = author_ids(authors), reviewer_ids(reviewers)
    seats = tuple(SeatSpec(x, "author", side="open") for x in a) + tuple(
        SeatSpec(x, "reviewer") for x in r
    )
    rate = "rate_pairwise" if pairwise else "rate_pointwise"
    g = nx.DiGraph()
    g.add_node("choose", phase=Phase("choose", "choose", a, simultaneous=True))
    g.add_node("submit", phase=Phase("submit", "speech", a, simultaneous=True))
    form = PAIRWISE_FORM if pairwise else POINTWISE_FORM
    g.add_node(rate, phase=Phase(rate, "rate", r, simultaneous=True, submissions="submit",
                                 pairwise=pairwise, form=form))  # fmt: skip
    g.add_node("rank", phase=Phase("rank", "aggregate", a, rule="ranking"))
    g.add_node(END)
    chain = ["choose", "submit", rate, "rank", END]
    if qualification:  # reviewers first answer questions with known answers: their weights
        g.add_node("qualify", phase=Phase("qualify", "qualify", r, simultaneous=True))
        chain.insert(2, "qualify")
    for x, y in itertools.pairwise(chain):
        g.add_edge(x, y)
    return Protocol("peer_review", seats, g, start="choose")
