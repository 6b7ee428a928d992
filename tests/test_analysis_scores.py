"""The figures a reviewer asks for beyond accuracy, each against a hand calculation: proper
scores (log, Brier, the judge score S of the rule a room records), ECE under both tie
conventions, rounds and where episodes stopped, speech length and quotes, and the judge's
belief round by round; then clustered intervals on a hand-built two-passage case, and the
prior of a judge that rules before any speech, on a real scripted run."""

import json
import math

import pytest
from test_analysis import F, T, Transcripts, by

from moot.analysis import analyze

SIDES = {"debater_a": 0, "debater_b": 1}
LOG2 = json.dumps({"LogScoreWithLinearPenalty": {"baseCoefficient": 1.0, "constant": 0.0, "logBase": 2.0, "perTurnPenalty": 0.05}})


@pytest.fixture
def debates(tmp_path):
    """Three debates: two on passage P1 (the judge's prior, then beliefs after each round),
    one on P2 whose judge ends at a 50/50. Each room records its scoring rule, as the NYU
    rooms do."""
    t = Transcripts(tmp_path / "debates.db", "debates")
    rules = {"rules": {"scoringFunction": json.loads(LOG2)}}

    def debate(q, answers, correct, source, stop):
        return t.episode(q, answers, correct, assignments=SIDES, protocol="debate", source=source,
                         attributes=rules, stop_reason=stop)  # fmt: skip

    e0 = debate("q1", [T, F], 0, "P1", "judge_confident")
    t.verdict(e0, None, [0.5, 0.5], round=0)  # the prior: a tie, before any speech
    t.message(e0, 1, "debater_a", "A says <quote>alpha</quote> and more", side=0, quotes=[("alpha", True)])
    t.message(e0, 1, "debater_b", "B text", side=1)
    t.verdict(e0, 0, [0.6, 0.4], round=1)
    t.message(e0, 2, "debater_a", "x", side=0)
    t.message(e0, 2, "debater_b", "<quote>zeta</quote>", side=1, quotes=[("zeta", False)])
    t.message(e0, 2, "judge", "A, I think", role="judge")  # the judge's words are not a speech
    t.verdict(e0, 0, [0.8, 0.2], round=2)

    e1 = debate("q2", [F, T], 1, "P1", "judge_confident")
    t.verdict(e1, None, [0.5, 0.5], round=0)
    t.message(e1, 1, "debater_a", "no!", side=0)
    t.call(e1, "debater", 50, 7, 0.0, 0.1, seat="debater_b")  # the model spoke 7 tokens here
    t.message(e1, 1, "debater_b", "yes", side=1, call_seq=0)
    t.verdict(e1, 1, [0.3, 0.7], round=1)

    e2 = debate("q3", [T, F], 0, "P2", "rounds_done")
    t.message(e2, 1, "debater_a", "hi", side=0)
    t.verdict(e2, None, [0.5, 0.5], round=1)  # the final ruling is a tie
    return t.close()


def test_proper_scores_by_hand(debates):
    (s,) = analyze([debates], bootstrap=200).table("scores").records()
    # final p(correct): .8, .7 and the tie's .5, which is a forecast like any other
    assert s["verdicts"] == 3
    assert s["log_score"] == pytest.approx((math.log(0.8) + math.log(0.7) + math.log(0.5)) / 3)
    assert s["brier"] == pytest.approx((0.2**2 + 0.3**2 + 0.5**2) / 3)
    # S = log2 p - 0.05 per turn: three beliefs (two turns), two (one), one (none)
    assert s["judge_score"] == pytest.approx((math.log2(0.8) - 0.10 + math.log2(0.7) - 0.05 + math.log2(0.5)) / 3)
    for k in ("log", "brier"):
        assert s[f"{k}_low"] <= s["log_score" if k == "log" else "brier"] <= s[f"{k}_high"]
    assert s["score_low"] <= s["judge_score"] <= s["score_high"]


def test_a_tie_is_left_out_or_wrong_as_asked(debates):
    invalid = analyze([debates], bootstrap=200)
    wrong = analyze([debates], bootstrap=200, ties="wrong")
    (a,), (b,) = invalid.table("accuracy").records(), wrong.table("accuracy").records()
    assert (a["accuracy"], a["invalid"]) == (1.0, pytest.approx(1 / 3))
    assert (b["accuracy"], b["invalid"]) == (pytest.approx(2 / 3), 0)
    (ca,), (cb,) = invalid.table("calibration").records(), wrong.table("calibration").records()
    # invalid: confidences .8 and .7, both right: (|1 - .8| + |1 - .7|) / 2
    assert (ca["verdicts"], ca["ece"]) == (2, pytest.approx(0.25))
    # wrong: the tie joins at confidence .5, wrong: (.2 + .3 + .5) / 3
    assert (cb["verdicts"], cb["ece"]) == (3, pytest.approx(1 / 3))
    assert cb["ece_low"] <= cb["ece"] <= cb["ece_high"]
    # the scores need no chosen answer: the same under either convention
    assert invalid.table("scores").rows == wrong.table("scores").rows
    settings = dict(wrong.table("method").rows)
    assert settings["ties"].startswith("wrong")


def test_rounds_and_where_episodes_stopped(debates):
    report = analyze([debates], bootstrap=200)
    (r,) = report.table("rounds").records()
    # speeches reached round 2, 1 and 1 (the judge's round-2 words are not a speech)
    assert r["rounds_mean"] == pytest.approx(4 / 3)
    assert r["rounds_sd"] == pytest.approx(math.sqrt(((2 - 4 / 3) ** 2 + 2 * (1 - 4 / 3) ** 2) / 2))
    assert (r["rounds_min"], r["rounds_max"]) == (1, 2)
    stops = by(report.table("stops").records(), "stop_reason")
    assert (stops["judge_confident"]["episodes"], stops["judge_confident"]["stop_round_mean"]) == (2, 1.5)
    assert (stops["rounds_done"]["episodes"], stops["rounds_done"]["stop_round_mean"]) == (1, 1.0)


def test_speech_length_and_quotes_by_side(debates):
    rows = by(analyze([debates], bootstrap=50).table("speeches").records(), "side")
    assert set(rows) == {"correct", "incorrect"}  # the judge's message is not a speech
    right, wrong = rows["correct"], rows["incorrect"]
    # correct side: "A says alpha and more" (21 characters without the tags, 5 tokens, one
    # verified quote), "x" (1, 1), "yes" (3, 1: the model's call said 7 tokens), "hi" (2, 1)
    assert (right["role"], right["speeches"]) == ("debater", 4)
    assert right["chars_mean"] == pytest.approx(27 / 4) and right["tokens_mean"] == pytest.approx(8 / 4)
    assert right["model_tokens_mean"] == 7
    assert (right["quotes"], right["quotes_per_speech"], right["verified"]) == (1, 0.25, 1.0)
    # incorrect side: "B text" (6, 2), "zeta" (4, 1, an unverified quote), "no!" (3, 2)
    assert wrong["speeches"] == 3
    assert wrong["chars_mean"] == pytest.approx(13 / 3) and wrong["tokens_mean"] == pytest.approx(5 / 3)
    assert wrong["model_tokens_mean"] is None
    assert (wrong["quotes"], wrong["verified"]) == (1, 0.0)


def test_the_judges_belief_round_by_round(debates, tmp_path):
    report = analyze([debates], bootstrap=200)
    rows = [(r["round"], r["episodes"], r["p_correct"]) for r in report.table("trajectory").records()]
    # the two judges who reported more than once: priors .5 and .5; then .6 and .7; then .8
    # (the third judge ruled once: it has no trajectory)
    assert rows == [(0, 2, 0.5), (1, 2, pytest.approx(0.65)), (2, 1, 0.8)]
    pytest.importorskip("matplotlib")
    from moot.analysis.report import write

    written = write(report, tmp_path / "report")
    png = tmp_path / "report" / "trajectory.png"
    assert png in written and png.read_bytes().startswith(b"\x89PNG")
    assert "## The judge's belief in the correct answer, round by round" in (tmp_path / "report" / "report.md").read_text()


def two_passages(path):
    """Two passages of four questions each: the judge gets every question on the first right
    and every question on the second wrong, as when a judge misreads a whole story."""
    t = Transcripts(path, "passages")
    for passage, right in (("P1", True), ("P2", False)):
        for i in range(4):
            e = t.episode(f"{passage}-q{i}", [T, F], 0, source=passage)
            t.verdict(e, 0 if right else 1, [0.9, 0.1] if right else [0.1, 0.9])
    return t.close()


def test_resampling_passages_widens_the_interval_when_questions_share_them(tmp_path):
    db = two_passages(tmp_path / "passages.db")
    by_source = analyze([db], bootstrap=2000, cluster="source")
    by_question = analyze([db], bootstrap=2000, cluster="question")
    (s,), (q,) = by_source.table("accuracy").records(), by_question.table("accuracy").records()
    assert s["accuracy"] == q["accuracy"] == 0.5
    # two clusters: a resample is both passages (1/2), the first twice or the second twice
    # (1/4 each), so accuracy is 0, 1/2 or 1 and the 95% interval spans all of [0, 1]
    assert (s["ci_low"], s["ci_high"]) == (0.0, 1.0)
    # eight independent questions: Binomial(8, 1/2) / 8, whose 95% interval is narrower
    assert 0 < q["ci_low"] and q["ci_high"] < 1
    assert s["ci_high"] - s["ci_low"] > q["ci_high"] - q["ci_low"]
    # the scores and the ECE resample the same way
    (ss,), (qs,) = by_source.table("scores").records(), by_question.table("scores").records()
    assert ss["log_high"] - ss["log_low"] > qs["log_high"] - qs["log_low"]
    # the report says what it resampled; auto takes passages, since they hold several questions
    assert dict(by_source.table("method").rows)["resampled"].startswith("passages (--cluster source): 2 clusters")
    assert dict(by_question.table("method").rows)["resampled"].startswith("questions (--cluster question): 8 clusters")
    assert analyze([db], bootstrap=50).results.clusters.by == "source"


def test_without_shared_passages_auto_resamples_questions(tmp_path):
    t = Transcripts(tmp_path / "apart.db", "apart")
    for i in range(3):
        t.verdict(t.episode(f"q{i}", [T, F], 0, source=f"passage {i}"), 0, [0.9, 0.1])
    assert analyze([t.close()], bootstrap=50).results.clusters.by == "question"


def test_bad_conventions_are_one_line(debates, capsys):
    from moot.cli import main

    assert main(["analyze", str(debates), "--ties", "half"]) == 2
    assert "--ties" in capsys.readouterr().err
    from moot.errors import ConfigError

    with pytest.raises(ConfigError, match="--cluster passage: choose source, question or auto"):
        analyze([debates], cluster="passage")


SKEPTIC = """
name: persuade
protocol:
  name: custom
  seats:
    pro: {role: debater, side: 0}
    skeptic: {role: judge, sees_source: false}
  phases:
    before: {kind: verdict, seats: [skeptic]}
    argument: {kind: speech, seats: [pro]}
    after: {kind: verdict, seats: [skeptic]}
  start: before
  edges:
    - {from: before, to: argument}
    - {from: argument, to: after}
    - {from: after, to: end}
seats:
  debater: {model: scripted, max_tokens: 40}
  skeptic: {model: scripted}
dataset: {source: builtin:reading, limit: 3}
"""


def test_a_belief_stated_before_any_speech_is_round_0(tmp_path):
    """A persuasion study's skeptic states a belief, hears one argument, states another: the
    first is stored as the prior, round 0, and the analysis reads it so."""
    import sqlite3

    from moot.scenario.load import parse
    from moot.workflows.run import run_scenario

    db = tmp_path / "persuade.db"
    run_scenario(parse(SKEPTIC), out=db)
    conn = sqlite3.connect(db)
    stored = conn.execute(
        "SELECT v.episode, v.round, v.probabilities ->> ('$[' || e.correct || ']') FROM verdicts v"
        " JOIN episodes e ON e.id = v.episode ORDER BY v.episode, v.id").fetchall()  # fmt: skip
    assert [r for _, r, _ in stored] == [0, 1] * 3
    before = [p for i, (_, _, p) in enumerate(stored) if i % 2 == 0]
    after = [p for i, (_, _, p) in enumerate(stored) if i % 2 == 1]
    rows = analyze([db], bootstrap=50).table("trajectory").records()
    assert [(r["round"], r["episodes"]) for r in rows] == [(0, 3), (1, 3)]
    assert rows[0]["p_correct"] == pytest.approx(sum(before) / 3)
    assert rows[1]["p_correct"] == pytest.approx(sum(after) / 3)
