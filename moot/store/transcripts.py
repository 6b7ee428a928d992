"""Reading a stored run back into moot's own types: its scenario per cell, its episodes and
their messages as the engine posted them. Re-judging, forking and replay start here."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moot.errors import ConfigError
from moot.events import Message
from moot.quotes import Quote, from_record
from moot.scenario.model import Scenario


@dataclass(slots=True)
class StoredEpisode:
    id: int
    question_id: str
    question: str
    answers: tuple[str, ...]
    correct: int | None
    source: str | None
    protocol: str
    assignments: dict[str, int]
    seats: dict[str, dict[str, Any]]  # seat -> role, sees_source
    status: str
    cell: str | None


def open_run(path: str | Path) -> tuple[sqlite3.Connection, Scenario, Path | None]:
    """The run's database (migrated) and its resolved scenario; a one-line error if the file
    is not a moot run."""
    from moot import store

    p = Path(path)
    conn = store.connect(p)
    try:
        scenario, _, base = stored_scenario(p)
    except Exception:
        conn.close()
        raise
    return conn, scenario, base


def cell_scenarios(scenario: Scenario) -> dict[str | None, Scenario]:
    """Each cell's scenario by the name its episodes carry (None outside a sweep)."""
    return {c.name: c.scenario for c in scenario.cells()}


def episodes(conn: sqlite3.Connection, status: str | None = "done") -> list[StoredEpisode]:
    sql = (
        "SELECT id, question_id, question, answers, correct, source, protocol, assignments,"
        " seats, status, cell FROM episodes"
    )
    rows = conn.execute(sql + (" WHERE status = ?" if status else "") + " ORDER BY id",
                        (status,) if status else ()).fetchall()  # fmt: skip
    return [
        StoredEpisode(
            r[0], r[1], r[2], tuple(json.loads(r[3])), r[4], r[5], r[6], json.loads(r[7] or "{}"),
            json.loads(r[8]), r[9], r[10],
        )
        for r in rows
    ]


def _quotes(text: str | None) -> tuple[Quote, ...] | None:
    if not text:
        return None
    return tuple(from_record(q) for q in json.loads(text))


def messages(conn: sqlite3.Connection, episode: int) -> list[Message]:
    """An episode's messages in posting order, as the engine posted them."""
    rows = conn.execute(
        "SELECT episode, seq, round, phase, seat, role, side, content, audience, created_at,"
        " call_seq, quotes FROM messages WHERE episode = ? ORDER BY seq",
        (episode,),
    ).fetchall()
    return [
        Message(
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
            None if r[8] is None else frozenset(json.loads(r[8])), r[9], r[10], _quotes(r[11]),
        )
        for r in rows
    ]


def visible(messages: list[Message], seat: str) -> tuple[Message, ...]:
    """What a seat may read of these messages (the bus's rule: no audience means everyone)."""
    return tuple(m for m in messages if m.audience is None or seat in m.audience)


def parse_episodes(text: str, known: list[int]) -> set[int]:
    """`0-3,7` -> {0, 1, 2, 3, 7}; every id must be a stored episode."""
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                out.update(range(lo, hi + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise ConfigError(f"--episodes {text}: expected ids and ranges, e.g. 0-3,7") from None
    missing = sorted(out - set(known))
    if missing:
        raise ConfigError(f"--episodes: no finished episode {missing[0]} in the run")
    return out


def stored_scenario(path: Path) -> tuple[Scenario, str, Path | None]:
    """A stored run's resolved scenario, its YAML as written, and the directory its dataset
    paths are relative to."""
    from moot import store

    conn = store.connect(path)
    try:
        row = conn.execute("SELECT scenario_yaml, config FROM runs").fetchone()
    finally:
        conn.close()
    if row is None:
        raise ConfigError(f"{path}: holds no run to resume")
    config = json.loads(row[1])
    base = config.pop("base", None)
    config.pop("prompts", None)
    config.pop("parent", None)  # a fork or replay's origin (moot.workflows.replay)
    return Scenario.model_validate(config), row[0], Path(base) if base else None
