"""The one writer: a sink on the bus that batches events into SQLite transactions.

The bus hands it each event synchronously (no queue hop per event: it is the hottest path in
moot), and it only keeps it; full batches (or, every `interval` seconds, partial ones) go to
one dedicated writer thread that turns them into rows while the event loop is idle. A run
database on disk is written by a child process (`_serve`) that the thread sends the rows to:
binding millions of parameters and SQLite's own work then hold no lock the event loop needs,
and use the second core (in-memory databases are written by the thread itself). At most
`queued` batches wait for the thread; beyond that the episode that filled the batch waits,
and the engine feels back-pressure: records are never dropped.
Within a batch, new episodes go first and episode updates last, so a reader never sees a
message whose episode row is missing; batches are committed in the order they were filled,
each in one transaction. A killed run keeps the batches committed before it died: the child
dies with its parent (Linux) or stops at the parent's end of the pipe, committing nothing
more, so a resumed run never races a leftover writer.
"""

from __future__ import annotations

import json
import os
import pickle
import queue
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from functools import lru_cache
from itertools import chain
from json import encoder as _json_encoder
from typing import IO, Any

import anyio

from moot.models.base import GenerateRequest
from moot.transcript.events import (
    EpisodeFinished,
    EpisodeStarted,
    Event,
    MemoryEntry,
    Message,
    ModelCall,
    Qualification,
    Rating,
    Verdict,
)
from moot.transcript.quotes import Quote


def _no_default(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# json.dumps(ensure_ascii=False, separators=(",", ":")) without its per-call set-up (it builds
# a new encoder each time, which cost more than the encoding of these small values); no
# circular-reference check: events hold plain data.
make_encoder = getattr(_json_encoder, "c_make_encoder", None)
if make_encoder is not None:
    _encode = make_encoder(None, _no_default, _json_encoder.encode_basestring, None, ":", ",", False, False, True)

    def _dumps(value: object) -> str:
        return "".join(_encode(value, 0))

else:  # an interpreter without json's C speed-ups
    _fallback = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

    def _dumps(value: object) -> str:
        return _fallback.encode(value)


INSERT_EPISODE = (
    "INSERT INTO episodes (id, question_id, question, answers, correct, source, protocol,"
    " assignments, seats, status, started_at, cell, attributes)"
    " VALUES (?,?,?,?,?,?,?,?,?,'running',?,?,?)"
)
INSERT_IMAGE = "INSERT OR IGNORE INTO images (digest, media_type, size, data) VALUES (?,?,?,?)"
INSERT_EPISODE_IMAGE = "INSERT INTO episode_images (episode, position, name, digest) VALUES (?,?,?,?)"
INSERT_MESSAGE = (
    "INSERT INTO messages (episode, seq, round, phase, seat, role, side, content, audience,"
    " created_at, call_seq, quotes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
INSERT_CALL = (
    "INSERT INTO model_calls (episode, seq, seat, role, model, system, prompt, messages,"
    " params, response, prompt_tokens, completion_tokens, cost, latency_s, attempts,"
    " started_at, error, cached) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
INSERT_VERDICT = (
    "INSERT INTO verdicts (episode, judge, model, round, choice, probabilities, correct,"
    " method, parse_status, raw, call_seq, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
INSERT_RATING = (
    "INSERT INTO ratings (episode, rater, target, other, round, score, probabilities, method,"
    " parse_status, raw, call_seq, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
INSERT_QUALIFICATION = (
    "INSERT INTO qualifications (episode, rater, question_id, choice, correct, probabilities,"
    " method, call_seq, created_at) VALUES (?,?,?,?,?,?,?,?,?)"
)
INSERT_MEMORY = "INSERT INTO memories (seat, episode, kind, content, won, source, created_at) VALUES (?,?,?,?,?,?,?)"
FINISH_EPISODE = (
    "UPDATE episodes SET status=?, stop_reason=?, ended_at=?, outcome=?, error=?,"
    " assignments=coalesce(?, assignments) WHERE id=?"
)
ORDER = (
    INSERT_EPISODE, INSERT_IMAGE, INSERT_EPISODE_IMAGE, INSERT_MESSAGE, INSERT_CALL, INSERT_VERDICT, INSERT_RATING,
    INSERT_QUALIFICATION, INSERT_MEMORY, FINISH_EPISODE,
)  # fmt: skip

Batch = dict[str, list[tuple[Any, ...]]]
# the events that become rows (others, e.g. a display's, are not the store's)
ROW_EVENTS = frozenset(
    {Message, ModelCall, Verdict, Rating, Qualification, EpisodeStarted, MemoryEntry, EpisodeFinished}
)


def _bit(value: bool | None) -> int | None:
    """A bool as SQLite stores it. sqlite3 adapts a bool through its adapter registry (a
    bool is not exactly an int), which costs the writer thread a lookup under the GIL."""
    return None if value is None else 1 if value else 0


def quotes_json(quotes: tuple[Quote, ...]) -> str:
    return _dumps(
        [
            {"text": q.text, "start": q.start, "end": q.end, "verified": q.verified,
             "source_span": q.source_span, "score": round(q.score, 4)}
            for q in quotes
        ]
    )  # fmt: skip


def call_columns(request: GenerateRequest) -> tuple[str | None, str, str | None, str]:
    """A prompt as columns: system message, last message, anything between (JSON), params.

    Plain text columns are cheaper to write than one JSON document and simpler to query."""
    messages = request.messages
    n = len(messages)
    first = 1 if n and messages[0].get("role") == "system" else 0
    system = messages[0]["content"] if first else None
    if n > first and messages[-1].get("role") == "user":
        last, middle = messages[-1]["content"], messages[first:-1]
    else:  # no final user message: keep everything after the system message as JSON
        last, middle = "", messages[first:]
    return system, last, _dumps(middle) if middle else None, request.params_json()


# The event loop is busy when its thread spent more than BUSY of the last few TICKs on the CPU,
# or when its writer task's TICK is LATE (a burst of work has just begun). While it is, the
# writer thread leaves its batch alone (for PATIENCE at most, and not when `queued` batches
# wait behind it): making rows holds the GIL, and in the 10,000 x 500 ms run every
# millisecond taken from a busy loop pushed every later turn back (bench/). When the loop
# is not busy, whatever is pending goes to the thread every TICK, so the rows keep pace
# with the run and little is left to write when it ends.
TICK = 0.005
BUSY = 0.9
LATE = 0.01
PATIENCE = 0.25
PART = 2000  # events per message to the writer process
CHECKPOINT = 4 << 20  # bytes of rows between WAL checkpoints (a quarter of SQLite's 1,000 16 KiB pages)
MAX_VARIABLES = 32_000  # SQLite's limit is 32,766 bound parameters per statement


@lru_cache(maxsize=256)
def _many_rows(sql: str, rows: int) -> str:
    """`INSERT ... SELECT` from a VALUES list of `rows` rows, in one statement; for the
    episode update, an UPDATE ... FROM (VALUES ...) that sets every listed episode at once.
    Rows whose first column is NULL are padding (see _write_rows) and are left out."""
    head, _, values = sql.partition(" VALUES ")
    if sql is FINISH_EPISODE:
        values = "(?,?,?,?,?,?,?)"
        return (  # padding's NULL id matches no episode
            "UPDATE episodes SET status=u.column1, stop_reason=u.column2, ended_at=u.column3,"
            " outcome=u.column4, error=u.column5, assignments=coalesce(u.column6, assignments)"
            f" FROM (VALUES {','.join([values] * rows)}) AS u WHERE episodes.id = u.column7"
        )
    return f"{head} SELECT * FROM (VALUES {','.join([values] * rows)}) WHERE column1 IS NOT NULL"


def _write_rows(conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """As few statements as SQLite's parameter limit allows, in a dozen shapes per table.

    sqlite3 releases the GIL while a statement runs and must take it back afterwards; while
    the event loop keeps the GIL busy, each take-back waits up to the switch interval (5 ms).
    One statement per row made the writer thread 100x slower under load (bench/); a few
    statements per batch make it as fast as on an idle interpreter. A statement's last
    chunk is padded with NULL rows up to a power of two: a statement for every row count
    that came along cost 12 ms to prepare and 2.8 MB to keep in sqlite3's statement cache,
    each (a run with 10,000 episodes in flight held 250 MB of them)."""
    cols = len(rows[0])
    most = max(1, MAX_VARIABLES // cols)
    for i in range(0, len(rows), most):
        chunk = rows[i : i + most]
        n = len(chunk)
        size = n if n == most else min(most, 1 << (n - 1).bit_length())
        params = tuple(chain.from_iterable(chunk))
        if size > n:
            params += (None,) * (cols * (size - n))
        conn.execute(_many_rows(sql, size), params)


def _database_file(conn: sqlite3.Connection) -> str:
    """The file behind a connection's main database ("" for an in-memory or temporary one)."""
    for _, name, file in conn.execute("PRAGMA database_list"):
        if name == "main":
            return str(file or "")
    return ""


def _put(pipe: IO[bytes], data: bytes) -> None:
    pipe.write(struct.pack("<Q", len(data)))
    pipe.write(data)  # a large write goes straight to the pipe, without the GIL
    pipe.flush()


def _read(pipe: IO[bytes], n: int) -> bytes:
    """n bytes, or fewer at EOF (an unbuffered pipe returns what it has)."""
    data = pipe.read(n) or b""
    if len(data) == n:
        return data
    parts = [data]
    while n > (got := sum(map(len, parts))) and (more := pipe.read(n - got)):
        parts.append(more)
    return b"".join(parts)


def _get(pipe: IO[bytes]) -> bytes | None:
    """One message, or None when the other end has gone (EOF)."""
    head = _read(pipe, 8)
    if len(head) < 8:
        return None
    (n,) = struct.unpack("<Q", head)
    data = _read(pipe, n)
    return data if len(data) == n else None


class _Child:
    """The writer process, seen from the writer thread: batches of rows go out, and one
    answer comes back for each (rows committed, or the error that stopped it)."""

    def __init__(self, path: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from moot.store.writer import _serve; _serve()", path, str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        self.unanswered = 0
        self.rows = 0

    def send(self, batch: Batch) -> None:
        rows = [(i, batch[sql]) for i, sql in enumerate(ORDER) if batch[sql]]
        assert self.proc.stdin is not None
        data = pickle.dumps(rows, pickle.HIGHEST_PROTOCOL)
        try:
            _put(self.proc.stdin, data)
        except BrokenPipeError:  # it has stopped: at an error it answered with, or killed
            while self.unanswered:
                self._answer()
            raise self._gone() from None
        self.unanswered += 1
        if self.unanswered > 1:  # one batch in the pipe while the next one is made
            self._answer()

    def _answer(self) -> None:
        assert self.proc.stdout is not None
        reply = _get(self.proc.stdout)
        if reply is None:
            raise self._gone()
        self.unanswered -= 1
        ok, value = pickle.loads(reply)
        if not ok:
            raise value
        self.rows += value

    def _gone(self) -> RuntimeError:
        return RuntimeError(f"the store's writer process ended early (exit code {self.proc.wait()})")

    def close(self) -> None:
        """The end: wait until every batch sent is committed, and the process has exited."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            try:
                _put(self.proc.stdin, b"")
                self.proc.stdin.close()
            except BrokenPipeError:  # it stopped at an error, answered below
                pass
            while self.unanswered:
                self._answer()
        finally:
            for pipe in (self.proc.stdin, self.proc.stdout):
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _serve() -> None:
    """The writer process: commits each batch it is sent in one transaction, in order, and
    answers each; stops at the end message, at an error, or when its parent is gone."""
    path, parent = sys.argv[1], int(sys.argv[2])
    # Ctrl-C reaches the whole process group; the parent decides: it sends what it has, then the end
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        try:  # PR_SET_PDEATHSIG: killed with its parent, mid-transaction if need be, as a thread is
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        return  # the parent died before we could ask
    source = open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)  # unbuffered: a batch is read whole
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not land among the answers
    conn = sqlite3.connect(path, isolation_level="DEFERRED", cached_statements=256)
    conn.execute("PRAGMA synchronous=NORMAL")
    # Copying the WAL into the database was a quarter of this process's work when SQLite did
    # it in the middle of a commit (bench/), and the run's last commit did it for the whole
    # last round: a thread of this process does it alongside, on its own connection (a
    # PASSIVE checkpoint never blocks the commits), whenever CHECKPOINT bytes have come in.
    conn.execute("PRAGMA wal_autocheckpoint=0")
    received = [0]  # bytes of rows received; the checkpointer reads it
    stop = threading.Event()

    def checkpointer() -> None:
        other = sqlite3.connect(path, check_same_thread=False)
        done = 0
        try:
            while not stop.wait(0.01):
                if received[0] - done >= CHECKPOINT:
                    done = received[0]
                    try:
                        other.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    except sqlite3.Error:
                        pass  # busy: the next one copies it
        finally:
            other.close()

    copier = threading.Thread(target=checkpointer, name="moot-checkpoint", daemon=True)
    copier.start()
    try:
        while True:
            data = _get(source)
            if not data:
                break
            if os.getppid() != parent:
                return  # without PDEATHSIG: what is still in the pipe is not committed
            batch: list[tuple[int, list[tuple[Any, ...]]]] = pickle.loads(data)
            try:
                with conn:
                    for i, rows in batch:
                        # one statement a row: nothing here waits for a GIL (see _write_rows), and
                        # it spares the big statements' preparing (bench/: 5 us a row, not 7)
                        conn.executemany(ORDER[i], rows)
            except Exception as exc:
                try:
                    reply = pickle.dumps((False, exc))
                except Exception:
                    reply = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
                _put(answers, reply)
                return
            received[0] += len(data)
            _put(answers, pickle.dumps((True, sum(len(rows) for _, rows in batch))))
    finally:
        stop.set()
        copier.join()
        conn.close()
        answers.close()
    os._exit(0)  # everything is committed and answered: no interpreter teardown to wait for


class StoreWriter:
    def __init__(
        self,
        conn: sqlite3.Connection,
        batch: int = 8000,
        queued: int = 3,
        interval: float = 0.1,
        process: bool | None = None,
    ) -> None:
        """`process`: write through a child process (None: when the database is a file)."""
        self.conn = conn
        self._path = "" if process is False else _database_file(conn)
        if process and not self._path:
            raise ValueError("an in-memory database cannot be written by another process")
        self.batch = batch
        self.interval = interval
        self.rows_written = 0
        self._batches: queue.Queue[list[Event] | None] = queue.Queue(maxsize=queued)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._lock = anyio.Lock()
        self._draining = 0
        self._closed = anyio.Event()
        self._seats: tuple[object, str] = (None, "")
        self._images: set[str] = set()  # digests already written (INSERT OR IGNORE covers a resume)
        # how busy the event loop is (see BUSY), read by the writer thread
        self._load = 0.0
        self._due = float("inf")  # when the writer task's TICK ends
        self._closing = False
        self._new()

    def _new(self) -> None:
        self.events: list[Event] = []
        self.pending = 0

    def accept(self, e: Event) -> bool:
        """Take one event; True when the batch is full and should be drained.

        The event is only queued here; the writer thread turns a batch into rows, so that
        work is done in the gaps where the event loop waits (its GIL is free then) rather
        than on every call's path. Events are not changed once published."""
        if type(e) not in ROW_EVENTS:
            return False
        self.events.append(e)
        self.pending += 1
        if self.pending < self.batch:
            return False
        if not self._draining and not self._batches.full():
            # Hand the full batch over right here: an await would let every other episode
            # run (and fill rows) before the writer thread got any work. Only this thread
            # puts, so the queue cannot fill up between the check and the put.
            self._batches.put_nowait(self._swap())
            return False
        return True  # the thread is behind: the caller waits in drain()

    def rows(self, events: Iterable[Event]) -> Batch:
        """Events as rows, by statement, in the order they are written."""
        batch: Batch = {sql: [] for sql in ORDER}
        (
            episodes, images, shown, messages, calls, verdicts, ratings, qualifications, memories, finished,
        ) = (batch[sql] for sql in ORDER)  # fmt: skip
        # dispatched on the exact type (cheaper than isinstance); Any, since mypy cannot
        # narrow through `t`
        any_events: Iterable[Any] = events
        for e in any_events:
            t = type(e)
            if t is Message:
                messages.append(
                    (
                        e.episode, e.seq, e.round, e.phase, e.seat, e.role, e.side, e.content,
                        None if e.audience is None else _dumps(sorted(e.audience)),
                        e.created_at, e.call_seq, None if e.quotes is None else quotes_json(e.quotes),
                    )
                )  # fmt: skip
            elif t is ModelCall:
                system, prompt, middle, params = call_columns(e.request)
                calls.append(
                    (
                        e.episode, e.seq, e.seat, e.role, e.model, system, prompt, middle, params,
                        e.response, e.prompt_tokens, e.completion_tokens, e.cost, e.latency_s,
                        e.attempts, e.started_at, e.error, 1 if e.cached else 0,
                    )
                )  # fmt: skip
            elif t is Verdict:
                verdicts.append(
                    (
                        e.episode, e.judge, e.model, e.round, e.choice,
                        None if e.probabilities is None else _dumps(e.probabilities),
                        _bit(e.correct), e.method, e.parse_status, e.raw, e.call_seq, e.created_at,
                    )
                )  # fmt: skip
            elif t is Rating:
                ratings.append(
                    (
                        e.episode, e.rater, e.target, e.other, e.round, e.score,
                        None if e.probabilities is None else _dumps(e.probabilities),
                        e.method, e.parse_status, e.raw, e.call_seq, e.created_at,
                    )
                )  # fmt: skip
            elif t is Qualification:
                qualifications.append(
                    (
                        e.episode, e.rater, e.question_id, e.choice, e.correct,
                        None if e.probabilities is None else _dumps(e.probabilities),
                        e.method, e.call_seq, e.created_at,
                    )
                )  # fmt: skip
            elif t is EpisodeStarted:
                episodes.append(
                    (
                        e.episode, e.question_id, e.question, _dumps(e.answers), e.correct,
                        e.source, e.protocol, _dumps(e.assignments), self._seats_json(e.seats), e.started_at,
                        e.cell, None if e.attributes is None else _dumps(e.attributes),
                    )
                )  # fmt: skip
                for i, image in enumerate(e.images):  # each distinct image's bytes once per run
                    if image.digest not in self._images:
                        self._images.add(image.digest)
                        images.append((image.digest, image.media_type, image.size, image.data))
                    shown.append((e.episode, i, image.name, image.digest))
            elif t is MemoryEntry:
                memories.append((e.seat, e.episode, e.kind, e.content, e.won, e.source, e.created_at))
            elif t is EpisodeFinished:
                finished.append(
                    (
                        e.status, e.stop_reason, e.ended_at, _dumps(e.outcome), e.error,
                        None if e.assignments is None else _dumps(e.assignments), e.episode,
                    )
                )  # fmt: skip
        return batch

    def _seats_json(self, seats: dict[str, Any]) -> str:
        """The seats' JSON, made once: every episode of a cell shares the engine's dict."""
        if seats is not self._seats[0]:
            self._seats = (seats, _dumps(seats))
        return self._seats[1]

    def _swap(self) -> list[Event]:
        events = self.events
        self._new()
        return events

    async def drain(self, partial: bool = False) -> None:
        """Hand a full batch (or, with `partial`, whatever is pending) to the writer thread.

        Waits while the thread is `queued` batches behind. Every episode that finds the
        batch full waits here, but only the first hands it off: the rest find it emptied."""
        self._draining += 1  # while anyone waits here, accept() hands nothing over itself
        try:
            async with self._lock:  # one hand-off at a time: batches reach the thread in order
                if self._error is not None:
                    raise self._error
                if not self.pending or (self.pending < self.batch and not partial):
                    return
                batch = self._swap()
                try:
                    self._batches.put_nowait(batch)
                except queue.Full:
                    await anyio.to_thread.run_sync(self._batches.put, batch)
        finally:
            self._draining -= 1

    # -- the writer thread ------------------------------------------------------------
    def write(self, batch: Batch) -> None:
        """Commit one batch in one transaction (all of it or none of it)."""
        with self.conn:
            for sql in ORDER:
                rows = batch[sql]
                if rows:
                    _write_rows(self.conn, sql, rows)

    def write_now(self, events: Iterable[Event]) -> int:
        """Write events at once, in one transaction: all of them or none (importers)."""
        rows = self.rows(events)
        self.write(rows)
        return sum(len(r) for r in rows.values())

    def _busy(self) -> bool:
        return self._load > BUSY or time.perf_counter() > self._due + LATE

    def _quiet(self) -> None:
        """Wait while the event loop is busy (see BUSY)."""
        give_up = time.monotonic() + PATIENCE
        while self._busy() and not self._closing and not self._batches.full() and time.monotonic() < give_up:
            time.sleep(0.001)

    def _work(self) -> None:
        child: _Child | None = None
        try:
            if self._path:
                try:
                    child = _Child(self._path)
                except OSError:  # no interpreter to start (an embedded Python): this thread writes
                    child = None
                except Exception as exc:  # surfaced at the next drain; batches are let through
                    self._error = exc
            while (events := self._batches.get()) is not None:
                if self._error is None:
                    self._quiet()
                    try:
                        if child is None:
                            batch = self.rows(events)
                            self.write(batch)
                            self.rows_written += sum(len(rows) for rows in batch.values())
                        else:
                            # in parts, so that the process commits one while the next is made
                            for i in range(0, len(events), PART):
                                child.send(self.rows(events[i : i + PART]))
                            self.rows_written = child.rows
                    except BaseException as exc:  # surfaced to the event loop at the next drain
                        self._error = exc
        finally:
            if child is not None:
                try:
                    child.close()
                    self.rows_written = child.rows
                except BaseException as exc:
                    if self._error is None:
                        self._error = exc

    async def run(self) -> None:
        """Start the writer thread; hand it partial batches (every TICK while the loop is not
        busy, every `interval` at least, so a live reader sees recent rows) until `close`;
        then commit what is left."""
        self._thread = threading.Thread(target=self._work, name="moot-store-writer", daemon=True)
        self._thread.start()
        try:
            handed = time.monotonic()
            while not self._closed.is_set():
                wall, cpu = time.perf_counter(), time.thread_time()  # this is the loop's thread
                self._due = wall + TICK
                with anyio.move_on_after(TICK):
                    await self._closed.wait()
                wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
                self._load = (self._load + cpu / max(wall, 1e-9)) / 2
                # nothing while the thread has a batch waiting: the rows go with the next one
                if self._batches.empty() and (not self._busy() or time.monotonic() - handed >= self.interval):
                    handed = time.monotonic()
                    await self.drain(partial=True)
        finally:
            # Even when cancelled, what was received is committed before the run ends.
            with anyio.CancelScope(shield=True):
                self._closing = True
                self._due = float("inf")
                try:
                    await self.drain(partial=True)
                finally:
                    await anyio.to_thread.run_sync(self._batches.put, None)
                    await anyio.to_thread.run_sync(self._thread.join)
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """No more events: `run` commits the rest and returns."""
        self._closing = True
        self._closed.set()
