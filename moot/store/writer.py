"""The one writer: a bus subscriber that batches events into SQLite transactions.

Rows accumulate while events arrive and are committed when the batch is full or the stream
has gone quiet, in a worker thread so the event loop keeps running while SQLite writes.
Within a batch, episode rows go first and episode updates last, so readers never see a
message whose episode is missing.
"""

from __future__ import annotations

import json
import sqlite3
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
INSERT_CALL = "INSERT INTO model_calls VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
INSERT_VERDICT = (
    "INSERT INTO verdicts (episode, judge, model, round, choice, probabilities, correct,"
    " method, parse_status, raw, call_seq, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
FINISH_EPISODE = (
    "UPDATE episodes SET status=?, stop_reason=?, ended_at=?, outcome=?, error=? WHERE id=?"
)


class StoreWriter:
    def __init__(self, conn: sqlite3.Connection, events: ObjectReceiveStream[Event], batch: int = 2000):
        self.conn = conn
        self.events = events
        self.batch = batch
        self.rows_written = 0
        self._reset()

    def _reset(self) -> None:
        self.episodes: list[tuple] = []
        self.messages: list[tuple] = []
        self.calls: list[tuple] = []
        self.verdicts: list[tuple] = []
        self.finished: list[tuple] = []
        self.pending = 0

    def add(self, e: Event) -> None:
        t = type(e)
        if t is Message:
            self.messages.append(
                (
                    e.episode, e.seq, e.round, e.phase, e.seat, e.role, e.side, e.content,
                    None if e.audience is None else _dumps(sorted(e.audience)),
                    e.created_at, e.call_seq,
                )
            )  # fmt: skip
        elif t is ModelCall:
            self.calls.append(
                (
                    e.episode, e.seq, e.seat, e.role, e.model, _dumps(e.request), e.response,
                    e.prompt_tokens, e.completion_tokens, e.cost, e.latency_s, e.attempts,
                    e.started_at, e.error,
                )
            )  # fmt: skip
        elif t is Verdict:
            self.verdicts.append(
                (
                    e.episode, e.judge, e.model, e.round, e.choice,
                    None if e.probabilities is None else _dumps(e.probabilities),
                    e.correct, e.method, e.parse_status, e.raw, e.call_seq, e.created_at,
                )
            )  # fmt: skip
        elif t is EpisodeStarted:
            self.episodes.append(
                (
                    e.episode, e.question_id, e.question, _dumps(e.answers), e.correct,
                    e.source, e.protocol, _dumps(e.assignments), _dumps(e.seats), e.started_at,
                )
            )  # fmt: skip
        elif t is EpisodeFinished:
            self.finished.append(
                (e.status, e.stop_reason, e.ended_at, _dumps(e.outcome), e.error, e.episode)
            )
        self.pending += 1

    def flush_sync(self) -> None:
        if not self.pending:
            return
        batch: list[tuple[str, list[tuple[Any, ...]]]] = [
            (INSERT_EPISODE, self.episodes),
            (INSERT_MESSAGE, self.messages),
            (INSERT_CALL, self.calls),
            (INSERT_VERDICT, self.verdicts),
            (FINISH_EPISODE, self.finished),
        ]
        n = self.pending
        self._reset()
        with self.conn:
            for sql, rows in batch:
                if rows:
                    self.conn.executemany(sql, rows)
        self.rows_written += n

    async def run(self) -> None:
        """Drain the event stream until the bus closes it, then write what is left."""
        events = self.events
        async with events:
            while True:
                try:
                    event = events.receive_nowait()
                except anyio.WouldBlock:
                    if self.pending:
                        await anyio.to_thread.run_sync(self.flush_sync)
                        continue
                    try:
                        event = await events.receive()
                    except anyio.EndOfStream:
                        break
                except anyio.EndOfStream:
                    break
                self.add(event)
                if self.pending >= self.batch:
                    await anyio.to_thread.run_sync(self.flush_sync)
        self.flush_sync()
