"""A protocol is a graph: nodes are phases, edges are transitions with named conditions.

Declared with networkx (readable, checkable, printable); compiled once into plain tuples so
the engine's hot path is dictionary look-ups. Whose turn it is and when to stop are derived
from what has happened (how often each phase has run, the judge's latest belief), never
kept in a private loop: one engine walks every protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import networkx as nx

END = "end"

# What a phase asks of its seats:
#   speech    argue (debaters, consultants)
#   question  the judge asks the speakers something between rounds
#   verdict   the judge rules: a choice and a probability per answer (final or interim)
#   choose    each seat picks the answer it will defend (open debate / consultancy)
#   review    a reviewer critiques the latest draft and approves it or asks for a revision
#   qualify   reviewers answer check questions with known answers (weights for the ranking)
#   rate      reviewers score every submission (pointwise) or every ordered pair (pairwise)
#   aggregate no seat speaks: the engine combines its seats' latest verdicts (majority vote)
#             or the ratings of their submissions (a ranking)
#   score     no seat speaks: the engine checks its seat's last message against an open
#             task's target (the number it concluded), a verdict of "scorer"
#   referee   no seat speaks: the protocol's referee (code) briefs, checks its seat's last
#             move or settles a game, and says so to the players
PhaseKind = Literal[
    "speech", "question", "verdict", "choose", "review", "qualify", "rate", "aggregate", "score",
    "referee",
]
KINDS: tuple[str, ...] = (
    "speech", "question", "verdict", "choose", "review", "qualify", "rate", "aggregate", "score",
    "referee",
)  # fmt: skip

# A seat's side: a fixed answer index, "assigned" (per episode, balanced by the run),
# "open" (chosen by the seat in a choose phase) or None (no side: judges).
Side = int | Literal["assigned", "open"] | None


@dataclass(frozen=True, slots=True)
class SeatSpec:
    id: str
    role: str
    side: Side = None
    sees_source: bool = True


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    kind: PhaseKind
    seats: tuple[str, ...]
    simultaneous: bool = False
    # Who reads what is said in this phase (None: every seat)
    audience: frozenset[str] | None = None


@dataclass(slots=True)
class PhaseState:
    """What conditions may look at."""

    visits: dict[str, int]
    settings: dict[str, Any]
    belief: tuple[float, ...] | None = None  # the judge's latest probabilities
    approved: bool = False  # the reviewer's latest decision
    latest: dict[str, Any] = field(default_factory=dict)  # seat -> its latest Verdict
    ruling: Any = None  # the latest Verdict of all: the episode's outcome when it ends
    ratings: list[Any] = field(default_factory=list)  # peer review's Ratings so far
    qualification: dict[str, list[int]] = field(default_factory=dict)  # rater -> [right, asked]
    choices: dict[str, int | None] = field(default_factory=dict)  # the last verdict phase's
    facts: dict[str, Any] = field(default_factory=dict)  # a referee's record of the game
    ended: bool = False  # a judge asked to end now (a person deciding to stop a debate)


# An edge condition: (the phase just run, state, the edge's own parameters) -> take it?
Condition = Callable[[str, PhaseState, dict[str, Any]], bool]


def _rounds_of(phase: str, st: PhaseState, args: dict[str, Any]) -> int:
    return st.visits.get(args.get("of") or phase, 0)


def _confident(phase: str, st: PhaseState, args: dict[str, Any]) -> bool:
    if st.ended:  # the judge decided it has heard enough
        return True
    threshold = args.get("threshold", st.settings.get("stop_threshold"))
    return st.belief is not None and threshold is not None and max(st.belief) >= threshold


def _agreed(phase: str, st: PhaseState) -> bool:
    """Every seat of the latest verdict phase named the same answer (consensus)."""
    choices = set(st.choices.values())
    return len(choices) == 1 and None not in choices


# The named conditions edges may use, in code and in scenario files: a closed, documented
# set rather than arbitrary code. `of` names the phase whose visits count as rounds.
CONDITIONS: dict[str, Condition] = {
    "always": lambda phase, st, args: True,
    "rounds_left": lambda phase, st, args: _rounds_of(phase, st, args) < st.settings["rounds"],
    "rounds_done": lambda phase, st, args: _rounds_of(phase, st, args) >= st.settings["rounds"],
    "confident": _confident,
    "unsure": lambda phase, st, args: not _confident(phase, st, args),
    "unsure_rounds_left": lambda phase, st, args: (
        not _confident(phase, st, args) and _rounds_of(phase, st, args) < st.settings["rounds"]
    ),
    "agreed": lambda phase, st, args: _agreed(phase, st),
    "disagree_rounds_left": lambda phase, st, args: (
        not _agreed(phase, st) and _rounds_of(phase, st, args) < st.settings["rounds"]
    ),
    "approved": lambda phase, st, args: st.approved,
    "offer_made": lambda phase, st, args: st.facts.get("offer") is not None,
    "accepted": lambda phase, st, args: bool(st.facts.get("accepted")),
    "revise_rounds_left": lambda phase, st, args: (
        not st.approved and _rounds_of(phase, st, args) < st.settings["rounds"]
    ),
}


@dataclass(slots=True)
class Protocol:
    name: str
    seats: tuple[SeatSpec, ...]
    graph: nx.DiGraph
    start: str
    settings: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def compile(self) -> CompiledProtocol:
        phases: dict[str, Phase] = {}
        edges: dict[str, tuple[tuple[Condition, dict[str, Any], str], ...]] = {}
        for node, data in self.graph.nodes(data=True):
            if node == END:
                continue
            phases[node] = data["phase"]
            out = []
            for _, target, edata in self.graph.out_edges(node, data=True):
                args = {k: v for k, v in edata.items() if k != "when"}
                out.append((CONDITIONS[edata.get("when", "always")], args, target))
            edges[node] = tuple(out)
        return CompiledProtocol(self.name, self.seats, phases, edges, self.start, self.settings)

    def problems(self) -> list[str]:
        """What is wrong with the graph, in words a scenario author can act on."""
        import networkx as nx

        g = self.graph
        out = []
        seats = {s.id for s in self.seats}
        if self.start not in g:
            return [f"start phase {self.start!r} is not a phase"]
        if END not in g:
            return [f"no '{END}' node: the protocol could never finish"]
        for node, data in g.nodes(data=True):
            if node == END:
                continue
            phase = data.get("phase")
            if phase is None:
                out.append(f"phase {node!r} is an edge target but is not declared")
                continue
            for seat in phase.seats:
                if seat not in seats:
                    out.append(f"phase {node!r}: unknown seat {seat!r}")
            if phase.kind not in KINDS:
                out.append(f"phase {node!r}: unknown kind {phase.kind!r}")
            if g.out_degree(node) == 0:
                out.append(f"phase {node!r} has no way out")
        for a, b, data in g.edges(data=True):
            when = data.get("when", "always")
            if when not in CONDITIONS:
                out.append(f"edge {a} -> {b}: unknown condition {when!r}")
        reachable = nx.descendants(g, self.start) | {self.start}
        if END not in reachable:
            out.append(f"'{END}' cannot be reached from {self.start!r}")
        for node in g:
            if node not in reachable and node != END:
                out.append(f"phase {node!r} cannot be reached from {self.start!r}")
        for cycle in nx.simple_cycles(g):
            members = set(cycle)
            leaves = [
                data.get("when", "always")
                for a, b, data in g.edges(data=True)
                if a in members and b not in members
            ]
            loops = [
                data.get("when", "always")
                for a, b, data in g.edges(data=True)
                if a in members and b in members
            ]
            if all(w == "always" for w in loops) or not leaves:
                out.append(f"the cycle {' -> '.join(cycle)} has no exit condition")
        return out


@dataclass(slots=True)
class CompiledProtocol:
    name: str
    seats: tuple[SeatSpec, ...]
    phases: dict[str, Phase]
    edges: dict[str, tuple[tuple[Condition, dict[str, Any], str], ...]]
    start: str
    settings: dict[str, Any]

    def next_phase(self, current: str, state: PhaseState) -> str:
        for condition, args, target in self.edges[current]:
            if condition(current, state, args):
                return target
        raise RuntimeError(f"protocol {self.name}: no transition out of {current!r} holds")
