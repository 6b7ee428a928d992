"""A person's turn on screen: their seat's view, and where they answer.

One screen serves every way a person takes a seat: the live run (`moot run --tui`, through
`TuiDesk`), a seat joined from another terminal (`moot join`) and offline judging of stored
transcripts (`moot judge`). It shows exactly the `TurnRequest` it is given, which holds only
what the seat may see (a blind judge's has no passage), and returns a `TurnAnswer`.

- A judge sets a probability per answer, always summing to 100%: left/right move 5% toward
  answer A or B (up/down pick the answer when there are more than two), digits type the
  picked answer's percentage. Enter rules and goes on; `e` ends the debate where the
  protocol lets the judge stop early.
- A judge's question and a debater's speech are written in a text area; a speech may quote
  the passage with `<quote>...</quote>`, typed or taken from a selection in the passage pane
  (ctrl+o). The protocol's character and quote limits are shown as they fill and enforced:
  a speech over a limit cannot be sent. ctrl+s sends.
- With a time limit, the time left is shown; when it runs out the turn ends unanswered.
- ctrl+c (or q outside a text area) quits the app: a live run stops resumable, a joined
  turn goes back to waiting.

Everything a person or a model wrote is drawn as plain text (moot.tui.text), never markup.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static, TextArea

from moot.agents.human import (
    PROBABILITY_TURNS,
    TurnAnswer,
    TurnRequest,
    message_from_record,
    speech_problems,
    speech_size,
)
from moot.transcript import quotes as quoting
from moot.tui.text import plain
from moot.tui.widgets import Transcript, colour, letter

__all__ = ["HumanTurnScreen", "ProbabilityBar", "TuiDesk", "run_with_tui", "spread"]

STEP = 5  # percentage points per key press


def spread(percents: list[int], i: int, value: int) -> list[int]:
    """Set answer i to `value`% and share the rest among the others in proportion to what
    they had (evenly if they had nothing): whole percentages that always sum to 100."""
    n = len(percents)
    value = max(0, min(100, value))
    if n == 1:
        return [100]
    others = [j for j in range(n) if j != i]
    rest = 100 - value
    had = sum(percents[j] for j in others)
    weights = [percents[j] if had else 1 for j in others]
    total = sum(weights)
    shares = [rest * w // total for w in weights]
    # the remainder, a point at a time, to the largest fractional parts (ties: earlier answer)
    order = sorted(range(len(others)), key=lambda k: (-(rest * weights[k] % total), k))
    for k in order[: rest - sum(shares)]:
        shares[k] += 1
    out = [0] * n
    out[i] = value
    for j, s in zip(others, shares):
        out[j] = s
    return out


class ProbabilityBar(Widget, can_focus=True):
    """A probability per answer, summing to 100%: keys move it, digits type it."""

    DEFAULT_CSS = "ProbabilityBar { height: auto; padding: 0 1; } ProbabilityBar:focus { background: $boost; }"
    BINDINGS = [
        Binding("left", "toward(0)", "toward A", show=False),
        Binding("right", "toward(1)", "toward B", show=False),
        Binding("up", "pick(-1)", "pick answer", show=False),
        Binding("down", "pick(1)", "pick answer", show=False),
    ]
    percents: reactive[list[int]] = reactive(list, always_update=True)
    picked: reactive[int] = reactive(0)

    def __init__(self, answers: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answers = answers
        n = max(1, len(answers))
        self.set_reactive(ProbabilityBar.percents, spread([0] * n, 0, 100 // n) if n > 1 else [100])
        self.typed = ""

    @property
    def probabilities(self) -> tuple[float, ...]:
        return tuple(p / 100 for p in self.percents)

    def set_percent(self, i: int, value: int) -> None:
        self.percents = spread(self.percents, i, value)

    def action_toward(self, side: int) -> None:
        """Two answers: toward A (left) or B (right). More: the picked answer up or down."""
        self.typed = ""
        if len(self.percents) == 2:
            self.set_percent(side, self.percents[side] + STEP)
        else:
            self.set_percent(self.picked, self.percents[self.picked] + (STEP if side else -STEP))

    def action_pick(self, step: int) -> None:
        self.typed = ""
        self.picked = (self.picked + step) % len(self.percents)

    def on_key(self, event: Any) -> None:
        if event.character and event.character.isdigit():
            typed = (self.typed + event.character)[-3:]
            if int(typed) > 100:
                typed = event.character
            self.typed = typed
            self.set_percent(self.picked, int(typed))
            event.stop()

    def render(self) -> Text:
        t = Text(end="")
        width = max(10, min(40, self.size.width - 72))
        for i, (answer, p) in enumerate(zip(self.answers, self.percents)):
            style = f"bold {colour('debater', i)}"
            t.append("▶ " if i == self.picked else "  ", style=style)
            t.append(f"{letter(i)} {p:3d}% ", style=style)
            filled = round(width * p / 100)
            t.append("█" * filled, style=colour("debater", i))
            t.append("░" * (width - filled), style="dim")
            t.append("  " + plain(answer)[:60])
            t.append("\n")
        if self.typed:
            t.append(f"typing {letter(self.picked)} = {self.typed}%", style="italic dim")
        t.rstrip()
        return t


def _clock(seconds: float) -> str:
    s = max(0, int(seconds + 0.999))
    return f"{s // 60}:{s % 60:02d}"


class HumanTurnScreen(Screen[TurnAnswer]):
    """One turn of one person. Dismissed with their answer (or a timed-out one)."""

    BINDINGS = [
        Binding("ctrl+s", "send", "send", priority=True),
        Binding("enter", "rule", "rule & go on", show=False),
        Binding("e", "end", "end the debate", show=False),
        Binding("ctrl+o", "quote", "quote selection", priority=True),
        Binding("tab", "focus_next", "next pane", show=False),
        Binding("ctrl+c", "app.quit", "quit", priority=True, show=False),
        Binding("q", "app.quit", "quit", show=False),
    ]
    DEFAULT_CSS = """
    HumanTurnScreen #turn-header { height: auto; max-height: 9; padding: 0 1; background: $panel; }
    HumanTurnScreen #turn-body { height: 1fr; }
    HumanTurnScreen #turn-body Transcript { width: 1fr; }
    HumanTurnScreen #passage { width: 1fr; border: round $secondary; }
    HumanTurnScreen #turn-input { height: auto; border-top: hkey $accent; }
    HumanTurnScreen #editor { height: 8; }
    HumanTurnScreen #limits { height: auto; padding: 0 1; }
    HumanTurnScreen #hint { height: auto; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, request: TurnRequest, shown_at: float | None = None) -> None:
        super().__init__()
        self.request = request
        self.shown_at = shown_at or time.time()
        self.probability_turn = request.kind in PROBABILITY_TURNS
        self._done = False

    # -- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        r = self.request
        yield Static(self.header(), id="turn-header", markup=False)
        with Horizontal(id="turn-body"):
            yield Transcript(id="transcript")
            if r.source is not None:
                passage = TextArea(r.source, read_only=True, id="passage", soft_wrap=True)
                passage.border_title = "passage (select, then ctrl+o to quote)" if r.kind == "speech" else "passage"
                yield passage
        with Vertical(id="turn-input"):
            if self.probability_turn:
                yield ProbabilityBar(r.answers, id="bar")
            else:
                yield TextArea("", id="editor", soft_wrap=True, show_line_numbers=False)
                yield Static(id="limits", markup=False)
            yield Static(self.hint(), id="hint", markup=False)
        yield Footer()

    def header(self) -> Text:
        r = self.request
        t = Text(end="")
        t.append(plain(r.seat), style=f"bold {colour(r.role, r.side)}")
        t.append(f" · {plain(r.role)}")
        if r.side is not None:
            t.append(f" · you argue for {letter(r.side)}", style=f"bold {colour('debater', r.side)}")
        t.append(f" · episode {r.episode} · round {r.round} of {r.rounds} · {plain(r.kind)}")
        if r.title:
            t.append(f" · {plain(r.title)}", style="dim")
        if r.time_limit:
            left = r.time_limit - (time.time() - self.shown_at)
            t.append(f"  {_clock(left)} left", style="bold #e06c75" if left < 30 else "bold #e5c07b")
        t.append("\nQ ", style="bold")
        t.append(plain(r.question))
        for i, answer in enumerate(r.answers):
            t.append(f"\n{letter(i)} ", style=f"bold {colour('debater', i)}")
            t.append(plain(str(answer)))
        if r.source is None:
            t.append("\nyou do not see the passage: quotes are marked ", style="dim")
            t.append("verified", style="underline #98c379")
            t.append(" or ", style="dim")
            t.append("not found", style="strike #e06c75")
        return t

    def hint(self) -> Text:
        r = self.request
        if r.kind == "verdict":
            keys = "←/→ toward A/B · digits type a % · ↑/↓ pick an answer · enter: rule" + (
                " and go on · e: end the debate now" if r.may_end else "")
        elif r.kind == "choose":
            keys = "←/→ · digits: the answer you will defend gets the most · enter: choose"
        else:
            keys = "ctrl+s: send" + (" · ctrl+o: quote the passage selection · tab: switch pane"
                                     if r.source is not None else "")
        return Text(keys + " · ctrl+c: quit (the run can be resumed)", end="")

    def on_mount(self) -> None:
        tr = self.query_one(Transcript)
        tr.set_verdicts([])
        tr.show([message_from_record(m) for m in self.request.messages])
        if self.probability_turn:
            self.query_one(ProbabilityBar).focus()
        else:
            self.query_one("#editor", TextArea).focus()
            self.update_limits()
        if self.request.time_limit:
            self.set_interval(0.5, self.tick)

    # -- time -------------------------------------------------------------------------------
    def tick(self) -> None:
        if self._done:
            return
        if time.time() - self.shown_at >= (self.request.time_limit or 0):
            self.finish(TurnAnswer(timed_out=True))
            return
        self.query_one("#turn-header", Static).update(self.header())

    # -- text -------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        return self.query_one("#editor", TextArea).text

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.id == "editor":
            self.update_limits()

    def update_limits(self) -> None:
        r = self.request
        text = self.text
        chars, quoted, n = speech_size(text)
        t = Text(end="")
        over = r.char_limit is not None and chars > r.char_limit
        t.append(f"{chars}" + (f"/{r.char_limit}" if r.char_limit else "") + " characters",
                 style="bold #e06c75" if over else "")  # fmt: skip
        if r.kind == "speech":
            over_q = r.quote_limit is not None and quoted > r.quote_limit
            t.append(" · quoted " + f"{quoted}" + (f"/{r.quote_limit}" if r.quote_limit is not None else ""),
                     style="bold #e06c75" if over_q else "")  # fmt: skip
            if n and r.source:
                found = quoting.verify(text, r.source)
                bad = sum(1 for q in found if not q.verified)
                t.append(f" · {n} quote{'s' * (n != 1)}")
                if bad:
                    t.append(f", {bad} not in the passage", style="#e06c75")
        self.query_one("#limits", Static).update(t)

    def action_quote(self) -> None:
        if self.probability_turn:
            return
        try:
            passage = self.query_one("#passage", TextArea)
        except Exception:
            self.notify("you do not see the passage")
            return
        chosen = passage.selected_text.strip()
        if not chosen:
            self.notify("select some of the passage first")
            return
        editor = self.query_one("#editor", TextArea)
        editor.insert(f"<quote>{chosen}</quote> ")
        editor.focus()

    # -- answering --------------------------------------------------------------------------
    def action_send(self) -> None:
        if self.probability_turn:
            self.action_rule()
            return
        text = self.text
        if not text.strip():
            self.notify("write something first", severity="warning")
            return
        r = self.request
        problems = speech_problems(text, r.char_limit, r.quote_limit) if r.kind == "speech" else []
        if problems:
            self.notify("not sent: " + "; ".join(problems), severity="error")
            return
        self.finish(TurnAnswer(content=text))

    def action_rule(self, end: bool = False) -> None:
        if not self.probability_turn:
            return
        bar = self.query_one(ProbabilityBar)
        if self.request.kind == "choose" and bar.percents.count(max(bar.percents)) > 1:
            self.notify("give the answer you will defend more than the others", severity="warning")
            return
        self.finish(TurnAnswer(probabilities=bar.probabilities, end=end))

    def action_end(self) -> None:
        if self.request.may_end:
            self.action_rule(end=True)
        elif self.probability_turn:
            self.notify("the protocol does not let the judge end the debate here")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("rule", "end") and not self.probability_turn:
            return False  # enter and e type into the text area
        if action == "quote" and self.probability_turn:
            return False
        return True

    def finish(self, answer: TurnAnswer) -> None:
        if self._done:
            return
        self._done = True
        answer.shown_at = self.shown_at
        answer.answered_at = time.time()
        self.dismiss(answer)


class TuiDesk:
    """The desk of `moot run --tui`: each turn is a screen over the live view, one at a
    time (episodes running side by side queue for the person in the order they ask)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lock = asyncio.Lock()

    def notify(self, text: str) -> None:
        self.app.notify(text, timeout=30)

    async def ask(self, request: TurnRequest) -> TurnAnswer:
        async with self._lock:
            done: asyncio.Future[TurnAnswer] = asyncio.get_running_loop().create_future()

            def answered(answer: TurnAnswer | None) -> None:
                if not done.done():
                    done.set_result(answer or TurnAnswer(timed_out=True))

            screen = HumanTurnScreen(request)
            self.app.push_screen(screen, callback=answered)
            try:
                return await done
            finally:
                if not done.done() and screen.is_attached and self.app.screen is screen:
                    self.app.pop_screen()


def has_people(prep: Any) -> bool:
    """Whether a person sits anywhere in the run (at this terminal, or joining: this
    terminal then says how to join, instead of printing over the screen)."""
    from moot.agents.human import is_human

    return any(is_human(cfg.model) for cell in prep.cells for cfg in cell.seat_configs.values())


class WaitingScreen(Screen[None]):
    """Between a person's turns, in place of the live view: that view shows every seat's
    words and marks the correct answer, which a judge must not see. Progress only."""

    BINDINGS = [
        Binding("q", "app.quit", "quit"),
        Binding("ctrl+c", "app.quit", "quit", priority=True, show=False),
    ]
    DEFAULT_CSS = "WaitingScreen #waiting { padding: 1 2; height: 1fr; }"

    def __init__(self, seats: list[str], path: Any) -> None:
        super().__init__()
        self.seats = seats
        self.path = path

    def compose(self) -> ComposeResult:
        yield Static(id="waiting", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.redraw()
        self.set_interval(0.5, self.redraw)

    def redraw(self) -> None:
        app: Any = self.app
        t = Text(end="")
        t.append(f"{', '.join(plain(s) for s in self.seats)}", style="bold")
        t.append(" · at this terminal\n\n")
        state = getattr(app, "state", None)
        if getattr(app, "result", None) is not None:
            t.append("the run is finished: q to quit", style="bold #98c379")
        else:
            t.append("waiting for your next turn…", style="bold")
        if state is not None:
            e = state.totals
            t.append(f"\nepisodes {e.done}/{e.episodes} done", style="dim")
        t.append("\n\nThe live view stays hidden while people take part here (it shows what every seat "
                 f"said and the correct answers). Watch it from another terminal: moot watch {plain(str(self.path))}",
                 style="dim")  # fmt: skip
        self.query_one("#waiting", Static).update(t)


def live_app(prep: Any, path: Any, resume: bool, **kwargs: Any) -> Any:
    """The live view running the run, with this terminal as the desk of its people. While
    a person's seat is answered here, a waiting screen covers the live view."""
    from moot.agents.human import DESK, is_human
    from moot.tui.watch import LiveApp
    from moot.workflows.run import execute

    here = sorted({
        seat for cell in prep.cells for seat, cfg in cell.seat_configs.items() if is_human(cfg.model) and not cfg.join
    })  # fmt: skip

    async def runner() -> Any:
        DESK.set(TuiDesk(app))  # this task's context: the run's seats find it
        return await execute(prep, path, resume=resume)

    class PeopleLiveApp(LiveApp):
        def on_mount(self) -> None:  # after LiveApp's own (Textual calls both)
            if here:
                self.push_screen(WaitingScreen(here, path))

    app = PeopleLiveApp(path, runner=runner, **kwargs)
    return app


def run_with_tui(prep: Any, path: Any, resume: bool) -> Any:
    """`moot run --tui` with people in seats: the live view, and each person's turn on top
    of it in this terminal. Quitting stops the run resumable (as without people)."""
    from moot.tui.watch import run_app

    return run_app(live_app(prep, path, resume), path)
