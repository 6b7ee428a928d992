"""Shared stand-ins for tests."""

import socket
import sqlite3
from collections import defaultdict

from moot.transcript.events import ModelCall


class RecordingSink:
    """Stands in for the bus under a Model: numbers calls per episode, keeps every event."""

    def __init__(self) -> None:
        self.events: list = []
        self._seq: dict[int, int] = defaultdict(int)

    def next_call_seq(self, episode: int) -> int:
        self._seq[episode] += 1
        return self._seq[episode] - 1

    async def publish(self, event) -> None:
        self.events.append(event)

    @property
    def calls(self) -> list[ModelCall]:
        return [e for e in self.events if isinstance(e, ModelCall)]


def rows(path, sql, *args):
    """A query's rows from a database on disk, on a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
