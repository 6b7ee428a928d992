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

The table is the schema's (migration V10; its statements in moot.store.turns) and holds
only the hand-over (the turns' records are in `messages`, `model_calls` and `verdicts`, as
for any seat).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from moot.agents.human import SLACK_S, HumanSeat, TurnAnswer, TurnRequest
from moot.store.turns import HumanTurns

__all__ = ["JoinDesk", "StoreDesk", "attach_store"]

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
        self._turns: HumanTurns | None = None
        self._told: set[str] = set()

    def _table(self) -> HumanTurns:
        if self._turns is None:
            turns = HumanTurns(self.path)  # the run's database: its migrations made the table
            turns.cancel_open()
            self._turns = turns
        return self._turns

    async def _do(self, method: str, *args: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: getattr(self._table(), method)(*args))

    async def ask(self, request: TurnRequest) -> TurnAnswer:
        turn_id = await self._do(
            "ask", request.episode, request.seat, request.kind, request.round, request.to_json(), request.time_limit
        )
        if request.seat not in self._told:
            self._told.add(request.seat)
            self.notify(f"waiting for a person in seat {request.seat}: moot join {self.path} --seat {request.seat}")
        done = False
        try:
            while True:
                status, shown_at, answer = await self._do("state", turn_id)
                if status == "answered":
                    done = True
                    return TurnAnswer.from_json(answer)
                if (
                    status == "shown" and request.time_limit is not None
                    and time.time() > shown_at + request.time_limit + SLACK_S
                ):  # fmt: skip
                    if await self._do("time_out", turn_id, time.time()):
                        done = True
                        return TurnAnswer(timed_out=True, shown_at=shown_at, answered_at=time.time())
                    continue  # answered just now: read it
                await anyio.sleep(self.poll)
        finally:
            if not done:  # cancelled (Ctrl-C): the turn is withdrawn; a resumed run asks again
                with anyio.CancelScope(shield=True):
                    await self._do("withdraw", turn_id)


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
        self.turns = HumanTurns(self.path)

    def close(self) -> None:
        self.turns.close()

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
        return self.turns.run_status() or "starting"

    def take(self) -> PendingTurn | None:
        """Claim the seat's earliest pending turn (atomically: one person per turn)."""
        got = self.turns.take(self.seat)
        if got is None:
            return None
        turn_id, request, shown_at = got
        return PendingTurn(turn_id, TurnRequest.from_json(request), shown_at)

    def answer(self, turn: PendingTurn, answer: TurnAnswer) -> bool:
        """Hand the answer to the run; False if the run no longer waits for it."""
        answer.shown_at = turn.shown_at
        answer.answered_at = answer.answered_at or time.time()
        return self.turns.answer(turn.id, answer.to_json(), answer.answered_at)

    def give_back(self, turn: PendingTurn) -> None:
        """The person left without answering: the turn waits for the next one to join."""
        self.turns.give_back(turn.id)

    def still_open(self, turn: PendingTurn) -> bool:
        return self.turns.state(turn.id)[0] == "shown"
