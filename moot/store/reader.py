"""The one reader of stored runs: read-only, in pages, returning moot's transcript types.

The TUI, replay and fork, re-judging, offline judging and the desk all read runs through
`RunReader`; the SQL lives here (and writes in the writer). Every query is bounded (by a primary key, an index or a LIMIT). Live views poll by rowid,
which only grows as the writer appends: `messages`, `model_calls` and `verdicts` rows newer
than the last seen are cheap to find however large the run. The connection is opened
read-only (`mode=ro`, `query_only`), so viewing never writes, migrates or locks out the run.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from moot.errors import ConfigError
from moot.store.schema import SCHEMA_VERSION
from moot.transcript.events import Message, Totals, Verdict, log_score
from moot.transcript.images import Image
from moot.transcript.images import label as image_label
from moot.transcript.quotes import Quote, from_record

__all__ = ["EpisodeRow", "Filters", "RunReader", "StoredEpisode", "check_database"]


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
class StoredEpisode:
    """An episode's header: what the transcript is about, and who sits where."""

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
    stop_reason: str | None
    outcome: dict[str, Any]
    error: str | None
    started_at: float
    cell: str | None


@dataclass(slots=True)
class Snapshot:
    """A live view's starting point: one consistent read of the run."""

    ids: array  # every episode id, sorted
    running: set[int]
    last: dict[str, int]  # table -> its highest rowid
    totals: Totals
    status: str | None  # the run's


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


# An episode's ruling: its last verdict from the run's own judges; judges added afterwards
# (labels with a colon: rejudge:M, human:NAME) rule only where no other did (store/schema.py's
# episode_results says the same in its view).
_RULING = (
    "coalesce((SELECT max(id) FROM verdicts WHERE episode = e.id AND judge NOT LIKE '%:%'),"
    " (SELECT max(id) FROM verdicts WHERE episode = e.id))"
)


_P_CORRECT = "CAST(v.probabilities ->> ('$[' || e.correct || ']') AS REAL)"
# Finished episodes' rulings: how many, right, invalid, scored, and their summed log score.
_RULINGS_TOTAL = (
    "SELECT count(v.id), coalesce(sum(v.correct),0), coalesce(sum(v.parse_status!='ok'),0),"
    f" count({_P_CORRECT}), coalesce(sum(log_score({_P_CORRECT})), 0.0)"
    f" FROM episodes e JOIN verdicts v ON v.id = {_RULING} WHERE e.status != 'running'"
)


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
        self._images = "episode_images" in tables  # a run made before images were stored has none

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
            conn.create_function("log_score", 1, log_score, deterministic=True)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path}: cannot open ({exc})") from None
        with self._lock:
            self._conns.append(conn)
        return conn

    def __enter__(self) -> RunReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    def episode(self, episode_id: int) -> StoredEpisode | None:
        row = self.conn.execute(f"{self._episode_sql} WHERE id = ?", (episode_id,)).fetchone()
        return None if row is None else _episode(row)

    def episodes(self, status: str | None = "done", limit: int = 10_000_000) -> list[StoredEpisode]:
        """Episodes in id order (finished ones by default): for workflows that visit each."""
        where, args = (" WHERE status = ?", (status,)) if status else ("", ())
        rows = self.conn.execute(f"{self._episode_sql}{where} ORDER BY id LIMIT ?", (*args, limit))
        return [_episode(r) for r in rows]

    @property
    def _episode_sql(self) -> str:
        return (
            "SELECT id, question_id, question, answers, correct, source, protocol, assignments,"
            f" seats, status, stop_reason, outcome, error, started_at, {self._cell} FROM episodes"
        )

    def done_ids(self) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT id FROM episodes WHERE status = 'done' ORDER BY id")]

    def count(self) -> int:
        """How many episodes the run holds (one pass over an index)."""
        (n,) = self.conn.execute("SELECT count(*) FROM episodes").fetchone()
        return int(n)

    def has_episodes(self) -> bool:
        return self.conn.execute("SELECT 1 FROM episodes LIMIT 1").fetchone() is not None

    def neighbour(self, episode_id: int, step: int) -> int | None:
        """The next (step > 0) or previous episode id, unfiltered."""
        if step > 0:
            sql = "SELECT id FROM episodes WHERE id > ? ORDER BY id LIMIT 1"
        else:
            sql = "SELECT id FROM episodes WHERE id < ? ORDER BY id DESC LIMIT 1"
        row = self.conn.execute(sql, (episode_id,)).fetchone()
        return None if row is None else row[0]

    # -- one episode -------------------------------------------------------------------
    def messages(self, episode_id: int, after_seq: int = -1, limit: int = 1_000_000) -> list[Message]:
        """An episode's messages in posting order, as the engine posted them."""
        rows = self.conn.execute(
            "SELECT episode, seq, round, phase, seat, role, side, content, audience, created_at,"
            f" call_seq, {self._quotes} FROM messages WHERE episode = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (episode_id, after_seq, limit),
        ).fetchall()
        return [_message(r) for r in rows]

    def images(self, episode_id: int) -> tuple[Image, ...]:
        """The images an episode showed, in order, each checked against its hash."""
        if not self._images:
            return ()
        rows = self.conn.execute(
            "SELECT e.name, i.media_type, i.digest, i.data FROM episode_images e"
            " JOIN images i ON i.digest = e.digest WHERE e.episode = ? ORDER BY e.position",
            (episode_id,),
        ).fetchall()
        out = tuple(Image(name, kind, digest, bytes(data)) for name, kind, digest, data in rows)
        for image in out:
            if hashlib.sha256(image.data).hexdigest() != image.digest:
                raise ConfigError(f"{self.path}: image {image.name} of episode {episode_id} does not match its hash")
        return out

    def with_images(self) -> set[int]:
        """The episodes that showed images."""
        if not self._images:
            return set()
        return {r[0] for r in self.conn.execute("SELECT DISTINCT episode FROM episode_images")}

    def image_labels(self, episode_id: int) -> list[str]:
        """What stands in for an episode's images where they cannot be shown (a terminal)."""
        if not self._images:
            return []
        rows = self.conn.execute(
            "SELECT e.name, i.size FROM episode_images e JOIN images i ON i.digest = e.digest"
            " WHERE e.episode = ? ORDER BY e.position",
            (episode_id,),
        ).fetchall()
        return [image_label(name, size) for name, size in rows]

    def verdicts(self, episode_id: int) -> list[Verdict]:
        rows = self.conn.execute(
            "SELECT episode, judge, model, round, choice, probabilities, correct, method,"
            " parse_status, raw, call_seq, created_at FROM verdicts WHERE episode = ? ORDER BY id LIMIT 1000",
            (episode_id,),
        ).fetchall()
        return [
            Verdict(r[0], r[1], r[2], r[3], r[4], _probs(r[5]), None if r[6] is None else bool(r[6]), *r[7:])
            for r in rows
        ]

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

    # -- what the workflows start from (replay, fork, rejudge, offline judging, the desk) ----
    def record(self) -> tuple[str, dict[str, Any]] | None:
        """The run's scenario file as written and its resolved config (None: no run yet)."""
        row = self.conn.execute("SELECT scenario_yaml, config FROM runs LIMIT 1").fetchone()
        return None if row is None else (row[0], json.loads(row[1]))

    def status(self) -> str | None:
        row = self.conn.execute("SELECT status FROM runs LIMIT 1").fetchone()
        return None if row is None else row[0]

    def last_round(self, episodes: set[int] | list[int]) -> int:
        """The highest round any of these episodes reached (1 when none has messages)."""
        ids = sorted(episodes)
        marks = ",".join("?" * len(ids))
        (last,) = self.conn.execute(f"SELECT max(round) FROM messages WHERE episode IN ({marks})", ids).fetchone()
        return last or 1

    def final_ruling(self, episode: int, judges: list[str]) -> tuple[str, int, int | None, int | None] | None:
        """(judge, round, choice, call_seq) of the last verdict one of `judges` gave."""
        marks = ",".join("?" * len(judges))
        return self.conn.execute(
            "SELECT judge, round, choice, call_seq FROM verdicts WHERE episode = ?"
            f" AND judge IN ({marks}) ORDER BY id DESC LIMIT 1", (episode, *judges),
        ).fetchone()  # fmt: skip

    def choices_of(self, judge: str) -> list[tuple[int, int | None, bool | None]]:
        """(episode, choice, correct) of every verdict under one judge label."""
        return [
            (e, c, None if k is None else bool(k))
            for e, c, k in self.conn.execute("SELECT episode, choice, correct FROM verdicts WHERE judge = ?", (judge,))
        ]

    def judged_by(self, prefix: str) -> dict[str, set[int]]:
        """Judge label -> the episodes it ruled, for labels starting with `prefix`."""
        out: dict[str, set[int]] = {}
        sql = "SELECT episode, judge FROM verdicts WHERE judge LIKE ? ESCAPE '\\'"
        for ep, judge in self.conn.execute(sql, (_escape_like(prefix) + "%",)):
            out.setdefault(judge, set()).add(ep)
        return out

    def rounds_judged(self, episode: int, judge: str) -> set[int]:
        return {r for (r,) in self.conn.execute(
            "SELECT round FROM verdicts WHERE episode = ? AND judge = ?", (episode, judge))}  # fmt: skip

    def next_call_seqs(self) -> dict[int, int]:
        """Per episode, the number its next model call takes (after the stored ones)."""
        return dict(self.conn.execute("SELECT episode, max(seq) + 1 FROM model_calls GROUP BY episode"))

    def next_call_seq(self, episode: int) -> int:
        (seq,) = self.conn.execute(
            "SELECT coalesce(max(seq), -1) + 1 FROM model_calls WHERE episode = ?", (episode,)
        ).fetchone()
        return int(seq)

    def answered_calls(self) -> Iterator[tuple[Any, ...]]:
        """Every call that got an answer, in order (re-judges' own left out): (episode, seq,
        seat, model, system, prompt, messages, params, response, prompt_tokens,
        completion_tokens). What a replay serves again."""
        return self.conn.execute(
            "SELECT episode, seq, seat, model, system, prompt, messages, params, response,"
            " prompt_tokens, completion_tokens FROM model_calls"
            " WHERE error IS NULL AND response IS NOT NULL AND seat NOT LIKE 'rejudge:%'"
            " ORDER BY episode, seq"
        )

    def readings(self) -> Iterator[tuple[int, str, int | None, tuple[float, ...] | None, str, str]]:
        """Every probability read from a call: (episode, seat, call_seq, probabilities,
        method, parse_status) of verdicts, ratings and check questions."""
        for sql in (
            "SELECT episode, judge, call_seq, probabilities, method, parse_status FROM verdicts",
            "SELECT episode, rater, call_seq, probabilities, method, parse_status FROM ratings",
            "SELECT episode, rater, call_seq, probabilities, method, 'ok' FROM qualifications",
        ):
            for ep, seat, seq, probs, method, status in self.conn.execute(sql):
                yield ep, seat, seq, _probs(probs), method, status

    def assignments(self) -> dict[int, dict[str, int]]:
        """The sides each episode's seats ended on."""
        return {ep: _json(a) or {} for ep, a in self.conn.execute("SELECT id, assignments FROM episodes")}

    def speeches(self) -> Iterator[tuple[int, str, str, int, str, int | None]]:
        """(episode, seat, phase, round, content, call_seq) of every message, in order."""
        return self.conn.execute(
            "SELECT episode, seat, phase, round, content, call_seq FROM messages ORDER BY episode, seq"
        )

    def memories(self, seat: str, episodes: tuple[int, int] | None = None) -> list[tuple[str, str, str, bool | None]]:
        """(kind, question, content, won) a seat wrote, in order; with `episodes` (lo, hi),
        only what those episodes wrote and what the seat started from."""
        sql = (
            "SELECT m.kind, e.question, m.content, m.won FROM memories m"
            " LEFT JOIN episodes e ON e.id = m.episode WHERE m.seat = ?"
        )
        args: tuple[Any, ...] = (seat,)
        if episodes is not None:
            sql += " AND (m.episode IS NULL OR m.episode BETWEEN ? AND ?)"
            args += episodes
        return [
            (kind, q or "", content, None if won is None else bool(won))
            for kind, q, content, won in self.conn.execute(sql + " ORDER BY m.id", args)
        ]

    # -- totals ------------------------------------------------------------------------
    def totals(self) -> Totals:
        """The whole stored run: episodes by status, calls (a person's turns are not calls),
        and each finished episode's ruling (the run's own judge's, as the analysis reads it)."""
        return _totals(self.conn, self._cached, people=False)

    def rulings(self, episodes: list[int]) -> list[tuple[bool | None, str, float | None]]:
        """(correct, parse_status, p(correct)) of these episodes' rulings (those that have one)."""
        marks = ",".join("?" * len(episodes))
        return [
            (None if c is None else bool(c), status, p)
            for c, status, p in self.conn.execute(
                f"SELECT v.correct, v.parse_status, {_P_CORRECT} FROM episodes e JOIN verdicts v ON v.id = {_RULING}"
                f" WHERE e.id IN ({marks})", tuple(episodes))
        ]  # fmt: skip

    def failures(self, limit: int = 3) -> list[tuple[int, str | None, str | None]]:
        """(episode, stop_reason, error) of the first failed episodes."""
        return self.conn.execute(
            "SELECT id, stop_reason, error FROM episodes WHERE status='failed' ORDER BY id LIMIT ?", (limit,)
        ).fetchall()

    def cell_results(self) -> list[tuple[str, int, int, int]]:
        """A sweep's cells in grid order: (name, episodes done, correct and valid rulings)."""
        try:
            return self.conn.execute(
                "SELECT c.name, coalesce(sum(e.status = 'done'), 0), coalesce(sum(v.correct), 0),"
                " coalesce(sum(v.parse_status = 'ok'), 0)"
                f" FROM cells c LEFT JOIN episodes e ON e.cell = c.name LEFT JOIN verdicts v ON v.id = {_RULING}"
                " GROUP BY c.name ORDER BY c.position"
            ).fetchall()
        except sqlite3.OperationalError:  # an older database: no cells table
            return []

    # -- live polling ------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """Everything a live view starts from, read in one transaction on a connection of
        its own (seconds on a huge run: call it from a worker thread)."""
        conn = self.connect()
        try:
            conn.execute("BEGIN")
            last = _last_rowids(conn)
            ids = self.episode_ids(conn=conn)
            running = {r[0] for r in conn.execute("SELECT id FROM episodes WHERE status = 'running'")}
            # every call row, a person's too, and no cache count: what the polls carry forward
            t = _totals(conn, "0", people=True)
            row = conn.execute("SELECT status FROM runs LIMIT 1").fetchone()
            conn.execute("COMMIT")
        finally:
            conn.close()
        return Snapshot(ids, running, last, t, row[0] if row else None)

    # -- live polling ------------------------------------------------------------------
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


def _last_rowids(conn: sqlite3.Connection) -> dict[str, int]:
    """Each appended-to table's highest rowid: where a live view's polls start."""
    out = {}
    for table in ("messages", "model_calls", "verdicts"):
        (out[table],) = conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()
    return out


def _totals(conn: sqlite3.Connection, cached: str, *, people: bool) -> Totals:
    """A run's totals in one pass per table; `people`: count a person's turns as calls."""
    t = Totals()
    t.episodes, t.done, t.failed = conn.execute(
        "SELECT count(*), coalesce(sum(status='done'),0), coalesce(sum(status='failed'),0) FROM episodes"
    ).fetchone()
    (t.messages,) = conn.execute("SELECT count(*) FROM messages").fetchone()
    t.model_calls, t.tokens, t.cost, t.cached = conn.execute(
        "SELECT count(*), coalesce(sum(prompt_tokens+completion_tokens),0), coalesce(sum(cost),0),"
        f" coalesce(sum({cached}),0) FROM model_calls"
        + ("" if people else " WHERE model != 'human' AND model NOT LIKE 'human/%'")
    ).fetchone()
    t.verdicts, t.correct, t.invalid, t.scored, t.log_score = conn.execute(_RULINGS_TOTAL).fetchone()
    return t


def _probs(s: str | None) -> tuple[float, ...] | None:
    v = _json(s)
    return tuple(v) if isinstance(v, list) else None


def _quotes(s: str | None) -> tuple[Quote, ...] | None:
    """A message's stored quotes; a malformed entry (an edited or foreign file) is left out
    rather than failing the read."""
    records = _json(s)
    if not isinstance(records, list):
        return None
    out = []
    for q in records:
        try:
            out.append(from_record(q))
        except (KeyError, TypeError, ValueError, IndexError):
            continue
    return tuple(out)


def _message(r: tuple[Any, ...]) -> Message:
    audience = _json(r[8])
    return Message(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
        None if audience is None else frozenset(audience), r[9], r[10], _quotes(r[11]),
    )  # fmt: skip


def _episode(r: tuple[Any, ...]) -> StoredEpisode:
    return StoredEpisode(
        r[0], r[1], r[2], tuple(_json(r[3]) or ()), r[4], r[5], r[6], _json(r[7]) or {},
        _json(r[8]) or {}, r[9], r[10], _json(r[11]) or {}, r[12], r[13], r[14],
    )  # fmt: skip
