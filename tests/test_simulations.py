"""The two simulations shipped from the sources, on the scripted stand-in: a persuasion study
(argument styles as a sweep; the skeptic's belief before and after; the change per style in
`moot analyze`) and a counselling role-play (a client profile only the client reads; the
client's rating of the session)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from moot.agents.prompts import STYLES
from moot.analysis.report import analyze
from moot.scenario.datasets import load
from moot.scenario.load import parse
from moot.workflows.run import run_scenario

ROOT = Path(__file__).resolve().parents[1]


def shipped(name: str) -> str:
    """A shipped scenario with its embedded model's seats on the scripted stand-in."""
    text = (ROOT / "scenarios" / name).read_text()
    return text.replace("model: local/smollm2-135m", "model: scripted")


@pytest.fixture(scope="module")
def persuasion(tmp_path_factory):
    db = tmp_path_factory.mktemp("p") / "p.db"
    run_scenario(parse(shipped("persuasion.yaml")), out=db)
    return db


def test_each_style_is_a_condition_and_the_convincer_is_told_its_style(persuasion):
    conn = sqlite3.connect(persuasion)
    for style in ("facts", "credibility", "emotion"):
        systems = {s for (s,) in conn.execute(
            "SELECT DISTINCT c.system FROM model_calls c JOIN episodes e ON e.id = c.episode"
            " WHERE c.seat = 'convincer' AND e.cell = ?", (f"seats.convincer.prompts.style={style}",))}  # fmt: skip
        assert len(systems) == 1 and STYLES[style] in systems.pop()


def test_the_skeptic_states_its_belief_before_any_argument_and_after(persuasion):
    conn = sqlite3.connect(persuasion)
    for (ep,) in conn.execute("SELECT id FROM episodes"):
        rows = conn.execute("SELECT round, call_seq FROM verdicts WHERE episode = ? ORDER BY id", (ep,)).fetchall()
        speech = conn.execute("SELECT call_seq FROM messages WHERE episode = ? AND seat = 'convincer'", (ep,)).fetchone()[0]
        assert [r for r, _ in rows] == [0, 1]  # the prior is round 0
        assert rows[0][1] < speech < rows[1][1]


def test_analyze_reports_the_change_per_style(persuasion):
    report = analyze([persuasion], bootstrap=50)
    table = report.table("persuasion")
    conn = sqlite3.connect(persuasion)
    expected = {}
    for cell, ep in conn.execute("SELECT cell, id FROM episodes"):
        side = conn.execute("SELECT side FROM messages WHERE episode = ? AND seat = 'convincer'", (ep,)).fetchone()[0]
        (b,), (a,) = conn.execute("SELECT probabilities FROM verdicts WHERE episode = ? ORDER BY round", (ep,)).fetchall()
        expected.setdefault(cell, []).append((json.loads(b)[side], json.loads(a)[side]))
    assert {row[0] for row in table.rows} == set(expected) and len(expected) == 3
    for condition, n, before, after, change, lo, hi, moved in table.rows:
        pairs = expected[condition]
        assert n == len(pairs) == 6
        assert before == pytest.approx(sum(b for b, _ in pairs) / n)
        assert after == pytest.approx(sum(a for _, a in pairs) / n)
        assert change == pytest.approx(after - before) and lo <= change <= hi
        assert moved == pytest.approx(sum(a > b for b, a in pairs) / n)
    # the convincer argued each side of the claims equally often
    sides = [s for (s,) in conn.execute("SELECT side FROM messages WHERE seat = 'convincer'")]
    correct = [c for (c,) in conn.execute("SELECT e.correct FROM episodes e JOIN messages m ON m.episode = e.id AND m.seat = 'convincer'")]
    assert sum(s == c for s, c in zip(sides, correct)) == len(sides) // 2


def test_a_debate_has_no_persuasion_table(tmp_path):
    db = tmp_path / "d.db"
    run_scenario(parse("name: d\nprotocol: {name: debate, rounds: 1}\nseats: {debater: {model: scripted}, judge: {model: scripted}}\ndataset: {limit: 2}\n"), out=db)
    with pytest.raises(KeyError):
        analyze([db], bootstrap=10).table("persuasion")


def test_counseling_keeps_the_profile_with_the_client_and_rates_the_session(tmp_path):
    db = tmp_path / "c.db"
    run_scenario(parse(shipped("counseling.yaml")), out=db)
    conn = sqlite3.connect(db)
    rows = load("builtin:clients")
    assert len(rows) == 4
    for ep, qid in conn.execute("SELECT id, question_id FROM episodes"):
        profile = next(r.passage for r in rows if r.id == qid)
        calls = conn.execute(
            "SELECT seat, coalesce(system, '') || coalesce(messages, '') || prompt FROM model_calls WHERE episode = ?", (ep,)
        ).fetchall()
        assert {s for s, _ in calls} == {"client", "counselor"}
        for seat, prompt in calls:
            assert (profile in prompt) == (seat == "client")  # only the client reads its profile
        order = [p for (p,) in conn.execute("SELECT phase FROM messages WHERE episode = ? ORDER BY seq", (ep,))]
        assert order == ["opening", "counsel", "reply", "counsel", "reply", "close"]
        ((rater, target, score, status),) = conn.execute(
            "SELECT rater, target, score, parse_status FROM ratings WHERE episode = ?", (ep,)).fetchall()  # fmt: skip
        assert (rater, target, status) == ("client", "counselor", "ok") and 1 <= score <= 9
        said = [c for (c,) in conn.execute("SELECT content FROM messages WHERE episode = ? ORDER BY seq", (ep,))]
        rate_prompt = calls[-1][1]
        # the client rates the whole session it had, its own words and the counselor's, in order
        positions = [rate_prompt.find(text) for text in said]
        assert -1 not in positions and positions == sorted(positions) and "from 1 (not at all) to 9" in rate_prompt
