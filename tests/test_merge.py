"""`moot merge`: shards of one run into one database, one transaction per shard; the run
database stays the authority (done episodes are never replaced, unfinished ones never taken)."""

import shutil
import sqlite3

import pytest

from moot.cli import main
from moot.errors import ConfigError
from moot.scenario.load import parse
from moot.store.merge import merge_files
from moot.workflows.run import resume_run, run_scenario

SCENARIO = """
name: parts
protocol: {name: debate, rounds: 2}
seats: {debater: {model: scripted}, judge: {model: scripted}}
dataset: {source: builtin:reading, limit: 10}
"""


def content(db):
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    out = [
        conn.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall()
        for t, o in [("episodes", "id"), ("messages", "episode, seq"), ("model_calls", "episode, seq")]
    ] + [conn.execute("SELECT episode, judge, choice, raw FROM verdicts ORDER BY episode, id").fetchall()]
    conn.close()
    return out


def keep(db, where):
    """Leave only the episodes `where` selects (a shard)."""
    conn = sqlite3.connect(db)
    with conn:
        for t in ("messages", "model_calls", "verdicts"):
            conn.execute(f"DELETE FROM {t} WHERE episode NOT IN (SELECT id FROM episodes WHERE {where})")
        conn.execute(f"DELETE FROM episodes WHERE NOT ({where})")
    conn.close()


@pytest.fixture
def whole(tmp_path):
    db = tmp_path / "whole.db"
    run_scenario(parse(SCENARIO), SCENARIO, out=db)
    return db


def test_shards_merge_into_the_whole_run(tmp_path, whole, capsys):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    shutil.copy(whole, a)
    shutil.copy(whole, b)
    keep(a, "id < 6")
    keep(b, "id >= 4")  # overlaps: 4 and 5 are in both
    conn = sqlite3.connect(a)  # episode 5 was still running in shard a when it was cut
    with conn:
        conn.execute("UPDATE episodes SET status = 'running' WHERE id = 5")
        conn.execute("DELETE FROM verdicts WHERE episode = 5")
    conn.close()

    out = tmp_path / "out.db"
    assert main(["merge", str(out), str(a), str(b)]) == 0
    assert "merged 10 episodes (10 done, 0 failed), skipped 1 already done, left out 1" in capsys.readouterr().out
    assert content(out) == content(whole)
    again = merge_files(out, [a, b])  # merging twice adds nothing
    assert again.episodes == 0 and again.skipped == 5 + 6 and again.unfinished == 1
    assert content(out) == content(whole)


def test_a_merged_run_resumes_what_no_shard_finished(tmp_path, whole):
    a = tmp_path / "a.db"
    shutil.copy(whole, a)
    keep(a, "id % 3 = 0")
    out = tmp_path / "out.db"
    merge_files(out, [a])
    assert resume_run(out).done == 10
    text = "SELECT episode, seq, seat, content FROM messages ORDER BY episode, seq"
    assert sqlite3.connect(out).execute(text).fetchall() == sqlite3.connect(whole).execute(text).fetchall()


def test_a_shard_of_another_scenario_is_refused(tmp_path, whole):
    other_text = SCENARIO.replace("rounds: 2", "rounds: 1")
    other = tmp_path / "other.db"
    run_scenario(parse(other_text), other_text, out=other)
    out = tmp_path / "out.db"
    shutil.copy(whole, out)
    before = content(out)
    with pytest.raises(ConfigError, match="different scenario"):
        merge_files(out, [other])
    assert content(out) == before
