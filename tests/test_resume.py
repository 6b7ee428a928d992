"""A run that is killed (even with kill -9) or interrupted resumes where it stopped:
finished episodes are kept, unfinished ones run again, nothing is duplicated or lost."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from moot.errors import ConfigError
from moot.scenario.load import parse
from moot.workflows.run import resume_run, run_scenario

SCENARIO = """
name: resumable
protocol: {name: debate, rounds: 3}
seats: {debater: {model: scripted/slow}, judge: {model: scripted}}
models: {scripted/slow: {latency: 0.02}}
dataset: {source: builtin:reading, limit: 24}
concurrency: 3
"""


def start(tmp_path, db):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    return subprocess.Popen(
        [sys.executable, "-m", "moot", "run", str(path), "--out", str(db), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for_done(db, at_least, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():
            try:
                n = sqlite3.connect(db).execute(
                    "SELECT count(*) FROM episodes WHERE status = 'done'").fetchone()[0]
                if n >= at_least:
                    return n
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    raise AssertionError("the run never got going")


def snapshot(db):
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    return (
        conn.execute("SELECT id, question_id, answers, correct, status FROM episodes ORDER BY id").fetchall(),
        conn.execute("SELECT episode, seq, seat, content FROM messages ORDER BY episode, seq").fetchall(),
        conn.execute("SELECT episode, seq FROM model_calls ORDER BY episode, seq").fetchall(),
        conn.execute("SELECT episode, judge, choice, probabilities FROM verdicts ORDER BY episode").fetchall(),
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    db = tmp_path_factory.mktemp("clean") / "clean.db"
    run_scenario(parse(SCENARIO), SCENARIO, out=db)
    return snapshot(db)


def test_kill_9_then_resume_gives_the_uninterrupted_run(tmp_path, uninterrupted):
    db = tmp_path / "run.db"
    proc = start(tmp_path, db)
    wait_for_done(db, 5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM runs").fetchone() == ("running",)  # died mid-run
    assert conn.execute("SELECT count(*) FROM episodes WHERE status = 'done'").fetchone()[0] < 24
    conn.close()

    summary = resume_run(db)
    assert summary.episodes == 24 and summary.done == 24
    assert snapshot(db) == uninterrupted
    assert sqlite3.connect(db).execute("SELECT status FROM runs").fetchone() == ("done",)


def test_ctrl_c_stops_gracefully_and_says_how_to_resume(tmp_path, uninterrupted):
    db = tmp_path / "run.db"
    proc = start(tmp_path, db)
    wait_for_done(db, 3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert f"moot run --resume {db}" in err and "Traceback" not in err
    assert sqlite3.connect(db).execute("SELECT status FROM runs").fetchone() == ("interrupted",)

    resumed = subprocess.run(
        [sys.executable, "-m", "moot", "run", "--resume", str(db), "--quiet"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert snapshot(db) == uninterrupted


def test_rerunning_the_scenario_into_its_database_resumes_it(tmp_path):
    db = tmp_path / "run.db"
    first = run_scenario(parse(SCENARIO), SCENARIO, out=db)
    calls = first.model_calls
    again = run_scenario(parse(SCENARIO), SCENARIO, out=db)  # nothing left to do
    assert again.episodes == 24 and again.model_calls == calls  # no call made twice
    other = SCENARIO.replace("rounds: 3", "rounds: 2")
    with pytest.raises(ConfigError, match="made by a different scenario"):
        run_scenario(parse(other), other, out=db)
