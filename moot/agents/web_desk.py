"""People in a live run's seats from a browser (`moot serve`, moot.web): the joining side of
the run database's desk (moot.agents.desk), for many participants at once.

A run with people's seats and no terminal for them (`moot run` without `--tui`, or seats
marked `join: true`) writes each of their turns as a `human_turns` row and waits. The study
server holds one `JoinDesk` per seat; a participant given a seat takes its next pending turn
when their page asks for it, and their answer goes into the same row, checked here first
(a speech within the protocol's limits, probabilities for every answer): what the browser
sends is never trusted. A turn a participant holds when the server stops is given back
(`StudyTables.give_back_shown`) and shown again when they return; an answer written is the
run's, whatever happens to the server after.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from moot.agents.desk import JoinDesk, PendingTurn
from moot.agents.human import TurnAnswer, normalise, speech_problems

__all__ = ["LiveSeats", "TurnRefused"]


class TurnRefused(ValueError):
    """An answer the turn does not allow (over a limit, not a distribution); the turn stays open."""


class LiveSeats:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._desks: dict[str, JoinDesk] = {}
        self._held: dict[str, PendingTurn] = {}  # participant -> the turn in front of them
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            for d in self._desks.values():
                d.close()
            self._desks.clear()

    def _desk(self, seat: str) -> JoinDesk:
        with self._lock:
            desk = self._desks.get(seat)
            if desk is None:
                desk = self._desks[seat] = JoinDesk(self.path, seat)
            return desk

    def turn(self, participant: str, seat: str) -> PendingTurn | None:
        """The turn in front of the participant: the one they hold, else the seat's next
        pending one (taken for them, atomically), else None."""
        with self._lock:
            held = self._held.get(participant)
            desk = self._desk(seat)
            if held is not None:
                if desk.still_open(held):
                    return held
                del self._held[participant]  # timed out or withdrawn: the run moved on
            got = desk.take()
            if got is not None:
                self._held[participant] = got
            return got

    def answer(self, participant: str, seat: str, turn_id: int, answer: TurnAnswer) -> bool:
        """Hand the participant's answer to the run. TurnRefused if the turn does not allow
        it; False if it is not the turn they hold (answered already, or the run moved on)."""
        with self._lock:
            held = self._held.get(participant)
            if held is None or held.id != turn_id:
                return False
            req = held.request
            if req.kind in ("verdict", "choose"):
                if normalise(answer.probabilities, len(req.answers)) is None:
                    raise TurnRefused("give a probability for every answer")
                answer.end = answer.end and req.may_end
                answer.content = ""
            else:
                if req.kind == "speech":
                    problems = speech_problems(answer.content, req.char_limit, req.quote_limit)
                    if problems:
                        raise TurnRefused("; ".join(problems))
                if not answer.content.strip() and req.kind != "question":  # a question may be left out
                    raise TurnRefused("write something first")
                answer.probabilities = None
                answer.end = False
            answer.shown_at, answer.answered_at = held.shown_at, time.time()
            # who took it: a seat may pass from person to person (the turn's row, and the
            # run's call and verdict, model `human/ID`, name them)
            answer.by = participant
            ok = self._desk(seat).turns.answer(held.id, answer.to_json(), answer.answered_at)
            del self._held[participant]
            return ok

    def give_back(self, participant: str) -> None:
        with self._lock:
            held = self._held.pop(participant, None)
            if held is not None:
                seat = held.request.seat
                self._desk(seat).give_back(held)
