"""Planning a study before it runs: counts from the protocol, tokens from the prompts,
prices from litellm's table ("unknown", never zero, where it has none), and checks of each
seat's model; `moot run` asks before an expensive run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from moot import cli
from moot.protocols import registry
from moot.scenario.load import load_file, parse
from moot.workflows.plan import fold, make_plan
from moot.workflows.run import apply_overrides, prepare, run_scenario

ROOT = Path(__file__).resolve().parents[1]

DEBATE = """
name: plan-test
protocol: {name: debate, rounds: 3}
seats: {debater: {model: scripted, max_tokens: 50}, judge: {model: scripted}}
dataset: {source: builtin:reading, limit: 6}
concurrency: 2
"""

PRICED = """
name: priced
protocol: {name: debate, rounds: 3}
seats:
  debater: {model: openai/gpt-4o-mini, max_tokens: 200}
  judge: {model: moot-scripted/judge}
models:
  openai/gpt-4o-mini: {api_key_env: MOOT_TEST_KEY}
dataset: {source: builtin:reading}
"""


def plan_of(text, base=None):
    return make_plan(prepare(parse(text), text, base))


def test_counts_per_role_from_the_protocol():
    plan = plan_of(DEBATE)
    assert plan.episodes == 6 and plan.questions == 6 and not plan.upper_bound
    assert plan.cells == [(None, 6, "speeches x3 -> verdict")]
    calls = {role: round(u.calls) for (role, _), u in plan.uses.items()}
    assert calls == {"debater": 36, "judge": 6} and plan.calls == 42
    debater = plan.uses[("debater", "scripted")]
    assert debater.completion_tokens == 36 * 50  # every reply at its max_tokens
    assert plan.prices == {"scripted": 0.0} and plan.cost_text() == "$0.0000"
    assert plan.ok and plan.checks[0].status == "ok"


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "scenarios").glob("*.yaml")))
def test_the_plan_matches_the_run_or_bounds_it(name, tmp_path):
    scenario, text = load_file(ROOT / "scenarios" / name)
    roles = set().union(*(registry.seat_names(c.scenario.protocol) for c in scenario.cells()))
    scenario = apply_overrides(scenario, limit=3, models={r: "scripted" for r in roles})
    plan = make_plan(prepare(scenario, text, ROOT / "scenarios"))
    summary = run_scenario(scenario, text, out=tmp_path / "run.db", base=ROOT / "scenarios")
    if plan.upper_bound:
        assert plan.calls >= summary.model_calls
    else:
        assert plan.calls == summary.model_calls


def test_an_adaptive_protocol_is_an_upper_bound():
    plan = plan_of(DEBATE.replace("rounds: 3}", "rounds: 3, stop_threshold: 0.8}"))
    assert plan.upper_bound and plan.cells[0][2] == "(speeches -> verdict) x3"
    assert plan.calls == 6 * (3 * 2 + 3)
    assert "upper bound" in "\n".join(plan.lines())


def test_prices_from_litellm_and_unknown_never_zero(monkeypatch):
    import litellm

    monkeypatch.setenv("MOOT_TEST_KEY", "sk-test-not-a-key")
    plan = plan_of(PRICED)
    u = plan.uses[("debater", "openai/gpt-4o-mini")]
    assert round(u.calls) == 24 * 6
    a, b = litellm.cost_per_token(model="openai/gpt-4o-mini", prompt_tokens=round(u.prompt_tokens),
                                  completion_tokens=round(u.completion_tokens))  # fmt: skip
    assert plan.prices["openai/gpt-4o-mini"] == pytest.approx(a + b) and a + b > 0
    assert plan.prices["moot-scripted/judge"] is None
    assert plan.unknown == ["moot-scripted/judge"]
    assert plan.cost_text().startswith("unknown (no price for moot-scripted/judge); $0.0")
    text = "\n".join(plan.lines())
    assert "sk-test-not-a-key" not in text  # the key is never shown
    checks = {c.model: c for c in plan.checks}
    assert checks["openai/gpt-4o-mini"].status == "ok"
    assert "key in $MOOT_TEST_KEY" in checks["openai/gpt-4o-mini"].notes
    assert "no token probabilities: verdicts read from text" in checks["moot-scripted/judge"].warnings
    # a local server's price is unknown too
    served = PRICED.replace("{api_key_env: MOOT_TEST_KEY}", "{api_base: 'http://127.0.0.1:9/v1'}")
    assert plan_of(served).prices["openai/gpt-4o-mini"] is None


def test_checks_fail_before_money_is_spent(monkeypatch, tmp_path):
    monkeypatch.delenv("MOOT_TEST_KEY", raising=False)
    plan = plan_of(PRICED)
    checks = {c.model: c for c in plan.checks}
    assert checks["openai/gpt-4o-mini"].problems == ["$MOOT_TEST_KEY is not set"] and not plan.ok
    # a passage longer than the model's context window
    data = tmp_path / "long.jsonl"
    data.write_text(json.dumps({"question": "Q?", "options": ["x", "y"], "answer": 0,
                                "passage": "word " * 150_000}) + "\n")  # fmt: skip
    monkeypatch.setenv("MOOT_TEST_KEY", "k")
    long = PRICED.replace("source: builtin:reading", f"source: {data}")
    (problem,) = {c.model: c for c in plan_of(long).checks}["openai/gpt-4o-mini"].problems
    assert problem.startswith("context: the longest prompt is ~") and "takes 128,000" in problem
    # a judge that must read its verdicts from text
    text = DEBATE + "models: {scripted: {logprobs: false}}\n"
    assert plan_of(text).checks[0].warnings == ["no token probabilities: verdicts read from text"]


def test_fold():
    assert fold(["a", "a", "b"]) == "a x2 -> b"
    assert fold(["s", "q", "s", "q", "s", "v"]) == "(s -> q) x2 -> s -> v"
    assert fold(["c", "d", "r", "r", "r"]) == "c -> d -> r x3"


def moot(*args, **kw):
    return subprocess.run([sys.executable, "-m", "moot", *args], capture_output=True, text=True,
                          timeout=120, **kw)  # fmt: skip


def test_the_plan_command(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(DEBATE)
    r = moot("plan", str(path))
    assert r.returncode == 0, r.stderr
    assert "calls      42" in r.stdout and "cost       $0.0000" in r.stdout
    assert "rounds     speeches x3 -> verdict" in r.stdout
    assert not list(tmp_path.glob("**/*.db"))  # nothing ran
    priced = tmp_path / "p.yaml"
    priced.write_text(PRICED)
    r = moot("plan", str(priced), "--limit", "2")
    assert r.returncode == 1 and "FAIL openai/gpt-4o-mini (debater): $MOOT_TEST_KEY is not set" in r.stdout
    for args, message in [
        ((str(tmp_path / "none.yaml"),), "none.yaml"),
        ((str(path), "--limit", "0"), "--limit: must be at least 1"),
        ((str(path), "--model", "judge=nonsense-model"), "unknown model 'nonsense-model'"),
    ]:
        r = moot("plan", *args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr


EXPENSIVE = PRICED.replace("openai/gpt-4o-mini", "openai/gpt-4o").replace("max_tokens: 200", "max_tokens: 2000")


def test_run_refuses_an_expensive_run_without_a_terminal_unless_yes(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text(EXPENSIVE)
    keyed = {**os.environ, "MOOT_TEST_KEY": "sk-test-not-used"}
    r = moot("run", str(path), "--out", str(tmp_path / "e.db"), env=keyed)
    assert r.returncode == 2 and "pass --yes to run it" in r.stderr and r.stderr.count("moot: error") == 1
    assert "plan: 24 episodes, 168 model calls" in r.stderr  # the estimate was shown
    assert not (tmp_path / "e.db").exists()
    # without its key, the run stops at the key: before the estimate, the question, any call
    for extra in ((), ("--yes", "--quiet")):
        r = moot("run", str(path), "--out", str(tmp_path / "e.db"), *extra)
        assert r.returncode == 2 and "MOOT_TEST_KEY is not set" in r.stderr and "plan:" not in r.stderr
        assert r.stderr.count("\n") == 1 and not (tmp_path / "e.db").exists()
    # a cheap run just shows its estimate
    cheap = tmp_path / "c.yaml"
    cheap.write_text(DEBATE)
    r = moot("run", str(cheap), "--out", str(tmp_path / "c.db"))
    assert r.returncode == 0 and "plan: 6 episodes, 42 model calls" in r.stderr


def test_run_asks_at_a_terminal(tmp_path, monkeypatch, capsys):
    path = tmp_path / "e.yaml"
    path.write_text(EXPENSIVE)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setenv("MOOT_TEST_KEY", "sk-test-not-used")
    asked = []
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "n")
    assert cli.main(["run", str(path), "--out", str(tmp_path / "e.db")]) == 1
    assert asked and asked[0].startswith("estimated cost $") and asked[0].endswith("Run it? [y/N] ")
    assert not (tmp_path / "e.db").exists()
    # a higher limit does not ask, and the run goes on (here on litellm's offline mock)
    asked.clear()
    capsys.readouterr()
    mocked = tmp_path / "m.yaml"
    mocked.write_text(EXPENSIVE.replace("{api_key_env: MOOT_TEST_KEY}",
                                        "{api_key_env: MOOT_TEST_KEY, params: {mock_response: hi}}"))
    assert cli.main(["run", str(mocked), "--out", str(tmp_path / "m.db"), "--confirm-above", "1000"]) == 0
    assert not asked and "plan: 24 episodes" in capsys.readouterr().err


def test_rate_limits_and_budget_shape_the_plan():
    slow = DEBATE.replace("seats: {debater: {model: scripted, max_tokens: 50}, judge: {model: scripted}}",
                          "seats: {debater: {model: scripted/api, max_tokens: 50}, judge: {model: scripted}}")
    slow += "models: {scripted/api: {rpm: 60}}\nbudget: {max_cost: 2.5}\n"
    plan = plan_of(slow)
    assert plan.seconds == pytest.approx(36.0)  # 36 debater calls at 60 a minute
    assert "budget     no new episode once $2.5 are spent" in plan.lines()
