"""The store writer: every event lands, in order, under back-pressure; failures surface."""

import sqlite3
import time

import anyio
import pytest

from moot.engine.bus import Bus
from moot.errors import ConfigError
from moot.store import connect
from moot.store.schema import SCHEMA_VERSION
from moot.store.writer import StoreWriter
from moot.transcript.events import EpisodeFinished, EpisodeStarted, Message

pytestmark = pytest.mark.anyio


def started(ep):
    return EpisodeStarted(ep, f"q{ep}", "Q?", ("yes", "no"), 0, None, "debate", {}, {}, time.time())


def message(ep, seq):
    return Message(ep, seq, 1, "speeches", "debater_a", "debater", 0, f"m{ep}.{seq}", None, time.time())


async def test_every_row_lands_in_order_under_back_pressure(tmp_path):
    conn = connect(tmp_path / "w.db", create=True)
    # Tiny batches and one queued batch: episodes keep waiting for the writer thread.
    writer = StoreWriter(conn, batch=7, queued=1, interval=0.01)
    bus = Bus()
    bus.attach(writer)

    async def episode(ep):
        await bus.publish(started(ep))
        for seq in range(5):
            await bus.publish(message(ep, seq))
            await anyio.sleep(0)
        await bus.publish(EpisodeFinished(ep, "done", "completed", time.time()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        async with anyio.create_task_group() as eps:
            for ep in range(200):
                eps.start_soon(episode, ep)
        await bus.close()

    db = sqlite3.connect(tmp_path / "w.db")
    assert db.execute("SELECT count(*) FROM messages").fetchone() == (1000,)
    # an update that reached the thread before its insert would have been lost
    assert db.execute("SELECT count(*) FROM episodes WHERE status = 'done'").fetchone() == (200,)
    assert writer.rows_written == 200 * 7


async def test_a_failed_write_surfaces_instead_of_vanishing(tmp_path):
    conn = connect(tmp_path / "w.db", create=True)
    writer = StoreWriter(conn, batch=2, interval=0.01)
    bus = Bus()
    bus.attach(writer)
    with pytest.raises(BaseExceptionGroup) as failure:
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer.run)
            await bus.publish(started(1))
            await bus.publish(started(1))  # the same episode twice: a primary-key violation
            await bus.publish(message(1, 0))
            await bus.close()
    assert [type(e) for e in failure.value.exceptions] == [sqlite3.IntegrityError]


def test_a_database_from_a_newer_moot_is_refused(tmp_path):
    path = tmp_path / "new.db"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigError, match="newer than this moot"):
        connect(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("not sqlite at all " * 100)
    with pytest.raises(ConfigError, match="not a usable moot database"):
        connect(path)
