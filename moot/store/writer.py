"""The one writer: a bus subscriber that batches events into SQLite transactions.

Events become row tuples on the event loop; full batches go to one dedicated writer thread
that commits them, so SQLite works on the second core while the next batch fills (sqlite3
releases the GIL while it writes). At most `queued` batches wait for the thread; beyond
that the subscriber waits, the bus buffer fills, and the engine feels back-pressure: records
are never dropped. Within a batch, new episodes go first and episode updates last, so a
reader never sees a message whose episode row is missing.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream

from moot.events import EpisodeFinished, EpisodeStarted, Event, Message, ModelCall, Verdict

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

INSERT_EPISODE = (
    "INSERT INTO episodes (id, question_id, question, answers, correct, source, protocol,"
    " assignments, seats, status, started_at) VALUES (?,?,?,?,?,?,?,?,?,'running',?)"
)
INSERT_MESSAGE = "INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?,?,?)"
INSERT_CALL = "INSERT INTO model_calls VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
INSERT_VERDICT = (
    "INSERT INTO verdicts (episode, judge, model, round, choice, probabilities, correct,"
    " method, parse_status, raw, call_seq, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
FINISH_EPISODE = (
    "UPDATE episodes SET status=?, stop_reason=?, ended_at=?, outcome=?, error=? WHERE id=?"
)
ORDER = (INSERT_EPISODE, INSERT_MESSAGE, INSERT_CALL, INSERT_VERDICT, FINISH_EPISODE)

Batch = dict[str, list[tuple[Any, ...]]]


def call_columns(request: dict[str, Any]) -> tuple[str | None, str, str | None, str]:
    """A prompt as columns: system message, last message, anything between (JSON), params.

    Plain text columns are cheaper to write than one JSON document and simpler to query."""
    messages = request["messages"]
    system = None
    first = 0
    if messages and messages[0].get("role") == "system":
        system, first = messages[0]["content"], 1
    last = messages[-1]["content"] if len(messages) > first else ""
    middle = messages[first:-1] if len(messages) > first else []
    params = {k: v for k, v in request.items() if k != "messages"}
    if len(messages) > first and messages[-1].get("role") != "user":
        middle = messages[first:]
        last = ""
    return system, last, _dumps(middle) if middle else None, _dumps(params)


class StoreWriter:
    def __init__(
        self,
        conn: sqlite3.Connection,
        events: ObjectReceiveStream[Event] | None,
        batch: int = 4000,
        queued: int = 2,
    ) -> None:
        self.conn = conn
        self.events = events
        self.batch = batch
        self.rows_written = 0
        self._batches: queue.Queue[Batch | None] = queue.Queue(maxsize=queued)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._new()

    def _new(self) -> None:
        self.rows: Batch = {sql: [] for sql in ORDER}
        self._episodes, self._messages, self._calls, self._verdicts, self._finished = (
            self.rows[sql] for sql in ORDER
        )
        self.pending = 0

    def add(self, e: Event) -> None:
        t = type(e)
        if t is Message:
            self._messages.append(
                (
                    e.episode, e.seq, e.round, e.phase, e.seat, e.role, e.side, e.content,
                    None if e.audience is None else _dumps(sorted(e.audience)),
                    e.created_at, e.call_seq,
                )
            )  # fmt: skip
        elif t is ModelCall:
            system, prompt, middle, params = call_columns(e.request)
            self._calls.append(
                (
                    e.episode, e.seq, e.seat, e.role, e.model, system, prompt, middle, params,
                    e.response, e.prompt_tokens, e.completion_tokens, e.cost, e.latency_s,
                    e.attempts, e.started_at, e.error,
                )
            )  # fmt: skip
        elif t is Verdict:
            self._verdicts.append(
                (
                    e.episode, e.judge, e.model, e.round, e.choice,
                    None if e.probabilities is None else _dumps(e.probabilities),
                    e.correct, e.method, e.parse_status, e.raw, e.call_seq, e.created_at,
                )
            )  # fmt: skip
        elif t is EpisodeStarted:
            self._episodes.append(
                (
                    e.episode, e.question_id, e.question, _dumps(e.answers), e.correct,
                    e.source, e.protocol, _dumps(e.assignments), _dumps(e.seats), e.started_at,
                )
            )  # fmt: skip
        elif t is EpisodeFinished:
            self._finished.append(
                (e.status, e.stop_reason, e.ended_at, _dumps(e.outcome), e.error, e.episode)
            )
        self.pending += 1

    # -- the writer thread ------------------------------------------------------------
    def write(self, batch: Batch) -> None:
        """Commit one batch in one transaction (all of it or none of it)."""
        with self.conn:
            for sql in ORDER:
                rows = batch[sql]
                if rows:
                    self.conn.executemany(sql, rows)

    def _work(self) -> None:
        while (batch := self._batches.get()) is not None:
            if self._error is None:
                try:
                    self.write(batch)
                    self.rows_written += sum(len(rows) for rows in batch.values())
                except BaseException as exc:  # surfaced to the event loop at the next hand-off
                    self._error = exc

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="moot-store-writer", daemon=True)
            self._thread.start()

    async def _hand_off(self) -> None:
        if self._error is not None:
            raise self._error
        batch = self.rows
        self._new()
        try:
            self._batches.put_nowait(batch)
        except queue.Full:
            await anyio.to_thread.run_sync(self._batches.put, batch)

    def flush_sync(self) -> None:
        """Write what is pending now, on this thread (for use outside the event loop)."""
        if self.pending:
            batch = self.rows
            self._new()
            self.write(batch)

    async def run(self) -> None:
        """Drain the event stream until the bus closes it, then write what is left."""
        assert self.events is not None
        self._start()
        events = self.events
        try:
            async with events:
                while True:
                    try:
                        event = events.receive_nowait()
                    except anyio.WouldBlock:
                        if self.pending:
                            await self._hand_off()
                            continue
                        try:
                            event = await events.receive()
                        except anyio.EndOfStream:
                            break
                    except anyio.EndOfStream:
                        break
                    self.add(event)
                    if self.pending >= self.batch:
                        await self._hand_off()
                if self.pending:
                    await self._hand_off()
        finally:
            # Even when cancelled, what was received is committed before the run ends.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._batches.put, None)
                await anyio.to_thread.run_sync(self._thread.join)  # type: ignore[union-attr]
        if self._error is not None:
            raise self._error
