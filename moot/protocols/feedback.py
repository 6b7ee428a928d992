"""Feedback loop (self-refine with an external critic, as in Madaan et al. 2023 and the
generator/reviewer pairs of AgentCourt-style systems): a generator drafts an answer, a
reviewer critiques it and approves or asks for a revision, until approval or `rounds`
drafts; then a judge who cannot read the passage rules on the final draft.

    draft -> review --(revise_rounds_left)--> draft
             review --(otherwise)--> verdict -> end

Every draft and critique is a stored message; the reviewer's decision is read from a last
line "Decision: approve" or "Decision: revise" (anything else counts as revise), declared as
the reply's form (`DECISION_FORM`: the decision first, then the critique). A `rubric`
(a checklist) is shown to the reviewer as what to check.
"""

from __future__ import annotations

import networkx as nx

from moot.models.forms import Form
from moot.protocols.graph import END, Phase, Protocol, SeatSpec, Terms

# The reviewer's reply: its decision on the first line, its critique on the lines after
DECISION_FORM = Form.of_pattern(r"Decision: (approve|revise)(\n[^\n]*)*")


def build(rounds: int, *, rubric: str | None = None) -> Protocol:
    seats = (
        SeatSpec("generator", "generator"),
        SeatSpec("reviewer", "reviewer"),
        SeatSpec("judge", "judge", sees_source=False),
    )
    g = nx.DiGraph()
    g.add_node("draft", phase=Phase("draft", "speech", ("generator",)))
    g.add_node("review", phase=Phase("review", "review", ("reviewer",), rubric=rubric or "", form=DECISION_FORM))
    g.add_node("verdict", phase=Phase("verdict", "verdict", ("judge",)))
    g.add_node(END)
    g.add_edge("draft", "review")
    g.add_edge("review", "draft", when="revise_rounds_left", of="draft")
    g.add_edge("review", "verdict")
    g.add_edge("verdict", END)
    return Protocol("feedback", seats, g, start="draft", terms=Terms(rounds))
