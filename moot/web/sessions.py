"""The study server's offline-judging sessions, a bounded number of them.

A session (moot.workflows.offline.OfflineJudging) holds a SQLite connection of its own, to
write (its reads go through the server's reader: moot.web.study). Kept per participant for the
life of the server, every participant who ever came kept one open (three file descriptors in
WAL mode), however few of them were judging at that moment. The pool keeps the most
recently used `size` sessions and closes the rest; a participant whose session was closed
gets a new one on their next page, which picks up where they are (the rounds they have
judged are in the database, not in the session).

A session is closed only once no request is using it: one request's eviction of another's
session waits for that request to end.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from moot.workflows.offline import OfflineJudging

__all__ = ["SessionPool"]


@dataclass(slots=True)
class _Entry:
    session: OfflineJudging
    episode: int
    users: int = 0
    retired: bool = False


class SessionPool:
    def __init__(self, make: Callable[[str, int], OfflineJudging], end: Callable[[OfflineJudging], None],
                 size: int = 64) -> None:  # fmt: skip
        self._make = make  # (participant, episode) -> a session over that one episode
        self._end = end  # closes what the session holds of its own
        self.size = size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.opened = 0  # sessions made, ever (the tests' and the bench's counter)
        self.closed = 0

    @property
    def open(self) -> int:
        """Sessions whose connections are open (kept, or retired but still in use)."""
        return self.opened - self.closed

    @contextmanager
    def use(self, participant: str, episode: int) -> Iterator[OfflineJudging]:
        """The participant's session over `episode`, held for the `with` block."""
        with self._lock:
            entry = self._entries.get(participant)
            if entry is not None and entry.episode != episode:  # they moved on: a new session
                del self._entries[participant]
                self._retire(entry)
                entry = None
            if entry is None:
                entry = _Entry(self._make(participant, episode), episode)
                self.opened += 1
                self._entries[participant] = entry
                while len(self._entries) > self.size:
                    self._retire(self._entries.popitem(last=False)[1])
            self._entries.move_to_end(participant)
            entry.users += 1
        try:
            yield entry.session
        finally:
            with self._lock:
                entry.users -= 1
                if entry.retired and entry.users == 0:
                    self._close(entry)

    def _retire(self, entry: _Entry) -> None:
        entry.retired = True
        if entry.users == 0:
            self._close(entry)

    def _close(self, entry: _Entry) -> None:
        self._end(entry.session)
        entry.users = -1  # closed: never again
        self.closed += 1

    def close(self) -> None:
        with self._lock:
            while self._entries:
                self._retire(self._entries.popitem()[1])
