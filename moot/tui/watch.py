"""The live view: `moot watch RUN.db` from another terminal, or `moot run SCENARIO --tui`
with the run in the same event loop. Either way it reads the database, never the engine."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from moot.errors import ConfigError
from moot.store.reader import RunReader
from moot.tui.episode import EpisodeScreen
from moot.tui.help import HelpScreen
from moot.tui.live import LiveState
from moot.tui.text import one_line, plain
from moot.tui.widgets import STATUS_STYLE, EpisodeList, Transcript, colour, letter

RUN_STYLE = {"running": "#e5c07b", "done": "#98c379", "failed": "#e06c75", "interrupted": "#e06c75"}


def stats_line(state: LiveState, following: bool, name: str) -> Text:
    t = state.totals
    out = Text(end="", no_wrap=True, overflow="ellipsis")
    out.append(plain(name), style="bold")
    out.append(f" {state.run_status}", style=RUN_STYLE.get(state.run_status, ""))
    out.append(f"  episodes {t.done:,}/{t.episodes:,} done", style="")
    if t.running:
        out.append(f" {t.running:,} running", style=STATUS_STYLE["running"])
    if t.failed:
        out.append(f" {t.failed:,} failed", style=STATUS_STYLE["failed"])
    acc = t.accuracy
    out.append("  judge ")
    out.append("n/a" if acc is None else f"{acc:.1%}", style="bold")
    out.append(f" of {t.verdicts - t.invalid:,}")
    if t.mean_log_score is not None:  # the proper score beside accuracy (ln p(correct))
        out.append(f"  log score {t.mean_log_score:.2f}")
    if t.invalid:
        out.append(f", {t.invalid:,} invalid", style=STATUS_STYLE["failed"])
    out.append("\n")
    out.append(f"{t.messages:,} messages  {t.model_calls:,} calls  {state.calls_per_s():,.0f} calls/s  "
               f"{t.tokens:,} tokens  ${t.cost:.4f}  ")  # fmt: skip
    out.append("following newest" if following else "following paused", style="#56b6c2" if following else "dim")
    return out


class LiveApp(App[None]):
    TITLE = "moot watch"
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help"),
        Binding("f", "follow", "follow newest"),
        Binding("space", "pause", "pause/resume"),
        Binding("enter", "open", "open", show=False),
    ]
    CSS = """
    #stats { height: 2; padding: 0 1; background: $panel; }
    #main { height: 1fr; }
    #left { width: 45%; min-width: 30; }
    #left #columns { height: 1; color: $text-muted; text-style: bold; }
    #right { width: 1fr; border-left: vkey $primary; }
    #ep-title { height: auto; max-height: 4; padding: 0 1; background: $boost; }
    """

    def __init__(
        self,
        path: str | Path,
        *,
        runner: Callable[[], Awaitable[Any]] | None = None,
        poll: float = 0.2,
        follow_every: float = 1.0,
        **kwargs: Any,
    ) -> None:
        """`follow_every`: while following, switch to a newer episode at most this often
        (at a thousand messages a second, a transcript that changed every poll could not
        be read, and redrawing it each time would cost the poll its time)."""
        super().__init__(**kwargs)
        self.follow_every = follow_every
        self._switched = 0.0
        self.path = Path(path)
        self.runner = runner
        self.poll_interval = poll
        self.reader: RunReader | None = None
        self.state: LiveState | None = None
        self.following = True
        self.selected: int | None = None
        self.result: Any = None  # what the runner returned
        self.error: BaseException | None = None  # what it raised
        self.interrupted = False
        self._run_worker: Worker | None = None
        self._run_name = self.path.stem
        self.polls = 0
        if runner is None:  # watching: the database must exist now
            self.reader = RunReader(self.path)

    def compose(self) -> ComposeResult:
        yield Static(Text("attaching…"), id="stats", markup=False)
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield Static(EpisodeList.columns(40), id="columns", markup=False)
                yield EpisodeList(self.reader, id="episodes")  # type: ignore[arg-type]
            with Vertical(id="right"):
                yield Static(id="ep-title", markup=False)
                yield Transcript(id="transcript")
        yield Footer()

    @property
    def episodes(self) -> EpisodeList:
        return self.query_one(EpisodeList)

    @property
    def transcript(self) -> Transcript:
        return self.query_one(Transcript)

    def on_mount(self) -> None:
        self.episodes.on_move = lambda _: self._user_moved()
        self.episodes.header = self.query_one("#columns", Static)
        self.episodes.focus()
        if self.runner is not None:
            self._run_worker = self.run_worker(self._run(), group="run", exit_on_error=False)
        self.run_worker(self._attach_database(), group="attach", exit_on_error=False)

    async def _run(self) -> None:
        try:
            self.result = await self.runner()  # type: ignore[misc]
            self.notify("the run is finished: q to quit", timeout=10)
        except anyio.get_cancelled_exc_class():
            self.interrupted = True
            raise
        except Exception as exc:  # a failed run: say it, and leave the app for the caller
            self.error = exc
            self.exit()

    async def _attach_database(self) -> None:
        """Wait for the database (a run creates it once its models are ready), then count
        what is there in a thread and start polling."""
        while self.reader is None:
            if self.path.is_file():
                try:
                    reader = RunReader(self.path)
                    if reader.run() is not None:
                        self.reader = reader
                        break
                    reader.close()
                except ConfigError:
                    pass
            await anyio.sleep(0.05)
        self.episodes.reader = self.reader
        run = self.reader.run() or {}
        self._run_name = str(run.get("name") or self._run_name)
        ids = self.reader.episode_ids()  # the list first; the totals take a pass over the run
        self.episodes.set_ids(ids, keep=ids[-1] if ids else None)
        if ids:
            self.select(ids[-1])
        self.query_one("#stats", Static).update(Text(f"{self._run_name}: counting…"))
        await anyio.sleep(0.1)  # let the first screen paint before the count takes the CPU
        state = LiveState(self.reader)
        await anyio.to_thread.run_sync(state.load)
        self.state = state
        self.episodes.grow(state.ids)
        self.redraw()
        self.set_interval(self.poll_interval, self.poll)

    # -- polling -------------------------------------------------------------------------
    def poll(self) -> None:
        try:
            self._poll()
        except NoMatches:  # a tick while the app is closing: its widgets are gone
            pass

    def _poll(self) -> None:
        state = self.state
        if state is None:
            return
        ch = state.poll()
        self.polls += 1
        lst = self.episodes
        if ch.new_episodes:
            lst.grow(state.ids)
        if ch:
            lst.reload()
        now = time.monotonic()
        if (
            self.following
            and state.ids
            and (ch.new_episodes or ch.finished or self.selected is None)
            and now - self._switched >= self.follow_every
        ):
            newest = max(state.running) if state.running else state.ids[-1]
            i = lst.index_of(newest)
            if i is not None and newest != self.selected:
                lst.move_to(i, user=False)
                self.select(newest)
                self._switched = now
        sel = self.selected
        if sel is not None and (sel in ch.messages or sel in ch.verdicts or sel in ch.finished):
            self._update_selected(sel in ch.verdicts or sel in ch.finished)
        self.redraw()

    def redraw(self) -> None:
        if self.state is not None:
            self.query_one("#stats", Static).update(stats_line(self.state, self.following, self._run_name))

    # -- the selected episode -------------------------------------------------------------
    def select(self, episode: int | None) -> None:
        if episode == self.selected or self.reader is None:
            return
        self.selected = episode
        tr = self.transcript
        if episode is None:
            tr.clear()
            return
        tr.set_verdicts(self.reader.verdicts(episode))
        tr.show(self.reader.messages(episode))
        self._title()

    def _update_selected(self, verdicts: bool) -> None:
        assert self.reader is not None and self.selected is not None
        tr = self.transcript
        if verdicts:
            tr.set_verdicts(self.reader.verdicts(self.selected))
        last = tr.messages[-1].seq if tr.messages else -1
        tr.extend(self.reader.messages(self.selected, after_seq=last))
        if verdicts:
            tr.refresh_verdicts(self.reader.verdicts(self.selected))
        self._title()

    def _title(self) -> None:
        assert self.reader is not None
        ep = self.reader.episode(self.selected) if self.selected is not None else None
        title = self.query_one("#ep-title", Static)
        if ep is None:
            title.update("")
            return
        t = Text(end="", no_wrap=True, overflow="ellipsis")
        t.append(f"episode {ep.id} ", style="bold")
        t.append(ep.status, style=STATUS_STYLE.get(ep.status, ""))
        t.append(f" · {plain(ep.protocol)}", style="dim")
        if ep.outcome.get("choice") is not None:
            t.append(f" · chose {letter(ep.outcome['choice'])}")
            if ep.outcome.get("correct") is not None:
                ok = ep.outcome["correct"]
                t.append(" ✓" if ok else " ✗", style="#98c379" if ok else "#e06c75")
        t.append("\n")
        t.append(one_line(ep.question, 200))
        for i, answer in enumerate(ep.answers):
            t.append(f"\n{letter(i)} ", style=f"bold {colour('debater', i)}")
            t.append(one_line(str(answer), 200))
            if ep.correct == i:
                t.append(" ★", style="#98c379")
        title.update(t)

    def on_episode_list_highlighted(self, event: EpisodeList.Highlighted) -> None:
        self.select(event.episode)

    def on_episode_list_chosen(self, event: EpisodeList.Chosen) -> None:
        if self.reader is not None:
            self.push_screen(EpisodeScreen(self.reader, event.episode))

    def _user_moved(self) -> None:
        if self.following:
            self.following = False
            self.redraw()

    # -- keys ------------------------------------------------------------------------------
    def action_follow(self) -> None:
        self.following = True
        self.selected_before = self.selected
        if self.state is not None and self.state.ids:
            newest = max(self.state.running) if self.state.running else self.state.ids[-1]
            i = self.episodes.index_of(newest)
            if i is not None:
                self.episodes.move_to(i, user=False)
                self.select(newest)
        self.redraw()

    def action_pause(self) -> None:
        if self.following:
            self.following = False
            self.redraw()
        else:
            self.action_follow()

    def action_open(self) -> None:
        self.episodes.action_choose()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        """Quit; a run in this process is cancelled first and marks itself interrupted
        (resumable), or has finished already."""
        w = self._run_worker
        if w is not None and w.state in (WorkerState.PENDING, WorkerState.RUNNING):
            self.notify("stopping the run…")
            w.cancel()
            try:
                await w.wait()
            except Exception:  # WorkerCancelled / WorkerFailed: the outcome is in self.*
                pass
            self.interrupted = True
        self.exit()

    def on_unmount(self) -> None:
        if self.reader is not None:
            self.reader.close()


def run_with_tui(prep: Any, path: Path, resume: bool) -> Any:
    """`moot run --tui`: the run as a task of the app's event loop, the live view in front.

    Returns the run's summary once it finished and the user quit; quitting earlier cancels
    the run, which marks itself interrupted (resumable) and raises `Interrupted`."""
    from moot.workflows.run import execute

    return run_app(LiveApp(path, runner=lambda: execute(prep, path, resume=resume)), path)


def run_app(app: LiveApp, path: Path) -> Any:
    """Run a live app that drives a run; its summary, or why there is none."""
    from moot.workflows.run import Interrupted

    app.run()
    if app.error is not None:
        raise app.error
    if app.result is None:
        if not path.exists():
            raise ConfigError("stopped before the run began: nothing was written")
        raise Interrupted(path)
    return app.result
