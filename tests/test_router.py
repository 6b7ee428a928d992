"""A model served by several endpoints: litellm's Router spreads the calls, leaves a failing
server out for a while, and falls back; the gateway records each call once, as for any model.
The servers are real OpenAI-compatible HTTP servers on loopback (tests/fault_server.py)."""

import sqlite3
import sys
from pathlib import Path

import anyio
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fault_server import Fault, FaultServer

from moot.errors import ConfigError
from moot.models.base import GenerateRequest
from moot.models.gateway import CallTag, Model, make_api
from moot.scenario.load import parse
from moot.workflows.run import run_scenario


def scenario(endpoints: str, routing: str = "", limit: int = 6) -> str:
    return f"""
name: pool
protocol: {{name: debate, rounds: 1}}
seats: {{debater: {{model: openai/pool, max_tokens: 20}}, judge: {{model: scripted}}}}
models:
  openai/pool:
    retries: 0
    timeout: 20
    endpoints: [{endpoints}]
    {routing}
dataset: {{source: builtin:reading, limit: {limit}}}
concurrency: 2
cache: false
"""


def calls(db):
    conn = sqlite3.connect(db)
    return conn.execute("SELECT attempts, error FROM model_calls WHERE model = 'openai/pool'").fetchall()


def test_calls_are_spread_over_the_endpoints(tmp_path):
    with FaultServer() as one, FaultServer() as two:
        text = scenario(f"{{api_base: {one.api_base}}}, {{api_base: {two.api_base}}}", limit=8)
        summary = run_scenario(parse(text), text, out=tmp_path / "run.db")
        assert summary.done == 8
        assert len(one) + len(two) == 16 and len(one) >= 2 and len(two) >= 2
    assert calls(tmp_path / "run.db") == [(1, None)] * 16


def test_a_failing_endpoint_is_cooled_down_and_its_calls_go_elsewhere(tmp_path):
    with FaultServer(lambda i, r: Fault.http(503)) as bad, FaultServer() as good:
        text = scenario(
            f"{{api_base: {bad.api_base}}}, {{api_base: {good.api_base}}}",
            "routing: {allowed_fails: 1, cooldown: 60}",
        )
        summary = run_scenario(parse(text), text, out=tmp_path / "run.db")
        assert summary.done == 6 and summary.failed == 0
        # each call that met the failing server went on to the other one within its attempt
        assert calls(tmp_path / "run.db") == [(1, None)] * 12
        # it is left out after its allowed failure (2 requests), but calls already on their
        # way (up to 4 at once here) may meet it too
        assert len(good) == 12 and 1 <= len(bad) <= 2 + 4


def test_the_router_reports_the_endpoint_it_left_out():
    with FaultServer(lambda i, r: Fault.http(503)) as bad, FaultServer() as good:
        cfg = parse(scenario(f"{{api_base: {bad.api_base}}}, {{api_base: {good.api_base}}}",
                             "routing: {allowed_fails: 0, cooldown: 60}"))  # fmt: skip
        settings = cfg.model_for("openai/pool")
        api = make_api("openai/pool", settings)
        model = Model("openai/pool", api, settings, _Sink())
        request = GenerateRequest([{"role": "user", "content": "hi"}], max_tokens=5)
        for i in range(40):  # until the shuffle has sent one call to the failing server
            result, _ = anyio.run(model.generate, request, CallTag(i, "debater", "debater"))
            assert result.text
            if len(bad):
                break
        assert api.cooling_down() == [bad.api_base]
        for i in range(6):
            anyio.run(model.generate, request, CallTag(i, "debater", "debater"))
        assert len(bad) == 1
        assert api.describe()["endpoints"][0]["api_base"] == bad.api_base


def test_fallback_endpoints_answer_only_when_the_others_fail(tmp_path):
    with FaultServer() as main, FaultServer() as spare:
        text = scenario(f"{{api_base: {main.api_base}}}, {{api_base: {spare.api_base}, fallback: true}}")
        run_scenario(parse(text), text, out=tmp_path / "a.db")
        assert len(main) == 12 and len(spare) == 0
    with FaultServer(lambda i, r: Fault.http(503)) as main, FaultServer() as spare:
        text = scenario(f"{{api_base: {main.api_base}}}, {{api_base: {spare.api_base}, fallback: true}}")
        summary = run_scenario(parse(text), text, out=tmp_path / "b.db")
        assert summary.done == 6 and len(spare) == 12
    assert calls(tmp_path / "b.db") == [(1, None)] * 12


@pytest.mark.parametrize(
    "models, message",
    [
        ("{api_base: http://x, endpoints: [{api_base: http://y}]}", "per endpoint"),
        ("{routing: {strategy: least-busy}}", "applies to a model with endpoints"),
        ("{endpoints: [{api_base: http://y, fallback: true}]}", "must not be a fallback"),
        ("{endpoints: [{api_base: http://y, weight: 0}]}", "greater than 0"),
        ("{endpoints: []}", "at least 1"),
    ],
)
def test_endpoint_settings_are_checked(models, message):
    text = f"name: x\nmodels: {{openai/pool: {models}}}\n"
    with pytest.raises(ConfigError, match=message):
        parse(text)


class _Sink:
    def next_call_seq(self, episode: int) -> int:
        return 0

    async def publish(self, event) -> None:
        pass


@pytest.mark.parametrize("strategy", ["least-busy", "latency-based-routing", "usage-based-routing-v2"])
def test_every_routing_strategy_runs(tmp_path, strategy):
    with FaultServer() as one, FaultServer() as two:
        text = scenario(f"{{api_base: {one.api_base}}}, {{api_base: {two.api_base}}}",
                        f"routing: {{strategy: {strategy}}}", limit=2)  # fmt: skip
        summary = run_scenario(parse(text), text, out=tmp_path / "run.db")
        assert summary.done == 2 and len(one) + len(two) == 4
