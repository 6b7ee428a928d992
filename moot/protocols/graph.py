"""A protocol is a graph: nodes are phases, edges are transitions with named conditions.

Declared with networkx (readable, checkable, printable); compiled once into plain tuples so
the engine's hot path is dictionary look-ups. Whose turn it is and when to stop are derived
from what has happened (how often each phase has run, the judge's latest belief), never
kept in a private loop: one engine walks every protocol.

Every parameter is typed and sits where it acts: a phase carries its kind's own (a speech
its best-of-N, a rate phase pairwise or not, an aggregate its rule, a referee phase its
referee), and the protocol's `Terms` hold what the whole walk shares (rounds, the judge's
stopping certainty, how quotes are checked).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Literal

from moot.models.forms import Form

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


# How an aggregate phase combines: its seats' latest verdicts by plurality ("majority") or
# by mean probability ("mean", a jury's), or the ratings of their submissions ("ranking").
AggregateRule = Literal["majority", "mean", "ranking"]
AGGREGATE_RULES: tuple[str, ...] = ("majority", "mean", "ranking")


@dataclass(frozen=True, slots=True)
class Ruling:
    """What a referee says after a step: a message (to everyone, or to one seat), and at the
    end the outcome."""

    text: str
    audience: frozenset[str] | None = None
    outcome: dict[str, Any] | None = None


class Referee(typing.Protocol):
    """Code that runs a game (`moot.protocols.game`): it reads a seat's last move, keeps the
    game's facts and says what happened."""

    def step(
        self, phase: str, seat: str, said: str | None, facts: dict[str, Any], game: dict[str, Any] | None
    ) -> list[Ruling]: ...


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    kind: PhaseKind
    seats: tuple[str, ...]
    simultaneous: bool = False
    # Who reads what is said in this phase (None: every seat)
    audience: frozenset[str] | None = None
    # The round the phase belongs to where the graph unrolls its rounds (a game's);
    # None: counted from the walk (the speeches so far)
    round: int | None = None
    # The form every reply in this phase takes (one of labels, a pattern, a JSON schema):
    # constrained on local models, checked and asked again elsewhere (`moot.models.forms`)
    form: Form | None = None
    # The form for one game instance (its numbers: a bargaining offer's range), over `form`
    form_for: Callable[[dict[str, Any] | None], Form] | None = None
    # -- each kind's own parameters (`PARAMETERS`; `Protocol.problems` checks the fit) ----
    best_of: int = 1  # speech: N drafts and the selector seat's pick
    rubric: str = ""  # review: what the reviewer checks
    submissions: str | None = None  # rate: the phase whose latest messages are rated
    pairwise: bool = False  # rate: every ordered pair of submissions, not each one
    rule: AggregateRule = "majority"  # aggregate: how the seats' verdicts or ratings combine
    referee: Referee | None = None  # referee: the code that checks moves and settles


# Which kind carries which parameter: a phase of another kind leaves it at its default.
PARAMETERS: dict[str, tuple[str, ...]] = {
    "best_of": ("speech",),
    "rubric": ("review",),
    "submissions": ("rate",),
    "pairwise": ("rate",),
    "rule": ("aggregate",),
    "referee": ("referee",),
}
# The kinds whose replies a form can shape: free replies, and a rating (its digit or letter
# is read from the token probabilities where the model gives them, from the text where not)
FORMED: tuple[str, ...] = ("speech", "question", "review", "rate")
_UNSET: dict[str, Any] = {f.name: f.default for f in fields(Phase) if f.name in PARAMETERS}


@dataclass(frozen=True, slots=True)
class Terms:
    """What the whole walk shares: the rounds its conditions count to, the judge's certainty
    that ends it early (adaptive debate), and how quotes in speeches are checked."""

    rounds: int = 1
    stop_threshold: float | None = None
    quotes: bool = False  # verify <quote> tags against the source (a scenario's default: on)
    quote_fuzzy: float | None = None


@dataclass(slots=True)
class PhaseState:
    """What conditions may look at."""

    visits: dict[str, int]
    terms: Terms
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
    threshold = args.get("threshold", st.terms.stop_threshold)
    return st.belief is not None and threshold is not None and max(st.belief) >= threshold


def _agreed(phase: str, st: PhaseState) -> bool:
    """Every seat of the latest verdict phase named the same answer (consensus)."""
    choices = set(st.choices.values())
    return len(choices) == 1 and None not in choices


# The named conditions edges may use, in code and in scenario files: a closed, documented
# set rather than arbitrary code. `of` names the phase whose visits count as rounds.
CONDITIONS: dict[str, Condition] = {
    "always": lambda phase, st, args: True,
    "rounds_left": lambda phase, st, args: _rounds_of(phase, st, args) < st.terms.rounds,
    "rounds_done": lambda phase, st, args: _rounds_of(phase, st, args) >= st.terms.rounds,
    "confident": _confident,
    "unsure": lambda phase, st, args: not _confident(phase, st, args),
    "unsure_rounds_left": lambda phase, st, args: (
        not _confident(phase, st, args) and _rounds_of(phase, st, args) < st.terms.rounds
    ),
    "agreed": lambda phase, st, args: _agreed(phase, st),
    "disagree_rounds_left": lambda phase, st, args: (
        not _agreed(phase, st) and _rounds_of(phase, st, args) < st.terms.rounds
    ),
    "approved": lambda phase, st, args: st.approved,
    "offer_made": lambda phase, st, args: st.facts.get("offer") is not None,
    "accepted": lambda phase, st, args: bool(st.facts.get("accepted")),
    "revise_rounds_left": lambda phase, st, args: (
        not st.approved and _rounds_of(phase, st, args) < st.terms.rounds
    ),
}


@dataclass(slots=True)
class Protocol:
    name: str
    seats: tuple[SeatSpec, ...]
    graph: nx.DiGraph
    start: str
    terms: Terms = field(default_factory=Terms)
    description: str = ""

    @property
    def phases(self) -> dict[str, Phase]:
        """The declared phases by name, in the graph's order."""
        return {n: d["phase"] for n, d in self.graph.nodes(data=True) if n != END and "phase" in d}

    def with_phases(self, change: Callable[[Phase], Phase]) -> Protocol:
        """A copy whose every phase is `change(phase)` (the graph copied, this one intact)."""
        g = self.graph.copy()
        for node, phase in self.phases.items():
            g.nodes[node]["phase"] = change(phase)
        return replace(self, graph=g)

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
        return CompiledProtocol(self.name, self.seats, phases, edges, self.start, self.terms)

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
            out += _misfits(node, phase)
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


def _misfits(node: str, phase: Phase) -> list[str]:
    """A parameter on a phase of a kind it does not belong to, or a kind missing its own."""
    out = []
    for param, kinds in PARAMETERS.items():
        if phase.kind not in kinds and getattr(phase, param) != _UNSET[param]:
            out.append(f"phase {node!r}: {param} is a parameter of a {' or '.join(kinds)} phase, "
                       f"not of a {phase.kind}")  # fmt: skip
    if phase.best_of < 1:
        out.append(f"phase {node!r}: best_of must be at least 1")
    if phase.rule not in AGGREGATE_RULES:
        out.append(f"phase {node!r}: unknown rule {phase.rule!r} (one of {', '.join(AGGREGATE_RULES)})")
    if phase.form_for is not None and phase.form is None:
        out.append(f"phase {node!r}: form_for refines a form: declare the form too (shown by moot graph)")
    if phase.form is not None:
        if phase.kind not in FORMED:
            out.append(f"phase {node!r}: a {phase.kind} phase has no reply a form could shape "
                       f"(forms go on {', '.join(FORMED)} phases)")  # fmt: skip
        out += [f"phase {node!r}: form: {p}" for p in phase.form.problems()]
    if phase.kind == "referee" and phase.referee is None:
        out.append(f"phase {node!r}: a referee phase needs its referee")
    return out


@dataclass(slots=True)
class CompiledProtocol:
    name: str
    seats: tuple[SeatSpec, ...]
    phases: dict[str, Phase]
    edges: dict[str, tuple[tuple[Condition, dict[str, Any], str], ...]]
    start: str
    terms: Terms

    def next_phase(self, current: str, state: PhaseState) -> str:
        for condition, args, target in self.edges[current]:
            if condition(current, state, args):
                return target
        raise RuntimeError(f"protocol {self.name}: no transition out of {current!r} holds")
