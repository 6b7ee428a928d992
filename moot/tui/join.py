"""Apps for people who take a seat outside `moot run --tui`.

`moot join RUN.db --seat judge`: a seat of a run another process is executing. The run
waits at each of the seat's turns; this app takes them one at a time from the database
(moot.agents.desk), shows each in the seat's view and hands the answer back. Several people
can join different seats of one run, each from their own terminal.

`moot judge RUN.db --as NAME`: offline judging of stored transcripts (moot.workflows.offline), round by
round, as a new judge beside the original ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static

from moot.agents.human import TurnAnswer
from moot.tui.human import HumanTurnScreen
from moot.tui.text import plain

__all__ = ["JoinApp", "JudgeApp"]

OVER = ("done", "failed", "interrupted", "budget_spent")


class _PersonApp(App[None]):
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]
    CSS = "#status { padding: 1 2; height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield Static(Text("starting…"), id="status", markup=False)
        yield Footer()

    def say(self, text: Text | str) -> None:
        for status in self.query("#status").results(Static):  # none while the app closes
            status.update(text if isinstance(text, Text) else Text(text))


class JoinApp(_PersonApp):
    """A person in one seat of a running run."""

    TITLE = "moot join"

    def __init__(self, path: str | Path, seat: str, *, poll: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from moot.agents.desk import JoinDesk

        self.path = Path(path)
        self.seat = seat
        self.poll_interval = poll
        self.desk = JoinDesk(self.path, seat)
        seats = self.desk.seats()
        if not seats.get(seat):
            from moot.errors import ConfigError

            self.desk.close()
            people = ", ".join(sorted(s for s, human in seats.items() if human)) or "none"
            why = "no such seat in this run" if seat not in seats else "a model sits there"
            raise ConfigError(f"--seat {seat}: {why} (people's seats: {people})")
        self.turn: Any = None
        self.answered = 0
        self._busy = False

    def on_mount(self) -> None:
        self.say(f"joined {plain(str(self.path))} as {plain(self.seat)}: waiting for the run to ask…")
        self.set_interval(self.poll_interval, self.poll)

    async def poll(self) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            if self.turn is not None:  # the run may give up on it (time limit, Ctrl-C)
                if not await anyio.to_thread.run_sync(self.desk.still_open, self.turn):
                    self.turn = None
                    if isinstance(self.screen, HumanTurnScreen):
                        self.screen._done = True
                        self.pop_screen()
                    self.notify("the run no longer waits for that turn", severity="warning")
                return
            turn = await anyio.to_thread.run_sync(self.desk.take)
            if turn is not None:
                self.turn = turn
                self.push_screen(HumanTurnScreen(turn.request, turn.shown_at), callback=self._answered)
                return
            status = await anyio.to_thread.run_sync(self.desk.run_status)
            t = Text(end="")
            t.append(f"{plain(self.seat)}", style="bold")
            t.append(f" in {plain(str(self.path))} · run {plain(status)} · {self.answered} turns answered\n")
            if status in OVER:
                t.append("the run is over: q to quit", style="bold")
            else:
                t.append("waiting for the run to ask this seat…", style="dim")
            self.say(t)
        finally:
            self._busy = False

    def _answered(self, answer: TurnAnswer | None) -> None:
        turn, self.turn = self.turn, None
        if turn is not None and answer is not None:
            self._busy = True  # no new turn is taken before this one is handed in
            self.run_worker(self._hand_in(turn, answer), group="answers")

    async def _hand_in(self, turn: Any, answer: TurnAnswer) -> None:
        try:
            if await anyio.to_thread.run_sync(self.desk.answer, turn, answer):
                self.answered += 1
            else:
                self.notify("too late: the run no longer waits for that turn", severity="warning")
        finally:
            self._busy = False

    async def action_quit(self) -> None:
        if self.turn is not None:  # unanswered: it waits for whoever joins next
            await anyio.to_thread.run_sync(self.desk.give_back, self.turn)
            self.turn = None
        await self.workers.wait_for_complete()  # an answer on its way is handed in first
        self.exit()

    def on_unmount(self) -> None:
        self.desk.close()


class JudgeApp(_PersonApp):
    """A person judging stored transcripts, round by round."""

    TITLE = "moot judge"

    def __init__(self, path: str | Path, name: str, *, seat: str | None = None,
                 time_limit: float | None = None, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        from moot.workflows.offline import OfflineJudging

        self.session = OfflineJudging(path, name, seat=seat, time_limit=time_limit)

    def on_mount(self) -> None:
        self.next_turn()

    def next_turn(self) -> None:
        s = self.session
        request = s.next()
        if request is None:
            self.say(Text(f"every episode is judged: {s.judged} verdicts given as {s.label} in this "
                          "session, stored beside the original judges'. q to quit", end=""))  # fmt: skip
            return
        request.title = f"{s.label} · {s.remaining()} episodes to go"
        self.say(f"judging {plain(str(s.path))} as {plain(s.label)}")
        self.push_screen(HumanTurnScreen(request), callback=self._answered)

    def _answered(self, answer: TurnAnswer | None) -> None:
        if answer is not None:
            self.session.record(answer)
        self.next_turn()

    def on_unmount(self) -> None:
        self.session.close()
