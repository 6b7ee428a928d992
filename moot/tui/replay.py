"""`moot replay RUN.db` (or a directory of runs): browse, filter, open, step through."""

from __future__ import annotations

import sqlite3
import time
from array import array
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from moot.errors import ConfigError
from moot.store.reader import Filters, RunReader
from moot.tui.episode import EpisodeScreen
from moot.tui.help import HelpScreen
from moot.tui.text import one_line, plain
from moot.tui.widgets import STATUS_STYLE, EpisodeList

SEARCH_LIMIT = 100_000  # matching episodes listed at most (the count says "100,000+")


def run_line(reader: RunReader, shown: int | None = None, total: int | None = None) -> Text:
    run = reader.run() or {}
    t = Text(end="", no_wrap=True, overflow="ellipsis")
    t.append(plain(str(run.get("name", "?"))), style="bold")
    status = str(run.get("status", "?"))
    t.append(f" · {status}", style=STATUS_STYLE.get(status, "#e5c07b" if status == "interrupted" else ""))
    if total is not None:
        t.append(f" · {total:,} episodes")
    if shown is not None and total is not None and shown != total:
        t.append(f" · {shown:,} shown")
    t.append(f" · {reader.path.name}", style="dim")
    return t


class FilterScreen(ModalScreen[Filters | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel")]
    DEFAULT_CSS = """
    FilterScreen { align: center middle; }
    FilterScreen > Vertical { width: 72; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $panel; padding: 0 1; }
    FilterScreen Horizontal { height: auto; }
    FilterScreen Label { width: 12; padding: 1 1 0 0; }
    FilterScreen Select, FilterScreen Input { width: 1fr; }
    FilterScreen #buttons { height: auto; align-horizontal: right; }
    FilterScreen #buttons Button { margin-left: 1; }
    """

    def __init__(self, filters: Filters, protocols: list[str], cells: list[str] | None = None) -> None:
        super().__init__()
        self.filters = filters
        self.protocols = protocols
        self.cells = cells or []

    def compose(self) -> ComposeResult:
        f = self.filters
        with Vertical() as v:
            v.border_title = "filters (enter: apply, escape: cancel)"
            with Horizontal():
                yield Label("protocol")
                yield Select([(p, p) for p in self.protocols], value=f.protocol or Select.NULL, id="protocol")
            if self.cells:
                with Horizontal():
                    yield Label("cell")
                    yield Select([(plain(c), c) for c in self.cells], value=f.cell or Select.NULL, id="cell")
            with Horizontal():
                yield Label("status")
                yield Select([(s, s) for s in ("running", "done", "failed")], value=f.status or Select.NULL, id="status")
            with Horizontal():
                yield Label("verdict")
                yield Select([(s, s) for s in ("correct", "incorrect", "invalid", "none")],
                             value=f.verdict or Select.NULL, id="verdict")  # fmt: skip
            with Horizontal():
                yield Label("confidence")
                yield Input("" if f.min_confidence is None else str(f.min_confidence), placeholder="from 0.0", id="min")
                yield Input("" if f.max_confidence is None else str(f.max_confidence), placeholder="to 1.0", id="max")
            with Horizontal():
                yield Label("text")
                yield Input(f.text, placeholder="words in any message", id="text")
            with Horizontal(id="buttons"):
                yield Button("clear", id="clear")
                yield Button("apply", variant="primary", id="apply")

    def _value(self, id_: str) -> str | None:
        v = self.query_one(f"#{id_}", Select).value
        return None if v is Select.NULL or v is None else str(v)

    def _number(self, id_: str) -> float | None:
        s = self.query_one(f"#{id_}", Input).value.strip()
        if not s:
            return None
        try:
            return max(0.0, min(1.0, float(s)))
        except ValueError:
            self.notify(f"{id_}: not a number: {plain(s)!r}", severity="error", markup=False)
            raise

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "clear":
            self.dismiss(Filters())
            return
        self._apply()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._apply()

    def _apply(self) -> None:
        try:
            lo, hi = self._number("min"), self._number("max")
        except ValueError:
            return
        self.dismiss(
            Filters(
                protocol=self._value("protocol"), status=self._value("status"),
                verdict=self._value("verdict"), min_confidence=lo, max_confidence=hi,
                text=self.query_one("#text", Input).value,
                cell=self._value("cell") if self.cells else self.filters.cell,
            )
        )  # fmt: skip

    def action_cancel(self) -> None:
        self.dismiss(None)


class EpisodesScreen(Screen[None]):
    """A run's episodes, filtered in a thread so a search over a million messages never
    blocks the keys."""

    BINDINGS = [
        Binding("slash", "search", "search"),
        Binding("F", "filters", "filters"),
        Binding("x", "clear", "clear filters"),
        Binding("r", "reload", "reload", show=False),
        Binding("enter", "open", "open", show=False),
        Binding("escape", "back", "back", show=False),
    ]
    DEFAULT_CSS = """
    EpisodesScreen #run-line, EpisodesScreen #filter-line { height: 1; padding: 0 1; }
    EpisodesScreen #run-line { background: $panel; }
    EpisodesScreen #filter-line { color: $text-muted; }
    EpisodesScreen #search { display: none; }
    EpisodesScreen #search.shown { display: block; }
    EpisodesScreen EpisodeList { height: 1fr; }
    EpisodesScreen #columns { height: 1; padding: 0 0; color: $text-muted; text-style: bold; }
    """

    def __init__(self, reader: RunReader, can_go_back: bool = False) -> None:
        super().__init__()
        self.reader = reader
        self.filters = Filters()
        self.total = 0
        self.can_go_back = can_go_back
        self._search_conn: sqlite3.Connection | None = None
        self.searching = False
        self.last_search_s: float | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="run-line", markup=False)
        yield Static(id="filter-line", markup=False)
        yield Input(placeholder="search the messages (enter: search, escape: close)", id="search")
        yield Static(id="columns", markup=False)
        yield EpisodeList(self.reader, id="episodes")
        yield Footer()

    @property
    def episodes(self) -> EpisodeList:
        return self.query_one(EpisodeList)

    def on_mount(self) -> None:
        self.episodes.header = self.query_one("#columns", Static)
        ids = self.reader.episode_ids()
        self.total = len(ids)
        self.episodes.set_ids(ids)
        self.episodes.focus()
        self.redraw()

    def redraw(self) -> None:
        shown = len(self.episodes.ids)
        self.query_one("#run-line", Static).update(run_line(self.reader, shown, self.total))
        t = Text(end="", no_wrap=True, overflow="ellipsis")
        t.append("filters: ")
        t.append(self.filters.describe())
        if self.searching:
            t.append("  searching…", style="bold #e5c07b")
        elif self.filters.active():
            more = "+" if shown >= SEARCH_LIMIT else ""
            t.append(f"  {shown:,}{more} match")
            if self.last_search_s is not None:
                t.append(f" ({self.last_search_s * 1000:.0f} ms)", style="dim")
        self.query_one("#filter-line", Static).update(t)

    # -- filtering -----------------------------------------------------------------------
    def apply(self, filters: Filters) -> None:
        self.filters = filters
        if self._search_conn is not None:
            self._search_conn.interrupt()  # the previous search is moot
        self.searching = True
        self.redraw()
        self.search(filters)

    @work(thread=True, exclusive=True, group="filter")
    def search(self, filters: Filters) -> None:
        worker = get_current_worker()
        conn = self.reader.connect()
        self._search_conn = conn
        t0 = time.perf_counter()
        try:
            ids = self.reader.episode_ids(filters, limit=SEARCH_LIMIT, conn=conn)
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                return
            self.app.call_from_thread(self.notify, plain(f"search failed: {exc}"), severity="error", markup=False)
            ids = array("q")
        finally:
            if self._search_conn is conn:
                self._search_conn = None
            conn.close()
        if not worker.is_cancelled:
            self.app.call_from_thread(self._found, ids, time.perf_counter() - t0)

    def _found(self, ids: array, seconds: float) -> None:
        self.searching = False
        self.last_search_s = seconds
        self.episodes.set_ids(ids, keep=self.episodes.current)
        self.redraw()

    def action_search(self) -> None:
        box = self.query_one("#search", Input)
        box.add_class("shown")
        box.value = self.filters.text
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "search":
            return
        f = self.filters
        self.apply(Filters(f.protocol, f.status, f.verdict, f.min_confidence, f.max_confidence,
                           event.value, f.cell))  # fmt: skip
        event.input.remove_class("shown")
        self.episodes.focus()

    def action_filters(self) -> None:
        def done(result: Filters | None) -> None:
            if result is not None:
                self.apply(result)

        self.app.push_screen(FilterScreen(self.filters, self.reader.protocols(), self.reader.cells()), done)

    def action_clear(self) -> None:
        self.apply(Filters())

    def action_reload(self) -> None:
        """The run may still be going: list what is there now (same filters)."""
        if self.filters.active():
            self.apply(self.filters)
        else:
            ids = self.reader.episode_ids()
            self.total = len(ids)
            self.episodes.set_ids(ids, keep=self.episodes.current)
            self.redraw()

    def action_back(self) -> None:
        box = self.query_one("#search", Input)
        if box.has_class("shown"):
            box.remove_class("shown")
            self.episodes.focus()
        elif self.can_go_back:
            self.dismiss()

    # -- opening -------------------------------------------------------------------------
    def _neighbour(self, episode: int, step: int) -> int | None:
        """The next episode in this list (filtered as shown)."""
        lst = self.episodes
        i = lst.index_of(episode)
        if i is None:
            return None
        j = i + step
        if 0 <= j < len(lst.ids):
            lst.move_to(j, user=False)
            return lst.ids[j]
        return None

    def on_episode_list_chosen(self, event: EpisodeList.Chosen) -> None:
        self.app.push_screen(EpisodeScreen(self.reader, event.episode, neighbour=self._neighbour))

    def action_open(self) -> None:
        self.episodes.action_choose()


class RunsScreen(Screen[None]):
    """The runs in a directory, newest first."""

    DEFAULT_CSS = """
    RunsScreen #title { height: 1; padding: 0 1; background: $panel; }
    RunsScreen OptionList { height: 1fr; }
    """

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self.paths: list[Path] = []

    def compose(self) -> ComposeResult:
        yield Static(Text(f"runs in {plain(str(self.directory))}", end=""), id="title", markup=False)
        yield OptionList(id="runs")
        yield Footer()

    def on_mount(self) -> None:
        files = sorted(self.directory.glob("*.db"), key=lambda p: p.stat().st_mtime, reverse=True)
        options = []
        for p in files[:2000]:
            try:
                reader = RunReader(p)
                try:
                    run = reader.run() or {}
                    n = reader.count()
                finally:
                    reader.close()
            except (ConfigError, sqlite3.Error):
                options.append(Option(Text(f"{one_line(p.name, 40):<40} not a moot run", style="dim"), disabled=True))
                continue
            status = str(run.get("status", "?"))
            started = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.get("started_at") or 0))
            label = Text(end="")
            label.append(f"{one_line(str(run.get('name', '?')), 24):<24} ", style="bold")
            label.append(f"{status:<11} ", style=STATUS_STYLE.get(status, ""))
            label.append(f"{n:>8,} episodes  {started}  ")
            label.append(one_line(p.name, 60), style="dim")
            options.append(Option(label, id=str(len(self.paths))))
            self.paths.append(p)
        ol = self.query_one(OptionList)
        ol.add_options(options)
        if not self.paths:
            ol.add_option(Option(Text("no moot runs here (*.db)", style="dim"), disabled=True))
        else:
            ol.highlighted = next(i for i, o in enumerate(options) if not o.disabled)
        ol.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        path = self.paths[int(event.option.id or 0)]
        try:
            reader = RunReader(path)
        except ConfigError as exc:
            self.notify(plain(str(exc)), severity="error", markup=False)
            return
        self.app.push_screen(EpisodesScreen(reader, can_go_back=True))


class ReplayApp(App[None]):
    TITLE = "moot replay"
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help"),
    ]

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        self.reader: RunReader | None = None
        if self.path.is_dir():
            return
        self.reader = RunReader(self.path)  # a ConfigError here is the command's one-line error

    def on_mount(self) -> None:
        if self.reader is None:
            self.push_screen(RunsScreen(self.path))
        else:
            self.push_screen(EpisodesScreen(self.reader))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def on_unmount(self) -> None:
        if self.reader is not None:
            self.reader.close()


def check_replay_path(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        return p
    if not p.is_file():
        raise ConfigError(f"{p}: no such database or directory")
    RunReader(p).close()
    return p
