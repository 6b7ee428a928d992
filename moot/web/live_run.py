"""`moot serve SCENARIO.yaml`: the scenario's run in the server's process, beside it.

The run plays on an event loop of its own, in a thread (an anyio blocking portal), not on
uvicorn's loop: the run's engine and the server then never wait on each other's scheduling
(a burst of participants' page loads cannot delay a model's turn, a long model call on the
loop cannot stall the pages), uvicorn keeps the main thread and with it the Ctrl-C handling
`moot serve RUN.db` already has, and the run is `moot run`'s own `execute`, unchanged:
people's seats wait in the database's `human_turns`, exactly as for a run in another process,
and the server's live seats take them from there. Ctrl-C cancels the run's task: the run
is stored as interrupted (its writer commits what it had) and `moot run --resume` goes on.
"""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import Future
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moot.errors import ConfigError

if TYPE_CHECKING:
    from moot.workflows.run import Prepared, RunSummary

__all__ = ["LiveRun"]


class LiveRun:
    """One run of a prepared scenario into `path`, on its own thread and event loop."""

    def __init__(self, prep: Prepared, path: Path, resume: bool) -> None:
        self.prep, self.path, self.resume = prep, Path(path), resume
        self._stack = ExitStack()
        self.future: Future[RunSummary] | None = None

    def start(self) -> None:
        from anyio.from_thread import start_blocking_portal

        from moot.workflows.aio import USE_UVLOOP

        portal = self._stack.enter_context(start_blocking_portal(backend_options={"use_uvloop": USE_UVLOOP}))
        self.future = portal.start_task_soon(self._execute)

    async def _execute(self) -> RunSummary:
        from moot.workflows.run import execute

        return await execute(self.prep, self.path, resume=self.resume)

    @property
    def done(self) -> bool:
        return self.future is not None and self.future.done()

    def wait_for_database(self, poll: float = 0.05) -> None:
        """Until the run has written its record (models load first, then the database is
        made): the server opens the database only then. A run that fails first raises."""
        assert self.future is not None
        while True:
            if self.future.done():
                self.future.result()  # its error (a ConfigError is one line, exit 2)
                return
            if self._has_record():
                return
            time.sleep(poll)

    def _has_record(self) -> bool:
        from moot.store.reader import RunReader

        if not self.path.is_file():
            return False
        try:
            with RunReader(self.path) as reader:
                return reader.run() is not None
        except (ConfigError, sqlite3.Error):  # being made: not yet
            return False

    def outcome(self) -> tuple[RunSummary | None, BaseException | None]:
        """A finished run's summary, or its error (None, None while it runs or if cancelled)."""
        if self.future is None or not self.future.done() or self.future.cancelled():
            return None, None
        exc = self.future.exception()
        return (None, exc) if exc is not None else (self.future.result(), None)

    def stop(self) -> bool:
        """Cancel the run if it still plays and wait for it to store what it has; True if it
        was interrupted (so it is resumable), False if it had finished."""
        interrupted = self.future is not None and not self.future.done()
        if interrupted:
            assert self.future is not None
            self.future.cancel()  # cancels execute's task: it stores the run as interrupted
        self._stack.close()  # joins the portal's thread: returns once the task has ended
        return interrupted

    def describe_error(self, exc: BaseException) -> str:
        if isinstance(exc, ConfigError):
            return str(exc)
        return f"{type(exc).__name__}: {exc}"

    def __enter__(self) -> LiveRun:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
