"""Widgets shared by the live view and the replay: the episode list, a transcript, a
message's details. Every piece of model text goes through `plain_text` (never markup)."""

from __future__ import annotations

import re
import zlib
from array import array
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.message import Message as TMessage
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from moot.store.reader import EpisodeRow, RunReader
from moot.transcript.events import Message, Verdict
from moot.transcript.quotes import render_for_judge
from moot.tui.text import one_line, plain, plain_text

ROLE_COLOURS = {
    "judge": "#e5c07b",
    "debater": "#61afef",
    "consultant": "#56b6c2",
    "agent": "#98c379",
    "reviewer": "#c678dd",
    "author": "#61afef",
    "selector": "#abb2bf",
    "witness": "#d19a66",
    "lawyer": "#61afef",
}
SIDE_COLOURS = ("#61afef", "#e06c75", "#98c379", "#c678dd", "#d19a66", "#56b6c2")
_OTHER = ("#56b6c2", "#d19a66", "#98c379", "#c678dd", "#be5046", "#7ec699")
STATUS_STYLE = {"running": "#e5c07b", "done": "#98c379", "failed": "#e06c75"}


def colour(role: str, side: int | None = None) -> str:
    """A seat's colour: per role; the arguing roles get one colour per side they defend."""
    if side is not None and role not in ("judge", "selector"):
        return SIDE_COLOURS[side % len(SIDE_COLOURS)]
    if role in ROLE_COLOURS:
        return ROLE_COLOURS[role]
    return _OTHER[zlib.crc32(role.encode()) % len(_OTHER)]


def letter(i: int | None) -> str:
    if i is None:
        return "-"
    return chr(ord("A") + i) if 0 <= i < 26 else str(i)


def verdict_text(row: EpisodeRow) -> Text:
    if row.invalid:
        return Text("invalid", style="#e06c75")
    if row.choice is None:
        return Text("-", style="dim")
    mark = " ✓" if row.correct else (" ✗" if row.correct is False else "")
    return Text(f"{letter(row.choice)}{mark}", style="#98c379" if row.correct else "#e06c75")


# -- the episode list ---------------------------------------------------------------------


class EpisodeList(ScrollView, can_focus=True):
    """Episodes as lines, drawn from the database a screenful at a time.

    It holds only the ids of what it lists (8 bytes each) and the rows on screen; scrolling
    fetches the lines that come into view (one indexed query), so a list of a million
    episodes scrolls like one of ten."""

    BINDINGS = [
        Binding("up,k", "move(-1)", "up", show=False),
        Binding("down,j", "move(1)", "down", show=False),
        Binding("pageup", "page(-1)", "page up", show=False),
        Binding("pagedown", "page(1)", "page down", show=False),
        Binding("home,g", "first", "first", show=False),
        Binding("end,G", "last", "last", show=False),
        Binding("enter", "choose", "open", show=False),
    ]
    COMPONENT_CLASSES = {"episode-list--cursor"}
    DEFAULT_CSS = """
    EpisodeList { background: $surface; }
    EpisodeList > .episode-list--cursor { background: $accent 40%; }
    EpisodeList:focus > .episode-list--cursor { background: $accent; }
    """

    cursor: reactive[int] = reactive(0)

    class Highlighted(TMessage):
        def __init__(self, episode: int | None) -> None:
            super().__init__()
            self.episode = episode

    class Chosen(TMessage):
        def __init__(self, episode: int) -> None:
            super().__init__()
            self.episode = episode

    def __init__(self, reader: RunReader, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reader = reader
        self.ids: array = array("q")
        self._rows: dict[int, EpisodeRow | None] = {}
        self.on_move: Callable[[int], None] | None = None  # e.g. "the user moved: stop following"
        self.header: Static | None = None  # a line above, given the column names

    # -- data ----------------------------------------------------------------------
    def set_ids(self, ids: array, keep: int | None = None) -> None:
        """Show these episode ids; keep the cursor on episode `keep` if it is among them."""
        self.ids = ids
        self._rows.clear()
        self.virtual_size = Size(self.size.width, len(ids))
        target = 0
        if keep is not None:
            target = self.index_of(keep) or 0
        self.cursor = min(target, max(0, len(ids) - 1))
        self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.Highlighted(self.current))

    def grow(self, ids: array) -> None:
        """The list gained episodes (live): same cursor, same scroll, more lines."""
        self.ids = ids
        self.virtual_size = Size(self.size.width, len(ids))
        self.refresh()

    def reload(self) -> None:
        """Forget the fetched lines (their status or verdict may have changed)."""
        self._rows.clear()
        self.refresh()

    def index_of(self, episode: int) -> int | None:
        from bisect import bisect_left

        i = bisect_left(self.ids, episode)
        return i if i < len(self.ids) and self.ids[i] == episode else None

    @property
    def current(self) -> int | None:
        return self.ids[self.cursor] if 0 <= self.cursor < len(self.ids) else None

    def _fetch(self, start: int) -> None:
        height = max(self.size.height, 10)
        lo = max(0, start - 5)
        want = [i for i in self.ids[lo : start + height + 20] if i not in self._rows]
        if len(self._rows) > 5000:
            self._rows.clear()
        for row in self.reader.episode_rows(want):
            self._rows[row.id] = row
        for i in want:  # gone since it was listed (a resumed run clears unfinished episodes)
            self._rows.setdefault(i, None)

    # -- drawing -------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        _, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        if index >= len(self.ids):
            return Strip.blank(width, self.rich_style)
        eid = self.ids[index]
        if eid not in self._rows:
            self._fetch(scroll_y)
        row = self._rows.get(eid)
        text = self.line(row, eid, width)
        if index == self.cursor:
            text.stylize(self.get_component_rich_style("episode-list--cursor"))
        segments = list(text.render(self.app.console))
        strip = Strip(segments).extend_cell_length(width, self.rich_style)
        return strip.crop(0, width).simplify()

    @staticmethod
    def columns(width: int) -> Text:
        head = f"{'id':>6} {'state':<5} {'verdict':<7} conf "
        if width >= 50:
            head += " msgs "
        if width >= 70:
            head += f"{'protocol':<10} "
        return Text(head + "question", no_wrap=True, end="")

    def on_resize(self, event: Any) -> None:
        if self.header is not None:
            self.header.update(self.columns(event.size.width))

    def line(self, row: EpisodeRow | None, eid: int, width: int) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis", end="")
        t.append(f"{eid:>6} ", style="dim")
        if row is None:
            return t
        status = {"running": "…run", "done": " done", "failed": " fail"}.get(row.status, row.status[:5])
        t.append(f"{status:<5} ", style=STATUS_STYLE.get(row.status, ""))
        v = verdict_text(row)
        t.append_text(v)
        t.append(" " * max(1, 8 - len(v.plain)))
        t.append(f"{row.confidence:.2f} " if row.confidence is not None else "   - ", style="dim")
        if width >= 50:
            t.append(f"{row.messages:>5} ", style="dim")
        if width >= 70:
            t.append(f"{one_line(row.protocol, 10):<10} ", style="dim")
        t.append(one_line(row.question, max(0, width - t.cell_len)))
        return t

    # -- moving ----------------------------------------------------------------------
    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_to_cursor()
        self.refresh()

    def _scroll_to_cursor(self) -> None:
        height = self.scrollable_content_region.height or self.size.height
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif height and self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def move_to(self, index: int, user: bool = True) -> None:
        if not self.ids:
            return
        index = max(0, min(index, len(self.ids) - 1))
        if index != self.cursor:
            self.cursor = index
            self.post_message(self.Highlighted(self.current))
        if user and self.on_move is not None:
            self.on_move(index)

    def action_move(self, step: int) -> None:
        self.move_to(self.cursor + step)

    def action_page(self, step: int) -> None:
        self.move_to(self.cursor + step * max(1, self.size.height - 1))

    def action_first(self) -> None:
        self.move_to(0)

    def action_last(self) -> None:
        self.move_to(len(self.ids) - 1)

    def action_choose(self) -> None:
        if self.current is not None:
            self.post_message(self.Chosen(self.current))

    def on_click(self, event: Any) -> None:
        index = self.scroll_offset.y + event.y
        if 0 <= index < len(self.ids):
            if index == self.cursor and event.chain >= 2:
                self.action_choose()
            self.move_to(index)


# -- a transcript ---------------------------------------------------------------------------


def message_title(m: Message) -> Text:
    t = Text(end="")
    t.append(plain(m.seat), style=f"bold {colour(m.role, m.side)}")
    t.append(f" · {plain(m.role)}")
    if m.side is not None:
        t.append(f" · side {letter(m.side)}")
    t.append(f" · R{m.round} {plain(m.phase)}", style="dim")
    return t


_MARKED = re.compile(r"<(v|u)_quote>(.*?)</\1_quote>", re.S)


def as_seen(m: Message) -> str | None:
    """The content as the other seats read it: quotes re-tagged by the engine as verified
    (`<v_quote>`) or not (`<u_quote>`), as in their prompts. None when nothing differs."""
    if not m.quotes:
        return None
    try:
        return render_for_judge(m.content, list(m.quotes))
    except (TypeError, ValueError):
        return None


def message_body(m: Message, view: str | None = None) -> Text:
    """The content, with quoted spans marked: verified green, unverified red and struck.

    In a seat's view (`view` set), the text is what that seat read, engine marks and all."""
    seen = as_seen(m) if view is not None and view != m.seat else None
    if seen is not None:
        text = plain_text(seen)
        if text.plain == seen:
            for match in _MARKED.finditer(seen):
                ok = match.group(1) == "v"
                text.stylize("underline #98c379" if ok else "strike #e06c75", match.start(2), match.end(2))
        return text
    text = plain_text(m.content)
    if text.plain == m.content:  # offsets hold only if nothing was made visible
        for q in m.quotes or ():
            text.stylize("underline #98c379" if q.verified else "strike #e06c75", q.start, q.end)
    return text


def verdict_line(v: Verdict, gold: bool = True) -> Text:
    """The judge's probabilities and choice; with `gold`, whether it was right."""
    t = Text(end="")
    t.append(f"verdict of {plain(v.judge)}: ", style="bold #e5c07b")
    if v.probabilities:
        t.append("  ".join(f"{letter(i)} {p:.2f}" for i, p in enumerate(v.probabilities)))
    if v.parse_status != "ok":
        t.append("  invalid", style="bold #e06c75")
    else:
        t.append(f"  → {letter(v.choice)}")
        if v.correct is not None and gold:
            t.append(" ✓ correct" if v.correct else " ✗ wrong", style="#98c379" if v.correct else "#e06c75")
    t.append(f"  ({plain(v.method)})", style="dim")
    return t


class MessageBox(Static):
    DEFAULT_CSS = """
    MessageBox { border: round $primary 50%; padding: 0 1; margin: 0 0 0 0; height: auto; }
    MessageBox.current { background: $boost; }
    MessageBox.hidden-from-view { opacity: 45%; }
    """

    def __init__(self, m: Message, verdicts: list[Verdict], view: str | None = None) -> None:
        super().__init__(self.body(m, verdicts, view), markup=False)
        self.message = m
        self.verdicts = verdicts
        self.view = view
        self.border_title = message_title(m)
        self.styles.border = ("round", colour(m.role, m.side))

    @staticmethod
    def body(m: Message, verdicts: list[Verdict], view: str | None = None) -> Text:
        body = message_body(m, view)
        for v in verdicts:
            body.append("\n")
            body.append_text(verdict_line(v, gold=view is None))
        return body

    def set_verdicts(self, verdicts: list[Verdict]) -> None:
        self.verdicts = verdicts
        self.update(self.body(self.message, verdicts, self.view))

    def set_view(self, view: str | None) -> None:
        if view != self.view and (self.message.quotes or self.verdicts):
            self.view = view
            self.update(self.body(self.message, self.verdicts, view))
        self.view = view


class Transcript(VerticalScroll, can_focus=True):
    """One episode's messages, as boxes. With `step` set, only messages up to the cursor
    are shown (stepping through a replay); `view` (a seat, or None for everything) hides
    what that seat could not read.

    At most `window` boxes are mounted at once, around the cursor (or the newest messages
    when there is none): a widget per message would make a long episode slow to open and
    every step slow to draw. A note above the boxes says how many come before."""

    DEFAULT_CSS = """
    Transcript { height: 1fr; }
    Transcript > .note { color: $text-muted; padding: 0 1; }
    """

    def __init__(self, window: int = 60, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.window = window
        self.messages: list[Message] = []
        self.verdicts: dict[tuple[str, int | None], list[Verdict]] = {}
        self.view: str | None = None
        self.step: int | None = None  # index of the current message, or None: show all
        self.follow = True  # stay at the bottom as messages arrive
        self._boxes: list[MessageBox] = []  # mounted: messages[_start : _start + len(_boxes)]
        self._start = 0
        self._note: Static | None = None

    def clear(self) -> None:
        self.messages = []
        self._boxes = []
        self._start = 0
        self._note = None
        self.remove_children()

    def set_verdicts(self, verdicts: list[Verdict]) -> None:
        self.verdicts = {}
        for v in verdicts:
            self.verdicts.setdefault((v.judge, v.call_seq), []).append(v)

    def _box(self, m: Message) -> MessageBox:
        verdicts = self.verdicts.get((m.seat, m.call_seq), []) if m.call_seq is not None else []
        return MessageBox(m, verdicts, self.view)

    def _mount_window(self, start: int) -> None:
        """Mount the boxes of messages[start : start + window] (and the note), only those."""
        self.remove_children()
        self._start = max(0, start)
        self._boxes = [self._box(m) for m in self.messages[self._start : self._start + self.window]]
        widgets: list[Static] = []
        self._note = None
        if self._start:
            self._note = Static(
                Text(f"… {self._start:,} earlier messages (home: the first)", style="dim italic"),
                classes="note", markup=False,
            )  # fmt: skip
            widgets.append(self._note)
        self.mount_all([*widgets, *self._boxes])

    def _wanted_start(self) -> int:
        if self.step is None:  # the newest
            return max(0, len(self.messages) - self.window)
        return max(0, self.step - self.window + 10)  # room to step on before remounting

    def show(self, messages: list[Message]) -> None:
        self.messages = list(messages)
        self._mount_window(self._wanted_start())
        self.apply()

    def extend(self, messages: list[Message]) -> None:
        if not messages:
            return
        end = self._start + len(self._boxes)
        at_end = end == len(self.messages)
        self.messages.extend(messages)
        if not at_end:  # the window is elsewhere: the new ones are mounted when reached
            self.apply()
            return
        if len(self._boxes) + len(messages) > 2 * self.window:
            self._mount_window(self._wanted_start())
            self.apply()
            return
        boxes = [self._box(m) for m in messages]
        self._boxes.extend(boxes)
        self.mount_all(boxes)
        self.apply()

    def refresh_verdicts(self, verdicts: list[Verdict]) -> None:
        """New verdicts for messages already shown: rebuild those boxes."""
        self.set_verdicts(verdicts)
        for box in self._boxes:
            m = box.message
            if m.call_seq is not None and (m.seat, m.call_seq) in self.verdicts:
                box.set_verdicts(self.verdicts[(m.seat, m.call_seq)])

    def boxes(self) -> list[MessageBox]:
        """The mounted boxes (all of them, for an episode shorter than the window)."""
        return list(self._boxes)

    def box_for(self, index: int) -> MessageBox | None:
        i = index - self._start
        return self._boxes[i] if 0 <= i < len(self._boxes) else None

    def apply(self) -> None:
        step = self.step
        end = self._start + len(self._boxes)
        if step is not None and not (self._start <= step < end):
            self._mount_window(self._wanted_start())
        elif step is None and end < len(self.messages) and self.follow:
            self._mount_window(self._wanted_start())
        for i, box in enumerate(self._boxes, start=self._start):
            box.set_view(self.view)
            shown = box.message.visible_to(self.view) and (step is None or i <= step)
            if box.display != shown:
                box.display = shown
            current = i == step
            if box.has_class("current") != current:
                box.set_class(current, "current")
                box.styles.border = ("heavy" if current else "round", colour(box.message.role, box.message.side))
        if step is not None and (at := self.box_for(step)) is not None:
            self.call_after_refresh(self.scroll_to_widget, at, animate=False, top=False)
        elif self.follow:
            self.call_after_refresh(self.scroll_end, animate=False)

    def visible_count(self) -> int:
        return sum(1 for m in self.messages if m.visible_to(self.view))


def call_summary(call: dict[str, Any] | None) -> Text:
    t = Text(end="")
    if call is None:
        t.append("no model call behind this message", style="dim")
        return t
    t.append("call    ", style="dim")
    t.append(f"{plain(call['model'])} · {call['attempts']} attempt{'s' if call['attempts'] != 1 else ''}")
    if call.get("cached"):
        t.append(" · cached", style="#56b6c2")
    t.append("\ntokens  ", style="dim")
    t.append(f"{call['prompt_tokens']:,} in + {call['completion_tokens']:,} out\n")
    t.append("latency ", style="dim")
    cost = call["cost"]
    t.append(f"{call['latency_s']:.3f} s · cost " + ("n/a" if cost is None else f"${cost:.6f}"))
    if call.get("error"):
        t.append("\nerror   ", style="dim")
        t.append(plain(call["error"]), style="#e06c75")
    return t


def message_details(m: Message, seats: dict[str, dict[str, Any]], call: dict[str, Any] | None) -> Text:
    t = Text(end="")
    t.append_text(message_title(m))
    t.append("\n")
    seen_by = "every seat" if m.audience is None else (", ".join(plain(s) for s in sorted(m.audience)) or "no seat")
    t.append("seen by ", style="dim")
    t.append(seen_by + "\n")
    judges = [s for s, info in seats.items() if info.get("role") == "judge"]
    for j in judges:
        ok = m.visible_to(j)
        t.append(f"{plain(j)} ", style="dim")
        t.append("sees it\n" if ok else "does not see it\n", style="#98c379" if ok else "#e06c75")
    if m.quotes:
        t.append(f"quotes  {sum(q.verified for q in m.quotes)}/{len(m.quotes)} verified\n", style="dim")
        for q in m.quotes[:8]:
            t.append(" ✓ " if q.verified else " ✗ ", style="#98c379" if q.verified else "#e06c75")
            t.append(one_line(q.text, 60) + "\n")
    t.append_text(call_summary(call))
    return t
