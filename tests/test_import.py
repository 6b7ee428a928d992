"""Published transcripts imported into moot's store: the NYU rooms of Michael et al. 2023
(read from ../shared, never copied), and Khan et al.'s CSV layout from a user's file."""

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from moot.errors import ConfigError
from moot.importers import import_path
from moot.importers.nyu_debate import detokenize

NYU = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nyu-debate-2023"
needs_nyu = pytest.mark.skipif(not NYU.is_dir(), reason="the shared NYU dataset is not beside the project")


@pytest.fixture(scope="module")
def nyu(tmp_path_factory):
    db = tmp_path_factory.mktemp("nyu") / "nyu.db"
    summary = import_path("nyu-debate", NYU, db)
    assert (summary.imported, summary.skipped) == (631, 0)
    return db


def test_tokens_are_joined_back_into_text_with_offsets():
    tokens = ["He", "did", "n't", "say", ",", "``", "Hi", "''", "-LRB-", "loudly", "-RRB-", ".", "\n", "Next"]
    text, starts, ends = detokenize(tokens)
    assert text == 'He didn\'t say, "Hi" (loudly).\nNext'
    assert [text[a:b] for a, b in zip(starts, ends)][2] == "n't"
    assert text[starts[9] : ends[9]] == "loudly"


@needs_nyu
def test_every_room_is_an_episode_in_its_setting(nyu):
    conn = sqlite3.connect(nyu)
    counts = dict(((cell, status), n) for cell, status, n in conn.execute(
        "SELECT cell, status, count(*) FROM episodes GROUP BY 1, 2"))  # fmt: skip
    assert counts[("human debate", "done")] == 266
    assert counts[("AI consultancy", "incomplete")] == 19  # rooms that never finished keep that status
    assert sum(counts.values()) == 631
    reasons = {r for (r,) in conn.execute("SELECT DISTINCT stop_reason FROM episodes WHERE status = 'incomplete'")}
    assert reasons == {"InProgress", "WaitingToBegin"}
    attrs = json.loads(conn.execute("SELECT attributes FROM episodes WHERE attributes ->> '$.room' = 'ambition-8'").fetchone()[0])
    assert attrs["included_in_paper"] is True and attrs["setting"] == {"human": True, "debate": False}


@needs_nyu
def test_the_paper_sample_gives_the_papers_accuracies(nyu):
    """Table 1 of Michael et al. 2023: the final judgement's probability on the correct answer
    above 0.5, on the rooms flagged includedInPaper."""
    conn = sqlite3.connect(nyu)
    rows = conn.execute(
        "SELECT e.cell, count(*), round(avg(v.correct), 2) FROM episodes e JOIN verdicts v ON v.episode = e.id"
        " WHERE e.attributes ->> '$.included_in_paper' AND v.judge = 'judge'"
        " AND v.id = (SELECT max(id) FROM verdicts w WHERE w.episode = e.id AND w.judge = 'judge')"
        " GROUP BY e.cell ORDER BY e.cell"
    ).fetchall()
    assert rows == [
        ("AI consultancy", 76, 0.80),
        ("AI debate", 87, 0.78),
        ("human consultancy", 96, 0.74),
        ("human debate", 154, 0.84),
    ]


@needs_nyu
def test_quotes_are_the_storys_words_and_marked_verified(nyu):
    conn = sqlite3.connect(nyu)
    n = 0
    for content, quotes, source in conn.execute(
        "SELECT m.content, m.quotes, e.source FROM messages m JOIN episodes e ON e.id = m.episode"
        " WHERE m.quotes != '[]' LIMIT 300"
    ):
        for q in json.loads(quotes):
            a, b = q["source_span"]
            assert q["verified"] and source[a:b] == q["text"]
            assert content[q["start"] : q["end"]] == q["text"]
            assert content[q["start"] - 7 : q["start"]] == "<quote>"
            n += 1
    assert n > 300


@needs_nyu
def test_the_judges_belief_after_every_round_is_a_verdict(nyu):
    conn = sqlite3.connect(nyu)
    (eid,) = conn.execute("SELECT id FROM episodes WHERE attributes ->> '$.room' = 'a-pail-of-air-0'").fetchone()
    trajectory = conn.execute(
        "SELECT round, probabilities FROM verdicts WHERE episode = ? AND judge = 'judge' ORDER BY id", (eid,)
    ).fetchall()
    room = json.loads((NYU / "debates" / "a-pail-of-air-0.json").read_text())
    published = [r["JudgeFeedback"]["distribution"] for r in room["rounds"] if "JudgeFeedback" in r]
    assert [json.loads(p) for _, p in trajectory] == published
    assert trajectory[0][0] == 0  # the prior, before any speech
    offline = conn.execute("SELECT DISTINCT judge FROM verdicts WHERE episode = ? AND judge != 'judge'", (eid,)).fetchall()
    assert offline == [("offline:Lulu Lemonade",)]


@needs_nyu
def test_importing_again_adds_nothing(nyu):
    before = sqlite3.connect(nyu).execute("SELECT count(*) FROM messages").fetchone()
    summary = import_path("nyu-debate", NYU, nyu)
    assert (summary.imported, summary.skipped) == (0, 631)
    assert sqlite3.connect(nyu).execute("SELECT count(*) FROM messages").fetchone() == before


def test_a_broken_dataset_is_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "debates").mkdir()
    (tmp_path / "debates-metadata.jsonl").write_text('{"name": "r1"}\nnot json\n')
    db = tmp_path / "out.db"
    proc = subprocess.run(
        [sys.executable, "-m", "moot", "import", "nyu-debate", str(tmp_path), "--out", str(db)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "r1" in proc.stderr  # the room it could not read
    assert not db.exists()


KHAN = [
    # debate_id, judge_id, method, consultant_type, swap, confidence_correct
    ("d1", "7", "debate", "", "False", "0.8"),
    ("d2", "7", "debate", "", "True", "0.3"),
    ("c1", "9", "consultancy", "incorrect", "True", "0.5"),
    ("b1", "9", "baseline", "", "False", "0.6"),
]


def khan_csv(path, rows=KHAN):
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["debate_id", "judge_id", "experiment_name", "question", "debate_method",
                    "consultant_type", "swap", "confidence_correct", "transcript"])  # fmt: skip
        for debate_id, judge, method, ctype, swap, conf in rows:
            transcript = {
                "answers": {"correct": "Right", "incorrect": "Wrong"},
                "rounds": [
                    {"correct": "[b]I am right[/b]", "incorrect": "I am right too", "judge": None},
                    {"correct": "Still right", "incorrect": "Still me", "judge": "Why?"},
                ],
            }
            w.writerow([debate_id, judge, "exp8", f"Question {debate_id}?", method, ctype, swap, conf, json.dumps(transcript)])
    return path


def test_khan_csv_rows_become_episodes_with_sides_from_swap(tmp_path):
    db = tmp_path / "k.db"
    summary = import_path("khan-csv", khan_csv(tmp_path / "k.csv"), db)
    assert summary.imported == 4
    conn = sqlite3.connect(db)
    eps = {
        json.loads(a)["debate_id"]: (protocol, json.loads(ans), correct, json.loads(asg), cell)
        for protocol, ans, correct, asg, cell, a in conn.execute(
            "SELECT protocol, answers, correct, assignments, cell, attributes FROM episodes")
    }  # fmt: skip
    assert eps["d1"][:4] == ("debate", ["Right", "Wrong"], 0, {"debater_a": 0, "debater_b": 1})
    assert eps["d2"][1:3] == (["Wrong", "Right"], 1)  # swapped: the correct answer shown second
    assert eps["c1"][0] == "consultancy" and eps["c1"][3] == {"consultant": 0}  # dishonest: defends "Wrong"
    assert eps["c1"][4] == "consultancy (incorrect)"
    assert eps["b1"][0] == "direct_qa"
    verdicts = dict(conn.execute(
        "SELECT json_extract(e.attributes, '$.debate_id'), json_array(v.choice, v.correct, v.probabilities, v.judge)"
        " FROM verdicts v JOIN episodes e ON e.id = v.episode"))  # fmt: skip
    assert json.loads(verdicts["d1"]) == [0, 1, "[0.8,0.19999999999999996]", "human:7"]
    assert json.loads(verdicts["d2"])[:2] == [0, 0]  # 0.3 on the correct (second) answer: wrong
    assert json.loads(verdicts["c1"])[:2] == [None, 0]  # a tie is no choice and not correct
    # speeches keep their text literally and sit on the side they argued
    speeches = conn.execute(
        "SELECT m.seat, m.side, m.content FROM messages m JOIN episodes e ON e.id = m.episode"
        " WHERE json_extract(e.attributes, '$.debate_id') = 'd2' ORDER BY m.seq").fetchall()  # fmt: skip
    assert speeches[0] == ("debater_b", 1, "[b]I am right[/b]")
    assert speeches[-1] == ("judge", None, "Why?")
    assert import_path("khan-csv", tmp_path / "k.csv", db).imported == 0


def test_a_bad_khan_row_names_its_line_and_column(tmp_path):
    path = khan_csv(tmp_path / "bad.csv", KHAN[:2] + [("d3", "1", "debate", "", "maybe", "0.5")])
    with pytest.raises(ConfigError, match=r"bad.csv:4: swap: expected True or False \(got 'maybe'\)"):
        import_path("khan-csv", path, tmp_path / "bad.db")
    assert not (tmp_path / "bad.db").exists()


def test_a_run_database_is_not_an_import_target(tmp_path):
    from moot.scenario.load import parse
    from moot.workflows.run import run_scenario

    db = tmp_path / "run.db"
    run_scenario(parse("name: r\nseats: {debater: {model: scripted}, judge: {model: scripted}}\ndataset: {limit: 1}\n"), out=db)
    with pytest.raises(ConfigError, match="holds a moot run"):
        import_path("khan-csv", khan_csv(tmp_path / "k.csv"), db)


@needs_nyu
@pytest.mark.anyio
async def test_the_imported_rooms_are_browsed_in_replay(nyu):
    from moot.tui.episode import EpisodeScreen, Transcript
    from moot.tui.replay import EpisodesScreen, ReplayApp

    app = ReplayApp(nyu)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, EpisodesScreen)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, EpisodeScreen)
        tr = app.screen.query_one(Transcript)
        conn = sqlite3.connect(nyu)
        (n,) = conn.execute("SELECT count(*) FROM messages WHERE episode = ?", (app.screen.episode_id,)).fetchone()
        assert len(tr.messages) == n
        await pilot.press("q")


def test_moots_own_export_round_trips(tmp_path):
    from moot.analysis.export import export
    from moot.scenario.load import parse
    from moot.workflows.run import run_scenario

    db = tmp_path / "run.db"
    run_scenario(parse(
        "name: rt\nprotocol: {rounds: 2}\nseats: {debater: {model: scripted}, judge: {model: scripted}}\n"
        "dataset: {limit: 4, both_orders: true}\n"), out=db)  # fmt: skip
    export([db], tmp_path / "a", "jsonl")
    summary = import_path("moot-jsonl", tmp_path / "a", tmp_path / "back.db")
    assert summary.imported == 8
    export([tmp_path / "back.db"], tmp_path / "b", "jsonl")

    def rows(folder, table):
        skip = {"verdict", "attributes", "cell"}  # ids renumbered; the import's key; the cell names the condition
        return [{k: v for k, v in json.loads(line).items() if k not in skip}
                for line in (folder / f"{table}.jsonl").read_text().splitlines()]  # fmt: skip

    for table in ("episodes", "messages", "verdicts"):
        assert rows(tmp_path / "a", table) == rows(tmp_path / "b", table), table
    # analysed, the two databases give the same table
    from moot.analysis import analyze

    def accuracy(path):
        return [r for t in analyze([path]).tables if t.name == "accuracy" for r in t.rows]

    assert accuracy(db) == accuracy(tmp_path / "back.db")
    assert import_path("moot-jsonl", tmp_path / "a", tmp_path / "back.db").imported == 0


@needs_nyu
def test_moot_analyze_reads_the_papers_sample_and_its_conventions_give_table_1(nyu):
    """`moot analyze --where included_in_paper=true --judge judge` reads the paper's 413
    rooms; with the paper's conventions (a 0.5 tie is wrong; confidence max(p, 1 - p) of the
    probability on the correct answer; ten bins; ties half right) the store gives Table 1."""
    import numpy as np

    from moot.analysis import analyze, stats
    from moot.analysis.load import Scope, Study, open_db, scoped

    report = analyze([nyu], where=[("included_in_paper", True)], judge="judge", bootstrap=50)
    acc = {r[0]: r for r in report.table("accuracy").rows}
    assert {c: r[2] for c, r in acc.items()} == {
        "human debate": 154, "human consultancy": 96, "AI debate": 87, "AI consultancy": 76}  # fmt: skip
    # moot leaves the one 50/50 judgement out as unreadable; the paper counts it wrong
    assert acc["human consultancy"][3] == pytest.approx(1 / 96)
    with scoped(Scope((("included_in_paper", True),), "judge")):
        Study.open([nyu])
        conn = open_db(nyu)
        rows = conn.execute("SELECT condition, p_correct FROM episode_results WHERE status = 'done'").fetchall()
    paper = {"human debate": (0.84, 0.11), "human consultancy": (0.74, 0.17), "AI debate": (0.78, 0.16),
             "AI consultancy": (0.80, 0.17)}  # fmt: skip
    for cond, (accuracy, ece) in paper.items():
        p = np.array([pc for c, pc in rows if c == cond])
        right = np.where(p > 0.5, 1.0, np.where(p == 0.5, 0.5, 0.0))
        assert round(float((p > 0.5).mean()), 2) == accuracy, cond
        assert round(stats.ece(np.maximum(p, 1 - p), right, 10), 2) == ece, cond


@needs_nyu
def test_moot_analyze_prints_table_1s_judge_score_and_rounds(nyu, capsys):
    """Table 1's judge score S (the rooms' own rule: log2 p(correct) - 0.05 per turn the judge
    let the debate go on) and mean rounds, as `moot analyze` prints them from the store."""
    from moot.cli import main

    args = ["analyze", str(nyu), "--where", "included_in_paper=true", "--judge", "judge", "--bootstrap", "50"]
    assert main([*args, "--format", "json"]) == 0
    tables = json.loads(capsys.readouterr().out)
    score = {r["condition"]: r for r in tables["scores"]}
    rounds = {r["condition"]: r for r in tables["rounds"]}
    published = {"human debate": (-0.89, 2.7), "human consultancy": (-1.24, 4.0), "AI debate": (-1.20, 3.8),
                 "AI consultancy": (-1.16, 4.2)}  # fmt: skip
    for cond, (s, n_rounds) in published.items():
        assert round(score[cond]["judge_score"], 2) == s, cond
        assert round(rounds[cond]["rounds_mean"], 1) == n_rounds, cond
        assert score[cond]["score_low"] < score[cond]["judge_score"] < score[cond]["score_high"]
    # the rule, applied to the stored transcript, is what the platform paid each judge
    conn = sqlite3.connect(nyu)
    paid = dict(conn.execute(
        "SELECT cell, avg(outcome ->> '$.judge_reward') FROM episodes"
        " WHERE attributes ->> '$.included_in_paper' AND status = 'done' GROUP BY cell"))  # fmt: skip
    for cond in published:
        assert score[cond]["judge_score"] == pytest.approx(paid[cond], abs=1e-9), cond
    # resampled by story (about five questions each), which the report says
    assert dict((r["setting"], r["value"]) for r in tables["method"])["resampled"].startswith("passages")
    # the paper counts the one 50/50 final judgement wrong: --ties wrong gives its 71/96
    assert main([*args, "--ties", "wrong", "--format", "json"]) == 0
    acc = {r["condition"]: r for r in json.loads(capsys.readouterr().out)["accuracy"]}
    assert acc["human consultancy"]["accuracy"] == pytest.approx(71 / 96)
    # and the markdown a person reads shows S (-0.891: the paper's -0.89)
    assert main([*args, "--no-plots"]) == 0
    assert re.search(r"^\| human debate \| 154 \| [^|]+\|[^|]+\|[^|]+\|[^|]+\|[^|]+\|[^|]+\| -0\.891 \|",
                     capsys.readouterr().out, re.M)  # fmt: skip
