"""The response cache: a re-run pays for nothing it already paid for, and says so."""

import sqlite3

from moot.models.base import GenerateRequest, GenerateResult
from moot.models.cache import ResponseCache
from moot.scenario.load import parse
from moot.workflows.run import run_scenario

SCENARIO = """
name: cached
protocol: {{name: debate, rounds: 1}}
seats:
  debater: {{model: openai/cache-test}}
  judge: {{model: scripted}}
models:
  openai/cache-test: {{params: {{mock_response: "{reply}"}}}}
dataset: {{limit: 3}}
cache_path: {path}
"""


def calls(db):
    return sqlite3.connect(db).execute(
        "SELECT cached, response, cost FROM model_calls WHERE role = 'debater' ORDER BY episode, seq"
    ).fetchall()


def test_a_rerun_is_answered_from_the_cache(tmp_path):
    text = SCENARIO.format(reply="I argue well.", path=tmp_path / "cache.db")
    run_scenario(parse(text), text, out=tmp_path / "first.db")
    summary = run_scenario(parse(text), text, out=tmp_path / "second.db")
    assert summary.cached == 6 and "(6 from the cache)" in "\n".join(summary.lines())
    first, second = calls(tmp_path / "first.db"), calls(tmp_path / "second.db")
    assert [c for c, _, _ in first] == [0] * 6 and [c for c, _, _ in second] == [1] * 6
    assert [r for _, r, _ in first] == [r for _, r, _ in second]
    assert all(cost == 0 for *_, cost in second)  # nothing was paid the second time
    # the scripted judge is never cached: there is nothing to save
    judge = sqlite3.connect(tmp_path / "second.db").execute(
        "SELECT DISTINCT cached FROM model_calls WHERE role = 'judge'").fetchall()
    assert judge == [(0,)]


def test_no_cache_calls_the_model_again(tmp_path):
    text = SCENARIO.format(reply="I argue well.", path=tmp_path / "cache.db")
    run_scenario(parse(text), text, out=tmp_path / "first.db")
    off = parse(text).model_copy(update={"cache": False})
    run_scenario(off, text, out=tmp_path / "second.db")
    assert [c for c, _, _ in calls(tmp_path / "second.db")] == [0] * 6


def test_the_key_holds_everything_that_decides_a_reply(tmp_path):
    cache = ResponseCache(tmp_path / "c.db")
    base = GenerateRequest([{"role": "user", "content": "hi"}], max_tokens=8, temperature=0.0, seed=1)
    k = cache.key("m", base)
    cache.put(k, "m", GenerateResult("hello", 3, 1, 0.01, {"A": -0.1, "B": float("-inf")}))
    hit = cache.get(k)
    assert hit.text == "hello" and hit.label_logprobs == {"A": -0.1, "B": float("-inf")}
    variants = [
        cache.key("other-model", base),
        cache.key("m", GenerateRequest(base.messages, 8, 0.7, 1)),
        cache.key("m", GenerateRequest(base.messages, 8, 0.0, 2)),
        cache.key("m", GenerateRequest(base.messages, 9, 0.0, 1)),
        cache.key("m", GenerateRequest([{"role": "user", "content": "hi!"}], 8, 0.0, 1)),
        cache.key("m", base, {"api_base": "http://127.0.0.1:9/v1"}),
    ]
    assert len(set(variants) | {k}) == len(variants) + 1
    assert all(cache.get(v) is None for v in variants)


def test_failures_are_not_cached(tmp_path):
    text = SCENARIO.format(reply="litellm.RateLimitError", path=tmp_path / "cache.db").replace(
        "{params:", "{retries: 0, params:")
    summary = run_scenario(parse(text), text, out=tmp_path / "failed.db")
    assert summary.failed == 3
    (n,) = sqlite3.connect(tmp_path / "cache.db").execute("SELECT count(*) FROM responses").fetchone()
    assert n == 0


def test_cli_no_cache_flag(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(reply="I argue well.", path=tmp_path / "cache.db"))
    for name in ("a.db", "b.db"):
        r = subprocess.run([sys.executable, "-m", "moot", "run", str(path), "--quiet", "--no-cache",
                            "--out", str(tmp_path / name)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert [c for c, _, _ in calls(tmp_path / "b.db")] == [0] * 6
