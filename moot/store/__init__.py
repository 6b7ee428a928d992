"""The transcript store: one SQLite database per run (WAL), written by one writer."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from moot.errors import ConfigError
from moot.store.schema import SCHEMA_VERSION, migrate

__all__ = ["SCHEMA_VERSION", "connect", "create_cells", "create_run", "finish_run", "reopen_run"]

# Rows an episode leaves behind; an unfinished episode's are removed before it runs again.
EPISODE_TABLES = ("messages", "model_calls", "verdicts", "ratings", "qualifications", "memories", "episode_images")


def connect(path: str | Path, *, create: bool = False) -> sqlite3.Connection:
    """Open a run database, applying migrations. `check_same_thread=False` because the one
    writer commits from a worker thread; it is never used by two threads at once."""
    p = Path(path)
    if not create and not p.is_file():
        raise ConfigError(f"{p}: no such database")
    if create:
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{p.parent}: cannot create the output directory ({exc.strerror})") from None
    try:
        # room for the writer's statement shapes (a dozen per table, moot.store.writer)
        conn = sqlite3.connect(
            p, check_same_thread=False, isolation_level="DEFERRED", cached_statements=256
        )
        # Prompts make rows of a few KB: 16 KiB pages write twice as fast as the default
        # 4 KiB and take half the disk (bench/). Only takes effect on a new database.
        conn.execute("PRAGMA page_size=16384")
        conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a crash of moot loses nothing committed; a power cut may lose the
        # last few batches. Resume re-runs unfinished episodes either way.
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn, str(p))
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{p}: not a usable moot database ({exc})") from None
    return conn


def upgrade(path: str | Path) -> None:
    """Bring a run database to this moot's schema (migrations only add), or a one-line
    ConfigError if it is not a moot database: before it is read with the read-only reader."""
    connect(path).close()


def create_run(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    with conn:
        conn.execute(
            "INSERT INTO runs (id, name, scenario_yaml, config, versions, models, started_at,"
            " status) VALUES (?,?,?,?,?,?,?, 'running')",
            (
                row["id"],
                row["name"],
                row["scenario_yaml"],
                json.dumps(row["config"]),
                json.dumps(row["versions"]),
                json.dumps(row["models"]),
                row["started_at"],
            ),
        )


def create_cells(conn: sqlite3.Connection, cells: list[tuple[str | None, int, dict, dict]]) -> None:
    """A sweep's grid: each cell's name, position, the values it sets and its scenario."""
    with conn:
        conn.executemany(
            "INSERT INTO cells (name, position, params, config) VALUES (?,?,?,?)",
            [(n, pos, json.dumps(p), json.dumps(c)) for n, pos, p, c in cells],
        )


def run_record(conn: sqlite3.Connection) -> tuple[str, dict[str, Any]] | None:
    """The database's run: its id and resolved config (None: no run yet)."""
    row = conn.execute("SELECT id, config FROM runs").fetchone()
    return None if row is None else (row[0], json.loads(row[1]))


def import_keys(conn: sqlite3.Connection) -> set[str]:
    """The keys of the published items already imported (an import adds each once)."""
    return {k for (k,) in conn.execute("SELECT attributes ->> '$.import_key' FROM episodes") if k}


def next_episode_id(conn: sqlite3.Connection) -> int:
    (n,) = conn.execute("SELECT coalesce(max(id) + 1, 0) FROM episodes").fetchone()
    return int(n)


def finish_run(conn: sqlite3.Connection, run_id: str, status: str, ended_at: float) -> None:
    with conn:
        conn.execute("UPDATE runs SET status=?, ended_at=? WHERE id=?", (status, ended_at, run_id))


def reopen_run(conn: sqlite3.Connection) -> tuple[str, set[int]]:
    """Make a stopped run resumable: keep finished episodes, clear the rest (an episode that
    was running when the process died, or that failed), in one transaction."""
    row = conn.execute("SELECT id FROM runs").fetchone()
    if row is None:
        raise ConfigError("the database holds no run to resume")
    done = {i for (i,) in conn.execute("SELECT id FROM episodes WHERE status = 'done'")}
    with conn:
        for table in EPISODE_TABLES:
            conn.execute(
                f"DELETE FROM {table} WHERE episode IN"
                " (SELECT id FROM episodes WHERE status != 'done')"
            )
        conn.execute("DELETE FROM episodes WHERE status != 'done'")
        conn.execute("UPDATE runs SET status = 'running', ended_at = NULL WHERE id = ?", (row[0],))
    return row[0], done
