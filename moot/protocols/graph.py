"""A protocol is a graph: nodes are phases, edges are transitions with named conditions.

Declared with networkx (readable, checkable, printable); compiled once into plain tuples so
the engine's hot path is dictionary look-ups. Whose turn it is and when to stop are derived
from what has happened (how often each phase has run), never kept in a private loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moot.agents.base import TurnKind

if TYPE_CHECKING:
    import networkx as nx

END = "end"


@dataclass(frozen=True, slots=True)
class SeatSpec:
    id: str
    role: str
    side: int | None = None  # index of the answer this seat defends, if assigned
    sees_source: bool = True


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    kind: TurnKind
    seats: tuple[str, ...]
    simultaneous: bool = False
    # Who reads what is said in this phase (None: every seat)
    audience: frozenset[str] | None = None


@dataclass(slots=True)
class PhaseState:
    """What conditions may look at: how often each phase has run, and the settings."""

    visits: dict[str, int]
    settings: dict[str, Any]


Condition = Callable[[str, PhaseState], bool]

# The named conditions a graph's edges may use. Scenario files will name these too, so they
# are a closed, documented set rather than arbitrary code.
CONDITIONS: dict[str, Condition] = {
    "always": lambda phase, st: True,
    "rounds_left": lambda phase, st: st.visits.get(phase, 0) < st.settings["rounds"],
    "rounds_done": lambda phase, st: st.visits.get(phase, 0) >= st.settings["rounds"],
}


@dataclass(slots=True)
class Protocol:
    name: str
    seats: tuple[SeatSpec, ...]
    graph: nx.DiGraph
    start: str
    settings: dict[str, Any] = field(default_factory=dict)

    def compile(self) -> CompiledProtocol:
        phases: dict[str, Phase] = {}
        edges: dict[str, tuple[tuple[Condition, str], ...]] = {}
        for node, data in self.graph.nodes(data=True):
            if node == END:
                continue
            phases[node] = data["phase"]
            out = []
            for _, target, edata in self.graph.out_edges(node, data=True):
                when = edata.get("when", "always")
                out.append((CONDITIONS[when], target))
            edges[node] = tuple(out)
        return CompiledProtocol(self.name, self.seats, phases, edges, self.start, self.settings)


@dataclass(slots=True)
class CompiledProtocol:
    name: str
    seats: tuple[SeatSpec, ...]
    phases: dict[str, Phase]
    edges: dict[str, tuple[tuple[Condition, str], ...]]
    start: str
    settings: dict[str, Any]

    def next_phase(self, current: str, state: PhaseState) -> str:
        for condition, target in self.edges[current]:
            if condition(current, state):
                return target
        raise RuntimeError(f"protocol {self.name}: no transition out of {current!r} holds")
