"""One study on a Ray cluster: the same run database as a local run, whatever dies on the way.

The tests share one local Ray cluster of 2 CPUs, started once (a few seconds, ~10 processes).
Scripted models are deterministic, so a run on Ray must store exactly the episodes,
messages, calls and verdicts of a local run; only times and row ids may differ.
"""

import asyncio
import inspect
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from moot.cli import main
from moot.scenario.load import parse
from moot.workflows.run import resume_run, run_scenario

ray = pytest.importorskip("ray")

from moot.executors.ray_exec import RayOptions, resume_run_ray, run_scenario_ray  # noqa: E402

SCENARIO = """
name: spread
protocol: {name: debate, rounds: 3}
seats: {debater: {model: scripted/slow}, judge: {model: scripted}}
models: {scripted/slow: {latency: 0.02}}
dataset: {source: builtin:reading, limit: 24}
concurrency: 4
"""

SWEEP = """
name: grid
protocol: {name: debate, rounds: 2}
seats: {debater: {model: scripted}, judge: {model: scripted}}
dataset: {source: builtin:reading, limit: 12, both_orders: true}
sweep: {protocol.rounds: [1, 2], seed: [1, 2]}
"""


@pytest.fixture(scope="session")
def cluster():
    """A local cluster for the whole session: 2 CPUs, no dashboard, no auth token file."""
    os.environ["RAY_AUTH_MODE"] = "disabled"
    info = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield info
    ray.shutdown()


def snapshot(db: Path):
    """A run's content, without times or row ids."""
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    out = (
        conn.execute(
            "SELECT id, question_id, answers, correct, status, stop_reason, outcome, cell"
            " FROM episodes ORDER BY id").fetchall(),
        conn.execute(
            "SELECT episode, seq, round, phase, seat, side, content, audience, call_seq, quotes"
            " FROM messages ORDER BY episode, seq").fetchall(),
        conn.execute(
            "SELECT episode, seq, seat, model, system, prompt, params, response, prompt_tokens,"
            " completion_tokens FROM model_calls ORDER BY episode, seq").fetchall(),
        conn.execute(
            "SELECT episode, judge, round, choice, probabilities, correct, raw"
            " FROM verdicts ORDER BY episode, id").fetchall(),
        conn.execute("SELECT name, position, params, config FROM cells ORDER BY position").fetchall(),
    )  # fmt: skip
    conn.close()
    return out


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    db = tmp_path_factory.mktemp("local") / "local.db"
    run_scenario(parse(SCENARIO), SCENARIO, out=db)
    return snapshot(db)


def test_a_ray_run_stores_what_a_local_run_stores(cluster, tmp_path):
    local, spread = tmp_path / "local.db", tmp_path / "ray.db"
    run_scenario(parse(SWEEP), SWEEP, out=local)
    summary = run_scenario_ray(parse(SWEEP), SWEEP, out=spread, options=RayOptions(chunk=5))
    assert summary.episodes == 4 * 24 and summary.done == 4 * 24
    assert [c[0] for c in summary.cells] == [c[0] for c in snapshot(local)[4]]
    assert snapshot(spread) == snapshot(local)
    conn = sqlite3.connect(spread)
    assert conn.execute("SELECT status FROM runs").fetchone() == ("done",)


def chunk_workers() -> list[int]:
    """Ray worker processes running a chunk of episodes now (their title names the task)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "cmdline").read_bytes().startswith(b"ray::moot-chunk"):
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def done_count(db: Path) -> int:
    if not db.exists():  # connecting would make it, and a run would take it for its own
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT count(*) FROM episodes WHERE status = 'done'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's workers through /proc")
def test_a_killed_worker_loses_only_its_running_episodes(cluster, tmp_path, local_run, caplog):
    db = tmp_path / "run.db"
    killed: list[int] = []

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            pids = chunk_workers()
            if pids and done_count(db) >= 4:  # in the middle of the run
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    slower = SCENARIO.replace("latency: 0.02", "latency: 0.05")  # the same replies, later
    with caplog.at_level(logging.WARNING, logger="moot.ray"):
        summary = run_scenario_ray(parse(slower), slower, out=db, options=RayOptions(chunk=12))
    killer.join()
    assert killed, "no worker was killed"
    assert "a worker died" in caplog.text and "run again elsewhere" in caplog.text
    # the chunk's episodes that finished before the kill were kept, not run twice
    assert summary.done == 24 and summary.model_calls == len(local_run[2])
    assert snapshot(db) == local_run


def test_a_local_run_killed_with_kill_9_resumes_on_ray(cluster, tmp_path, local_run):
    db = tmp_path / "run.db"
    (tmp_path / "s.yaml").write_text(SCENARIO)
    proc = subprocess.Popen(
        [sys.executable, "-m", "moot", "run", str(tmp_path / "s.yaml"), "--out", str(db), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while done_count(db) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 5 <= done_count(db) < 24
    summary = resume_run_ray(db)
    assert summary.done == 24
    assert snapshot(db) == local_run


def test_a_ray_driver_killed_with_kill_9_resumes_locally(cluster, tmp_path, local_run):
    """The driver dies (the cluster lives on): its database resumes in this process."""
    db = tmp_path / "run.db"
    (tmp_path / "s.yaml").write_text(SCENARIO)
    address = ray.get_runtime_context().gcs_address
    proc = subprocess.Popen(
        [sys.executable, "-m", "moot", "run", str(tmp_path / "s.yaml"), "--out", str(db),
         "--quiet", "--executor", "ray", "--address", address],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while done_count(db) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    assert 4 <= done_count(db) < 24, err
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM runs").fetchone() == ("running",)
    conn.close()
    summary = resume_run(db)
    assert summary.done == 24
    assert snapshot(db) == local_run


def test_model_limits_hold_across_the_cluster(cluster, tmp_path):
    """max_concurrency 2 means two calls in flight on the whole cluster, not two per worker."""
    sys.path.insert(0, str(Path(__file__).parent))
    from fault_server import Fault, FaultServer

    with FaultServer(lambda i, r: Fault.slow(0.15), max_requests=400) as server:
        text = f"""
name: limited
protocol: {{name: debate, rounds: 1}}
seats: {{debater: {{model: openai/limited, max_tokens: 20}}, judge: {{model: scripted}}}}
models: {{openai/limited: {{api_base: {server.api_base}, max_concurrency: 2, timeout: 30}}}}
dataset: {{source: builtin:reading, limit: 8}}
concurrency: 8
cache: false
"""
        summary = run_scenario_ray(parse(text), text, out=tmp_path / "run.db", options=RayOptions(chunk=4))
        assert summary.done == 8 and len(server) == 16
        spans = sorted((r.received, r.finished) for r in server.requests)
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    assert peak == 2


def test_the_cli_runs_on_ray(cluster, tmp_path, capsys):
    (tmp_path / "s.yaml").write_text(SWEEP)
    address = ray.get_runtime_context().gcs_address
    code = main(["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "r.db"), "--quiet",
                 "--executor", "ray", "--address", address, "--limit", "2"])  # fmt: skip
    assert code == 0
    assert "16 done" in capsys.readouterr().out


async def parked(*tasks: asyncio.Task) -> None:
    """Until every task has started and is suspended, waiting on something (or one is done,
    for the test to say what it thinks of that). Bounded, in case neither ever happens."""
    async with asyncio.timeout(30):
        while not any(t.done() for t in tasks) and not all(
            inspect.getcoroutinestate(t.get_coro()) == inspect.CORO_SUSPENDED for t in tasks
        ):
            await asyncio.sleep(0)


def test_a_dead_holders_slots_are_given_back():
    """The limits actor's bookkeeping, without Ray: the driver returns a dead worker's slots."""
    from moot.executors.ray_limits import Limits

    async def scenario():
        limits = Limits(2, None, None)
        await limits.acquire("dead")
        await limits.acquire("dead")
        asked = asyncio.create_task(limits.acquire("dead"))  # still waiting when it died
        waiting = asyncio.create_task(limits.acquire("alive"))
        await parked(asked, waiting)  # both are waiting for a slot
        assert not asked.done() and not waiting.done()  # both slots are held by a worker that died
        await limits.release_all("dead")
        await asyncio.wait_for(waiting, 30)  # bounds only a hang: no time needs to pass
        await asyncio.wait_for(asked, 30)  # answered, with no slot
        await limits.release("alive")
        await limits.release("alive")  # more than it holds: ignored
        return await limits.stats()

    assert asyncio.run(scenario()) == {"in_use": 0, "peak": 2, "holders": 0}


def test_the_limits_actor_has_no_slot_for_a_retired_holder():
    from moot.executors.ray_limits import Limits

    async def scenario():
        limits = Limits(1, None, None)
        await limits.release_all("gone")
        await limits.acquire("gone")
        return await limits.stats()

    assert asyncio.run(scenario())["in_use"] == 0


def test_busy_workers_hand_slots_on_without_round_trips():
    """Under load a worker passes a finished call's slot to its next call (a few times, then
    back to the actor): the limit holds across workers, with far fewer round trips."""
    from moot.executors.ray_limits import Limits, SharedSlots

    sent: list[asyncio.Future] = []  # every request to the actor

    class Method:
        def __init__(self, fn):
            self.fn = fn

        def remote(self, *args):
            request = asyncio.ensure_future(self.fn(*args))  # runs whether awaited or not
            sent.append(request)
            return request

    class Actor:
        def __init__(self, limits):
            self.acquire, self.release = Method(limits.acquire), Method(limits.release)

    async def scenario():
        limits = Limits(3, None, None)
        workers = [SharedSlots(Actor(limits), f"w{i}", reuse=8) for i in range(2)]
        now = peak = 0

        async def call(slots):
            nonlocal now, peak
            async with slots:
                now += 1
                peak = max(peak, now)
                await asyncio.sleep(0.001)
                now -= 1

        async with asyncio.timeout(30):  # a slot lost for good would hang it
            await asyncio.gather(*(call(w) for w in workers for _ in range(60)))
            # the last releases reach the actor: every request to it answered, and no worker
            # waiting for a slot it asked for (one granted now would be handed straight back)
            while any(w.asked for w in workers) or not all(r.done() for r in sent):
                await asyncio.sleep(0)
        held = [w.held for w in workers]
        return peak, sum(w.round_trips for w in workers), held, await limits.stats()

    peak, trips, held, stats = asyncio.run(scenario())
    assert peak == 3
    assert trips <= 2 * 120 / 4, trips  # one acquire and one release per call: 240
    assert held == [0, 0]  # an idle worker holds nothing
    assert stats["in_use"] == 0 and stats["holders"] == 0


def test_a_rate_limit_is_the_clusters(cluster, tmp_path):
    """rpm 120 (2 calls a second, one second's worth at once) for the whole run: 8 calls take
    about 3 s on two workers; with a bucket per worker they would take about 1 s."""
    text = """
name: paced
protocol: {name: debate, rounds: 1}
seats: {debater: {model: scripted/paced}, judge: {model: scripted}}
models: {scripted/paced: {rpm: 120}}
dataset: {source: builtin:reading, limit: 4}
"""
    summary = run_scenario_ray(parse(text), text, out=tmp_path / "run.db", options=RayOptions(chunk=2))
    assert summary.done == 4 and summary.wall_s >= 2.5


def test_a_budget_stops_the_chunks_not_yet_started(cluster, tmp_path):
    text = SCENARIO + "budget: {max_tokens: 3000}\n"
    summary = run_scenario_ray(parse(text), text, out=tmp_path / "run.db", options=RayOptions(chunk=2))
    assert 2 <= summary.done < 24 and summary.failed == 0
    conn = sqlite3.connect(tmp_path / "run.db")
    assert conn.execute("SELECT status FROM runs").fetchone() == ("budget_spent",)


def test_a_workers_configuration_error_is_reported_as_such(cluster, tmp_path, monkeypatch):
    """Keys are read where the calls are made: a worker without one says so, cleanly."""
    text = """
name: keyed
protocol: {name: debate, rounds: 1}
seats: {debater: {model: openai/keyed}, judge: {model: scripted}}
models: {openai/keyed: {api_key_env: MOOT_TEST_ONLY_IN_THE_DRIVER}}
dataset: {source: builtin:reading, limit: 2}
"""
    monkeypatch.setenv("MOOT_TEST_ONLY_IN_THE_DRIVER", "x")  # the workers started without it
    from moot.errors import ConfigError

    with pytest.raises(ConfigError, match=r"on a Ray worker: .*MOOT_TEST_ONLY_IN_THE_DRIVER is not set"):
        run_scenario_ray(parse(text), text, out=tmp_path / "run.db")


def test_a_pool_of_model_servers_serves_a_ray_run(cluster, tmp_path):
    """Each worker routes over the model's endpoints (its own litellm Router)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from fault_server import Fault, FaultServer

    with FaultServer(lambda i, r: Fault.http(503)) as bad, FaultServer() as one, FaultServer() as two:
        text = f"""
name: pooled
protocol: {{name: debate, rounds: 1}}
seats: {{debater: {{model: openai/pool, max_tokens: 20}}, judge: {{model: scripted}}}}
models:
  openai/pool:
    retries: 0
    timeout: 30
    endpoints: [{{api_base: {bad.api_base}}}, {{api_base: {one.api_base}}}, {{api_base: {two.api_base}}}]
dataset: {{source: builtin:reading, limit: 12}}
concurrency: 4
cache: false
"""
        summary = run_scenario_ray(parse(text), text, out=tmp_path / "run.db", options=RayOptions(chunk=6))
        assert summary.done == 12 and summary.failed == 0
        assert len(one) + len(two) == 24 and len(one) and len(two)
        # each chunk's Router (two chunks) leaves the failing server out after its allowed
        # failure (2 requests); calls already on their way (4 per worker) may meet it too
        assert len(bad) <= 2 * (2 + 4)


def test_seats_that_need_one_process_are_refused_before_anything_runs(cluster, tmp_path):
    from moot.errors import ConfigError

    # a memory needs its episodes in order, and a person is at one terminal: both stay local
    learning = (
        "name: learn\nprotocol: {name: courtroom}\n"
        "seats: {lawyer: {model: scripted, memory: {kind: cases}}, witness: {model: scripted}, judge: {model: scripted}}\n"
        "dataset: {source: builtin:cases, limit: 2}\n"
    )
    with pytest.raises(ConfigError, match=r"seats\.plaintiff_lawyer\.memory: .* local executor"):
        run_scenario_ray(parse(learning), learning, out=tmp_path / "m.db")
    person = "name: p\nprotocol: {name: direct_qa}\nseats: {judge: {model: human}}\ndataset: {limit: 1}\n"
    with pytest.raises(ConfigError, match="a person's seat needs the local executor"):
        run_scenario_ray(parse(person), person, out=tmp_path / "h.db")
    assert not (tmp_path / "m.db").exists() and not (tmp_path / "h.db").exists()
