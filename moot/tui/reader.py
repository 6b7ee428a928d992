"""Read-only access to a run database, in pages: the TUI never loads a table whole.

Every query is bounded (by a primary key, an index or a LIMIT). Live views poll by rowid,
which only grows as the writer appends: `messages`, `model_calls` and `verdicts` rows newer
than the last seen are cheap to find however large the run. The connection is opened
read-only (`mode=ro`, `query_only`), so viewing never writes, migrates or locks out the run.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from moot.errors import ConfigError
from moot.store.schema import SCHEMA_VERSION

__all__ = ["Episode", "EpisodeRow", "Filters", "MessageRow", "RunReader", "check_database"]


@dataclass(slots=True)
class EpisodeRow:
    """One line of the episode list."""

    id: int
    status: str
    protocol: str
    question: str
    cell: str | None
    stop_reason: str | None
    choice: int | None  # the final verdict's
    correct: bool | None
    confidence: float | None  # the final verdict's highest probability
    invalid: bool
    messages: int


@dataclass(slots=True)
class Episode:
    """An episode's header: what the transcript is about, and who sits where."""

    id: int
    question_id: str
    question: str
    answers: list[str]
    correct: int | None
    source: str | None
    protocol: str
    assignments: dict[str, int]
    seats: dict[str, dict[str, Any]]
    status: str
    stop_reason: str | None
    outcome: dict[str, Any]
    error: str | None
    started_at: float
    cell: str | None


@dataclass(slots=True)
class MessageRow:
    episode: int
    seq: int
    round: int
    phase: str
    seat: str
    role: str
    side: int | None
    content: str
    audience: list[str] | None  # None: every seat
    created_at: float
    call_seq: int | None
    quotes: list[dict[str, Any]]

    def visible_to(self, seat: str | None) -> bool:
        """Whether `seat` could read this message (None: the full view sees everything)."""
        return seat is None or self.audience is None or seat in self.audience


@dataclass(slots=True)
class VerdictRow:
    episode: int
    judge: str
    model: str
    round: int
    choice: int | None
    probabilities: list[float] | None
    correct: bool | None
    method: str
    parse_status: str
    raw: str
    call_seq: int | None


@dataclass(slots=True)
class Filters:
    """What the episode list shows. Empty fields do not filter."""

    protocol: str | None = None
    status: str | None = None  # running | done | failed
    verdict: str | None = None  # correct | incorrect | invalid | none
    min_confidence: float | None = None
    max_confidence: float | None = None
    text: str = ""
    cell: str | None = None

    def active(self) -> bool:
        return any(
            v not in (None, "") for v in (self.protocol, self.status, self.verdict,
                                          self.min_confidence, self.max_confidence,
                                          self.text, self.cell)
        )  # fmt: skip

    def describe(self) -> str:
        parts = []
        if self.protocol:
            parts.append(f"protocol={self.protocol}")
        if self.cell:
            parts.append(f"cell={self.cell}")
        if self.status:
            parts.append(f"status={self.status}")
        if self.verdict:
            parts.append(f"verdict={self.verdict}")
        if self.min_confidence is not None or self.max_confidence is not None:
            lo = 0.0 if self.min_confidence is None else self.min_confidence
            hi = 1.0 if self.max_confidence is None else self.max_confidence
            parts.append(f"confidence {lo:.2f}-{hi:.2f}")
        if self.text:
            parts.append(f"text~{self.text!r}")
        return ", ".join(parts) or "none"


# The final verdict of an episode is its last one (interim verdicts come before it).
_LAST_VERDICT = "(SELECT {col} FROM verdicts v WHERE v.episode = e.id ORDER BY v.id DESC LIMIT 1)"


def _last(col: str) -> str:
    return _LAST_VERDICT.format(col=col)


def _escape_like(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def check_database(path: str | Path) -> Path:
    """The path of a readable moot run database, or a one-line ConfigError."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such database")
    RunReader(p).close()
    return p


class RunReader:
    """Queries over one run database. Safe to share between the UI thread and worker
    threads: each thread gets its own read-only connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        conn = self.conn
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            self.close()
            raise ConfigError(f"{self.path}: not a moot database ({exc})") from None
        if not {"runs", "episodes", "messages"} <= tables or version < 1:
            self.close()
            raise ConfigError(f"{self.path}: not a moot database (no runs, episodes, messages tables)")
        if version > SCHEMA_VERSION:
            self.close()
            raise ConfigError(
                f"{self.path}: database schema version {version} is newer than this moot "
                f"understands ({SCHEMA_VERSION}); upgrade moot"
            )
        cols = {r[1] for r in conn.execute("PRAGMA table_info(messages)")}
        self._quotes = "quotes" if "quotes" in cols else "NULL"
        cols = {r[1] for r in conn.execute("PRAGMA table_info(episodes)")}
        self._cell = "cell" if "cell" in cols else "NULL"
        cols = {r[1] for r in conn.execute("PRAGMA table_info(model_calls)")}
        self._cached = "cached" if "cached" in cols else "0"

    # -- connections -------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.connect()
            self._local.conn = conn
        return conn

    def connect(self) -> sqlite3.Connection:
        """A new read-only connection (a long search gets its own, to interrupt it alone)."""
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            conn.execute("PRAGMA query_only = 1")
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path}: cannot open ({exc})") from None
        with self._lock:
            self._conns.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                c.close()
            except sqlite3.Error:  # another thread's connection: it goes with its thread
                pass
        self._local = threading.local()

    # -- the run -----------------------------------------------------------------------
    def run(self) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT id, name, status, started_at, ended_at FROM runs LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return dict(zip(("id", "name", "status", "started_at", "ended_at"), row))

    def protocols(self) -> list[str]:
        """Distinct protocols, from the run's config (a sweep's cells may differ)."""
        out = set()
        for (cfg,) in self.conn.execute("SELECT config FROM runs"):
            try:
                out.add(json.loads(cfg)["protocol"]["name"])
            except (ValueError, KeyError, TypeError):
                pass
        try:
            for (cfg,) in self.conn.execute("SELECT config FROM cells LIMIT 1000"):
                try:
                    out.add(json.loads(cfg)["protocol"]["name"])
                except (ValueError, KeyError, TypeError):
                    pass
        except sqlite3.OperationalError:
            pass
        return sorted(out)

    def cells(self) -> list[str]:
        """A sweep's cells, in grid order (none outside a sweep)."""
        try:
            return [r[0] for r in self.conn.execute("SELECT name FROM cells ORDER BY position LIMIT 10000")]
        except sqlite3.OperationalError:  # an older database: no cells table
            return []

    # -- episode lists -----------------------------------------------------------------
    def episode_ids(self, filters: Filters | None = None, limit: int = 1_000_000,
                    conn: sqlite3.Connection | None = None) -> array:
        """Ids of the episodes that pass `filters`, in order (at most `limit`).

        Unfiltered, this reads only an index (ids are 8 bytes each: a million is 8 MB)."""
        where, args = self._where(filters or Filters())
        conn = conn or self.conn
        if not where:  # ids are usually 0..n-1: then the list is a range, made in C
            lo, hi, n = conn.execute("SELECT min(id), max(id), count(*) FROM episodes").fetchone()
            if n == 0:
                return array("q")
            if hi - lo + 1 == n:
                return array("q", range(lo, min(hi + 1, lo + limit)))
        sql = f"SELECT e.id FROM episodes e {where} ORDER BY e.id LIMIT ?"
        out = array("q")
        cur = conn.execute(sql, (*args, limit))
        while rows := cur.fetchmany(10_000):
            out.extend(r[0] for r in rows)
        return out

    def _where(self, f: Filters) -> tuple[str, list[Any]]:
        conds: list[str] = []
        args: list[Any] = []
        if f.protocol:
            conds.append("e.protocol = ?")
            args.append(f.protocol)
        if f.cell:
            conds.append(f"e.{self._cell} = ?")
            args.append(f.cell)
        if f.status:
            conds.append("e.status = ?")
            args.append(f.status)
        if f.verdict == "correct":
            conds.append(f"{_last('correct')} = 1")
        elif f.verdict == "incorrect":
            conds.append(f"{_last('correct')} = 0")
        elif f.verdict == "invalid":
            conds.append(f"{_last('parse_status')} != 'ok'")
        elif f.verdict == "none":
            conds.append("NOT EXISTS (SELECT 1 FROM verdicts v WHERE v.episode = e.id)")
        if f.min_confidence is not None or f.max_confidence is not None:
            conf = f"(SELECT max(value) FROM json_each({_last('probabilities')}))"
            conds.append(f"{conf} BETWEEN ? AND ?")
            args += [f.min_confidence or 0.0, 1.0 if f.max_confidence is None else f.max_confidence]
        if f.text:
            conds.append(
                "EXISTS (SELECT 1 FROM messages m WHERE m.episode = e.id"
                " AND m.content LIKE ? ESCAPE '\\')"
            )
            args.append(f"%{_escape_like(f.text)}%")
        return ("WHERE " + " AND ".join(conds)) if conds else "", args

    def episode_rows(self, ids: list[int] | array) -> list[EpisodeRow]:
        """The list lines of these episodes (a screenful: a few dozen ids), in the given order."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        sql = (
            f"SELECT e.id, e.status, e.protocol, substr(e.question, 1, 300), e.{self._cell},"
            " e.stop_reason, v.choice, v.correct, v.probabilities, v.parse_status,"
            " (SELECT count(*) FROM messages m WHERE m.episode = e.id)"
            " FROM episodes e LEFT JOIN verdicts v"
            " ON v.id = (SELECT max(id) FROM verdicts WHERE episode = e.id)"
            f" WHERE e.id IN ({marks})"
        )
        by_id = {}
        for r in self.conn.execute(sql, tuple(ids)):
            probs = _json(r[8])
            conf = max(probs) if probs else None
            by_id[r[0]] = EpisodeRow(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6],
                None if r[7] is None else bool(r[7]), conf,
                r[9] is not None and r[9] != "ok", r[10],
            )  # fmt: skip
        return [by_id[i] for i in ids if i in by_id]

    def episode(self, episode_id: int) -> Episode | None:
        r = self.conn.execute(
            "SELECT id, question_id, question, answers, correct, source, protocol, assignments,"
            " seats, status, stop_reason, outcome, error, started_at,"
            f" {self._cell} FROM episodes WHERE id = ?",
            (episode_id,),
        ).fetchone()
        if r is None:
            return None
        return Episode(
            r[0], r[1], r[2], _json(r[3]) or [], r[4], r[5], r[6], _json(r[7]) or {},
            _json(r[8]) or {}, r[9], r[10], _json(r[11]) or {}, r[12], r[13], r[14],
        )  # fmt: skip

    def neighbour(self, episode_id: int, step: int) -> int | None:
        """The next (step > 0) or previous episode id, unfiltered."""
        if step > 0:
            sql = "SELECT id FROM episodes WHERE id > ? ORDER BY id LIMIT 1"
        else:
            sql = "SELECT id FROM episodes WHERE id < ? ORDER BY id DESC LIMIT 1"
        row = self.conn.execute(sql, (episode_id,)).fetchone()
        return None if row is None else row[0]

    # -- one episode -------------------------------------------------------------------
    def messages(self, episode_id: int, after_seq: int = -1, limit: int = 5000) -> list[MessageRow]:
        rows = self.conn.execute(
            "SELECT episode, seq, round, phase, seat, role, side, content, audience, created_at,"
            f" call_seq, {self._quotes} FROM messages WHERE episode = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (episode_id, after_seq, limit),
        ).fetchall()
        return [
            MessageRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], _json(r[8]), r[9], r[10], _json(r[11]) or [])
            for r in rows
        ]

    def verdicts(self, episode_id: int) -> list[VerdictRow]:
        rows = self.conn.execute(
            "SELECT episode, judge, model, round, choice, probabilities, correct, method,"
            " parse_status, raw, call_seq FROM verdicts WHERE episode = ? ORDER BY id LIMIT 1000",
            (episode_id,),
        ).fetchall()
        return [
            VerdictRow(r[0], r[1], r[2], r[3], r[4], _json(r[5]),
                       None if r[6] is None else bool(r[6]), *r[7:])
            for r in rows
        ]  # fmt: skip

    def call(self, episode_id: int, seq: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT episode, seq, seat, role, model, system, prompt, messages, params, response,"
            " prompt_tokens, completion_tokens, cost, latency_s, attempts, started_at, error,"
            f" {self._cached} FROM model_calls WHERE episode = ? AND seq = ?",
            (episode_id, seq),
        ).fetchone()
        if row is None:
            return None
        keys = ("episode", "seq", "seat", "role", "model", "system", "prompt", "messages",
                "params", "response", "prompt_tokens", "completion_tokens", "cost", "latency_s",
                "attempts", "started_at", "error", "cached")  # fmt: skip
        return dict(zip(keys, row))

    # -- live polling ------------------------------------------------------------------
    def max_rowids(self) -> dict[str, int]:
        out = {}
        for table in ("messages", "model_calls", "verdicts"):
            (out[table],) = self.conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()
        return out

    def new_messages(self, after_rowid: int, limit: int = 100_000) -> list[tuple[int, int, int]]:
        """(rowid, episode, seq) of messages appended since `after_rowid`."""
        return self.conn.execute(
            "SELECT rowid, episode, seq FROM messages WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (after_rowid, limit),
        ).fetchall()

    def new_calls(self, after_rowid: int, limit: int = 100_000) -> list[tuple[int, int, float]]:
        """(rowid, tokens, cost) of model calls appended since `after_rowid`."""
        return self.conn.execute(
            "SELECT rowid, prompt_tokens + completion_tokens, coalesce(cost, 0) FROM model_calls"
            " WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (after_rowid, limit),
        ).fetchall()

    def new_verdicts(self, after_id: int, limit: int = 100_000) -> list[tuple[int, int, int | None, str]]:
        """(id, episode, correct, parse_status) of verdicts appended since `after_id`."""
        return self.conn.execute(
            "SELECT id, episode, correct, parse_status FROM verdicts WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()

    def statuses(self, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return dict(self.conn.execute(
            f"SELECT id, status FROM episodes WHERE id IN ({marks})", tuple(ids)
        ).fetchall())  # fmt: skip

    def new_episodes(self, after_id: int, limit: int = 100_000) -> list[tuple[int, str]]:
        return self.conn.execute(
            "SELECT id, status FROM episodes WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        ).fetchall()

    def status_counts(self) -> dict[str, int]:
        """Episodes per status: one pass over the episodes table (run it off the UI thread)."""
        return dict(self.conn.execute("SELECT status, count(*) FROM episodes GROUP BY status"))


def _json(s: str | None) -> Any:
    if s is None:
        return None
    try:
        return json.loads(s)
    except ValueError:
        return None
