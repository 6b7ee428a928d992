"""Direct question answering: the judge alone, the control every oversight study needs.

    verdict -> end

With `passage: false` the judge answers blind (what it knows unaided); with `passage: true`
it reads the source (the ceiling a debate should approach).
"""

from __future__ import annotations

import networkx as nx

from moot.protocols.graph import END, Phase, Protocol, SeatSpec


def build(passage: bool) -> Protocol:
    g = nx.DiGraph()
    g.add_node("verdict", phase=Phase("verdict", "verdict", ("judge",)))
    g.add_node(END)
    g.add_edge("verdict", END)
    seats = (SeatSpec("judge", "judge", sees_source=passage),)
    return Protocol("direct_qa", seats, g, start="verdict")
