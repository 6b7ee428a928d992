"""Per-model rate limits hold across a run, and a budget stops a run cleanly."""

import sqlite3
import time

import anyio
import pytest

from moot.models.gateway import RateLimiter
from moot.scenario.load import parse
from moot.workflows.run import resume_run, run_scenario

pytestmark = pytest.mark.anyio


async def test_requests_per_minute_spread_the_calls():
    limiter = RateLimiter(rpm=1200, tpm=None)  # 20 a second, one second's worth at once
    starts = []
    t0 = time.monotonic()

    async def call():
        await limiter.acquire()
        starts.append(time.monotonic() - t0)

    async with anyio.create_task_group() as tg:
        for _ in range(60):
            tg.start_soon(call)
    # 20 may go at once, the other 40 at 20 a second: about 2 s, never much faster
    assert starts[-1] >= 1.9
    for i in range(20, 60):
        assert starts[i] >= (i - 20) / 20 - 0.05


async def test_tokens_per_minute_make_the_next_call_wait_for_a_big_one():
    limiter = RateLimiter(rpm=None, tpm=600)  # 10 tokens a second
    await limiter.acquire()
    limiter.spend(25)  # overdrawn by 15 tokens: 1.5 s to pay back
    t0 = time.monotonic()
    await limiter.acquire()
    assert 1.3 <= time.monotonic() - t0 <= 3


def test_a_run_under_an_rpm_limit_takes_as_long_as_the_limit_says(tmp_path):
    text = """
name: t
protocol: {name: debate, rounds: 1}
seats: {debater: {model: scripted}, judge: {model: scripted}}
models: {scripted: {rpm: 1800}}
dataset: {limit: 20}
concurrency: 20
"""
    t0 = time.monotonic()
    summary = run_scenario(parse(text), text, out=tmp_path / "r.db")
    assert summary.model_calls == 60
    assert time.monotonic() - t0 >= (60 - 30) / 30 - 0.1  # 30 at once, then 30 a second


def test_a_budget_stops_the_run_cleanly_and_a_resume_finishes_it(tmp_path):
    text = """
name: t
protocol: {name: debate, rounds: 2}
seats: {debater: {model: scripted}, judge: {model: scripted}}
dataset: {limit: 20}
concurrency: 2
budget: {max_tokens: 4000}
"""
    db = tmp_path / "b.db"
    summary = run_scenario(parse(text), text, out=db)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM runs").fetchone() == ("budget_spent",)
    assert 0 < summary.episodes < 20 and summary.failed == 0  # started ones finished
    tokens = conn.execute("SELECT sum(prompt_tokens + completion_tokens) FROM model_calls").fetchone()[0]
    per_episode = tokens / summary.episodes
    assert 4000 <= tokens <= 4000 + 2 * per_episode  # at most the episodes in flight over
    conn.close()
    # a later invocation gets a budget of its own and goes on where this one stopped
    while True:
        summary = resume_run(db)
        if summary.episodes == 20:
            break
    assert summary.done == 20
