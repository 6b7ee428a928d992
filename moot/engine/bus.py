"""The message bus: typed events out to subscribers, and per-seat views in to the engine.

The bus is where visibility is enforced. The engine never builds a view itself; it asks the
bus, which applies two rules:

- a seat that may not see the source (a blind judge) gets `source=None`;
- messages posted inside a sealed (simultaneous) round are held back from every seat's view
  until the round is released, so no debater reads the other's speech before the round closes.

Observers subscribe to the full event stream through bounded buffers (a slow one applies
back-pressure rather than losing records); the store writer is attached as a synchronous
sink with its own bounded batches, and displays poll `stats`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import anyio
from anyio.abc import ObjectReceiveStream
from anyio.streams.memory import MemoryObjectSendStream

from moot.agents.base import View
from moot.transcript.events import EpisodeFinished, EpisodeStarted, Event, Message, ModelCall, Totals, Verdict, visible


class Sink(Protocol):
    """Takes events synchronously; `accept` returns True when it wants to be drained, and
    `drain` may wait (back-pressure). Bounded by its own batch size."""

    def accept(self, event: Event) -> bool: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class SeatSight:
    role: str
    side: int | None
    sees_source: bool
    memo: dict[object, object] = field(default_factory=dict)  # the seat's View.memo


@dataclass(slots=True)
class _Episode:
    started: EpisodeStarted
    sight: dict[str, SeatSight]
    transcript: list[Message] = field(default_factory=list)
    held: list[Message] | None = None  # not None while a sealed round is open
    messages_posted: int = 0
    calls_made: int = 0
    restricted: int = 0  # messages with an audience: views must filter (else: all of it)


class Bus:
    def __init__(self) -> None:
        self._subscribers: list[MemoryObjectSendStream[Event]] = []
        self._sinks: list[Sink] = []
        self._episodes: dict[int, _Episode] = {}
        self.stats = Totals()  # this process's: polled by displays and the budget

    # -- observers -------------------------------------------------------------------
    def subscribe(self, buffer: int = 4096) -> ObjectReceiveStream[Event]:
        send, receive = anyio.create_memory_object_stream[Event](buffer)
        self._subscribers.append(send)
        return receive

    def attach(self, sink: Sink) -> None:
        """A synchronous subscriber (the store writer): no queue hop per event."""
        self._sinks.append(sink)

    async def publish(self, event: Event) -> None:
        self._count(event)
        for sink in self._sinks:
            if sink.accept(event):
                await sink.drain()
        if self._subscribers:
            await self._send(event)

    async def _send(self, event: Event) -> None:
        for stream in self._subscribers:
            try:
                stream.send_nowait(event)  # the fast path: no trip through the event loop
            except anyio.WouldBlock:
                await stream.send(event)

    async def close(self) -> None:
        for stream in self._subscribers:
            await stream.aclose()
        self._subscribers.clear()
        for sink in self._sinks:
            sink.close()
        self._sinks.clear()

    def _count(self, event: Event) -> None:
        s = self.stats
        if type(event) is Message:
            s.messages += 1
        elif type(event) is ModelCall:
            s.model_calls += 1
            s.tokens += event.prompt_tokens + event.completion_tokens
            s.cost += event.cost or 0.0
            s.cached += event.cached
        elif type(event) is Verdict:
            s.verdicts += 1
            s.correct += event.correct is True
            s.invalid += event.parse_status != "ok"
        elif type(event) is EpisodeStarted:
            s.episodes += 1
        elif type(event) is EpisodeFinished:
            if event.status == "done":
                s.done += 1
            else:
                s.failed += 1

    # -- episodes --------------------------------------------------------------------
    async def open_episode(self, started: EpisodeStarted, sight: dict[str, SeatSight]) -> None:
        self._episodes[started.episode] = _Episode(started, sight)
        await self.publish(started)

    async def close_episode(self, finished: EpisodeFinished) -> None:
        self._episodes.pop(finished.episode, None)
        await self.publish(finished)

    async def post(self, message: Message) -> None:
        ep = self._episodes[message.episode]
        if ep.held is not None:
            ep.held.append(message)
        else:
            ep.transcript.append(message)
        if message.audience is not None:
            ep.restricted += 1
        await self.publish(message)

    def next_message_seq(self, episode: int) -> int:
        ep = self._episodes[episode]
        ep.messages_posted += 1
        return ep.messages_posted - 1

    def message_slot(self, episode: int, seat: str) -> tuple[int, int | None]:
        """The next message's number in the episode, and the side its seat speaks for."""
        ep = self._episodes[episode]
        ep.messages_posted += 1
        return ep.messages_posted - 1, ep.sight[seat].side

    def next_call_seq(self, episode: int) -> int:
        ep = self._episodes[episode]
        ep.calls_made += 1
        return ep.calls_made - 1

    def assign(self, episode: int, seat: str, side: int) -> None:
        """A seat chose the answer it defends (open debate / consultancy)."""
        self._episodes[episode].sight[seat].side = side

    def side(self, episode: int, seat: str) -> int | None:
        return self._episodes[episode].sight[seat].side

    def sides(self, episode: int) -> dict[str, int | None]:
        return {seat: s.side for seat, s in self._episodes[episode].sight.items()}

    def seal(self, episode: int) -> None:
        """Open a simultaneous round: what is posted now stays out of every view."""
        ep = self._episodes[episode]
        if ep.held is not None:
            raise RuntimeError(f"episode {episode}: a sealed round is already open")
        ep.held = []

    def release(self, episode: int) -> None:
        """Close the simultaneous round: its messages become visible, in posting order."""
        ep = self._episodes[episode]
        held, ep.held = ep.held or [], None
        ep.transcript.extend(held)

    def view(self, episode: int, seat: str) -> View:
        ep = self._episodes[episode]
        sight = ep.sight[seat]
        st = ep.started
        return View(
            episode, seat, sight.role, st.question, st.answers, sight.side,
            st.source if sight.sees_source else None,
            visible(ep.transcript, seat) if ep.restricted else tuple(ep.transcript), sight.memo,
            st.images if sight.sees_source else (),
        )  # fmt: skip

    def transcript(self, episode: int) -> tuple[Message, ...]:
        """The full record so far, released messages only (for conditions and outcomes)."""
        return tuple(self._episodes[episode].transcript)
