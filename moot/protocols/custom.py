"""A protocol declared in a scenario file: seats, phases, and edges with named conditions.

    protocol:
      name: custom
      rounds: 2
      seats:
        pro: {role: debater, side: 0}
        con: {role: debater, side: 1}
        judge: {role: judge, sees_source: false}
      phases:
        speeches: {kind: speech, seats: [pro, con], simultaneous: true}
        verdict: {kind: verdict, seats: [judge]}
      start: speeches
      edges:
        - {from: speeches, to: speeches, when: rounds_left}
        - {from: speeches, to: verdict, when: rounds_done}
        - {from: verdict, to: end}

Conditions: always, rounds_left, rounds_done, confident, unsure, unsure_rounds_left, agreed,
disagree_rounds_left, approved, revise_rounds_left (see moot.protocols.graph.CONDITIONS).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx

from moot.models.forms import from_record
from moot.protocols.graph import END, Phase, Protocol, SeatSpec, Terms

if TYPE_CHECKING:
    from moot.scenario.model import ProtocolConfig


def build(config: ProtocolConfig) -> Protocol:
    seats = tuple(
        SeatSpec(seat_id, s.role, side=s.side, sees_source=s.sees_source)
        for seat_id, s in (config.seats or {}).items()
    )
    g = nx.DiGraph()
    for name, p in (config.phases or {}).items():
        audience = frozenset(p.audience) if p.audience is not None else None
        form = from_record(p.form) if p.form is not None else None
        g.add_node(
            name,
            phase=Phase(name, p.kind, tuple(p.seats), simultaneous=p.simultaneous, audience=audience, form=form,
                        submissions=p.submissions, pairwise=p.pairwise),
        )
    g.add_node(END)
    for edge in config.edges or []:
        if g.has_edge(edge.from_, edge.to):  # a DiGraph keeps one edge per pair of phases
            raise ValueError(
                f"two edges from {edge.from_!r} to {edge.to!r}: one edge per pair; edges out "
                "of a phase are tried in order, so let a later one take the other case"
            )
        args = {k: v for k, v in (("of", edge.of), ("threshold", edge.threshold)) if v is not None}
        g.add_edge(edge.from_, edge.to, when=edge.when, **args)
    terms = Terms(config.rounds, stop_threshold=config.stop_threshold)
    return Protocol("custom", seats, g, start=config.start or "", terms=terms)
