"""Merging shards into a run database: how a run spread over many workers ends up in one store.

A shard is a run database of the same schema holding some of a run's episodes (a Ray worker
sends its finished episodes as one; `moot merge` takes shard files). Each shard goes in as one
transaction: all of its finished episodes or none. The run database stays the authority:

- only finished episodes (`done` or `failed`) are taken; one a worker was still running when
  its shard was cut is left out, and runs again;
- an episode the run already has as `done` is kept, and the shard's copy skipped (a retried
  chunk, or the same shard merged twice, adds nothing twice);
- anything else the run holds for an incoming episode (a `failed` or unfinished attempt) is
  replaced by the shard's, with all its rows.

Rows keep their episode numbers; verdicts, ratings and qualifications get new row ids in
their original order (an episode's ruling is its last verdict).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from moot.errors import ConfigError
from moot.store import EPISODE_TABLES
from moot.store.schema import SCHEMA_VERSION
from moot.transcript.events import Event, Totals


@dataclass(slots=True)
class Merged(Totals):
    """What one shard added to the run (the driver's totals grow by these), and what it left."""

    skipped: int = 0  # finished in the shard, but already done in the run
    unfinished: int = 0  # still running when the shard was cut: not merged


def _columns(conn: sqlite3.Connection, table: str, row_id: bool = True) -> list[str]:
    """The table's columns; without `row_id`, less an `id` primary key (the main database
    gives those: verdicts, ratings, ...)."""
    rows = conn.execute(f"PRAGMA main.table_info({table})").fetchall()
    return [r[1] for r in rows if row_id or not (r[1] == "id" and r[5])]


def merge_shard(conn: sqlite3.Connection, shard: bytes | str | Path) -> Merged:
    """Merge one shard (a database file, or a serialized database) into the open run
    database `conn`, in one transaction."""
    if isinstance(shard, bytes):
        conn.execute("ATTACH DATABASE ':memory:' AS shard")
        try:
            conn.deserialize(shard, name="shard")
        except sqlite3.DatabaseError:
            conn.execute("DETACH DATABASE shard")
            raise
    else:
        from moot import store

        store.upgrade(shard)  # an older shard file is migrated first
        conn.execute("ATTACH DATABASE ? AS shard", (str(shard),))
    try:
        (version,) = conn.execute("PRAGMA shard.user_version").fetchone()
        if version != SCHEMA_VERSION:
            raise ConfigError(f"shard schema version {version}, expected {SCHEMA_VERSION}")
        _check_run(conn)
        with conn:
            return _merge(conn)
    finally:
        conn.execute("DETACH DATABASE shard")


def _check_run(conn: sqlite3.Connection) -> None:
    """A shard that names its run must be of this run's scenario (the episode numbers mean
    the same questions); a run database without a run takes the shard's."""
    theirs = conn.execute("SELECT config FROM shard.runs").fetchone()
    if theirs is None:
        return
    ours = conn.execute("SELECT config FROM main.runs").fetchone()
    if ours is not None and json.loads(ours[0]) != json.loads(theirs[0]):
        raise ConfigError("the shard was made by a different scenario than the run")


def _merge(conn: sqlite3.Connection) -> Merged:
    m = Merged()
    if conn.execute("SELECT 1 FROM main.runs").fetchone() is None:
        run_cols = ", ".join(_columns(conn, "runs"))
        conn.execute(f"INSERT INTO main.runs ({run_cols}) SELECT {run_cols} FROM shard.runs")
    cell_cols = ", ".join(_columns(conn, "cells"))
    conn.execute(f"INSERT OR IGNORE INTO main.cells ({cell_cols}) SELECT {cell_cols} FROM shard.cells")

    conn.execute("CREATE TEMP TABLE IF NOT EXISTS merging (id INTEGER PRIMARY KEY)")
    conn.execute("DELETE FROM temp.merging")
    conn.execute(
        "INSERT INTO temp.merging SELECT id FROM shard.episodes"
        " WHERE status IN ('done', 'failed')"
        " AND id NOT IN (SELECT id FROM main.episodes WHERE status = 'done')"
    )
    m.skipped, m.unfinished = conn.execute(
        "SELECT coalesce(sum(status IN ('done','failed')), 0), coalesce(sum(status NOT IN"
        " ('done','failed')), 0) FROM shard.episodes WHERE id NOT IN (SELECT id FROM temp.merging)"
    ).fetchone()
    # whatever the run held for these episodes was an attempt that did not finish well
    for table in EPISODE_TABLES:
        conn.execute(f"DELETE FROM main.{table} WHERE episode IN (SELECT id FROM temp.merging)")
    conn.execute("DELETE FROM main.episodes WHERE id IN (SELECT id FROM temp.merging)")
    for table in ("episodes", *EPISODE_TABLES):
        every = _columns(conn, table)
        cols = every if table == "episodes" else _columns(conn, table, row_id=False)
        key = "id" if table == "episodes" else "episode"
        order = "id" if "id" in every else "episode, seq" if "seq" in every else "rowid"
        names = ", ".join(cols)
        conn.execute(
            f"INSERT INTO main.{table} ({names}) SELECT {names} FROM shard.{table}"
            f" WHERE {key} IN (SELECT id FROM temp.merging) ORDER BY {order}"
        )
    conn.execute(  # the images those episodes showed, once per run
        "INSERT OR IGNORE INTO main.images SELECT * FROM shard.images WHERE digest IN"
        " (SELECT digest FROM shard.episode_images WHERE episode IN (SELECT id FROM temp.merging))"
    )
    m.episodes, m.done, m.failed = conn.execute(
        "SELECT count(*), coalesce(sum(status = 'done'), 0), coalesce(sum(status = 'failed'), 0)"
        " FROM shard.episodes WHERE id IN (SELECT id FROM temp.merging)"
    ).fetchone()
    m.model_calls, m.tokens, m.cost, m.cached = conn.execute(
        "SELECT count(*), coalesce(sum(prompt_tokens + completion_tokens), 0),"
        " coalesce(sum(cost), 0), coalesce(sum(cached), 0) FROM shard.model_calls"
        " WHERE episode IN (SELECT id FROM temp.merging)"
    ).fetchone()
    (m.messages,) = conn.execute(
        "SELECT count(*) FROM shard.messages WHERE episode IN (SELECT id FROM temp.merging)"
    ).fetchone()
    m.verdicts, m.correct, m.invalid = conn.execute(
        "SELECT count(*), coalesce(sum(correct), 0), coalesce(sum(parse_status != 'ok'), 0)"
        " FROM shard.verdicts WHERE episode IN (SELECT id FROM temp.merging)"
    ).fetchone()
    return m


def merge_files(out: str | Path, shards: list[str | Path]) -> Merged:
    """`moot merge`: shard files into a run database (made from the first shard's run when
    new), one transaction per shard."""
    from moot import store

    missing = [str(s) for s in shards if not Path(s).is_file()]
    if missing:
        raise ConfigError(f"{missing[0]}: no such database")
    conn = store.connect(out, create=True)
    total = Merged()
    try:
        for shard in shards:
            if Path(shard).resolve() == Path(out).resolve():
                raise ConfigError(f"{shard}: is the output database")
            total.add(merge_shard(conn, shard))
        if conn.execute("SELECT 1 FROM runs").fetchone() is None:
            raise ConfigError(f"{out}: none of the shards holds a run")
    finally:
        conn.close()
    return total


def shard_of(template: bytes, events: Iterable[Event]) -> bytes:
    """Events written into a copy of a serialized empty shard, serialized again."""
    from moot.store.writer import StoreWriter

    conn = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        conn.deserialize(template)
        StoreWriter(conn).write_now(events)
        return conn.serialize()
    finally:
        conn.close()


def empty_shard() -> sqlite3.Connection:
    """An in-memory database with the run schema, for a worker to fill and serialize."""
    from moot.store.schema import migrate

    conn = sqlite3.connect(":memory:", check_same_thread=False)
    migrate(conn, "shard")
    return conn
