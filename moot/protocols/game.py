"""Two-player language games (GLEE, Shapira et al. 2024: bargaining and negotiation families).

Players alternate moves in free text with one structured line; a referee (code, not a
model) briefs each player privately, checks every move, tells both what happened and whose
turn it is, and settles the game:

    brief -> offer_1 -> check_offer_1 -> respond_1 -> check_respond_1 --(accepted)--> settle
                                                                     --> offer_2 -> ... -> settle -> end

- `bargaining`: Alice and Bob divide `money`; in odd rounds Alice proposes, in even rounds
  Bob. A proposal is `OFFER: N`, the amount offered to the other player; the other answers
  `ACCEPT` or `REJECT`. A deal in round t pays each player their share times their
  `discount` to the power t - 1 (Rubinstein's alternating offers); no deal by `horizon`
  pays nothing.
- `negotiation`: a seller whose item is worth `seller_value` to them and a buyer to whom it
  is worth `buyer_value`, each told only their own value; the seller proposes in odd
  rounds. `OFFER: P` is a price; a deal at P gains the seller P - seller_value and the buyer
  buyer_value - P.

An invalid move (no readable offer, an amount out of range, neither ACCEPT nor REJECT) is
named by the referee and counts as no offer or a rejection. The outcome (deal, round,
terms, each player's gain, efficiency: the gains' sum over what was there to gain, and
fairness: the smaller gain over the larger) is the episode's outcome; each player's gain
is also a `ratings` row (rater `referee`, target the player, score the gain), so it is
queried like any other score. A game instance's numbers come from the dataset row's `game` object over the
protocol's defaults, so one file can hold many games.
"""

from __future__ import annotations

import re
from typing import Any

import networkx as nx

from moot.models.forms import Form, up_to
from moot.protocols.graph import END, Phase, PhaseKind, Protocol, Ruling, SeatSpec, Terms

DEFAULTS: dict[str, dict[str, Any]] = {
    "bargaining": {"money": 100.0, "horizon": 4, "discount": [0.9, 0.9]},
    "negotiation": {"seller_value": 40.0, "buyer_value": 80.0, "horizon": 4},
}
PLAYERS = {"bargaining": ("alice", "bob"), "negotiation": ("seller", "buyer")}

_OFFER = re.compile(r"OFFER\s*[:=]\s*\$?\s*(-?\d+(?:\.\d+)?)", re.I)
_ANSWER = re.compile(r"\b(ACCEPT|REJECT)\b", re.I)

# The moves' forms: the structured line first (so a small model constrained to the form makes
# its move before anything else), then, optionally, its reasons on the lines after
REASONS = r"(\n[^\n]*)*"
OFFER_FORM = Form.of_pattern(r"OFFER: [0-9]{1,6}(\.[0-9]{1,2})?" + REASONS)
ANSWER_FORM = Form.of_pattern(r"(ACCEPT|REJECT)" + REASONS)


def offer_form(family: str) -> Any:
    """An offer's form for one game instance: in bargaining, whole dollars from 0 to the sum
    (so a constrained model's offer is always in range); a price has no upper bound."""

    def form(game: dict[str, Any] | None) -> Form:
        if family != "bargaining":
            return OFFER_FORM
        money = (DEFAULTS[family] | (game or {}))["money"]
        return Form.of_pattern("OFFER: " + up_to(int(money)) + REASONS)

    return form


def seat_ids(family: str) -> tuple[str, str]:
    return PLAYERS[family]


def build(family: str, horizon: int) -> Protocol:
    first, second = PLAYERS[family]
    seats = (SeatSpec(first, "player"), SeatSpec(second, "player"))
    g = nx.DiGraph()
    referee = Referee(family, horizon)

    def add(name: str, kind: PhaseKind, seat: str, r: int, form: Form | None = None) -> None:
        # the rounds are unrolled: each phase knows its own, and a referee phase its referee
        g.add_node(name, phase=Phase(name, kind, (seat,), round=r, form=form,
                                     form_for=offer_form(family) if form is OFFER_FORM else None,
                                     referee=referee if kind == "referee" else None))  # fmt: skip

    add("brief", "referee", first, 0)
    previous = "brief"
    for r in range(1, horizon + 1):
        proposer, responder = (first, second) if r % 2 else (second, first)
        add(f"offer_{r}", "speech", proposer, r, OFFER_FORM)
        add(f"check_offer_{r}", "referee", proposer, r)
        add(f"respond_{r}", "speech", responder, r, ANSWER_FORM)
        add(f"check_respond_{r}", "referee", responder, r)
        g.add_edge(previous, f"offer_{r}")
        g.add_edge(f"offer_{r}", f"check_offer_{r}")
        # no valid offer on the table: nothing to answer, the next round begins
        g.add_edge(f"check_offer_{r}", f"respond_{r}", when="offer_made")
        g.add_edge(f"check_offer_{r}", f"offer_{r + 1}" if r < horizon else "settle")
        g.add_edge(f"respond_{r}", f"check_respond_{r}")
        g.add_edge(f"check_respond_{r}", "settle", when="accepted")
        previous = f"check_respond_{r}"
    add("settle", "referee", first, horizon)
    g.add_edge(previous, "settle", when="always")  # after the last round, accepted or not
    g.add_node(END)
    g.add_edge("settle", END)
    return Protocol(family, seats, g, start="brief", terms=Terms(horizon))


class Referee:
    """The game's referee (a `moot.protocols.graph.Referee`): `step` is called at every
    referee phase."""

    def __init__(self, family: str, horizon: int) -> None:
        self.family = family
        self.horizon = horizon
        self.players = PLAYERS[family]

    def params(self, game: dict[str, Any] | None) -> dict[str, Any]:
        return DEFAULTS[self.family] | {"horizon": self.horizon} | (game or {})

    def step(self, phase: str, seat: str, said: str | None, facts: dict[str, Any], game: dict[str, Any] | None) -> list[Ruling]:
        p = self.params(game)
        if phase == "brief":
            return self._brief(p)
        if phase == "settle":
            return [self._settle(p, facts)]
        r = int(phase.rsplit("_", 1)[1])
        other = self.players[1] if seat == self.players[0] else self.players[0]
        if phase.startswith("check_offer"):
            return [self._offer(p, facts, seat, other, r, said or "")]
        return [self._response(p, facts, seat, other, r, said or "")]

    # -- the steps ------------------------------------------------------------------------
    def _brief(self, p: dict[str, Any]) -> list[Ruling]:
        a, b = self.players
        if self.family == "bargaining":
            d = p["discount"]
            rules = (
                f"Alice and Bob divide ${p['money']:g}. They take turns to propose; Alice first. "
                f"A proposal is a line 'OFFER: N', the dollars offered to the other player; "
                f"the other answers ACCEPT or REJECT. After each rejected round the money is worth "
                f"less: Alice's share by a factor {d[0]:g}, Bob's by {d[1]:g}, each round. "
                f"With no deal after {p['horizon']} rounds, both get nothing."
            )
            return [Ruling(rules), Ruling(f"{a.title()}, make your offer.")]
        rules = (
            f"A seller and a buyer negotiate the price of an item. The seller proposes first. "
            f"A proposal is a line 'OFFER: P', the price; the other answers ACCEPT or REJECT. "
            f"With no deal after {p['horizon']} rounds, there is no sale."
        )
        return [
            Ruling(rules),
            Ruling(f"Private to the seller: the item is worth ${p['seller_value']:g} to you.", frozenset({a})),
            Ruling(f"Private to the buyer: the item is worth ${p['buyer_value']:g} to you.", frozenset({b})),
            Ruling("Seller, make your offer."),
        ]

    def _offer(self, p: dict[str, Any], facts: dict[str, Any], seat: str, other: str, r: int, said: str) -> Ruling:
        found = _OFFER.findall(said)
        facts["offer"] = None
        if not found:
            facts.setdefault("invalid", []).append({"round": r, "seat": seat, "move": "offer"})
            return Ruling(f"Round {r}: {seat} made no valid offer (no 'OFFER: N' line); no offer this round.")
        amount = float(found[-1])
        top = p["money"] if self.family == "bargaining" else float("inf")
        if not 0 <= amount <= top:
            facts.setdefault("invalid", []).append({"round": r, "seat": seat, "move": "offer"})
            return Ruling(f"Round {r}: {seat}'s offer of {amount:g} is out of range (0 to {top:g}); no offer this round.")
        facts["offer"] = {"round": r, "by": seat, "amount": amount}
        what = f"${amount:g} to {other}" if self.family == "bargaining" else f"a price of ${amount:g}"
        return Ruling(f"Round {r}: {seat} offers {what}. {other.title()}, ACCEPT or REJECT.")

    def _response(self, p: dict[str, Any], facts: dict[str, Any], seat: str, other: str, r: int, said: str) -> Ruling:
        found = _ANSWER.findall(said)
        if not found:
            facts.setdefault("invalid", []).append({"round": r, "seat": seat, "move": "response"})
        if found and found[-1].upper() == "ACCEPT":
            facts["accepted"] = True
            return Ruling(f"Round {r}: {seat} accepts.")
        note = "" if found else " (no ACCEPT or REJECT: counted as a rejection)"
        if r >= p["horizon"]:
            return Ruling(f"Round {r}: {seat} rejects{note}. No rounds are left.")
        return Ruling(f"Round {r}: {seat} rejects{note}. {seat.title()}, make your offer.")

    def _settle(self, p: dict[str, Any], facts: dict[str, Any]) -> Ruling:
        a, b = self.players
        deal = bool(facts.get("accepted")) and facts.get("offer") is not None
        gains = {a: 0.0, b: 0.0}
        terms: dict[str, Any] = {}
        if deal:
            offer = facts["offer"]
            r, by, x = offer["round"], offer["by"], offer["amount"]
            if self.family == "bargaining":
                responder = b if by == a else a
                share = {by: p["money"] - x, responder: x}
                d = dict(zip(self.players, p["discount"], strict=True))
                gains = {s: share[s] * d[s] ** (r - 1) for s in self.players}
                terms = {"split": share}
            else:
                gains = {a: x - p["seller_value"], b: p["buyer_value"] - x}
                terms = {"price": x}
        available = p["money"] if self.family == "bargaining" else max(0.0, p["buyer_value"] - p["seller_value"])
        total = gains[a] + gains[b]
        lo, hi = sorted((gains[a], gains[b]))
        outcome = {
            "game": self.family,
            "deal": deal,
            "round": facts["offer"]["round"] if deal else None,
            **terms,
            "gains": gains,
            "efficiency": total / available if available else None,
            "fairness": (lo / hi if hi > 0 and lo >= 0 else 0.0) if deal else None,
            "invalid_moves": len(facts.get("invalid", [])),
        }
        text = (
            f"Deal in round {outcome['round']}: " + ", ".join(f"{s} gains {g:.2f}" for s, g in gains.items())
            if deal
            else "No deal: nobody gains anything."
        )
        return Ruling(text, None, outcome)
