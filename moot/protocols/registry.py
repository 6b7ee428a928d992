"""Protocols by name, and custom ones declared in a scenario.

Seat names of the built-in protocols are static here so that validating a scenario never
imports networkx.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moot.protocols.graph import Phase, Protocol
    from moot.scenario.model import ProtocolConfig, Scenario

# protocol -> role -> seat ids
SEATS: dict[str, dict[str, tuple[str, ...]]] = {
    "debate": {"debater": ("debater_a", "debater_b"), "judge": ("judge",)},
    "consultancy": {"consultant": ("consultant",), "judge": ("judge",)},
    "direct_qa": {"judge": ("judge",)},
    "feedback": {"generator": ("generator",), "reviewer": ("reviewer",), "judge": ("judge",)},
    "chain": {"generator": ("generator",), "verifier": ("verifier",), "refiner": ("refiner",)},
    "bargaining": {"player": ("alice", "bob")},
    "negotiation": {"player": ("seller", "buyer")},
    "courtroom": {
        "lawyer": ("plaintiff_lawyer", "defence_lawyer"), "witness": ("witness",),
        "judge": ("judge",),
    },
}

DESCRIPTIONS = {
    "debate": "two debaters argue opposite answers before a judge (assigned or open sides, "
    "simultaneous or sequential, judge questions, adaptive stop)",
    "consultancy": "one consultant argues one answer (correct half the time, or its own "
    "choice) and the judge questions it",
    "direct_qa": "the judge answers alone, with or without the passage (the baseline)",
    "multi_agent": "N agents answer and revise over rounds seeing each other's answers; "
    "majority vote or a judge decides",
    "feedback": "a generator drafts, a reviewer critiques and approves or asks for a "
    "revision; a judge rules on the final draft",
    "courtroom": "plaintiff's and defence lawyers argue a case file before a judge who sees "
    "only what is said in court; a witness is examined by each side",
    "peer_review": "authors each defend an answer; reviewers rate every submission "
    "(pointwise) or every pair in both orders (pairwise); the ranking's top answer wins",
    "chain": "a generator solves a task with a checkable answer, a verifier checks it, a "
    "refiner writes the final solution; the engine scores its number (MALT)",
    "bargaining": "Alice and Bob divide a sum by alternating offers, their shares discounted "
    "each round; a referee checks moves and settles (GLEE)",
    "negotiation": "a seller and a buyer, each told only their own value, haggle over a price "
    "by alternating offers; a referee settles (GLEE)",
    "custom": "your own graph of phases and conditioned edges, declared in the scenario",
}


def roles(config: ProtocolConfig) -> dict[str, tuple[str, ...]]:
    found = _roles(config)
    if config.jury is not None and "judge" in found:  # the judge's seat is the panel's
        from moot.protocols.jury import juror_ids

        found = found | {"judge": juror_ids(config.jury.size)}
    # best-of-N adds a seat that picks among a speaker's drafts
    return found | {"selector": ("selector",)} if config.best_of > 1 else found


def _roles(config: ProtocolConfig) -> dict[str, tuple[str, ...]]:
    if config.name == "multi_agent":
        from moot.protocols.multi_agent import agent_ids

        found = {"agent": agent_ids(config.agents)}
        return found | {"judge": ("judge",)} if config.final == "judge" else found
    if config.name == "peer_review":
        from moot.protocols.peer_review import author_ids, reviewer_ids

        return {"author": author_ids(config.authors), "reviewer": reviewer_ids(config.reviewers)}
    if config.name == "custom":
        out: dict[str, list[str]] = {}
        for seat_id, seat in (config.seats or {}).items():
            out.setdefault(seat.role, []).append(seat_id)
        return {role: tuple(ids) for role, ids in out.items()}
    return SEATS[config.name]


def seat_names(config: ProtocolConfig) -> set[str]:
    by_role = roles(config)
    return set(by_role) | {seat for seats in by_role.values() for seat in seats}


def build_protocol(config: ProtocolConfig) -> Protocol:
    """The graph a protocol config describes (seats with their default visibility): the
    protocol's own, a jury in its judge's seat, best-of-N on its speeches, its quote checks."""
    protocol = _build_protocol(config)
    if config.jury is not None:
        from moot.protocols import jury

        if not any(s.id == "judge" for s in protocol.seats):
            raise ValueError(f"jury: the {config.name} protocol has no judge to replace")
        protocol = jury.apply(protocol, config.jury)
    if config.best_of > 1:  # every speech: N drafts, the selector's pick (`build` adds its seat)
        n = config.best_of
        protocol = protocol.with_phases(lambda p: replace(p, best_of=n) if p.kind == "speech" else p)
    terms = replace(protocol.terms, quotes=config.quotes, quote_fuzzy=config.quote_fuzzy)
    return replace(protocol, terms=terms)


def _build_protocol(config: ProtocolConfig) -> Protocol:
    if config.name == "debate":
        from moot.protocols import debate

        return debate.build(
            config.rounds,
            config.turns == "simultaneous",
            open_sides=config.open,
            judge_questions=config.judge_questions,
            stop_threshold=config.stop_threshold,
        )
    if config.name == "consultancy":
        from moot.protocols import consultancy

        return consultancy.build(config.rounds, open_sides=config.open)
    if config.name == "direct_qa":
        from moot.protocols import direct_qa

        return direct_qa.build(passage=config.passage)
    if config.name == "multi_agent":
        from moot.protocols import multi_agent

        return multi_agent.build(
            config.agents, config.rounds, final=config.final, until_agreed=config.until_agreed
        )
    if config.name == "feedback":
        from moot.protocols import feedback

        return feedback.build(config.rounds, rubric=config.rubric)
    if config.name in ("bargaining", "negotiation"):
        from moot.protocols import game

        return game.build(config.name, config.rounds)
    if config.name == "chain":
        from moot.protocols import chain

        return chain.build(config.rounds)
    if config.name == "courtroom":
        from moot.protocols import courtroom

        return courtroom.build(witness=config.witness)
    if config.name == "peer_review":
        from moot.protocols import peer_review

        return peer_review.build(
            config.authors,
            config.reviewers,
            pairwise=config.pairwise,
            qualification=config.qualification,
        )
    from moot.protocols import custom

    return custom.build(config)


def build(scenario: Scenario) -> Protocol:
    """The scenario's protocol, with its seats' `sees_source` overrides applied."""
    protocol = build_protocol(scenario.protocol)
    seats = []
    for spec in protocol.seats:
        sees = scenario.seat(spec.id, spec.role).sees_source
        seats.append(spec if sees is None else replace(spec, sees_source=sees))
    if scenario.protocol.best_of > 1:
        from moot.protocols.graph import SeatSpec

        seats.append(SeatSpec("selector", "selector", sees_source=False))
    protocol = replace(protocol, seats=tuple(seats))
    return _seat_forms(protocol, scenario)


def _seat_forms(protocol: Protocol, scenario: Scenario) -> Protocol:
    """A seat's declared form on the phases it replies in that declare none (a phase's own
    form wins; seats of one phase with different forms are the scenario's problem)."""
    from moot.models.forms import from_record
    from moot.protocols.graph import FORMED

    declared = {}
    for spec in protocol.seats:
        raw = scenario.seat(spec.id, spec.role).form
        if raw is not None:
            declared[spec.id] = from_record(raw)
    if not declared:
        return protocol

    def change(phase: Phase) -> Phase:
        if phase.form is not None or phase.kind not in FORMED:
            return phase
        found = {declared.get(s) for s in phase.seats}
        if len(found) > 1:
            raise ValueError(f"phase {phase.name!r}: its seats declare different forms; declare "
                             "the form on the phase (or give its seats the same one)")  # fmt: skip
        (form,) = found
        return phase if form is None else replace(phase, form=form)

    return protocol.with_phases(change)
