"""Protocols by name. Seat names are static here so that validation never imports networkx."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moot.protocols.graph import Protocol
    from moot.scenario.model import Scenario

# protocol -> role -> seat ids
SEATS: dict[str, dict[str, tuple[str, ...]]] = {
    "debate": {"debater": ("debater_a", "debater_b"), "judge": ("judge",)},
}


def seat_names(protocol: str) -> set[str]:
    roles = SEATS[protocol]
    return set(roles) | {seat for seats in roles.values() for seat in seats}


def build(scenario: Scenario) -> Protocol:
    """The scenario's protocol, with its seats' `sees_source` overrides applied."""
    p = scenario.protocol
    if p.name == "debate":
        from moot.protocols import debate

        protocol = debate.build(rounds=p.rounds, simultaneous=p.turns == "simultaneous")
    else:
        raise KeyError(p.name)
    seats = []
    for spec in protocol.seats:
        sees = scenario.seat(spec.id, spec.role).sees_source
        seats.append(spec if sees is None else replace(spec, sees_source=sees))
    protocol.seats = tuple(seats)
    return protocol
