"""`moot analyze` on small transcripts written straight into real databases: every number
below was worked out by hand from the rows in this file."""

import json
import math
import sqlite3

import pytest

from moot import store
from moot.analysis import analyze
from moot.analysis.load import open_db

T, F = "the true answer", "a false answer"


class Transcripts:
    """Writes episodes, verdicts and model calls into a real run database."""

    def __init__(self, path, name, cells=()):
        self.conn = store.connect(path, create=True)
        self.path = path
        store.create_run(self.conn, {"id": name, "name": name, "scenario_yaml": "", "config": {},
                                     "versions": {}, "models": {}, "started_at": 0.0})  # fmt: skip
        for i, cell in enumerate(cells):  # names, or name -> the cell's config
            config = cells[cell] if isinstance(cells, dict) else {}
            self.conn.execute("INSERT INTO cells VALUES (?,?,'{}',?)", (cell, i, json.dumps(config)))
        self.next = 0

    def episode(self, question, answers, correct, *, cell=None, assignments=None, status="done",
                protocol="direct_qa", seats=None, source=None, attributes=None, stop_reason=None,
                text="Q?"):  # fmt: skip
        ep = self.next
        self.next += 1
        self.conn.execute(
            "INSERT INTO episodes (id, question_id, question, answers, correct, source, protocol,"
            " assignments, seats, status, stop_reason, started_at, cell, attributes)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,0,?,?)",
            (ep, question, text, json.dumps(answers), correct, source, protocol,
             json.dumps(assignments or {}), json.dumps(seats or {}), status, stop_reason, cell,
             None if attributes is None else json.dumps(attributes)),
        )  # fmt: skip
        return ep

    def verdict(self, ep, choice, probabilities=None, *, judge="judge", round=1, status=None, call_seq=None, at=0.0):
        (correct,) = self.conn.execute("SELECT correct FROM episodes WHERE id = ?", (ep,)).fetchone()
        self.conn.execute(
            "INSERT INTO verdicts (episode, judge, model, round, choice, probabilities, correct,"
            " method, parse_status, raw, call_seq, created_at) VALUES (?,?,'m',?,?,?,?,?,?,'',?,?)",
            (ep, judge, round, choice, None if probabilities is None else json.dumps(probabilities),
             None if choice is None or correct is None else int(choice == correct),
             "text" if probabilities is None else "token_logprobs",
             status or ("ok" if choice is not None else "invalid"), call_seq, at),
        )  # fmt: skip

    def message(self, ep, round, seat, content, *, role="debater", side=None, quotes=None, phase="speech",
                audience=None, call_seq=None, at=0.0):  # fmt: skip
        """A message; `quotes`: (text, verified) pairs, located in `content` by their text."""
        seq = self.conn.execute("SELECT count(*) FROM messages WHERE episode = ?", (ep,)).fetchone()[0]
        located = [{"text": q, "start": content.index(q), "end": content.index(q) + len(q), "verified": ok,
                    "source_span": None, "score": 1.0} for q, ok in (quotes or [])]  # fmt: skip
        self.conn.execute(
            "INSERT INTO messages (episode, seq, round, phase, seat, role, side, content, audience,"
            " created_at, call_seq, quotes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (ep, seq, round, phase, seat, role, side, content,
             None if audience is None else json.dumps(audience), at, call_seq, json.dumps(located)),
        )  # fmt: skip

    def call(self, ep, role, prompt_tokens, completion_tokens, cost, latency, seat=None, model="m"):
        seq = self.conn.execute("SELECT count(*) FROM model_calls WHERE episode = ?", (ep,)).fetchone()[0]
        self.conn.execute(
            "INSERT INTO model_calls (episode, seq, seat, role, model, prompt, params,"
            " prompt_tokens, completion_tokens, cost, latency_s, attempts, started_at)"
            " VALUES (?,?,?,?,?,'','{}',?,?,?,?,1,0)",
            (ep, seq, seat or role, role, model, prompt_tokens, completion_tokens, cost, latency),
        )

    def close(self):
        self.conn.commit()
        self.conn.close()
        return self.path


DIRECT, DEBATE = "protocol.name=direct_qa", "protocol.name=debate"
SIDES = {"debater_a": 0, "debater_b": 1}


@pytest.fixture
def sweep(tmp_path):
    """A sweep database: direct QA and debate on the same four questions, one failed episode."""
    t = Transcripts(tmp_path / "sweep.db", "sweep", cells=[DIRECT, DEBATE])
    # direct QA: right (p .8), wrong (p .4 on the truth), invalid, right without probabilities
    e = t.episode("q1", [T, F], 0, cell=DIRECT)
    t.verdict(e, 0, [0.8, 0.2])
    t.call(e, "judge", 10, 2, 0.001, 0.5)
    e = t.episode("q2", [F, T], 1, cell=DIRECT)
    t.verdict(e, 0, [0.6, 0.4])
    t.call(e, "judge", 20, 2, None, 1.5)
    t.verdict(t.episode("q3", [T, F], 0, cell=DIRECT), None)
    t.verdict(t.episode("q4", [F, T], 1, cell=DIRECT), 1)
    # debate: the judge rules each round; the final ruling is the round-2 one
    e = t.episode("q1", [T, F], 0, cell=DEBATE, assignments=SIDES, protocol="debate")
    t.verdict(e, 1, [0.4, 0.6], round=1)
    t.verdict(e, 0, [0.7, 0.3], round=2)
    e = t.episode("q2", [F, T], 1, cell=DEBATE, assignments=SIDES, protocol="debate")
    t.verdict(e, 1, [0.5, 0.5], round=2)  # a tie in probability, ruled for the second answer
    e = t.episode("q3", [T, F], 0, cell=DEBATE, assignments=SIDES, protocol="debate")
    t.verdict(e, 1, [0.1, 0.9], round=2)
    e = t.episode("q4", [F, T], 1, cell=DEBATE, assignments=SIDES, protocol="debate")
    t.verdict(e, 1, [0.3, 0.7], round=2)
    t.episode("q5", [T, F], 0, cell=DEBATE, assignments=SIDES, status="failed", protocol="debate")
    return t.close()


def by(records, *keys):
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in records}


def test_accuracy_counts_valid_final_verdicts_per_condition(sweep):
    acc = by(analyze([sweep]).table("accuracy").records(), "condition")
    assert list(acc) == [DIRECT, DEBATE]  # the sweep's grid order
    d, b = acc[DIRECT], acc[DEBATE]
    assert (d["episodes"], d["questions"], d["failed"]) == (4, 3, 0)
    assert d["accuracy"] == pytest.approx(2 / 3) and d["invalid"] == pytest.approx(1 / 4)
    assert (b["episodes"], b["questions"], b["failed"]) == (4, 4, 1)
    assert b["accuracy"] == pytest.approx(3 / 4) and b["invalid"] == 0
    for r in (d, b):
        assert r["ci_low"] <= r["accuracy"] <= r["ci_high"]


def test_the_sql_views_give_the_same_numbers(sweep):
    db = sqlite3.connect(sweep)
    got = dict(db.execute(
        "SELECT condition, 1.0 * sum(correct) / sum(valid) FROM episode_results"
        " WHERE status = 'done' GROUP BY condition"
    ).fetchall())  # fmt: skip
    assert got == {DIRECT: pytest.approx(2 / 3), DEBATE: pytest.approx(3 / 4)}
    # one row per episode and judge: the debate judge's round-2 verdict, not its round-1 one
    final = db.execute("SELECT choice, p_correct, p_choice FROM episode_verdicts WHERE episode = 4").fetchall()
    assert final == [(0, 0.7, 0.7)]


def test_comparisons_are_paired_on_the_questions_both_answered(sweep):
    (c,) = analyze([sweep]).table("comparisons").records()
    assert (c["a"], c["b"], c["questions"]) == (DIRECT, DEBATE, 3)  # q3 was invalid in direct QA
    assert c["accuracy_a"] == pytest.approx(2 / 3) and c["accuracy_b"] == 1.0
    assert c["difference"] == pytest.approx(-1 / 3)
    # one discordant question (q2): McNemar p = 2 * 1/2; the sign-flip test agrees
    assert c["p_mcnemar"] == 1.0 and c["p_permutation"] == 1.0
    assert c["ci_low"] <= c["difference"] <= c["ci_high"] <= 0


def test_calibration_by_hand(sweep):
    report = analyze([sweep])
    cal = by(report.table("calibration").records(), "condition")
    scores = by(report.table("scores").records(), "condition")
    # direct QA: p(correct) .8 and .4 (the invalid verdict and the one without probabilities
    # are left out): Brier ((.2)^2 + (.6)^2) / 2; ECE .5 |1 - .8| + .5 |0 - .6|
    assert cal[DIRECT]["verdicts"] == 2 and scores[DIRECT]["verdicts"] == 2
    assert scores[DIRECT]["brier"] == pytest.approx(0.2)
    assert cal[DIRECT]["ece"] == pytest.approx(0.4)
    # debate: p(correct) .7, .5 (the tie), .1, .7 -> Brier (.09 + .25 + .81 + .09) / 4;
    # bins: .7 twice (right), .5 (right), .9 (wrong) -> (2 * .3 + .5 + .9) / 4
    assert scores[DEBATE]["brier"] == pytest.approx(0.31)
    assert cal[DEBATE]["ece"] == pytest.approx(0.5)
    bins = [(r["bin_low"], r["verdicts"], r["accuracy"]) for r in report.table("reliability").records()
            if r["condition"] == DEBATE]  # fmt: skip
    assert bins == [(0.5, 1, 1.0), (0.7, 2, 1.0), (0.9, 1, 0.0)]


def test_accuracy_by_side_and_position_bias(sweep):
    report = analyze([sweep])
    sides = {(r["condition"], r["split"]): (r["episodes"], r["accuracy"]) for r in report.table("sides").records()}
    assert sides[(DIRECT, "truth shown first")] == (1, 1.0)  # q1 right; q3 invalid
    assert sides[(DIRECT, "truth shown second")] == (2, 0.5)
    assert sides[(DEBATE, "truth argued by debater_a")] == (2, 0.5)
    assert sides[(DEBATE, "truth argued by debater_b")] == (2, 1.0)
    pos = by(report.table("position").records(), "condition")
    assert pos[DIRECT]["picks_first"] == pytest.approx(2 / 3)
    assert pos[DEBATE]["picks_first"] == pytest.approx(1 / 4)
    assert pos[DEBATE]["swapped_pairs"] == 0


def test_costs_per_condition_and_role(sweep):
    (row,) = [r for r in analyze([sweep]).table("costs").records() if r["condition"] == DIRECT]
    assert (row["role"], row["calls"], row["prompt_tokens"], row["completion_tokens"]) == ("judge", 2, 30, 4)
    assert row["cost"] == pytest.approx(0.001)  # a call without a reported cost adds nothing
    assert row["cost_per_episode"] == pytest.approx(0.001 / 4)
    assert (row["latency_mean_s"], row["latency_max_s"]) == (1.0, 1.5)


@pytest.fixture
def consultancy(tmp_path):
    """Outside a sweep (the condition is the run's name); each question in both orders."""
    t = Transcripts(tmp_path / "consult.db", "consultancy")
    first, second = {"consultant": 0}, {"consultant": 1}  # the answer shown first or second
    e = t.episode("q1", [T, F], 0, assignments=first, protocol="consultancy")  # honest
    t.verdict(e, 0, [0.9, 0.1])  # picks T: right
    e = t.episode("q1", [F, T], 1, assignments=first, protocol="consultancy")  # dishonest
    t.verdict(e, 0, [0.9, 0.1])  # picks F: wrong, and swapping the order changed the verdict
    e = t.episode("q2", ["T2", "F2"], 0, assignments=second, protocol="consultancy")  # dishonest
    t.verdict(e, 0, [0.6, 0.4])  # picks T2: right
    e = t.episode("q2", ["F2", "T2"], 1, assignments=second, protocol="consultancy")  # honest
    t.verdict(e, 1, [0.2, 0.8])  # picks T2 again: right
    return t.close()


def test_honest_and_dishonest_consultants_and_swapped_orders(consultancy):
    report = analyze([consultancy])
    sides = {r["split"]: (r["episodes"], r["accuracy"]) for r in report.table("sides").records()}
    assert sides["consultant honest"] == (2, 1.0)
    assert sides["consultant dishonest"] == (2, 0.5)
    (pos,) = report.table("position").records()
    assert (pos["condition"], pos["swapped_pairs"], pos["changed"], pos["changed_rate"]) == ("consultancy", 2, 1, 0.5)
    assert pos["picks_first"] == pytest.approx(3 / 4)
    # both orders: two verdicts per question, so no McNemar; the question is the unit
    (acc,) = report.table("accuracy").records()
    assert (acc["questions"], acc["episodes"], acc["accuracy"]) == (2, 4, 0.75)


def test_several_databases_pair_on_question_ids_and_keep_conditions_apart(sweep, consultancy, tmp_path):
    report = analyze([sweep, consultancy])
    assert [r["condition"] for r in report.table("accuracy").records()] == [DIRECT, DEBATE, "consultancy"]
    comps = by(report.table("comparisons").records(), "a", "b")
    assert comps[(DEBATE, "consultancy")]["questions"] == 2  # q1 and q2 in both
    copy = tmp_path / "copy.db"
    copy.write_bytes(consultancy.read_bytes())
    names = [r["condition"] for r in analyze([consultancy, copy]).table("accuracy").records()]
    assert names == ["consult.db:consultancy", "copy.db:consultancy"]


def test_several_judges_each_final_verdict_and_the_last_as_the_ruling(tmp_path):
    t = Transcripts(tmp_path / "jury.db", "jury")
    e = t.episode("q1", [T, F], 0, protocol="multi_agent")
    t.verdict(e, 0, [1.0, 0.0], judge="agent_1", round=2)
    t.verdict(e, 1, [0.0, 1.0], judge="agent_1", round=1)  # written later, an earlier round
    t.verdict(e, 1, [0.0, 1.0], judge="agent_2", round=2)
    t.verdict(e, None, [0.5, 0.5], judge="majority", round=2, status="tie")
    e = t.episode("q2", [T, F], 0, protocol="multi_agent")
    t.verdict(e, 1, [0.0, 1.0], judge="agent_1", round=2)
    t.verdict(e, 1, [0.0, 1.0], judge="agent_2", round=2)
    t.verdict(e, 1, [0.0, 1.0], judge="majority", round=2)
    report = analyze([t.close()])
    judges = {r["judge"]: (r["episodes"], r["invalid"], r["accuracy"]) for r in report.table("judges").records()}
    assert judges == {"agent_1": (2, 0, 0.5), "agent_2": (2, 0, 0.0), "majority": (2, 0.5, 0.0)}
    (acc,) = report.table("accuracy").records()
    assert (acc["invalid"], acc["accuracy"]) == (0.5, 0.0)  # the tie rules nothing


def test_bootstrap_intervals_are_degenerate_where_nothing_varies(tmp_path):
    t = Transcripts(tmp_path / "same.db", "same", cells=["a", "b"])
    for cell in ("a", "b"):
        for q in range(6):
            t.verdict(t.episode(f"q{q}", [T, F], 0, cell=cell), 0, [0.9, 0.1])
    report = analyze([t.close()], bootstrap=200)
    for r in report.table("accuracy").records():
        assert (r["accuracy"], r["ci_low"], r["ci_high"]) == (1.0, 1.0, 1.0)
    (c,) = report.table("comparisons").records()
    assert (c["difference"], c["ci_low"], c["ci_high"], c["p_permutation"], c["p_mcnemar"]) == (0, 0, 0, 1.0, 1.0)


def test_a_database_from_before_the_views_is_read_without_being_changed(sweep):
    db = sqlite3.connect(sweep)
    db.executescript(
        "DROP VIEW episode_verdicts; DROP VIEW episode_results; DROP VIEW call_costs;"
        " PRAGMA user_version = 6;"
    )
    db.close()
    before = sweep.read_bytes()
    acc = by(analyze([sweep]).table("accuracy").records(), "condition")
    assert acc[DEBATE]["accuracy"] == 0.75
    assert sqlite3.connect(sweep).execute("PRAGMA user_version").fetchone() == (6,)
    assert sweep.read_bytes() == before
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        open_db(sweep).execute("DELETE FROM episodes")


def test_bad_input_is_one_line(tmp_path, capsys):
    from moot.cli import main

    assert main(["analyze", str(tmp_path / "missing.db")]) == 2
    assert "missing.db: no such database" in capsys.readouterr().err
    (tmp_path / "x.db").write_text("not a database" * 100)
    assert main(["analyze", str(tmp_path / "x.db")]) == 2
    assert "x.db: not a usable moot database" in capsys.readouterr().err
    db = Transcripts(tmp_path / "r.db", "r").close()
    assert main(["analyze", str(db), str(db)]) == 2
    assert "r.db: given twice" in capsys.readouterr().err


def test_swapped_orders_without_a_known_answer_compare_the_answers_text(tmp_path):
    t = Transcripts(tmp_path / "open.db", "open")
    t.verdict(t.episode("q1", ["x", "y"], None), 0, [0.7, 0.3])  # picks x
    t.verdict(t.episode("q1", ["y", "x"], None), 1, [0.4, 0.6])  # picks x again
    t.verdict(t.episode("q2", ["u", "w"], None), 0, [0.7, 0.3])  # picks u
    t.verdict(t.episode("q2", ["w", "u"], None), 0, [0.7, 0.3])  # picks w: changed
    report = analyze([t.close()])
    (pos,) = report.table("position").records()
    assert (pos["swapped_pairs"], pos["changed"], pos["picks_first"]) == (2, 1, 0.75)
    (acc,) = report.table("accuracy").records()
    assert acc["accuracy"] is None and acc["invalid"] == 0  # no gold: nothing to score


def test_cross_play_ratings_by_model_match_the_closed_form(tmp_path):
    # X beats Y in 3 of 4 games when X argued the truth and 2 of 4 when Y did; the fit
    # reproduces both rates: s_X - s_Y = (logit(3/4) + logit(1/2)) / 2 = ln(3) / 2, so
    # Elo 1500 +- 100 log10(3) (tests/test_stats.py works the same case on the fit alone).
    seats = {"debater_a": {"role": "debater"}, "debater_b": {"role": "debater"}, "judge": {"role": "judge"}}
    cells = {
        "a=X b=Y": {"seats": {"debater_a": {"model": "X"}, "debater_b": {"model": "Y"}, "judge": {"model": "J"}}},
        "a=Y b=X": {"seats": {"debater": {"model": "X"}, "debater_a": {"model": "Y"}, "judge": {"model": "J"}}},
    }
    t = Transcripts(tmp_path / "cross.db", "cross", cells=cells)
    for i, choice in enumerate([0, 0, 0, 1]):  # X (debater_a) argues the truth, shown first
        e = t.episode(f"x{i}", [T, F], 0, cell="a=X b=Y", assignments=SIDES, seats=seats, protocol="debate")
        t.verdict(e, choice, [0.6, 0.4] if choice == 0 else [0.4, 0.6])
    for i, choice in enumerate([1, 1, 0, 0]):  # Y (debater_a) argues the truth; X wins on 1
        e = t.episode(f"y{i}", [T, F], 0, cell="a=Y b=X", assignments=SIDES, seats=seats, protocol="debate")
        t.verdict(e, choice, [0.6, 0.4] if choice == 0 else [0.4, 0.6])
    same = {"debater_a": 0, "debater_b": 0}  # open debaters who chose the same answer: no game
    e = t.episode("z", [T, F], 0, cell="a=X b=Y", assignments=same, seats=seats, protocol="debate")
    t.verdict(e, 0, [0.6, 0.4])
    rows = by(analyze([t.close()], bootstrap=50).table("debaters").records(), "player")
    assert list(rows) == ["X", "Y"]
    x, y = rows["X"], rows["Y"]
    assert (x["games"], x["wins"], x["win_rate_truth"], x["win_rate_false"]) == (8, 5, 0.75, 0.5)
    assert (y["games"], y["wins"], y["win_rate_truth"], y["win_rate_false"]) == (8, 3, 0.5, 0.25)
    assert x["elo"] == pytest.approx(1500 + 100 * math.log10(3))
    assert y["elo"] == pytest.approx(1500 - 100 * math.log10(3))
    assert x["elo_low"] <= x["elo"] <= x["elo_high"]
    assert x["judge_accuracy"] == pytest.approx(5 / 8)  # no self-play: all of X's games


def test_a_sweeps_cells_pooled_by_a_parameter(tmp_path):
    grid = {f"protocol.name={p} seed={s}": {} for p in ("direct_qa", "debate") for s in (1, 2)}
    t = Transcripts(tmp_path / "seeds.db", "seeds", cells=grid)
    t.conn.execute("UPDATE cells SET params = json_object('protocol.name',"
                   " substr(name, 15, instr(name, ' ') - 15), 'seed', substr(name, -1))")  # fmt: skip
    for cell in grid:
        right = "debate" in cell or "seed=1" in cell  # direct QA is right with seed 1 only
        for q in ("q1", "q2"):
            t.verdict(t.episode(q, [T, F], 0, cell=cell), 0 if right else 1, [0.6, 0.4] if right else [0.4, 0.6])
    path = t.close()
    assert len(analyze([path]).table("accuracy").rows) == 4
    acc = by(analyze([path], by=["protocol.name"]).table("accuracy").records(), "condition")
    assert list(acc) == ["protocol.name=direct_qa", "protocol.name=debate"]
    assert (acc["protocol.name=direct_qa"]["episodes"], acc["protocol.name=direct_qa"]["accuracy"]) == (4, 0.5)
    assert (acc["protocol.name=debate"]["questions"], acc["protocol.name=debate"]["accuracy"]) == (2, 1.0)
    from moot.errors import ConfigError

    with pytest.raises(ConfigError, match="--by temperature: not a parameter of the sweep"):
        analyze([path], by=["temperature"])


def test_conditions_without_shared_questions_are_not_compared(tmp_path):
    t = Transcripts(tmp_path / "apart.db", "apart", cells=["a", "b"])
    t.verdict(t.episode("q1", [T, F], 0, cell="a"), 0, [0.9, 0.1])
    t.verdict(t.episode("q2", [T, F], 0, cell="b"), 1, [0.1, 0.9])
    (c,) = analyze([t.close()]).table("comparisons").records()
    assert c["questions"] == 0
    assert [c[k] for k in ("difference", "ci_low", "p_permutation", "p_mcnemar")] == [None] * 4


def test_a_run_with_nothing_finished_still_reports(tmp_path):
    assert analyze([Transcripts(tmp_path / "empty.db", "empty").close()]).table("accuracy").rows == []
    t = Transcripts(tmp_path / "failed.db", "failed")
    t.episode("q1", [T, F], 0, status="failed")
    report = analyze([t.close()])
    (acc,) = report.table("accuracy").records()
    assert (acc["episodes"], acc["failed"], acc["accuracy"]) == (0, 1, None)
