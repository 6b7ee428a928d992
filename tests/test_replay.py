"""Exact replay: a stored run re-run from its stored outputs, with no model called, gives
the same transcripts, calls and verdicts."""

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from moot.models.scripted import ScriptedModel
from moot.protocols import registry
from moot.scenario.load import load_file
from moot.workflows.replay import replay
from moot.workflows.run import apply_overrides, run_scenario

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.name for p in (ROOT / "scenarios").glob("*.yaml"))


def on_scripted(name: str, **models):
    """A shipped scenario with every role on the scripted model (some options overridden)."""
    scenario, text = load_file(ROOT / "scenarios" / name)
    roles = set().union(*(registry.seat_names(c.scenario.protocol) for c in scenario.cells()))
    scenario = apply_overrides(scenario, limit=3, models={r: "scripted" for r in roles} | models)
    return scenario, text


def content(db):
    """Everything a run stores but timing, costs paid and the run's own id."""
    conn = sqlite3.connect(db)
    q = lambda sql: conn.execute(sql).fetchall()  # noqa: E731
    return {
        "episodes": q("SELECT id, question_id, question, answers, correct, source, protocol,"
                      " assignments, seats, status, stop_reason, outcome, error, cell FROM episodes ORDER BY id"),
        "messages": q("SELECT episode, seq, round, phase, seat, role, side, content, audience,"
                      " call_seq, quotes FROM messages ORDER BY episode, seq"),
        "calls": q("SELECT episode, seq, seat, role, model, system, prompt, messages, params,"
                   " response, prompt_tokens, completion_tokens, error FROM model_calls ORDER BY episode, seq"),
        "verdicts": q("SELECT episode, judge, model, round, choice, probabilities, correct, method,"
                      " parse_status, raw, call_seq FROM verdicts ORDER BY episode, id"),
        "ratings": q("SELECT episode, rater, target, other, round, score, probabilities, method,"
                     " parse_status, raw, call_seq FROM ratings ORDER BY episode, call_seq"),
        "checks": q("SELECT episode, rater, question_id, choice, correct, probabilities, method,"
                    " call_seq FROM qualifications ORDER BY episode, call_seq"),
        "cells": q("SELECT name, position, params, config FROM cells ORDER BY position"),
    }  # fmt: skip


@pytest.fixture
def provider_calls(monkeypatch):
    """Counts the calls that reach the scripted model itself."""
    count = [0]
    generate = ScriptedModel.generate

    async def counted(self, request):
        count[0] += 1
        return await generate(self, request)

    monkeypatch.setattr(ScriptedModel, "generate", counted)
    return count


@pytest.mark.parametrize("name", SHIPPED)
def test_replay_reproduces_every_shipped_scenario_with_zero_calls(name, tmp_path, provider_calls):
    scenario, text = on_scripted(name)
    parent = run_scenario(scenario, text, out=tmp_path / "parent.db")
    assert parent.failed == 0 and provider_calls[0] == parent.model_calls > 0
    made = provider_calls[0]
    summary = replay(tmp_path / "parent.db", out=tmp_path / "replay.db")
    assert provider_calls[0] == made  # not one call reached the model
    assert summary.episodes == parent.episodes and summary.failed == 0
    assert summary.model_calls == summary.cached == parent.model_calls and summary.cost == 0
    assert content(tmp_path / "replay.db") == content(tmp_path / "parent.db")


def test_replay_of_text_verdicts_and_through_litellm(tmp_path, provider_calls):
    # judges read from text (no logprobs), and seats reached through litellm's path
    scenario, text = on_scripted("debate_adaptive.yaml", judge="moot-scripted/judge")
    run_scenario(scenario, text, out=tmp_path / "parent.db")
    made = provider_calls[0]
    replay(tmp_path / "parent.db", out=tmp_path / "replay.db")
    assert provider_calls[0] == made
    assert content(tmp_path / "replay.db") == content(tmp_path / "parent.db")
    conn = sqlite3.connect(tmp_path / "replay.db")
    assert conn.execute("SELECT count(*) FROM verdicts WHERE method = 'text'").fetchone()[0] > 0
    assert conn.execute("SELECT sum(cached) = count(*), sum(cost) FROM model_calls").fetchone() == (1, 0.0)


def test_a_replay_records_its_parent_and_only_finished_episodes(tmp_path):
    import json

    scenario, text = on_scripted("quickstart.yaml")
    run_scenario(scenario, text, out=tmp_path / "parent.db")
    conn = sqlite3.connect(tmp_path / "parent.db")
    with conn:  # episode 1 failed in the parent: it is not replayed
        conn.execute("UPDATE episodes SET status = 'failed' WHERE id = 1")
    summary = replay(tmp_path / "parent.db")
    assert summary.path == tmp_path / "parent-replay.db"
    assert summary.episodes == 2 and summary.done == 2
    config = json.loads(sqlite3.connect(summary.path).execute("SELECT config FROM runs").fetchone()[0])
    assert config["parent"]["mode"] == "replay"
    assert config["parent"]["path"] == str((tmp_path / "parent.db").resolve())


def test_replay_bad_input_is_one_line_and_exit_2(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "moot", "run", *args],
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    scenario, text = on_scripted("quickstart.yaml")
    run_scenario(scenario, text, out=tmp_path / "parent.db")
    for args, message in [
        (("--replay", str(tmp_path / "missing.db")), "no such database"),
        (("--replay", str(tmp_path / "parent.db"), "--limit", "2"), "--replay takes only the database"),
        (("--replay", str(tmp_path / "parent.db"), "--out", str(tmp_path / "parent.db")), "already exists"),
    ]:
        r = cli(*args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    ok = cli("--replay", str(tmp_path / "parent.db"), "--out", str(tmp_path / "r.db"), "--quiet")
    assert ok.returncode == 0 and "15 calls (15 from the cache)" in ok.stdout, ok.stdout + ok.stderr
