"""Forking a stored run from a round: rounds 1..K copied (no calls), the rest played anew
with other models, into a new run that records its parent."""

import json
import sqlite3
import subprocess
import sys

import pytest

from moot.errors import ConfigError
from moot.models.scripted import ScriptedModel
from moot.scenario.load import parse
from moot.workflows.replay import fork
from moot.workflows.run import resume_run, run_scenario

SCENARIO = """
name: fork-test
protocol: {name: debate, rounds: 3, turns: sequential}
seats: {debater: {model: scripted}, judge: {model: scripted}}
models: {scripted/other: {replies: ["A new model speaks: B, surely."]}}
dataset: {source: builtin:reading, limit: 4}
seed: 2
"""


@pytest.fixture
def parent(tmp_path):
    db = tmp_path / "parent.db"
    run_scenario(parse(SCENARIO), SCENARIO, out=db)
    return db


@pytest.fixture
def provider_calls(monkeypatch):
    calls = []
    generate = ScriptedModel.generate

    async def counted(self, request):
        calls.append(self.name)
        return await generate(self, request)

    monkeypatch.setattr(ScriptedModel, "generate", counted)
    return calls


def q(db, sql, *args):
    return sqlite3.connect(db).execute(sql, args).fetchall()


def test_fork_copies_rounds_up_to_k_and_plays_the_rest(parent, tmp_path, provider_calls):
    out = tmp_path / "fork.db"
    summary = fork(parent, 1, models={"debater_b": "scripted/other"}, out=out)
    assert summary.episodes == 4 and summary.done == 4
    # per episode: 2 speeches copied; 4 speeches and the verdict played
    assert summary.model_calls == 4 * 7 and summary.cached == 4 * 2
    assert len(provider_calls) == 4 * 5
    assert provider_calls.count("scripted/other") == 4 * 2  # debater_b's rounds 2 and 3
    copied = "SELECT episode, seq, round, seat, content, call_seq FROM messages WHERE round <= 1 ORDER BY episode, seq"
    assert q(out, copied) == q(parent, copied)
    assert q(out, "SELECT count(*) FROM model_calls WHERE cached = 1 AND seat LIKE 'debater%'") == [(8,)]
    assert set(q(out, "SELECT model FROM model_calls WHERE seat = 'debater_b' AND cached = 0")) == {("scripted/other",)}
    # after round K the transcript goes its own way where the new model speaks
    assert q(out, "SELECT DISTINCT content FROM messages WHERE seat = 'debater_b' AND round > 1") == [
        ("A new model speaks: B, surely.",)
    ]
    config = json.loads(q(out, "SELECT config FROM runs")[0][0])
    (parent_id,) = q(parent, "SELECT id FROM runs")[0]
    assert config["parent"] == {
        "mode": "fork", "path": str(parent.resolve()), "run": parent_id, "from_round": 1,
        "episodes": None, "models": {"debater_b": "scripted/other"},
    }  # fmt: skip
    assert config["seats"]["debater_b"]["model"] == "scripted/other"


def test_fork_without_overrides_from_the_last_round_but_one(parent, tmp_path, provider_calls):
    out = tmp_path / "same.db"
    fork(parent, 2, out=out)  # the scripted model is deterministic: round 3 comes out the same
    assert len(provider_calls) == 4 * 3
    keep = "SELECT episode, seq, round, seat, content FROM messages ORDER BY episode, seq"
    assert q(out, keep) == q(parent, keep)
    v = "SELECT episode, choice, probabilities FROM verdicts ORDER BY episode"
    assert q(out, v) == q(parent, v)


def test_fork_some_episodes_and_resume_it(parent, tmp_path):
    out = tmp_path / "some.db"
    summary = fork(parent, 1, episodes="0,2-3", models={"judge": "scripted/j2"}, out=out)
    assert summary.episodes == 3
    assert q(out, "SELECT id FROM episodes ORDER BY id") == [(0,), (2,), (3,)]
    before = q(out, "SELECT episode, seq, content FROM messages ORDER BY episode, seq")
    conn = sqlite3.connect(out)
    with conn:  # as if the process died during episode 2
        conn.execute("UPDATE episodes SET status = 'running' WHERE id = 2")
    resumed = resume_run(out)
    assert resumed.episodes == 3 and resumed.done == 3
    assert q(out, "SELECT episode, seq, content FROM messages ORDER BY episode, seq") == before
    assert q(out, "SELECT count(*) FROM model_calls WHERE episode = 2 AND cached = 1") == [(2,)]


def test_fork_bad_input(parent, tmp_path):
    for kwargs, message in [
        (dict(from_round=0), "--from-round 0: the stored episodes have rounds 1-3; fork from 1-2"),
        (dict(from_round=3), "--from-round 3"),
        (dict(from_round=1, models={"juror": "scripted"}), "no seat or role 'juror'"),
        (dict(from_round=1, episodes="7"), "no finished episode 7"),
        (dict(from_round=1, episodes="a-b"), "expected ids and ranges"),
        (dict(from_round=1, out=parent), "already exists"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            fork(parent, **kwargs)
    for args, message in [(("--from-round", "9"), "--from-round 9"), ((), "give --from-round K")]:
        r = subprocess.run([sys.executable, "-m", "moot", "fork", str(parent), *args],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "moot", "fork", str(parent), "--from-round", "2", "--quiet",
         "--model", "judge=scripted/j2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "parent-fork2.db").exists() and "rounds 1-2 copied" in ok.stdout


@pytest.mark.parametrize("name", ["debate_open.yaml", "consultancy.yaml", "consultancy_open.yaml",
                                  "feedback.yaml", "mad.yaml", "multi_agent.yaml",
                                  "debate_interactive.yaml"])  # fmt: skip
def test_a_fork_on_the_same_models_plays_out_as_its_parent(name, tmp_path):
    """Round 1 copied, the rest played by the same (deterministic) models: the same run."""
    from pathlib import Path

    from moot.protocols import registry
    from moot.scenario.load import load_file
    from moot.workflows.run import apply_overrides

    scenario, text = load_file(Path(__file__).resolve().parents[1] / "scenarios" / name)
    roles = set().union(*(registry.seat_names(c.scenario.protocol) for c in scenario.cells()))
    scenario = apply_overrides(scenario, limit=3, models={r: "scripted" for r in roles})
    run_scenario(scenario, text, out=tmp_path / "p.db")
    summary = fork(tmp_path / "p.db", 1, out=tmp_path / "f.db")
    assert summary.failed == 0 and 0 < summary.cached < summary.model_calls
    for sql in (
        "SELECT episode, seq, round, phase, seat, side, content, call_seq FROM messages ORDER BY episode, seq",
        "SELECT episode, judge, round, choice, probabilities FROM verdicts ORDER BY episode, id",
        "SELECT id, assignments, status, stop_reason, outcome FROM episodes ORDER BY id",
    ):
        assert q(tmp_path / "f.db", sql) == q(tmp_path / "p.db", sql)
    # copied: exactly the calls of round 1
    round1 = q(tmp_path / "p.db", "SELECT count(*) FROM model_calls c JOIN messages m ON m.episode = c.episode"
                                  " AND m.call_seq = c.seq WHERE m.round = 1")[0][0]
    assert summary.cached >= round1
