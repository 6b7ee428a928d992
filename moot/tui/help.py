"""The keys, in one table: the help screen shows it and the README documents it."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: dict[str, list[tuple[str, str]]] = {
    "everywhere": [
        ("?", "this help"),
        ("q", "quit (moot run --tui: stops the run, resumable with moot run --resume)"),
        ("escape", "back / close"),
    ],
    "episode lists": [
        ("↑ ↓  j k", "move between episodes"),
        ("pgup pgdn", "a page up or down"),
        ("home end  g G", "first / last episode"),
        ("enter", "open the episode"),
    ],
    "live view (watch, run --tui)": [
        ("f", "follow the newest episode"),
        ("space", "pause / resume following"),
    ],
    "replay: filters": [
        ("/", "search the messages' text (enter runs it)"),
        ("F", "filters: protocol, sweep cell, status, verdict, judge confidence range"),
        ("x", "clear every filter"),
        ("r", "reload (a run still going on has more episodes)"),
    ],
    "an episode": [
        ("n →  p ←", "next / previous message"),
        ("home end", "first / last message"),
        ("space", "play / pause"),
        ("+ -", "play faster / slower"),
        ("v", "cycle the view: full, then what each seat could see (the judge's first)"),
        ("s", "show / hide the source passage"),
        ("c", "the model call behind the message: prompt, response"),
        ("[ ]", "previous / next episode"),
    ],
}


def keys_text() -> Text:
    t = Text(end="")
    for section, rows in KEYS.items():
        t.append(section + "\n", style="bold")
        for key, what in rows:
            t.append(f"  {key:<16}", style="bold #61afef")
            t.append(what + "\n")
        t.append("\n")
    return t


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark", "app.pop_screen", "close"), Binding("q", "app.quit", "quit")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $panel; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll() as v:
            v.border_title = "moot: keys"
            yield Static(keys_text(), markup=False)
