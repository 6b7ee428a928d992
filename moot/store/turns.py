"""The `human_turns` table (migration V10): where a run hands a person's turn to whoever
joins its seat from another process, and takes the answer back (moot.agents.desk).

Each method is one statement (or one immediate transaction) on a connection of its own,
in autocommit, safe to call from several threads: the run asks from a worker thread, the
joining app from its own. A turn's life:

    pending -> shown (a person opened it) -> answered
            -> timeout (the time limit passed after it was shown; the run moved on)
            -> cancelled (the run stopped, e.g. Ctrl-C; a resumed run asks again)
    shown -> pending (the person quit without answering: the turn waits for someone else)
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any


class HumanTurns:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _one(self, sql: str, *args: Any) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, args)

    # -- the run's side ------------------------------------------------------------------
    def cancel_open(self) -> None:
        """Turns an earlier process of this run left open were never answered for it."""
        self._one("UPDATE human_turns SET status = 'cancelled' WHERE status IN ('pending', 'shown')")

    def ask(self, episode: int, seat: str, kind: str, round_: int, request: str, time_limit: float | None) -> int:
        cur = self._one(
            "INSERT INTO human_turns (episode, seat, kind, round, request, time_limit, asked_at, status)"
            " VALUES (?,?,?,?,?,?,?, 'pending')", episode, seat, kind, round_, request, time_limit, time.time(),
        )  # fmt: skip
        return int(cur.lastrowid or 0)

    def state(self, turn: int) -> tuple[str, float | None, str | None]:
        """(status, shown_at, answer JSON) of a turn."""
        with self._lock:
            row = self._conn.execute(
                "SELECT status, shown_at, answer FROM human_turns WHERE id = ?", (turn,)
            ).fetchone()
        return row if row is not None else ("missing", None, None)

    def time_out(self, turn: int, at: float) -> bool:
        """Mark a shown turn as timed out; False if it was answered meanwhile."""
        cur = self._one(
            "UPDATE human_turns SET status = 'timeout', answered_at = ? WHERE id = ? AND status = 'shown'", at, turn
        )
        return cur.rowcount == 1

    def withdraw(self, turn: int) -> None:
        self._one("UPDATE human_turns SET status = 'cancelled' WHERE id = ? AND status IN ('pending', 'shown')", turn)

    # -- the joining side ----------------------------------------------------------------
    def take(self, seat: str) -> tuple[int, str, float] | None:
        """Claim the seat's earliest pending turn, atomically (one person per turn):
        (id, request JSON, shown_at)."""
        with self._lock:
            now = time.time()
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT id, request FROM human_turns WHERE seat = ? AND status = 'pending'"
                    " ORDER BY episode, id LIMIT 1", (seat,),
                ).fetchone()  # fmt: skip
                if row is not None:
                    conn.execute("UPDATE human_turns SET status = 'shown', shown_at = ? WHERE id = ?", (now, row[0]))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return None if row is None else (row[0], row[1], now)

    def answer(self, turn: int, answer: str, at: float) -> bool:
        """Hand the answer to the run; False if the run no longer waits for it."""
        cur = self._one(
            "UPDATE human_turns SET status = 'answered', answer = ?, answered_at = ? WHERE id = ? AND status = 'shown'",
            answer, at, turn,
        )  # fmt: skip
        return cur.rowcount == 1

    def give_back(self, turn: int) -> None:
        self._one("UPDATE human_turns SET status = 'pending', shown_at = NULL WHERE id = ? AND status = 'shown'", turn)

    def run_status(self) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT status FROM runs LIMIT 1").fetchone()
        return None if row is None else row[0]
