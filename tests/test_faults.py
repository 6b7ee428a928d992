"""Provider faults through the real network path: moot -> litellm -> HTTP -> an
OpenAI-compatible server on 127.0.0.1 (tests/fault_server.py) that fails on a schedule.

Every run is a real moot scenario (run_scenario) whose seats use `openai/fault-*` models
pointed at the fault server; what happened is read back with SQL from the run database and
compared with the server's own log of requests. No traffic leaves 127.0.0.1: a guard on
socket connections fails any test that tries.
"""

from __future__ import annotations

import email.utils
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import anyio
import pytest
from fault_server import Fault, FaultServer, Request
from helpers import RecordingSink, free_port

# Sets LITELLM_LOCAL_MODEL_COST_MAP before litellm is imported (no price-file download).
import moot.models.litellm_api  # noqa: F401
from moot.models.base import GenerateRequest
from moot.models.gateway import CallTag, Model, ModelSettings, make_api
from moot.scenario.load import parse
from moot.workflows.run import prepare, run_scenario

SECRET = "sk-fault-SECRET-123"
KEY_ENV = "MOOT_FAULT_KEY"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


# -- the environment: the key, a loopback-only network, litellm warmed up -------------------


def _guard(mp: pytest.MonkeyPatch) -> None:
    """Any connection (or name lookup) beyond the loopback interface fails loudly."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0] if isinstance(address, tuple) else address
            if host not in LOOPBACK:
                raise AssertionError(f"network access beyond 127.0.0.1 attempted: {address!r}")

    def connect(self, address):
        check(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        check(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in LOOPBACK:
            raise AssertionError(f"name lookup beyond 127.0.0.1 attempted: {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    mp.setattr(socket.socket, "connect", connect)
    mp.setattr(socket.socket, "connect_ex", connect_ex)
    mp.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(scope="module", autouse=True)
def environment():
    """Module-wide, so module-scoped runs get it too. Warms litellm up with one healthy call:
    its first call in a process spends most of a second on lazy imports, which would eat the
    1 s timeout of the first attempt and make attempt counts depend on test order."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_ENV, SECRET)
        mp.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        _guard(mp)
        with FaultServer() as server:
            settings = ModelSettings(api_base=server.api_base, api_key_env=KEY_ENV, timeout=60, retries=0)
            model = Model("openai/fault-test", make_api("openai/fault-test", settings), settings, RecordingSink())
            request = GenerateRequest([{"role": "user", "content": "warm up"}], max_tokens=4, answer_labels=("A", "B"))
            result, _ = anyio.run(model.generate, request, CallTag(0, "judge", "judge"))
            assert result.label_logprobs is not None and len(server) == 1
        yield


def scenario_text(api_base: str, *, limit: int, concurrency: int = 1, turns: str = "sequential",
                  judge: str = "openai/fault-test", retries: int = 3, extra_models: str = "") -> str:
    models = f"""
  openai/fault-test:
    api_base: {api_base}
    api_key_env: {KEY_ENV}
    retries: {retries}
    backoff: 0.01
    timeout: 1.0
"""
    return f"""
name: faults
protocol: {{name: debate, rounds: 1, turns: {turns}}}
seats:
  debater: {{model: openai/fault-test, max_tokens: 40}}
  judge: {{model: {judge}}}
dataset: {{source: builtin:reading, limit: {limit}, shuffle_seed: 5}}
concurrency: {concurrency}
seed: 11
cache: false  # every call goes over the wire: these tests are about the network path
models:{models}{extra_models}"""


def run(text: str, path: Path):
    return run_scenario(parse(text), text, out=path)


def db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


def call_key(messages: list[dict], seed: object) -> tuple[str, object]:
    """What identifies one model call on the wire: its last message and its seed."""
    return (messages[-1]["content"], seed)


def requests_by_call(server: FaultServer) -> dict[tuple[str, object], list[Request]]:
    out: dict[tuple[str, object], list[Request]] = defaultdict(list)
    for r in server.requests:
        out[call_key(r.body["messages"], r.body.get("seed"))].append(r)
    return out


def calls(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM model_calls ORDER BY started_at").fetchall()


def key_of(row: sqlite3.Row) -> tuple[str, object]:
    return (row["prompt"], json.loads(row["params"])["seed"])


# -- a mix of faults, each followed by success ----------------------------------------------

# One episode at a time, sequential speeches: requests arrive strictly one after another, so
# the n-th request is always the same call's same attempt. 3 episodes x 3 calls.
MIX = [
    Fault.http(429, retry_after=1),  # ep 0, debater_a
    None,
    Fault.http(500),  # ep 0, debater_b
    None,
    Fault.malformed(),  # ep 0, judge: 200 with a broken JSON body
    None,
    Fault.drop(),  # ep 1, debater_a: connection closed, no response
    None,
    Fault.slow(3.0),  # ep 1, debater_b: longer than the 1 s timeout
    None,
    Fault.http(503),  # ep 1, judge
    None,
    Fault.http(502),  # ep 2, debater_a: two faults in a row
    Fault.drop(),
    None,
]  # ep 2's debater_b and judge: no fault


@pytest.fixture(scope="module")
def mix_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("mix") / "run.db"
    with FaultServer(MIX) as server:
        t0 = time.perf_counter()
        summary = run(scenario_text(server.api_base, limit=3), path)
        wall = time.perf_counter() - t0
    return summary, path, server, wall


def test_a_mix_of_faults_each_followed_by_success_completes_the_run(mix_run):
    summary, path, server, wall = mix_run
    assert not server.exhausted and wall < 20
    assert summary.episodes == 3 and summary.done == 3 and summary.failed == 0, summary.errors
    conn = db(path)
    assert conn.execute("SELECT status FROM runs").fetchone()[0] == "done"
    assert [tuple(r) for r in conn.execute("SELECT status, stop_reason, error FROM episodes")] == [
        ("done", "completed", None)
    ] * 3
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 9
    rows = calls(conn)
    assert len(rows) == 9 and all(r["error"] is None and r["response"] and not r["cached"] for r in rows)
    # the schedule, in order: the attempts each call needed
    assert [r["attempts"] for r in rows] == [2, 2, 2, 2, 2, 2, 3, 1, 1]
    assert sum(r["attempts"] for r in rows) == len(server) == len(MIX) + 2  # + the last 2 calls
    # every fault served, and a retry after each one
    assert [r.fault.label() if r.fault else "ok" for r in server.requests] == [
        f.label() if f else "ok" for f in MIX
    ] + ["ok", "ok"]
    # the judge read the server's token probabilities, also after the malformed body
    verdicts = conn.execute("SELECT method, parse_status, choice, probabilities FROM verdicts").fetchall()
    assert len(verdicts) == 3
    for v in verdicts:
        assert (v["method"], v["parse_status"], v["choice"]) == ("token_logprobs", "ok", 1)
        assert json.loads(v["probabilities"]) == pytest.approx([0.2, 0.8])
    # tokens from the server's usage; an unknown model's price is unknown, not zero
    assert all(r["prompt_tokens"] > 0 and r["completion_tokens"] > 0 for r in rows)
    assert all(r["cost"] is None for r in rows)


def test_attempts_match_the_requests_the_server_saw(mix_run):
    """litellm's (and the OpenAI SDK's) own retries are off: each attempt is one request."""
    _, path, server, _ = mix_run
    by_call = requests_by_call(server)
    rows = calls(db(path))
    assert {key_of(r) for r in rows} == set(by_call)
    for row in rows:
        seen = by_call[key_of(row)]
        assert row["attempts"] == len(seen), dict(row)
        assert [r.fault is not None for r in seen] == [True] * (len(seen) - 1) + [False]
        assert seen[-1].outcome == "ok"
        faults = [r.fault.label() for r in seen[:-1]]
        assert (row["attempts"] > 1) == bool(faults)


def test_the_retry_after_a_429_waits_at_least_retry_after(mix_run):
    _, _, server, _ = mix_run
    first, retry = server.requests[0], server.requests[1]
    assert first.fault == Fault.http(429, retry_after=1)
    assert call_key(first.body["messages"], first.body["seed"]) == call_key(retry.body["messages"], retry.body["seed"])
    # from the moment the 429 was fully sent to the arrival of the retry
    assert retry.received - first.finished >= 1.0
    # the other faults were retried after the 0.01 s backoff, not after a second
    quick = [(server.requests[i], server.requests[i + 1]) for i in (2, 4, 6, 10, 12, 13)]
    assert all(b.received - a.finished < 0.9 for a, b in quick)
    # a timed-out attempt is abandoned after the 1 s timeout, not the server's 3 s
    slow, after = server.requests[8], server.requests[9]
    assert 0.9 <= after.received - slow.received < 2.5


def test_requests_carry_the_key_only_in_the_authorization_header(mix_run):
    _, _, server, _ = mix_run
    for r in server.requests:
        assert r.method == "POST" and r.path == "/v1/chat/completions"
        assert r.headers["authorization"] == f"Bearer {SECRET}"
        assert SECRET.encode() not in r.raw and SECRET not in r.path
        assert all(SECRET not in v for k, v in r.headers.items() if k != "authorization")
        assert r.body["model"] == "fault-test"
    judging = [r for r in server.requests if r.judging]
    assert len(judging) == 5 and all(r.body["top_logprobs"] == 20 for r in judging)


# -- a model that always fails -----------------------------------------------------------


def always_500_for_broken(index: int, request: Request) -> Fault | None:
    return Fault.http(500, message="injected fault") if request.body.get("model") == "fault-broken" else None


@pytest.fixture(scope="module")
def broken_judge_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("broken") / "run.db"
    with FaultServer(always_500_for_broken) as server:
        extra = f"""
  openai/fault-broken:
    api_base: {server.api_base}
    api_key_env: {KEY_ENV}
    retries: 2
    backoff: 0.01
    timeout: 1.0
"""
        text = scenario_text(server.api_base, limit=2, concurrency=2, turns="simultaneous",
                             judge="openai/fault-broken", extra_models=extra)
        summary = run(text, path)
    return summary, path, server


def test_a_model_that_always_fails_fails_its_episodes_and_the_run_finishes(broken_judge_run):
    summary, path, server = broken_judge_run
    assert summary.episodes == 2 and summary.failed == 2 and summary.done == 0
    assert all("InternalServerError" in e for e in summary.errors)
    conn = db(path)
    assert conn.execute("SELECT status FROM runs").fetchone()[0] == "done"
    for ep in conn.execute("SELECT * FROM episodes"):
        assert (ep["status"], ep["stop_reason"]) == ("failed", "model_error")
        assert "openai/fault-broken" in ep["error"] and "InternalServerError" in ep["error"]
    judge = conn.execute("SELECT * FROM model_calls WHERE role = 'judge'").fetchall()
    assert len(judge) == 2
    assert all(r["attempts"] == 3 and r["response"] is None and "InternalServerError" in r["error"] for r in judge)
    # the debaters' calls went through, and their speeches are stored
    debaters = conn.execute("SELECT attempts, error FROM model_calls WHERE role = 'debater'").fetchall()
    assert [tuple(r) for r in debaters] == [(1, None)] * 4
    assert conn.execute("SELECT count(*) FROM messages WHERE role = 'debater'").fetchone()[0] == 4
    assert conn.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 0
    # the server saw exactly 3 requests per judge call, 1 per debater call
    by_call = requests_by_call(server)
    for row in judge:
        assert [r.outcome for r in by_call[key_of(row)]] == ["http 500"] * 3
    assert len(server) == 2 * 3 + 4


def test_the_stored_error_names_the_http_status(broken_judge_run):
    _, path, _ = broken_judge_run
    conn = db(path)
    errors = [r[0] for r in conn.execute("SELECT error FROM model_calls WHERE role = 'judge'")]
    errors += [r[0] for r in conn.execute("SELECT error FROM episodes")]
    assert errors and all("500" in e for e in errors), errors


def test_one_episode_that_always_fails_leaves_the_others_alone(tmp_path):
    text = scenario_text("http://127.0.0.1:1/v1", limit=4)
    victim = prepare(parse(text), text, None).questions[1].question  # episode 1's question

    def poison(index: int, request: Request) -> Fault | None:
        return Fault.http(503) if any(victim in m["content"] for m in request.body["messages"]) else None

    with FaultServer(poison) as server:
        text = scenario_text(server.api_base, limit=4, concurrency=4, turns="simultaneous", retries=1)
        summary = run(text, tmp_path / "run.db")
    assert (summary.episodes, summary.done, summary.failed) == (4, 3, 1)
    conn = db(tmp_path / "run.db")
    assert conn.execute("SELECT status FROM runs").fetchone()[0] == "done"
    rows = conn.execute("SELECT id, question, status, stop_reason FROM episodes ORDER BY id").fetchall()
    assert [(r["status"], r["stop_reason"]) for r in rows] == [
        ("done", "completed"), ("failed", "model_error"), ("done", "completed"), ("done", "completed")
    ]
    assert rows[1]["question"] == victim
    failed = conn.execute("SELECT attempts, error FROM model_calls WHERE episode = 1 AND error IS NOT NULL").fetchall()
    assert failed and all(r["attempts"] == 2 and "ServiceUnavailableError" in r["error"] for r in failed)
    ok = conn.execute("SELECT attempts, error FROM model_calls WHERE episode != 1").fetchall()
    assert len(ok) == 9 and all(tuple(r) == (1, None) for r in ok), [tuple(r) for r in ok]
    assert conn.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 3


# -- the key never lands anywhere ---------------------------------------------------------


def everything_in(path: Path) -> str:
    """Every row of every table, as text, and the raw bytes of the database's files."""
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert {"runs", "episodes", "messages", "model_calls", "verdicts"} <= set(tables)
    parts = [repr(conn.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables]
    parts += list(conn.iterdump())
    conn.close()
    for f in path.parent.glob(path.name + "*"):  # the .db, and any -wal / -shm left
        parts.append(f.read_bytes().decode("latin-1"))
    return "\n".join(parts)


def echo_key(message: str) -> str:
    return f"{message}: Incorrect API key provided: {SECRET}. Authorization: Bearer {SECRET}"


# A server that echoes the key back in its errors (as some proxies do), on every kind of
# fault moot retries and on one it does not (401).
LEAKY = [
    Fault.http(401, message=echo_key("unauthorized")),  # ep 0, debater_a: not retried, ep 0 fails
    Fault.http(429, retry_after=0, message=echo_key("slow down")),  # ep 1, debater_a
    None,
    Fault.http(500, message=echo_key("oops")),  # ep 1, debater_b
    Fault.malformed(),
    None,
    Fault.drop(),  # ep 1, judge
    Fault.slow(3.0),
    Fault.http(503, message=echo_key("busy")),  # 3 faults, retries 3: still fine
    None,
]


def test_the_api_key_never_reaches_the_database_or_the_output(tmp_path, capfd, caplog):
    path = tmp_path / "run.db"
    with FaultServer(LEAKY) as server:
        summary = run(scenario_text(server.api_base, limit=2), path)
    assert (summary.done, summary.failed) == (1, 1)
    assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in server.requests)  # it was used
    text = everything_in(path)
    assert "Incorrect API key provided" in text  # the echoed errors were stored ...
    assert SECRET not in text and "fault-SECRET" not in text  # ... without the key
    assert KEY_ENV in text  # the variable's name is recorded, as configured
    conn = db(path)
    (error,) = conn.execute("SELECT error FROM model_calls WHERE error IS NOT NULL").fetchone()
    assert "AuthenticationError" in error and "***" in error
    # ep 0 stops at its first call; ep 1's three calls needed 2, 3 and 4 attempts
    assert [r["attempts"] for r in calls(conn)] == [1, 2, 3, 4]
    assert len(server) == 10
    shown = "\n".join(summary.lines() + summary.errors)
    out, err = capfd.readouterr()
    for place in (shown, out, err, caplog.text):
        assert SECRET not in place and "fault-SECRET" not in place


# -- Retry-After as an HTTP date ------------------------------------------------------------


def test_retry_after_as_an_http_date_is_honoured():
    """RFC 9110 allows an HTTP date as well as seconds."""
    def schedule(index: int, request: Request) -> Fault | None:
        if index == 0:
            return Fault.http(429, retry_after=email.utils.formatdate(time.time() + 2, usegmt=True))
        return None

    with FaultServer(schedule) as server:
        settings = ModelSettings(api_base=server.api_base, api_key_env=KEY_ENV, retries=2, backoff=0.01, timeout=1.0)
        model = Model("openai/fault-test", make_api("openai/fault-test", settings), settings, RecordingSink())
        request = GenerateRequest([{"role": "user", "content": "date"}], max_tokens=8)
        anyio.run(model.generate, request, CallTag(0, "debater_a", "debater"))
    first, retry = server.requests[:2]
    # the date has a 1 s resolution and was 2 s ahead: at least 1 s remained to wait
    assert retry.received - first.finished >= 1.0


# -- a local server without a key, as the README shows ----------------------------------------


def test_a_local_server_needs_no_key(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FaultServer() as server:
        text = f"""
name: no-key
protocol: {{name: debate, rounds: 1}}
seats:
  debater: {{model: openai/local-model, max_tokens: 20}}
  judge: {{model: openai/local-model}}
dataset: {{source: builtin:reading, limit: 1}}
cache: false
models:
  openai/local-model: {{api_base: "{server.api_base}", retries: 1, backoff: 0.01, timeout: 5}}
"""
        summary = run(text, tmp_path / "run.db")
    assert (summary.done, summary.failed) == (1, 0), summary.errors
    assert len(server) == 3


# -- optional: llama.cpp's own OpenAI-compatible server, happy path -------------------------


def test_a_debate_against_llama_cpp_server(tmp_path):
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed")
    from moot.errors import ConfigError
    from moot.models.local import model_path

    try:
        gguf = model_path("local/smollm2-135m")
    except ConfigError as exc:
        pytest.skip(str(exc))
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    log = open(tmp_path / "server.log", "wb")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop(KEY_ENV, None)  # the server checks no key; moot must send one (test_a_local_server_needs_no_key)
    proc = subprocess.Popen(
        [sys.executable, "-m", "moot.models.llama_server", "--model", str(gguf), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "4096", "--model_alias", "smollm2"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text(errors="replace")[-2000:]
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "llama.cpp server not ready after 60 s"
            time.sleep(0.25)

        text = f"""
name: llama-server
protocol: {{name: debate, rounds: 1}}
seats:
  debater: {{model: openai/smollm2, max_tokens: 24}}
  judge: {{model: openai/smollm2, max_tokens: 4}}
dataset: {{source: builtin:reading, limit: 1}}
cache: false
models:
  openai/smollm2: {{api_base: "{base}", api_key_env: {KEY_ENV}, retries: 1, backoff: 0.1, timeout: 60}}
"""
        summary = run(text, tmp_path / "run.db")
        assert (summary.episodes, summary.done, summary.failed) == (1, 1, 0), summary.errors
        conn = db(tmp_path / "run.db")
        rows = calls(conn)
        assert len(rows) == 3 and all(r["error"] is None and r["attempts"] == 1 for r in rows)
        (verdict,) = conn.execute("SELECT * FROM verdicts").fetchall()
        (judge,) = [r for r in rows if r["role"] == "judge"]

        # The same request again (greedy, so the same reply): did the server give token
        # probabilities with an answer letter among the reply's tokens?
        params = json.loads(judge["params"])
        replay = {
            "model": "smollm2", "max_tokens": params["max_tokens"], "temperature": params["temperature"],
            "seed": params["seed"], "logprobs": True, "top_logprobs": 20,
            "messages": [{"role": "system", "content": judge["system"]}, {"role": "user", "content": judge["prompt"]}],
        }
        req = urllib.request.Request(f"{base}/chat/completions", json.dumps(replay).encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            choice = json.load(r)["choices"][0]
        assert choice["message"]["content"] == judge["response"]
        tokens = [t["token"].strip() for t in ((choice.get("logprobs") or {}).get("content") or [])]
        if any(t in ("A", "B") for t in tokens):
            assert verdict["method"] == "token_logprobs" and verdict["parse_status"] == "ok"
            assert sum(json.loads(verdict["probabilities"])) == pytest.approx(1)
        else:
            # no probabilities at a letter: the text decides, or the verdict is invalid
            assert verdict["method"] in ("text", "none")
            assert (verdict["method"] == "text") == (verdict["parse_status"] == "ok")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


# -- a missing or refused key fails fast ------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_fails_the_call_after_one_attempt(status):
    """Authentication is not a passing fault: retrying only delays the error."""
    from moot.models.gateway import ModelCallFailed

    with FaultServer([Fault.http(status, message="Invalid API key for this project")] * 5) as server:
        settings = ModelSettings(api_base=server.api_base, api_key_env=KEY_ENV, retries=4, backoff=0.01)
        model = Model("openai/fault-test", make_api("openai/fault-test", settings), settings, RecordingSink())
        request = GenerateRequest([{"role": "user", "content": "hi"}], max_tokens=4)
        with pytest.raises(ModelCallFailed) as failed:
            anyio.run(model.generate, request, CallTag(0, "debater_a", "debater"))
        assert len(server) == 1
    assert f"HTTP {status}" in failed.value.error and "Invalid API key for this project" in failed.value.error


def test_a_scenario_whose_key_is_not_set_is_refused_at_once(tmp_path):
    """Before the first episode (and before litellm is imported): one line, exit 2, no file."""
    path = tmp_path / "keyed.yaml"
    path.write_text("""
name: keyed
protocol: {name: debate, rounds: 1}
seats: {debater: {model: anthropic/claude-3-5-haiku-latest}, judge: {model: scripted}}
dataset: {source: builtin:reading, limit: 1}
""")
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    # `moot run` as typed, with a look at what it imported before it stopped
    code = ("import sys; from moot.cli import main; rc = main(sys.argv[1:]); "
            "print('litellm' in sys.modules); sys.exit(rc)")  # fmt: skip
    started = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code, "run", str(path), "--out", str(tmp_path / "k.db")],
                       capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    took = time.perf_counter() - started
    assert r.returncode == 2 and r.stdout == "False\n", r.stderr
    assert r.stderr.splitlines() == [
        "moot: error: model anthropic/claude-3-5-haiku-latest: environment variable "
        "ANTHROPIC_API_KEY is not set (export it, name another with "
        "models.anthropic/claude-3-5-haiku-latest.api_key_env, or give the model an api_base)"
    ]
    assert not list(tmp_path.glob("*.db*"))
    assert took < 3, took  # no retries (they took 11 s), no litellm import (2 s); ~0.7 s measured


def test_the_key_table_agrees_with_litellm():
    """moot names a provider's key without importing litellm; litellm must agree."""
    from moot.models.keys import PROVIDER_KEYS
    from moot.models.litellm_api import _import_litellm

    litellm = _import_litellm()
    with pytest.MonkeyPatch.context() as mp:
        for env in PROVIDER_KEYS.values():
            mp.delenv(env, raising=False)
        for provider, env in PROVIDER_KEYS.items():
            missing = litellm.validate_environment(model=f"{provider}/some-model")["missing_keys"]
            assert env in missing, (provider, missing)
