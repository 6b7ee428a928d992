"""LLMs-as-a-Jury: a panel in the judge's seat, each juror in the judge's view without seeing
the others, combined by majority, mean probability or a foreperson."""

import json
import sqlite3

import pytest

from moot.errors import ConfigError
from moot.scenario.load import parse
from moot.workflows.run import run_scenario

PANEL = """
name: panel
protocol:
  name: {protocol}
  rounds: 1
  jury: {jury}
seats:
  debater: {{model: scripted}}
  judge: {{model: scripted/for_a}}
  juror_2: {{model: scripted/for_b}}
  juror_3: {{model: scripted/for_b}}
models:
  scripted/for_a: {{verdict: "Answer: A\\nConfidence: 90%", logprobs: false}}
  scripted/for_b: {{verdict: "Answer: B\\nConfidence: 60%", logprobs: false}}
dataset: {{limit: 4, both_orders: true}}
"""


def run(tmp_path, jury, protocol="debate"):
    db = tmp_path / "j.db"
    text = PANEL.format(jury=jury, protocol=protocol)
    if protocol == "direct_qa":
        text = text.replace("  debater: {model: scripted}\n", "")
    if "size: 2" in jury:
        text = text.replace("  juror_3: {model: scripted/for_b}\n", "")
    run_scenario(parse(text), out=db)
    return sqlite3.connect(db)


def verdicts(conn, episode=0):
    return [
        (judge, phase_round, choice, json.loads(p) if p else None)
        for judge, phase_round, choice, p in conn.execute(
            "SELECT judge, round, choice, probabilities FROM verdicts WHERE episode = ? ORDER BY id", (episode,))
    ]  # fmt: skip


def test_every_juror_rules_and_the_majority_is_the_ruling(tmp_path):
    conn = run(tmp_path, "{size: 3}")
    rows = verdicts(conn)
    assert [(j, c) for j, _, c, _ in rows] == [("juror_1", 0), ("juror_2", 1), ("juror_3", 1), ("majority", 1)]
    assert rows[-1][3] == pytest.approx([1 / 3, 2 / 3])  # the vote shares
    # the panel's ruling is the episode's: correct where B is the right answer
    for _, correct, ruled in conn.execute(
        "SELECT e.id, e.correct, v.correct FROM episodes e JOIN verdicts v ON v.episode = e.id AND v.judge = 'majority'"
    ):
        assert ruled == (correct == 1)


def test_jurors_do_not_see_each_other_and_debaters_never_see_the_jury(tmp_path):
    conn = run(tmp_path, "{size: 3, deliberation: 1}")
    prompts = dict(conn.execute(
        "SELECT seat || '/' || (SELECT phase FROM messages m WHERE m.episode = c.episode AND m.call_seq = c.seq),"
        " coalesce(messages, '') || prompt FROM model_calls c WHERE episode = 0"))  # fmt: skip
    # in the first vote, nobody has read another juror's verdict
    assert "Confidence: 60%" not in prompts["juror_1/verdict"]
    assert "Confidence: 90%" not in prompts["juror_2/verdict"]
    # deliberating, each reads the others' last verdicts
    assert "Confidence: 60%" in prompts["juror_1/deliberation_1"]
    assert "Confidence: 90%" in prompts["juror_3/deliberation_1"]
    audiences = {a for (a,) in conn.execute("SELECT DISTINCT audience FROM messages WHERE role = 'judge'")}
    assert audiences == {'["juror_1","juror_2","juror_3"]'}
    assert [j for j, *_ in verdicts(conn)] == ["juror_1", "juror_2", "juror_3"] * 2 + ["majority"]


def test_the_mean_panel_averages_probabilities(tmp_path):
    conn = run(tmp_path, "{size: 3, aggregate: mean}")
    *_, (judge, _, choice, probs) = verdicts(conn)
    # one sure juror outweighs two unsure ones: the mean can overrule the majority
    assert judge == "mean" and choice == 0
    assert probs == pytest.approx([(0.9 + 0.4 + 0.4) / 3, (0.1 + 0.6 + 0.6) / 3])


def test_a_foreperson_reads_the_panel_and_rules_for_it(tmp_path):
    conn = run(tmp_path, "{size: 3, aggregate: foreperson}", protocol="direct_qa")
    rows = verdicts(conn)
    assert [j for j, *_ in rows] == ["juror_1", "juror_2", "juror_3", "juror_1"]
    (prompt,) = conn.execute(
        "SELECT coalesce(messages, '') || prompt FROM model_calls WHERE episode = 0 AND seat = 'juror_1' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert "Confidence: 60%" in prompt  # the foreperson has read the others


def test_an_even_panel_split_rules_nothing(tmp_path):
    conn = run(tmp_path, "{size: 2}", protocol="direct_qa")
    assert verdicts(conn)[-1][:3] == ("majority", 1, None)
    (status,) = conn.execute("SELECT parse_status FROM verdicts WHERE judge = 'majority' LIMIT 1").fetchone()
    assert status == "tie"


def test_a_judge_who_questions_cannot_be_a_jury():
    text = PANEL.format(jury="{size: 3}", protocol="debate").replace("rounds: 1", "rounds: 2\n  judge_questions: true")
    with pytest.raises(ConfigError, match="jury: the debate protocol's judge does more than rule once"):
        parse(text)


def test_analysis_reports_each_juror_and_their_agreement(tmp_path):
    from moot.analysis import analyze

    run(tmp_path, "{size: 3}")  # juror_1 always says A, jurors 2 and 3 always B
    report = analyze([tmp_path / "j.db"], bootstrap=20)
    rows = {(r[1], r[2]): r for r in report.table("judge_agreement").rows}
    # two raters who never agree and each always say the same thing: chance agreement 0, kappa 0
    assert rows[("juror_1", "juror_2")][4] == pytest.approx(0.0)
    assert rows[("juror_2", "juror_3")][4] == 1.0  # always agree on one category
    # Fleiss over the three jurors and the panel (A, B, B, B on every episode):
    # P_i = (1 + 9 - 4) / 12 = 1/2, p = (1/4, 3/4), P_e = 10/16, kappa = (1/2 - 5/8) / (3/8) = -1/3
    assert rows[("juror_1", None)][5] == pytest.approx(-1 / 3)
    # the panel's ruling is B: juror_1 differs from it every time, the others never
    assert rows[("juror_1", None)][7] == 1.0 and rows[("juror_2", None)][7] == 0.0
    # against the gold (A and B equally often, both orders): a constant rater has kappa 0
    assert rows[("juror_3", None)][6] == pytest.approx(0.0)
    per_judge = {r[1]: r[5] for r in report.table("judges").rows}
    assert per_judge["juror_1"] == pytest.approx(0.5) and per_judge["majority"] == pytest.approx(0.5)
