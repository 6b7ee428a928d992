"""Two-player language games (GLEE's bargaining and negotiation): alternating offers, a
referee that checks every move and settles, private values that only their owner reads."""

import json
import sqlite3

import pytest

from moot.scenario.load import parse
from moot.workflows.run import run_scenario

GAME = """
name: game
protocol: {{name: {family}, rounds: {horizon}}}
seats:
  {a}: {{model: scripted/{a}}}
  {b}: {{model: scripted/{b}}}
models:  # the moves as written: forms off, not asked again (the referee's own checks)
  scripted/{a}: {{replies: [{a_says}], forms: false, form_retries: 0}}
  scripted/{b}: {{replies: [{b_says}], forms: false, form_retries: 0}}
dataset: {{source: {source}, limit: {limit}}}
"""


def play(tmp_path, family, a_says, b_says, horizon=3, limit=1, source=None):
    a, b = ("alice", "bob") if family == "bargaining" else ("seller", "buyer")
    text = GAME.format(family=family, horizon=horizon, a=a, b=b, a_says=json.dumps(a_says),
                       b_says=json.dumps(b_says), source=source or f"builtin:{family}", limit=limit)  # fmt: skip
    db = tmp_path / "g.db"
    run_scenario(parse(text), out=db)
    return sqlite3.connect(db)


def outcome(conn, episode=0):
    return json.loads(conn.execute("SELECT outcome FROM episodes WHERE id = ?", (episode,)).fetchone()[0])


def test_players_alternate_and_the_referee_answers_every_move(tmp_path):
    conn = play(tmp_path, "bargaining", "OFFER: 30", "REJECT. OFFER: 50")
    moves = conn.execute("SELECT round, seat, phase FROM messages WHERE episode = 0 AND seat != 'referee' ORDER BY seq").fetchall()
    assert moves == [
        (1, "alice", "offer_1"), (1, "bob", "respond_1"),
        (2, "bob", "offer_2"), (2, "alice", "respond_2"),
        (3, "alice", "offer_3"), (3, "bob", "respond_3"),
    ]  # fmt: skip
    # every move is followed by the referee's word on it
    seats = [s for (s,) in conn.execute("SELECT seat FROM messages WHERE episode = 0 ORDER BY seq")]
    assert all(seats[i + 1] == "referee" for i, s in enumerate(seats) if s != "referee")
    o = outcome(conn)
    assert o["deal"] is False and o["gains"] == {"alice": 0.0, "bob": 0.0} and o["efficiency"] == 0.0
    assert o["invalid_moves"] == 1  # alice's "OFFER: 30" answers bob's offer: neither ACCEPT nor REJECT


def test_a_deal_pays_shares_discounted_by_the_round(tmp_path):
    # game 2 of builtin:bargaining: $100, Alice's discount 0.8, Bob's 0.95
    conn = play(tmp_path, "bargaining", "REJECT", "OFFER: 35\nACCEPT", limit=2)
    o = outcome(conn, 1)
    # round 1: Alice's offer is unreadable ("REJECT"); Bob's "ACCEPT" has nothing to accept
    # and the round ends; round 2: Bob offers 35, Alice rejects; round 3: nothing again
    assert o["deal"] is False
    conn = play(tmp_path / "x", "bargaining", "ACCEPT. OFFER: 70", "REJECT\nOFFER: 35", limit=2)
    o = outcome(conn, 1)
    assert o["deal"] is True and o["round"] == 2  # Bob offered 35 in round 2; Alice accepted
    assert o["split"] == {"bob": 65.0, "alice": 35.0}
    assert o["gains"] == pytest.approx({"alice": 35 * 0.8, "bob": 65 * 0.95})
    assert o["efficiency"] == pytest.approx((35 * 0.8 + 65 * 0.95) / 100)
    assert o["fairness"] == pytest.approx(35 * 0.8 / (65 * 0.95))
    gains = dict(conn.execute("SELECT target, score FROM ratings WHERE episode = 1 AND rater = 'referee'"))
    assert gains == pytest.approx(o["gains"])


def test_an_offer_out_of_range_is_no_offer(tmp_path):
    conn = play(tmp_path, "bargaining", "OFFER: 150", "ACCEPT", horizon=1)
    said = [c for (c,) in conn.execute("SELECT content FROM messages WHERE seat = 'referee' AND episode = 0 ORDER BY seq")]
    assert any("out of range" in s for s in said)
    assert outcome(conn)["deal"] is False
    # with no offer on the table, bob is not asked to respond
    assert conn.execute("SELECT count(*) FROM messages WHERE seat = 'bob'").fetchone() == (0,)


def test_each_negotiator_reads_only_their_own_value(tmp_path):
    conn = play(tmp_path, "negotiation", "OFFER: 60", "ACCEPT")
    o = outcome(conn)
    # game 1: the item is worth 40 to the seller and 80 to the buyer; sold at 60
    assert o["deal"] is True and o["price"] == 60.0
    assert o["gains"] == {"seller": 20.0, "buyer": 20.0} and o["fairness"] == 1.0
    assert o["efficiency"] == 1.0  # the whole surplus (80 - 40) was shared
    for seat, other_value in (("seller", "$80"), ("buyer", "$40")):
        for (prompt,) in conn.execute(
            "SELECT coalesce(messages, '') || prompt FROM model_calls WHERE episode = 0 AND seat = ?", (seat,)):  # fmt: skip
            assert other_value not in prompt
    audiences = dict(conn.execute(
        "SELECT substr(content, 1, 22), audience FROM messages WHERE content LIKE 'Private to%'"))  # fmt: skip
    assert audiences == {"Private to the seller:": '["seller"]', "Private to the buyer: ": '["buyer"]'}
