"""The store's writer process: a run on disk is committed by a child process, which ends
with the run, whether it finishes, fails, is interrupted with Ctrl-C or is killed."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from moot.engine.bus import Bus
from moot.store import connect
from moot.store.writer import StoreWriter
from moot.transcript.events import EpisodeFinished, EpisodeStarted, Message

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

SLOW = """
name: slow
protocol: {name: debate, rounds: 3}
seats: {debater: {model: scripted/slow}, judge: {model: scripted}}
models: {scripted/slow: {latency: 0.05}}
dataset: {source: builtin:reading, limit: 24}
concurrency: 2
"""


def writers(pid: int | str = "self") -> list[int]:
    """The store writer processes `pid` started (its children running moot.store.writer)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        for child in children:
            try:
                if b"moot.store.writer" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
            except FileNotFoundError:
                pass
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # reaped (even while being read)
        return False
    return state != "Z"  # a zombie has ended: only its exit status is left


def poll(condition, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def done_episodes(db: Path) -> int:
    if not db.exists():  # (connecting would make it, and the run would refuse it)
        return 0
    try:
        conn = sqlite3.connect(db)
        try:
            return conn.execute("SELECT count(*) FROM episodes WHERE status = 'done'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not made yet
        return 0


def start_run(tmp_path: Path, db: Path) -> subprocess.Popen[str]:
    path = tmp_path / "slow.yaml"
    path.write_text(SLOW)
    return subprocess.Popen(
        [sys.executable, "-m", "moot", "run", str(path), "--out", str(db), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a run in a terminal is
    )  # fmt: skip


def started(ep):
    return EpisodeStarted(ep, f"q{ep}", "Q?", ("yes", "no"), 0, None, "debate", {}, {}, time.time())


def message(ep, seq):
    return Message(ep, seq, 1, "speeches", "debater_a", "debater", 0, f"m{ep}.{seq}", None, time.time())


async def publish_episodes(bus: Bus, episodes: range) -> None:
    for ep in episodes:
        await bus.publish(started(ep))
        for seq in range(3):
            await bus.publish(message(ep, seq))
        await bus.publish(EpisodeFinished(ep, "done", "completed", time.time()))
        await anyio.sleep(0)


@pytest.mark.anyio
@pytest.mark.parametrize("process", [None, False], ids=["process", "thread"])
async def test_a_file_database_is_written_by_a_child_that_ends_with_the_run(tmp_path, process):
    conn = connect(tmp_path / "w.db", create=True)
    writer = StoreWriter(conn, batch=50, interval=0.01, process=process)
    bus = Bus()
    bus.attach(writer)
    seen: list[list[int]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        await publish_episodes(bus, range(100))
        await anyio.sleep(0.2)
        seen.append(writers())
        await bus.close()
    assert len(seen[0]) == (1 if process is None else 0)
    assert writers() == []  # waited for: no process left behind, not even a zombie
    db = sqlite3.connect(tmp_path / "w.db")
    assert db.execute("SELECT count(*) FROM messages").fetchone() == (300,)
    assert db.execute("SELECT count(*) FROM episodes WHERE status = 'done'").fetchone() == (100,)
    assert writer.rows_written == 100 * 5


@pytest.mark.anyio
async def test_without_an_interpreter_to_start_the_thread_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))  # as in an embedded Python
    conn = connect(tmp_path / "w.db", create=True)
    writer = StoreWriter(conn, batch=50, interval=0.01)
    bus = Bus()
    bus.attach(writer)
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        await publish_episodes(bus, range(20))
        await bus.close()
    assert sqlite3.connect(tmp_path / "w.db").execute("SELECT count(*) FROM messages").fetchone() == (60,)


def test_an_in_memory_database_cannot_go_to_a_process():
    conn = sqlite3.connect(":memory:")
    assert StoreWriter(conn)._path == ""  # written by the thread
    with pytest.raises(ValueError, match="in-memory"):
        StoreWriter(conn, process=True)


@pytest.mark.anyio
async def test_a_writer_process_that_dies_fails_the_run_rather_than_hanging_it(tmp_path):
    conn = connect(tmp_path / "w.db", create=True)
    writer = StoreWriter(conn, batch=20, interval=0.01)
    bus = Bus()
    bus.attach(writer)
    with pytest.raises(BaseExceptionGroup) as failure:
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer.run)
            await publish_episodes(bus, range(10))
            (child,) = await anyio.to_thread.run_sync(poll, writers, "the writer process")
            os.kill(child, signal.SIGKILL)
            await anyio.to_thread.run_sync(poll, lambda: not running(child), "the writer process to die")
            with anyio.fail_after(30):
                await publish_episodes(bus, range(10, 100))
                await bus.close()
    # raised where the episodes wait on the writer, and by the writer's own task
    for error in failure.value.exceptions:
        assert isinstance(error, RuntimeError) and "writer process ended early" in str(error)
    assert writers() == []


def test_ctrl_c_commits_what_was_received_and_leaves_no_process(tmp_path):
    """Ctrl-C in a terminal signals the whole process group, the writer too: it is the run
    that stops it, after the rows it was sent are committed."""
    db = tmp_path / "run.db"
    proc = start_run(tmp_path, db)
    try:
        poll(lambda: done_episodes(db) >= 2, "episodes to finish")
        (child,) = writers(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "moot: interrupted" in stderr
    poll(lambda: not running(child), "the writer process to end")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM runs").fetchone() == ("interrupted",)
    done = conn.execute("SELECT count(*) FROM episodes WHERE status = 'done'").fetchone()[0]
    assert 2 <= done < 24
    # every finished episode's record is whole: its speeches and its verdict
    whole = conn.execute(
        "SELECT count(*) FROM episodes e WHERE status = 'done' AND"
        " (SELECT count(*) FROM messages m WHERE m.episode = e.id) = 7 AND"
        " (SELECT count(*) FROM verdicts v WHERE v.episode = e.id) = 1"
    ).fetchone()[0]
    assert whole == done


def test_kill_9_takes_the_writer_process_with_it(tmp_path):
    """A killed run keeps what was committed before it died, and its writer commits nothing
    after (a resumed run must not race it: tests/test_resume.py resumes one at once)."""
    db = tmp_path / "run.db"
    proc = start_run(tmp_path, db)
    try:
        poll(lambda: done_episodes(db) >= 2, "episodes to finish")
        (child,) = writers(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    poll(lambda: not running(child), "the writer process to die", timeout=5)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT status FROM runs").fetchone() == ("running",)
