"""`moot fork` plays its rounds on local models in the deterministic `exact` batching mode,
for the fork's run only, while `moot run` batches (`fast`) unless told otherwise."""

import json
import os
import sqlite3

import pytest

pytest.importorskip("llama_cpp", reason="the local extra is not installed")

from moot.models import local
from moot.scenario.load import parse
from moot.workflows.replay import fork
from moot.workflows.run import run_scenario

SCENARIO = """
name: fork-exact
protocol: {name: debate, rounds: 2, turns: sequential}
seats: {debater: {model: scripted}, judge: {model: scripted}}
dataset: {source: builtin:reading, limit: 1}
cache: false  # every call made: a cached reply would load no model
"""
LOCAL = {"judge": "local/smollm2-135m"}


def recorded_mode(db) -> str:
    """The batching mode the run recorded for its local model (`runs.models`)."""
    (models,) = sqlite3.connect(db).execute("SELECT models FROM runs").fetchone()
    return json.loads(models)["local/smollm2-135m"]["batching"]


def modes_loaded_by(action):
    """The batching modes of the local models that `action` loaded (a loaded model is kept
    per file, context, threads and mode: a new key is a model loaded in that mode)."""
    before = set(local._loaded)
    action()
    return sorted(key[3] for key in set(local._loaded) - before)


@pytest.fixture
def unset_mode(monkeypatch):
    """The environment of a user who never set MOOT_LLAMA_BATCHING (the suite sets exact)."""
    monkeypatch.delenv("MOOT_LLAMA_BATCHING", raising=False)
    # models loaded by other tests would hide what this one loads
    monkeypatch.setattr(local, "_loaded", {})


def test_a_fork_plays_local_models_in_exact_mode_and_only_for_its_run(unset_mode, tmp_path):
    parent = tmp_path / "parent.db"
    run_scenario(parse(SCENARIO), SCENARIO, out=parent)

    # the judge's verdict is played anew, by the local model, loaded in the exact mode
    assert modes_loaded_by(lambda: fork(parent, 1, models=LOCAL, out=tmp_path / "fork.db")) == ["exact"]
    assert recorded_mode(tmp_path / "fork.db") == "exact"
    assert "MOOT_LLAMA_BATCHING" not in os.environ  # taken back after the fork's run

    # the same swap in a plain run of the same scenario batches: the checks above can tell
    text = SCENARIO.replace("judge: {model: scripted}", "judge: {model: local/smollm2-135m}")
    assert modes_loaded_by(lambda: run_scenario(parse(text), text, out=tmp_path / "run.db")) == ["fast"]
    assert recorded_mode(tmp_path / "run.db") == "fast"


def test_a_mode_the_user_chose_is_kept_by_a_fork(unset_mode, monkeypatch, tmp_path):
    parent = tmp_path / "parent.db"
    run_scenario(parse(SCENARIO), SCENARIO, out=parent)
    monkeypatch.setenv("MOOT_LLAMA_BATCHING", "fast")
    assert modes_loaded_by(lambda: fork(parent, 1, models=LOCAL, out=tmp_path / "fork.db")) == ["fast"]
    assert recorded_mode(tmp_path / "fork.db") == "fast"
    assert os.environ["MOOT_LLAMA_BATCHING"] == "fast"
