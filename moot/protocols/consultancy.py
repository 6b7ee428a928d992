"""Consultancy (Michael et al. 2023; Khan et al. 2024): one consultant argues for one answer
and the judge questions it; the baseline debate is measured against.

    [choose] -> speech --(rounds_left)--> question -> speech
                speech --(rounds_done)--> verdict -> end

The consultant argues the correct answer in half the episodes and the incorrect one in the
other half (balanced across answer positions too), or, with `open`, picks its answer itself
(open consultancy). The judge is blind to the source.
"""

from __future__ import annotations

import networkx as nx

from moot.protocols.graph import END, Phase, Protocol, SeatSpec, Terms


def build(rounds: int, *, open_sides: bool = False) -> Protocol:
    seats = (
        SeatSpec("consultant", "consultant", side="open" if open_sides else "assigned"),
        SeatSpec("judge", "judge", sees_source=False),
    )
    g = nx.DiGraph()
    g.add_node("speech", phase=Phase("speech", "speech", ("consultant",)))
    g.add_node("question", phase=Phase("question", "question", ("judge",)))
    g.add_node("verdict", phase=Phase("verdict", "verdict", ("judge",)))
    g.add_node(END)
    start = "speech"
    if open_sides:
        g.add_node("choose", phase=Phase("choose", "choose", ("consultant",)))
        g.add_edge("choose", "speech")
        start = "choose"
    g.add_edge("speech", "question", when="rounds_left")
    g.add_edge("question", "speech")
    g.add_edge("speech", "verdict", when="rounds_done")
    g.add_edge("verdict", END)
    return Protocol("consultancy", seats, g, start=start, terms=Terms(rounds))
