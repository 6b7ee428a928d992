"""Shared stand-ins for tests."""

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
