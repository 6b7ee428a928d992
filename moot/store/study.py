"""A web study's tables (migration V11): participants, their offline-judging assignments, the
stories each has read, and the study's settings (moot.web is their one user).

Nothing here names a person unless the admin typed it: a participant is an ID (`p3`), the
sha256 of their link's token, and for a crowd platform the sha256 of the platform's ID. Each
method is one statement or one immediate transaction on one autocommit connection, behind a
lock: the server's request threads share it.

Assignment (`assign_next`) follows the rules of Michael et al. 2023's offline judging: each
episode is judged by at most K distinct people, nobody judges a story (an episode's
question_id) they debated or already read, a person's next episode comes from the condition
they have judged least (then the one judged least overall), then from the episode given out
least; its position in the person's order is stored.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["NameTaken", "Participant", "StudyTables", "digest", "new_token"]


def new_token() -> str:
    """An unguessable token for a link (32 random bytes, URL-safe)."""
    return secrets.token_urlsafe(32)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(slots=True)
class Participant:
    id: str
    label: str | None
    seat: str | None
    consented: bool
    leaderboard: bool
    completed: bool
    crowd: bool
    display_name: str | None = None  # the name they chose for the leaderboard (untrusted text)

    @property
    def judge(self) -> str:
        """Their verdicts' judge label."""
        return f"human:{self.id}"


_COLUMNS = ("id, label, seat, consented_at IS NOT NULL, leaderboard, completed_at IS NOT NULL,"
            " external_hash IS NOT NULL, display_name")  # fmt: skip


def _participant(row: tuple[Any, ...]) -> Participant:
    return Participant(row[0], row[1], row[2], bool(row[3]), bool(row[4]), bool(row[5]), bool(row[6]), row[7])


class NameTaken(ValueError):
    """Another participant appears under that name already."""


class StudyTables:
    """The study's rows in a run database whose migrations made its tables (store.connect)."""

    def __init__(self, path: str | Path) -> None:
        from moot import store

        self.path = Path(path)
        store.upgrade(self.path)  # to V11 (the tables), V13 (display names), V14 (rounds shown)
        self._conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout = 30000")
        # as the run's writer (WAL + NORMAL): a crash of the server loses nothing committed
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _all(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _run(self, sql: str, *args: Any) -> int:
        with self._lock:
            return self._conn.execute(sql, args).rowcount

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    # -- settings ----------------------------------------------------------------------
    def setting(self, key: str, default: str | None = None) -> str | None:
        rows = self._all("SELECT value FROM study_settings WHERE key = ?", key)
        return rows[0][0] if rows else default

    def set_setting(self, key: str, value: str) -> None:
        self._run("INSERT INTO study_settings (key, value) VALUES (?, ?)"
                  " ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value)  # fmt: skip

    def secret(self) -> str:
        """The server's key for CSRF tokens, made once per study (restarts keep pages valid)."""
        with self._transaction() as conn:
            row = conn.execute("SELECT value FROM study_settings WHERE key = 'csrf_key'").fetchone()
            if row is not None:
                return str(row[0])
            key = secrets.token_hex(32)
            conn.execute("INSERT INTO study_settings (key, value) VALUES ('csrf_key', ?)", (key,))
            return key

    def new_admin_token(self) -> str:
        token = new_token()
        self.set_setting("admin_token_hash", digest(token))
        return token

    def is_admin(self, token: str) -> bool:
        want = self.setting("admin_token_hash")
        return want is not None and secrets.compare_digest(want, digest(token))

    def new_crowd_token(self, completion_code: str) -> str:
        token = new_token()
        self.set_setting("crowd_token_hash", digest(token))
        self.set_setting("completion_code", completion_code)
        return token

    def is_crowd(self, token: str) -> bool:
        want = self.setting("crowd_token_hash")
        return want is not None and secrets.compare_digest(want, digest(token))

    # -- participants ------------------------------------------------------------------
    def _next_id(self, conn: sqlite3.Connection) -> str:
        (n,) = conn.execute("SELECT count(*) FROM study_participants").fetchone()
        return f"p{n + 1}"

    def add_participant(self, label: str | None = None, seat: str | None = None) -> tuple[str, str]:
        """A new participant: (their ID, their link's token, which only its hash is kept of)."""
        token = new_token()
        with self._transaction() as conn:
            pid = self._next_id(conn)
            conn.execute(
                "INSERT INTO study_participants (id, token_hash, label, seat, created_at) VALUES (?,?,?,?,?)",
                (pid, digest(token), label, seat, time.time()),
            )
        return pid, token

    def crowd_participant(self, external_id: str) -> tuple[str, str]:
        """The participant a crowd platform's ID stands for (made on their first visit), with
        a fresh token for their link (the old one stops working)."""
        token = new_token()
        ext = digest("crowd:" + external_id)
        with self._transaction() as conn:
            row = conn.execute("SELECT id FROM study_participants WHERE external_hash = ?", (ext,)).fetchone()
            if row is None:
                pid = self._next_id(conn)
                conn.execute(
                    "INSERT INTO study_participants (id, token_hash, external_hash, created_at) VALUES (?,?,?,?)",
                    (pid, digest(token), ext, time.time()),
                )
            else:
                pid = row[0]
                conn.execute("UPDATE study_participants SET token_hash = ? WHERE id = ?", (digest(token), pid))
        return pid, token

    def by_token(self, token: str) -> Participant | None:
        rows = self._all(f"SELECT {_COLUMNS} FROM study_participants WHERE token_hash = ?", digest(token))
        return _participant(rows[0]) if rows else None

    def participants(self) -> list[Participant]:
        rows = self._all(f"SELECT {_COLUMNS} FROM study_participants ORDER BY created_at, rowid")
        return [_participant(r) for r in rows]

    def consent(self, pid: str) -> None:
        self._run("UPDATE study_participants SET consented_at = ? WHERE id = ? AND consented_at IS NULL",
                  time.time(), pid)  # fmt: skip

    def set_leaderboard(self, pid: str, name: str | None) -> None:
        """Appear on the leaderboard under `name` (checked by the caller), or, with None,
        leave it and forget the name. NameTaken if someone else appears under it."""
        with self._transaction() as conn:
            if name is not None:
                clash = conn.execute(
                    "SELECT 1 FROM study_participants WHERE id != ? AND leaderboard AND lower(display_name) = lower(?)",
                    (pid, name),
                ).fetchone()  # fmt: skip
                if clash is not None:
                    raise NameTaken(name)
            conn.execute("UPDATE study_participants SET leaderboard = ?, display_name = ? WHERE id = ?",
                         (int(name is not None), name, pid))  # fmt: skip

    def complete(self, pid: str) -> None:
        self._run("UPDATE study_participants SET completed_at = ? WHERE id = ? AND completed_at IS NULL",
                  time.time(), pid)  # fmt: skip

    # -- what people have read ---------------------------------------------------------
    def expose(self, pid: str, story: str) -> None:
        self._run("INSERT OR IGNORE INTO study_exposures (participant, story) VALUES (?, ?)", pid, story)

    def exposures(self, pid: str) -> set[str]:
        return {r[0] for r in self._all("SELECT story FROM study_exposures WHERE participant = ?", pid)}

    # -- offline-judging assignments -----------------------------------------------------
    def assignments(self, pid: str) -> list[tuple[int, int, bool, bool]]:
        """(position, episode, done, expired) in the order the person was given them."""
        rows = self._all("SELECT position, episode, done_at IS NOT NULL, expired_at IS NOT NULL FROM study_assignments"
                         " WHERE participant = ? ORDER BY position", pid)  # fmt: skip
        return [(int(p), int(e), bool(d), bool(x)) for p, e, d, x in rows]

    def open_assignment(self, pid: str) -> int | None:
        rows = self._all("SELECT episode FROM study_assignments WHERE participant = ? AND done_at IS NULL"
                         " AND expired_at IS NULL ORDER BY position LIMIT 1", pid)  # fmt: skip
        return int(rows[0][0]) if rows else None

    def first_shown(self, pid: str, episode: int, round_: int, now: float) -> float:
        """When the round was first shown to the person: `now` if it never was."""
        with self._lock:
            self._conn.execute("INSERT OR IGNORE INTO study_shown (participant, episode, round, shown_at)"
                               " VALUES (?, ?, ?, ?)", (pid, episode, round_, now))  # fmt: skip
            row = self._conn.execute("SELECT shown_at FROM study_shown WHERE participant = ? AND episode = ?"
                                     " AND round = ?", (pid, episode, round_)).fetchone()  # fmt: skip
        return float(row[0])

    def expire(self, pid: str, episode: int) -> None:
        """The person's time ran out on the episode: it no longer counts toward its K people
        (someone else may judge it) nor toward their own number; they do not get it again."""
        self._run("UPDATE study_assignments SET expired_at = ? WHERE participant = ? AND episode = ?"
                  " AND done_at IS NULL AND expired_at IS NULL", time.time(), pid, episode)  # fmt: skip

    def finish(self, pid: str, episode: int) -> None:
        self._run("UPDATE study_assignments SET done_at = ? WHERE participant = ? AND episode = ? AND done_at IS NULL",
                  time.time(), pid, episode)  # fmt: skip

    def assign_next(self, pid: str, episodes: dict[int, tuple[str, str]], k: int, per_person: int | None) -> int | None:
        """Give the person their next episode (episode -> (story, condition) are the ones to
        judge), atomically; None when nothing is left for them."""
        with self._transaction() as conn:
            mine = conn.execute("SELECT episode, expired_at IS NOT NULL FROM study_assignments WHERE participant = ?",
                                (pid,)).fetchall()  # fmt: skip
            if per_person is not None and sum(not x for _, x in mine) >= per_person:
                return None
            taken = {int(e) for e, _ in mine}  # expired ones too: they have read those
            read = {r[0] for r in conn.execute("SELECT story FROM study_exposures WHERE participant = ?", (pid,))}
            read |= {episodes[e][0] for e in taken if e in episodes}
            load = dict(conn.execute("SELECT episode, count(*) FROM study_assignments WHERE expired_at IS NULL"
                                     " GROUP BY episode").fetchall())  # fmt: skip
            free = [e for e, (story, _) in episodes.items()
                    if e not in taken and story not in read and load.get(e, 0) < k]  # fmt: skip
            if not free:
                return None
            my_cells: dict[str, int] = {}
            for e in taken:
                if e in episodes:
                    my_cells[episodes[e][1]] = my_cells.get(episodes[e][1], 0) + 1
            all_cells: dict[str, int] = {}
            for e, n in load.items():
                if e in episodes:
                    all_cells[episodes[e][1]] = all_cells.get(episodes[e][1], 0) + n
            pick = min(free, key=lambda e: (my_cells.get(episodes[e][1], 0), all_cells.get(episodes[e][1], 0),
                                            load.get(e, 0), e))  # fmt: skip
            conn.execute(
                "INSERT INTO study_assignments (participant, episode, position, assigned_at) VALUES (?,?,?,?)",
                (pid, pick, len(mine) + 1, time.time()),
            )
            return pick

    # -- the dashboard's figures ---------------------------------------------------------
    def progress(self) -> list[tuple[str, int, int, int | None, float | None]]:
        """Per participant: (id, episodes assigned, done, correct final verdicts, mean seconds
        per verdict)."""
        rows = self._all(
            """
            SELECT p.id,
                   (SELECT count(*) FROM study_assignments a WHERE a.participant = p.id),
                   (SELECT count(*) FROM study_assignments a WHERE a.participant = p.id AND a.done_at IS NOT NULL),
                   (SELECT sum(v.correct) FROM study_assignments a JOIN verdicts v
                      ON v.episode = a.episode AND v.judge = 'human:' || p.id
                      AND v.round = (SELECT max(round) FROM verdicts w WHERE w.episode = a.episode AND w.judge = v.judge)
                    WHERE a.participant = p.id AND a.done_at IS NOT NULL),
                   (SELECT avg(c.latency_s) FROM model_calls c WHERE c.seat = 'human:' || p.id AND c.model = 'human')
            FROM study_participants p ORDER BY p.created_at, p.rowid
            """
        )
        return [(r[0], int(r[1]), int(r[2]), None if r[3] is None else int(r[3]), r[4]) for r in rows]

    def condition_progress(self) -> list[tuple[str, int, int, int, int | None]]:
        """Per condition: (condition, finished episodes, assignments, done, correct)."""
        rows = self._all(
            """
            SELECT coalesce(e.cell, (SELECT name FROM runs LIMIT 1)) AS cond,
                   count(DISTINCT e.id),
                   count(a.episode),
                   count(a.done_at),
                   sum(CASE WHEN a.done_at IS NULL THEN NULL ELSE
                       (SELECT v.correct FROM verdicts v WHERE v.episode = a.episode AND v.judge = 'human:' || a.participant
                        ORDER BY v.round DESC LIMIT 1) END)
            FROM episodes e LEFT JOIN study_assignments a ON a.episode = e.id
            WHERE e.status = 'done' GROUP BY cond ORDER BY cond
            """
        )
        return [(str(r[0]), int(r[1]), int(r[2]), int(r[3]), None if r[4] is None else int(r[4])) for r in rows]

    def human_verdicts(self) -> list[tuple[Any, ...]]:
        """Every study participant's verdict, for the export: (judge, episode, round,
        probabilities JSON, choice, correct, seconds, created_at)."""
        return self._all(
            "SELECT v.judge, v.episode, v.round, v.probabilities, v.choice, v.correct, c.latency_s, v.created_at"
            " FROM verdicts v LEFT JOIN model_calls c ON c.episode = v.episode AND c.seq = v.call_seq"
            " WHERE v.judge IN (SELECT 'human:' || id FROM study_participants) ORDER BY v.id"
        )

    def verdict_count(self, judge: str) -> int:
        return int(self._all("SELECT count(*) FROM verdicts WHERE judge = ?", judge)[0][0])

    # -- live seats (the human_turns of moot.agents.desk) -------------------------------------
    def give_back_shown(self, seats: list[str]) -> int:
        """Turns a stopped server had shown to its participants wait for them again."""
        if not seats:
            return 0
        marks = ",".join("?" * len(seats))
        return self._run(f"UPDATE human_turns SET status = 'pending', shown_at = NULL"
                         f" WHERE status = 'shown' AND seat IN ({marks})", *seats)  # fmt: skip
