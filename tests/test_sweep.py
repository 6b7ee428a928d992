"""Sweeps: one scenario file, a grid of conditions, every cell on the same questions, all
into one database with each episode labelled by its cell."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from moot.errors import ConfigError
from moot.scenario.load import parse
from moot.workflows.run import resume_run, run_scenario

STUDY = """
name: study
protocol: {rounds: 2}
seats:
  debater: {model: scripted}
  consultant: {model: scripted}
  judge: {model: scripted}
dataset: {limit: 6}
sweep:
  protocol.name: [direct_qa, consultancy, debate]
  seed: [1, 2]
"""


def test_a_sweep_is_the_grid_of_its_values_first_key_slowest():
    cells = parse(STUDY).cells()
    assert [c.name for c in cells] == [
        "protocol.name=direct_qa seed=1",
        "protocol.name=direct_qa seed=2",
        "protocol.name=consultancy seed=1",
        "protocol.name=consultancy seed=2",
        "protocol.name=debate seed=1",
        "protocol.name=debate seed=2",
    ]
    assert cells[3].params == {"protocol.name": "consultancy", "seed": 2}
    assert cells[3].scenario.protocol.name == "consultancy"
    assert cells[3].scenario.protocol.rounds == 2  # the file's other settings carry over
    assert cells[3].scenario.sweep is None


def test_a_scenario_without_a_sweep_is_one_unnamed_cell():
    (cell,) = parse("name: plain\n").cells()
    assert cell.name is None and cell.scenario.name == "plain"


def test_every_cell_answers_the_same_questions_in_the_same_order(tmp_path):
    summary = run_scenario(parse(STUDY), out=tmp_path / "s.db")
    assert summary.done == 36 and summary.failed == 0
    conn = sqlite3.connect(tmp_path / "s.db")
    by_cell = {}
    for cell, qid, answers in conn.execute("SELECT cell, question_id, answers FROM episodes ORDER BY id"):
        by_cell.setdefault(cell, []).append((qid, answers))
    assert len(by_cell) == 6
    first, *rest = by_cell.values()
    assert all(r == first for r in rest)  # paired: same questions, same answer order
    # each cell ran its own protocol: direct QA has no speeches, debate has two a round
    speeches = dict(conn.execute(
        "SELECT e.cell, count(m.seq) FROM episodes e LEFT JOIN messages m ON m.episode = e.id"
        " AND m.role IN ('debater', 'consultant') GROUP BY e.cell"))  # fmt: skip
    assert speeches["protocol.name=direct_qa seed=1"] == 0
    assert speeches["protocol.name=consultancy seed=2"] == 6 * 2
    assert speeches["protocol.name=debate seed=1"] == 6 * 2 * 2
    cells = conn.execute("SELECT name, position, params, config FROM cells ORDER BY position").fetchall()
    assert [json.loads(p) for _, _, p, _ in cells][4] == {"protocol.name": "debate", "seed": 1}
    assert json.loads(cells[4][3])["protocol"]["name"] == "debate"
    assert "prompts" in json.loads(cells[4][3])  # what each cell's seats were asked
    # the summary reports every cell
    assert [c[0] for c in summary.cells] == [c[0] for c in cells]
    assert all(done == 6 for _, done, _, _ in summary.cells)


def test_seat_models_can_be_swept(tmp_path):
    text = """
name: judges
protocol: {name: direct_qa}
models:
  scripted/a: {verdict: "Answer: A", logprobs: false}
  scripted/b: {verdict: "Answer: B", logprobs: false}
dataset: {limit: 4}
sweep:
  seats.judge.model: [scripted/a, scripted/b]
"""
    run_scenario(parse(text), out=tmp_path / "j.db")
    conn = sqlite3.connect(tmp_path / "j.db")
    rows = conn.execute(
        "SELECT e.cell, v.model, group_concat(v.choice) FROM verdicts v JOIN episodes e"
        " ON e.id = v.episode GROUP BY e.cell ORDER BY e.cell"
    ).fetchall()
    assert rows == [
        ("seats.judge.model=scripted/a", "scripted/a", "0,0,0,0"),
        ("seats.judge.model=scripted/b", "scripted/b", "1,1,1,1"),
    ]


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ("{protocol.rounds: [0, 2]}", "sample.yaml:4: sweep.protocol.rounds: in cell 'protocol.rounds=0'"),
        ("{protocol.nme: [debate]}", "sweep.protocol.nme: in cell 'protocol.nme=debate': protocol.nme: unknown field"),
        ("{seed: []}", "sample.yaml:4: sweep.seed: give a non-empty list of values"),
        ("{dataset.limit: [1, 2]}", "sweep.dataset.limit: cannot be swept"),
        ("{name: [a, b]}", "sweep.name: cannot be swept"),
        ("{seed.x: [1]}", "sweep.seed.x: seed has no fields to set"),
        ("{seed: [1, 1]}", "sweep.seed: a value is listed twice"),
        ("{protocol.name: [debate, nope]}", "in cell 'protocol.name=nope': protocol.name: Input should be"),
    ],
)
def test_a_bad_sweep_is_one_line_naming_the_key(sweep, message):
    text = f"name: s\nseats:\n  judge: {{model: scripted}}\nsweep: {sweep}\n"
    with pytest.raises(ConfigError) as err:
        parse(text, "sample.yaml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_seat_must_exist_in_some_cell():
    text = STUDY.replace("consultant: {model: scripted}", "lawyer: {model: scripted}")
    with pytest.raises(ConfigError, match=r"seats\.lawyer: the debate protocol has no seat or role"):
        parse(text)


def test_the_cli_validates_and_runs_a_sweep_with_progress_per_cell(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(STUDY)
    out = subprocess.run(
        [sys.executable, "-m", "moot", "run", str(path), "--out", str(tmp_path / "c.db")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "cell 6/6 protocol.name=debate seed=2" in out.stderr  # progress (not a tty)
    assert "protocol.name=consultancy seed=1" in out.stdout  # summary line per cell


def test_a_killed_sweep_resumes_into_the_cells_it_had_not_finished(tmp_path):
    text = STUDY.replace("debater: {model: scripted}", "debater: {model: scripted/slow}") + (
        "models: {scripted/slow: {latency: 0.05}}\nconcurrency: 2\n"
    )
    path = tmp_path / "slow.yaml"
    path.write_text(text)
    db = tmp_path / "k.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moot", "run", str(path), "--out", str(db), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    # wait until the consultancy cells are under way, then kill without warning
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not db.exists():  # connecting would create it
            time.sleep(0.02)
            continue
        try:
            n = sqlite3.connect(db).execute("SELECT count(*) FROM episodes WHERE status='done'").fetchone()[0]
            if n >= 14:
                break
        except sqlite3.OperationalError:
            pass
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = sqlite3.connect(db).execute("SELECT count(*) FROM episodes WHERE status='done'").fetchone()[0]
    assert 14 <= done_before < 36
    summary = resume_run(db)
    assert summary.done == 36
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(DISTINCT id), count(*) FROM episodes").fetchone() == (36, 36)
    assert conn.execute("SELECT count(*) FROM cells").fetchone() == (6,)
    # every episode sits in the block of its cell, as in an uninterrupted run
    fresh = tmp_path / "fresh.db"
    run_scenario(parse(text), out=fresh)
    q = "SELECT id, cell, question_id, answers FROM episodes ORDER BY id"
    assert conn.execute(q).fetchall() == sqlite3.connect(fresh).execute(q).fetchall()


def test_the_shipped_sweep_on_the_scripted_model_gives_the_studys_table(tmp_path):
    """scenarios/sweep.yaml (direct QA vs consultancy vs debate, two seeds) with every seat on
    the scripted model: one database, and `moot analyze` makes the table, the plots and the
    exports from it. The scripted model is deterministic, so the numbers are pinned."""
    import pandas as pd

    from moot.analysis import analyze
    from moot.analysis.export import export
    from moot.analysis.report import write
    from moot.scenario.load import load_file
    from moot.workflows.run import apply_overrides

    scenario, text = load_file(Path(__file__).parents[1] / "scenarios" / "sweep.yaml")
    scenario = apply_overrides(
        scenario, limit=6, models={"debater": "scripted", "consultant": "scripted", "judge": "scripted"})  # fmt: skip
    db = tmp_path / "study.db"
    run_scenario(scenario, text, out=db)
    per_cell = analyze([db], bootstrap=200)
    assert [(r[0], r[2], round(r[5], 4)) for r in per_cell.table("accuracy").rows] == [
        ("protocol.name=direct_qa seed=1", 6, 0.3333), ("protocol.name=direct_qa seed=2", 6, 0.3333),
        ("protocol.name=consultancy seed=1", 6, 0.5), ("protocol.name=consultancy seed=2", 6, 0.6667),
        ("protocol.name=debate seed=1", 6, 0.3333), ("protocol.name=debate seed=2", 6, 0.3333),
    ]  # fmt: skip
    pooled = analyze([db], bootstrap=200, by=["protocol.name"])
    assert [(r[0], r[1], r[2], round(r[5], 4)) for r in pooled.table("accuracy").rows] == [
        ("protocol.name=direct_qa", 6, 12, 0.3333), ("protocol.name=consultancy", 6, 12, 0.5833),
        ("protocol.name=debate", 6, 12, 0.3333),
    ]  # fmt: skip
    # paired on the same six questions
    assert {(r[0], r[1], r[2]) for r in pooled.table("comparisons").rows} == {
        ("protocol.name=direct_qa", "protocol.name=consultancy", 6),
        ("protocol.name=direct_qa", "protocol.name=debate", 6),
        ("protocol.name=consultancy", "protocol.name=debate", 6),
    }
    written = {p.name for p in write(pooled, tmp_path / "report", "markdown")}
    assert {"report.md", "accuracy.png", "reliability.png", "position.png"} <= written
    exported = export([db], tmp_path / "export", "jsonl")
    episodes = pd.read_json(next(p for p in exported if p.name == "episodes.jsonl"), lines=True)
    assert len(episodes) == 36 and episodes["condition"].nunique() == 6
