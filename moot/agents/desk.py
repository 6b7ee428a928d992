"""People who take a seat from another terminal: the run database is where they meet the run.

A run with a person's seat and no terminal of its own for them (`moot run` without `--tui`)
writes each of that seat's turns as a row of `human_turns` in its database and waits for the
answer; `moot join RUN.db --seat judge` (another process, another terminal, or several of
them for several seats) takes the seat's pending turns one at a time and writes the answers
into the same rows.

Why the database and not a socket: it is already the one file both processes open, it
survives either process (a run resumed later asks again; a person who quits leaves the turn
pending for whoever joins next), it needs no port or address, and SQLite's transactions make
taking a turn atomic, so two people joining the same seat cannot both answer one turn.

The row carries the seat's whole view (the bus's, as JSON) rather than a reference to stored
messages: in a simultaneous round the other speech is stored before the person may see it,
and only the bus knows what this seat may read at this moment.

The table is the schema's (migration V10, moot.store.schema) and holds only the hand-over
(the turns' records are in `messages`, `model_calls` and `verdicts`, as for any seat).

    pending -> shown (a person opened it) -> answered
            -> timeout (the time limit passed after it was shown; the run moved on)
            -> cancelled (the run stopped, e.g. Ctrl-C; a resumed run asks again)
    shown -> pending (the person quit without answering: the turn waits for someone else)
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from moot.agents.human import SLACK_S, HumanSeat, TurnAnswer, TurnRequest

__all__ = ["JoinDesk", "StoreDesk", "attach_store"]

def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def attach_store(seats: Iterable[Any], path: Path, notify: Callable[[str], None] | None = None) -> None:
    """Give every person's seat the run database as its desk, for when the process has none
    of its own (the terminal UI sets one for its seats)."""
    humans = [s for s in seats if isinstance(s, HumanSeat)]
    if humans:
        desk = StoreDesk(path, notify=notify)
        for seat in humans:
            seat.fallback = desk


def _say(text: str) -> None:
    """Tell whoever runs the run: its terminal UI if it has one, else stderr."""
    from moot.agents.human import DESK

    desk = DESK.get()
    if desk is not None and hasattr(desk, "notify"):
        desk.notify(text)
    else:
        print(f"moot: {text}", file=sys.stderr, flush=True)


class StoreDesk:
    """The running process's side: ask by writing a row, wait for the answer in it."""

    def __init__(self, path: Path, *, poll: float = 0.1, notify: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self.poll = poll
        self.notify = notify or _say
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._told: set[str] = set()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = _connect(self.path)  # the run's database: its migrations made human_turns
            # turns left by an earlier process of this run were never answered for it
            conn.execute("UPDATE human_turns SET status = 'cancelled' WHERE status IN ('pending', 'shown')")
            self._conn = conn
        return self._conn

    def _do(self, sql: str, args: tuple[Any, ...]) -> Any:
        with self._lock:
            cur = self._db().execute(sql, args)
            return cur.lastrowid if sql.startswith("INSERT") else (cur.rowcount, cur.fetchall())

    async def _sql(self, sql: str, *args: Any) -> Any:
        return await anyio.to_thread.run_sync(self._do, sql, args)

    async def ask(self, request: TurnRequest) -> TurnAnswer:
        turn_id = await self._sql(
            "INSERT INTO human_turns (episode, seat, kind, round, request, time_limit, asked_at,"
            " status) VALUES (?,?,?,?,?,?,?, 'pending')",
            request.episode, request.seat, request.kind, request.round, request.to_json(),
            request.time_limit, time.time(),
        )  # fmt: skip
        if request.seat not in self._told:
            self._told.add(request.seat)
            self.notify(f"waiting for a person in seat {request.seat}: moot join {self.path} --seat {request.seat}")
        done = False
        try:
            while True:
                _, rows = await self._sql(
                    "SELECT status, shown_at, answer FROM human_turns WHERE id = ?", turn_id
                )
                status, shown_at, answer = rows[0]
                if status == "answered":
                    done = True
                    return TurnAnswer.from_json(answer)
                if (
                    status == "shown" and request.time_limit is not None
                    and time.time() > shown_at + request.time_limit + SLACK_S
                ):  # fmt: skip
                    changed, _ = await self._sql(
                        "UPDATE human_turns SET status = 'timeout', answered_at = ?"
                        " WHERE id = ? AND status = 'shown'", time.time(), turn_id,
                    )  # fmt: skip
                    if changed:
                        done = True
                        return TurnAnswer(timed_out=True, shown_at=shown_at, answered_at=time.time())
                    continue  # answered just now: read it
                await anyio.sleep(self.poll)
        finally:
            if not done:  # cancelled (Ctrl-C): the turn is withdrawn; a resumed run asks again
                with anyio.CancelScope(shield=True):
                    await self._sql(
                        "UPDATE human_turns SET status = 'cancelled' WHERE id = ?"
                        " AND status IN ('pending', 'shown')", turn_id,
                    )  # fmt: skip


@dataclass(slots=True)
class PendingTurn:
    id: int
    request: TurnRequest
    shown_at: float


class JoinDesk:
    """The joining process's side (`moot join`): take the seat's next turn, answer it, or
    give it back. Blocking calls: the app runs them in a thread."""

    def __init__(self, path: str | Path, seat: str) -> None:
        self.path = Path(path)
        self.seat = seat
        self.conn = _connect(self.path)
        # the app calls from its own thread and from workers: one statement at a time
        self.lock = threading.RLock()

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def seats(self) -> dict[str, bool]:
        """The run's seats, each with whether a person sits in it (from its stored scenario)."""
        from moot.agents.human import is_human
        from moot.protocols import registry
        from moot.store.transcripts import stored_scenario

        out: dict[str, bool] = {}
        for cell in stored_scenario(self.path)[0].cells():
            for spec in registry.build(cell.scenario).seats:
                human = is_human(cell.scenario.seat(spec.id, spec.role).model)
                out[spec.id] = out.get(spec.id, False) or human
        return out

    def run_status(self) -> str:
        with self.lock:
            row = self.conn.execute("SELECT status FROM runs LIMIT 1").fetchone()
            return row[0] if row else "starting"

    def take(self) -> PendingTurn | None:
        """Claim the seat's earliest pending turn (atomically: one person per turn)."""
        with self.lock:
            now = time.time()
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                row = self.conn.execute(
                    "SELECT id, request FROM human_turns WHERE seat = ? AND status = 'pending'"
                    " ORDER BY episode, id LIMIT 1", (self.seat,),
                ).fetchone()  # fmt: skip
                if row is None:
                    return None
                self.conn.execute(
                    "UPDATE human_turns SET status = 'shown', shown_at = ? WHERE id = ?", (now, row[0])
                )
            return PendingTurn(row[0], TurnRequest.from_json(row[1]), now)

    def answer(self, turn: PendingTurn, answer: TurnAnswer) -> bool:
        """Hand the answer to the run; False if the run no longer waits for it."""
        with self.lock:
            answer.shown_at = turn.shown_at
            answer.answered_at = answer.answered_at or time.time()
            cur = self.conn.execute(
                "UPDATE human_turns SET status = 'answered', answer = ?, answered_at = ?"
                " WHERE id = ? AND status = 'shown'", (answer.to_json(), answer.answered_at, turn.id),
            )  # fmt: skip
            return cur.rowcount == 1

    def give_back(self, turn: PendingTurn) -> None:
        """The person left without answering: the turn waits for the next one to join."""
        with self.lock:
            self.conn.execute(
                "UPDATE human_turns SET status = 'pending', shown_at = NULL WHERE id = ? AND status = 'shown'",
                (turn.id,),
            )

    def still_open(self, turn: PendingTurn) -> bool:
        with self.lock:
            row = self.conn.execute("SELECT status FROM human_turns WHERE id = ?", (turn.id,)).fetchone()
            return row is not None and row[0] == "shown"
