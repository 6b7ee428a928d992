"""Two-sided debate with assigned answers (Irving et al. 2018; Michael et al. 2023).

    speeches --(rounds_left)--> speeches
    speeches --(rounds_done)--> verdict --> end

Debater A defends answer A and debater B answer B; the run alternates the order in which the
answers are shown, so each debater argues the correct answer equally often. The judge is
blind to the source by default.
"""

from __future__ import annotations

import networkx as nx

from moot.protocols.graph import END, Phase, Protocol, SeatSpec

def build(rounds: int, simultaneous: bool) -> Protocol:
    seats = (
        SeatSpec("debater_a", "debater", side=0),
        SeatSpec("debater_b", "debater", side=1),
        SeatSpec("judge", "judge", sees_source=False),
    )
    g = nx.DiGraph()
    g.add_node(
        "speeches",
        phase=Phase("speeches", "speech", ("debater_a", "debater_b"), simultaneous=simultaneous),
    )
    g.add_node("verdict", phase=Phase("verdict", "verdict", ("judge",)))
    g.add_node(END)
    g.add_edge("speeches", "speeches", when="rounds_left")
    g.add_edge("speeches", "verdict", when="rounds_done")
    g.add_edge("verdict", END)
    return Protocol("debate", seats, g, start="speeches", settings={"rounds": rounds})
