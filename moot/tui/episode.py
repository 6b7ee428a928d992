"""One episode, message by message: step, play, switch between the full view and what each
seat could see, and open the model call behind any message."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from moot.store.reader import RunReader, StoredEpisode
from moot.tui.text import plain, plain_text
from moot.tui.widgets import STATUS_STYLE, Transcript, call_summary, colour, letter, message_details

SPEEDS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)  # messages per second when playing


def episode_header(ep: StoredEpisode, view: str | None) -> Text:
    t = Text(end="")
    t.append(f"episode {ep.id}", style="bold")
    t.append(f" · {plain(ep.protocol)} · ")
    t.append(ep.status, style=STATUS_STYLE.get(ep.status, ""))
    if ep.stop_reason:
        t.append(f" ({plain(ep.stop_reason)})", style="dim")
    if ep.cell:
        t.append(f" · cell {plain(ep.cell)}", style="dim")
    t.append(f" · {plain(ep.question_id)}\n", style="dim")
    t.append("Q ", style="bold")
    t.append(plain(ep.question) + "\n")
    by_side: dict[int, list[str]] = {}
    for seat, side in ep.assignments.items():
        by_side.setdefault(side, []).append(seat)
    for i, answer in enumerate(ep.answers):
        gold = view is None and ep.correct == i
        t.append(f"{letter(i)} ", style=f"bold {colour('debater', i)}")
        t.append(plain(str(answer)))
        if gold:
            t.append(" ★ correct", style="#98c379")
        if i in by_side:
            t.append(f"  ({', '.join(plain(s) for s in by_side[i])})", style="dim")
        t.append("\n")
    if ep.error:
        t.append("error ", style="#e06c75")
        t.append(plain(ep.error.splitlines()[0] if ep.error else "") + "\n")
    t.rstrip()
    return t


class CallScreen(ModalScreen[None]):
    """The model call behind a message, as sent and as answered."""

    BINDINGS = [Binding("escape,c", "app.pop_screen", "close"), Binding("q", "app.quit", "quit")]
    DEFAULT_CSS = """
    CallScreen { align: center middle; }
    CallScreen > VerticalScroll {
        width: 100%; height: 100%; border: round $accent; background: $panel; padding: 0 1;
    }
    CallScreen .part { color: $accent; text-style: bold; margin-top: 1; }
    """

    def __init__(self, call: dict[str, Any]) -> None:
        super().__init__()
        self.call = call

    def compose(self) -> ComposeResult:
        c = self.call
        with VerticalScroll() as v:
            v.border_title = f"model call {c['seq']} · {plain(c['seat'])} · {plain(c['model'])}"
            v.border_subtitle = "escape: close"
            yield Static(call_summary(c), markup=False)
            parts = [("system", c.get("system")), ("messages between", _pretty(c.get("messages"))),
                     ("prompt", c.get("prompt")), ("response", c.get("response")),
                     ("params", _pretty(c.get("params"))), ("error", c.get("error"))]  # fmt: skip
            for name, value in parts:
                if value:
                    yield Static(name, classes="part", markup=False)
                    yield Static(plain_text(value), markup=False)


def _pretty(s: str | None) -> str | None:
    if not s:
        return None
    try:
        return json.dumps(json.loads(s), indent=2, ensure_ascii=False)
    except ValueError:
        return s


class EpisodeScreen(Screen[None]):
    BINDINGS = [
        Binding("n,right", "step(1)", "next"),
        Binding("p,left", "step(-1)", "prev"),
        Binding("home", "jump(0)", "first", show=False),
        Binding("end", "jump(-1)", "last", show=False),
        Binding("space", "play", "play/pause"),
        Binding("plus,equals_sign", "speed(1)", "faster", show=False),
        Binding("minus", "speed(-1)", "slower", show=False),
        Binding("v", "view", "view"),
        Binding("s", "source", "source"),
        Binding("c", "call", "call"),
        Binding("left_square_bracket", "episode(-1)", "prev ep", show=False),
        Binding("right_square_bracket", "episode(1)", "next ep", show=False),
        Binding("escape,backspace", "back", "back"),
    ]
    DEFAULT_CSS = """
    EpisodeScreen #ep-header { height: auto; max-height: 8; padding: 0 1; background: $panel; }
    EpisodeScreen #ep-status { height: 1; padding: 0 1; background: $primary 30%; }
    EpisodeScreen #source { height: auto; max-height: 10; padding: 0 1; border: round $secondary; display: none; }
    EpisodeScreen #source.shown { display: block; }
    EpisodeScreen #ep-body { height: 1fr; }
    EpisodeScreen #detail { width: 38; border-left: vkey $primary; padding: 0 1; }
    EpisodeScreen.narrow #ep-body { layout: vertical; }
    EpisodeScreen.narrow #detail { width: 100%; height: 7; border-left: none; border-top: hkey $primary; }
    """

    def __init__(
        self,
        reader: RunReader,
        episode: int,
        *,
        poll: float = 0.25,
        neighbour: Callable[[int, int], int | None] | None = None,
    ) -> None:
        super().__init__()
        self.neighbour = neighbour or reader.neighbour
        self.reader = reader
        self.episode_id = episode
        self.ep: StoredEpisode | None = None
        self.images: list[str] = []  # labels standing in for the episode's images
        self.views: list[str | None] = [None]
        self.view_index = 0
        self.speed_index = 2
        self.playing = False
        self._timer: Any = None
        self._poll = poll

    def compose(self) -> ComposeResult:
        yield Static(id="ep-header", markup=False)
        yield Static(id="ep-status", markup=False)
        with VerticalScroll(id="source"):
            yield Static(id="source-text", markup=False)
        with Horizontal(id="ep-body"):
            yield Transcript(id="transcript")
            with VerticalScroll(id="detail"):
                yield Static(id="detail-text", markup=False)
        yield Footer()

    @property
    def transcript(self) -> Transcript:
        return self.query_one(Transcript)

    def on_mount(self) -> None:
        self.load(self.episode_id)
        if self._poll:
            self.set_interval(self._poll, self.poll)

    def on_resize(self, event: Any) -> None:
        self.set_class(event.size.width < 110, "narrow")

    # -- loading -------------------------------------------------------------------------
    def load(self, episode: int) -> None:
        self.episode_id = episode
        self.ep = self.reader.episode(episode)
        self.images = self.reader.image_labels(episode)
        tr = self.transcript
        tr.set_verdicts(self.reader.verdicts(episode))
        messages = self.reader.messages(episode)
        tr.step = len(messages) - 1 if messages else None
        tr.show(messages)
        seats = list(self.ep.seats) if self.ep else []
        judges = [s for s in seats if self.ep and self.ep.seats[s].get("role") == "judge"]
        self.views = [None, *judges, *[s for s in seats if s not in judges]]
        self.view_index = min(self.view_index, len(self.views) - 1)
        tr.view = self.views[self.view_index]
        self.redraw()

    def poll(self) -> None:
        """A running episode keeps growing: fetch what was added since."""
        if self.ep is None or self.ep.status != "running":
            return
        tr = self.transcript
        last = tr.messages[-1].seq if tr.messages else -1
        new = self.reader.messages(self.episode_id, after_seq=last)
        at_end = tr.step is None or tr.step >= len(tr.messages) - 1
        if new:
            tr.set_verdicts(self.reader.verdicts(self.episode_id))
            if at_end and not self.playing:
                tr.step = len(tr.messages) + len(new) - 1
            tr.extend(new)
        self.ep = self.reader.episode(self.episode_id)
        if new or (self.ep and self.ep.status != "running"):
            tr.refresh_verdicts(self.reader.verdicts(self.episode_id))
            self.redraw()

    def redraw(self) -> None:
        ep = self.ep
        tr = self.transcript
        header = self.query_one("#ep-header", Static)
        if ep is None:
            header.update(Text(f"episode {self.episode_id}: not in this run"))
            return
        view = self.views[self.view_index]
        header.update(episode_header(ep, view))
        status = Text(end="", no_wrap=True, overflow="ellipsis")
        n = len(tr.messages)
        status.append(f"message {0 if tr.step is None else tr.step + 1}/{n}  ")
        status.append("view: ", style="dim")
        if view is None:
            status.append("full")
        else:
            info = ep.seats.get(view, {})
            status.append(plain(view), style=f"bold {colour(str(info.get('role', '')))}")
            status.append(f" sees {tr.visible_count()}/{n}")
            status.append("" if info.get("sees_source") else ", not the source", style="dim")
        status.append(f"  {'▶ playing' if self.playing else 'paused'} {SPEEDS[self.speed_index]:g}/s", style="dim")
        self.query_one("#ep-status", Static).update(status)
        self._draw_source()
        self._draw_detail()

    def _draw_source(self) -> None:
        ep = self.ep
        view = self.views[self.view_index]
        text = self.query_one("#source-text", Static)
        if ep is None:
            return
        if view is not None and not ep.seats.get(view, {}).get("sees_source"):
            text.update(Text(f"{view} does not see the source", style="dim italic"))
            return
        shown = Text(end="")
        for label in self.images:  # a terminal cannot show them: what and how big, in their place
            shown.append(plain(label) + "\n", style="italic")
        if ep.source:
            shown.append_text(plain_text(ep.source))
        elif not self.images:
            shown.append("no source", style="dim")
        text.update(shown)

    def _draw_detail(self) -> None:
        tr = self.transcript
        detail = self.query_one("#detail-text", Static)
        if tr.step is None or not tr.messages or self.ep is None:
            detail.update(Text("no messages", style="dim"))
            return
        m = tr.messages[tr.step]
        call = None if m.call_seq is None else self.reader.call(m.episode, m.call_seq)
        detail.update(message_details(m, self.ep.seats, call))

    # -- stepping ------------------------------------------------------------------------
    def _visible_steps(self) -> list[int]:
        tr = self.transcript
        return [i for i, m in enumerate(tr.messages) if m.visible_to(tr.view)]

    def set_step(self, index: int | None) -> None:
        tr = self.transcript
        tr.step = index
        tr.apply()
        self.redraw()

    def action_step(self, delta: int) -> None:
        steps = self._visible_steps()
        if not steps:
            return
        cur = self.transcript.step if self.transcript.step is not None else -1
        if delta > 0:
            later = [i for i in steps if i > cur]
            if later:
                self.set_step(later[0])
            elif self.playing:
                self.action_play()
        else:
            earlier = [i for i in steps if i < cur]
            if earlier:
                self.set_step(earlier[-1])

    def action_jump(self, where: int) -> None:
        steps = self._visible_steps()
        if steps:
            self.set_step(steps[where])

    def action_play(self) -> None:
        self.playing = not self.playing
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self.playing:
            tr = self.transcript
            steps = self._visible_steps()
            if steps and (tr.step is None or tr.step >= steps[-1]):
                self.set_step(steps[0])  # at the end: play from the start
            self._timer = self.set_interval(1 / SPEEDS[self.speed_index], lambda: self.action_step(1))
        self.redraw()

    def action_speed(self, delta: int) -> None:
        self.speed_index = max(0, min(len(SPEEDS) - 1, self.speed_index + delta))
        if self.playing:  # restart the timer at the new speed
            self.action_play()
            self.action_play()
        self.redraw()

    def action_view(self) -> None:
        self.view_index = (self.view_index + 1) % len(self.views)
        tr = self.transcript
        tr.view = self.views[self.view_index]
        if tr.step is not None and not tr.messages[tr.step].visible_to(tr.view):
            steps = [i for i in self._visible_steps() if i <= tr.step]
            tr.step = steps[-1] if steps else next(iter(self._visible_steps()), None)
        tr.apply()
        self.redraw()

    def action_source(self) -> None:
        self.query_one("#source").toggle_class("shown")

    def action_call(self) -> None:
        tr = self.transcript
        if tr.step is None or not tr.messages:
            return
        m = tr.messages[tr.step]
        call = None if m.call_seq is None else self.reader.call(m.episode, m.call_seq)
        if call is None:
            self.notify("no model call behind this message")
            return
        self.app.push_screen(CallScreen(call))

    def action_episode(self, step: int) -> None:
        target = self.neighbour(self.episode_id, step)
        if target is not None:
            if self.playing:
                self.action_play()
            self.load(target)

    def action_back(self) -> None:
        if self.playing:
            self.action_play()
        self.dismiss()
