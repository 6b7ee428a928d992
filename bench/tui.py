"""The TUI on a big run: time to first screen, jumps, scrolling, search, live throughput.

    python -m bench.tui                 # 1,000,000 messages (built once, cached)
    python bench/tui.py --messages 100000 --json out.json

The database is a synthetic run (moot.tui.synthetic: 6 messages and 6 model calls per
episode, written straight into the real schema) cached under ~/.cache/moot-bench/. Each
figure is measured headless with Textual's `run_test` in this process; the OS page cache is
warm after the first build (run it twice to see the cold figure once).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from moot.store.reader import Filters, RunReader  # noqa: E402
from moot.store.synthetic import build  # noqa: E402

# 2 rounds x 2 speeches, a best-of draft, the judge's verdict; one episode in 23 fails
# before its verdict (5 messages): 137 messages per 23 episodes
MESSAGES_PER_EPISODE_X23 = 23 * 6 - 1


def cached_db(messages: int) -> Path:
    from peers import CACHE  # bench/ is this script's directory

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"tui-{messages}.db"
    if not path.exists():
        episodes = -(-messages * 23 // MESSAGES_PER_EPISODE_X23)  # at least `messages`
        print(f"building {path} ({episodes:,} episodes)...", flush=True)
        t = time.perf_counter()
        tmp = path.with_suffix(".building")
        tmp.unlink(missing_ok=True)
        build(tmp, episodes)
        tmp.rename(path)
        print(f"  built in {time.perf_counter() - t:.1f} s, {path.stat().st_size / 1e6:,.0f} MB", flush=True)
    return path


async def rows_drawn(app) -> None:
    """Until the episode list has drawn its first lines (it reads rows as it paints them)."""
    from moot.tui.widgets import EpisodeList

    while True:
        lists = app.screen.query(EpisodeList)
        if lists and lists.first()._rows:
            return
        await anyio.sleep(0.001)


async def replay_figures(path: Path) -> dict:
    from moot.tui.episode import EpisodeScreen
    from moot.tui.replay import ReplayApp
    from moot.tui.widgets import EpisodeList

    out: dict = {}
    t0 = time.perf_counter()
    app = ReplayApp(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await rows_drawn(app)
        out["first_screen_s"] = time.perf_counter() - t0
        await pilot.pause()
        out["first_screen_settled_s"] = time.perf_counter() - t0
        lst = app.screen.query_one(EpisodeList)
        out["episodes"] = len(lst.ids)

        t = time.perf_counter()
        await pilot.press("end")
        await pilot.pause()
        out["jump_to_last_s"] = time.perf_counter() - t
        assert lst.current == lst.ids[-1]

        t = time.perf_counter()
        await pilot.press("enter")
        while not isinstance(app.screen, EpisodeScreen):
            await anyio.sleep(0.001)
        await pilot.pause()
        out["open_last_episode_s"] = time.perf_counter() - t
        await pilot.press("escape", "home")
        await pilot.pause()

        steps = 50
        t = time.perf_counter()
        for _ in range(steps):
            await pilot.press("z")  # bound to nothing: what a key costs the test driver itself
        await pilot.pause()
        out["unbound_key_ms"] = (time.perf_counter() - t) / steps * 1000
        t = time.perf_counter()
        for _ in range(steps):
            await pilot.press("pagedown")
        await pilot.pause()
        out["page_down_ms"] = (time.perf_counter() - t) / steps * 1000

        t = time.perf_counter()
        for _ in range(steps * 4):
            await pilot.press("down")
        await pilot.pause()
        out["line_down_ms"] = (time.perf_counter() - t) / (steps * 4) * 1000

        # a search that scans every message: how long does the event loop (keys, drawing)
        # stall meanwhile? (Pilot's press waits for workers, so the loop is probed directly.)
        screen = app.screen
        screen.apply(Filters(text="zebra-no-such-word"))
        t = time.perf_counter()
        stall = 0.0
        while screen.searching:
            k = time.perf_counter()
            await anyio.sleep(0.01)
            stall = max(stall, time.perf_counter() - k - 0.01)
        out["search_in_app_s"] = time.perf_counter() - t
        out["loop_stall_during_search_ms"] = stall * 1000
    return out


async def watch_figures(path: Path) -> dict:
    """`moot watch` on the big run: the first screen, and the totals counted (in a thread)."""
    from moot.tui.watch import LiveApp

    t0 = time.perf_counter()
    app = LiveApp(path, poll=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await rows_drawn(app)  # the list is up before the totals are counted
        first = time.perf_counter() - t0
        while app.state is None:
            await anyio.sleep(0.01)
        await pilot.pause()
        totals = time.perf_counter() - t0
        await pilot.press("q")
    return {"watch_first_screen_s": first, "watch_totals_s": totals}


def import_figures() -> dict:
    """What comes before the app in a real `moot replay`: a fresh interpreter importing it."""
    import subprocess

    code = ("import time; t = time.perf_counter(); import moot.tui.replay, moot.tui.watch;"
            " print(time.perf_counter() - t)")  # fmt: skip
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
        runs.append((time.perf_counter() - t, float(proc.stdout)))
    runs.sort()
    total, imports = runs[1]
    return {"interpreter_and_imports_s": total, "imports_s": imports}


def search_figures(path: Path) -> dict:
    """The text filter as the replay runs it (in a worker thread): a word that is everywhere,
    and one that is nowhere (a scan of every message)."""
    r = RunReader(path)
    out = {}
    for name, text in (("common", "bakery"), ("absent", "zebra-no-such-word")):
        t = time.perf_counter()
        ids = r.episode_ids(Filters(text=text), limit=100_000)
        out[f"search_{name}_s"] = time.perf_counter() - t
        out[f"search_{name}_matches"] = len(ids)
    t = time.perf_counter()
    ids = r.episode_ids(Filters(verdict="correct", min_confidence=0.9), limit=100_000)
    out["filter_verdict_confidence_s"] = time.perf_counter() - t
    out["filter_verdict_confidence_matches"] = len(ids)
    r.close()
    return out


async def live_figures(tmp: Path, rate: int, seconds: float) -> dict:
    """A writer in another thread appends `rate` messages a second (batches every 100 ms,
    as the run's writer commits) while the live view polls; how far behind does it get?"""
    from moot.tui.watch import LiveApp

    path = tmp / "live.db"
    path.unlink(missing_ok=True)
    build(path, 200, running=0)
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    (first,) = conn.execute("SELECT max(id) FROM episodes").fetchone()
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        per_batch = rate // 10
        e = first + 1
        seq = 0
        t_next = time.perf_counter()
        while not stop.is_set():
            rows = []
            eps = []
            for _ in range(per_batch):
                if seq == 0:
                    eps.append((e, f"live{e}", f"Live question {e}?", '["a","b"]', 0, "src", "debate",
                                '{"debater_a":0,"debater_b":1}', '{}', "running", time.time()))  # fmt: skip
                rows.append((e, seq, 1, "speeches", "debater_a", "debater", 0, f"message {seq} " * 20,
                             None, time.time(), None))  # fmt: skip
                seq += 1
                if seq == 20:
                    e, seq = e + 1, 0
            with conn:
                conn.executemany(
                    "INSERT INTO episodes (id, question_id, question, answers, correct, source, protocol,"
                    " assignments, seats, status, started_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", eps)  # fmt: skip
                conn.executemany(
                    "INSERT INTO messages (episode, seq, round, phase, seat, role, side, content, audience,"
                    " created_at, call_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)  # fmt: skip
            written[0] += len(rows)
            t_next += 0.1
            time.sleep(max(0.0, t_next - time.perf_counter()))

    ui_times = []
    original_ui_poll = LiveApp.poll

    def ui_poll(self):  # the whole tick: queries, then the list and the transcript updated
        t = time.perf_counter()
        original_ui_poll(self)
        ui_times.append(time.perf_counter() - t)

    LiveApp.poll = ui_poll
    app = LiveApp(path, poll=0.2)
    lags = []
    poll_times = []
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        base = app.state.totals.messages
        original = app.state.poll

        def timed_poll():  # the poll's own cost (queries), without the drawing that follows
            t = time.perf_counter()
            ch = original()
            poll_times.append(time.perf_counter() - t)
            return ch

        app.state.poll = timed_poll
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        t_end = time.perf_counter() + seconds
        while time.perf_counter() < t_end:
            await anyio.sleep(0.25)
            lags.append(written[0] - (app.state.totals.messages - base))
        stop.set()
        thread.join()
        await pilot.pause(0.5)
        final_lag = written[0] - (app.state.totals.messages - base)
        shown = len(app.transcript.messages)
        followed = app.selected
        await pilot.press("q")
    conn.close()
    LiveApp.poll = original_ui_poll
    return {
        "live_tick_ms_mean": 1000 * sum(ui_times) / max(1, len(ui_times)),
        "live_tick_ms_max": 1000 * max(ui_times, default=0),
        "live_rate_per_s": rate,
        "live_seconds": seconds,
        "live_written": written[0],
        "live_max_lag_messages": max(lags),
        "live_final_lag_messages": final_lag,
        "live_poll_ms_mean": 1000 * sum(poll_times) / max(1, len(poll_times)),
        "live_poll_ms_max": 1000 * max(poll_times, default=0),
        "live_followed_episode": followed,
        "live_transcript_messages": shown,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=1000, help="live: messages written per second")
    ap.add_argument("--seconds", type=float, default=10.0, help="live: how long to write")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    path = cached_db(args.messages)
    (count,) = sqlite3.connect(path).execute("SELECT count(*) FROM messages").fetchone()
    figures: dict = {"messages": count, "db_mb": round(path.stat().st_size / 1e6)}
    figures |= import_figures()
    figures |= anyio.run(replay_figures, path)
    figures |= anyio.run(watch_figures, path)
    figures |= search_figures(path)
    figures |= anyio.run(live_figures, path.parent, args.rate, args.seconds)

    def row(name: str, value: str, target: str = "") -> None:
        print(f"  {name:<52} {value:>14}  {target}")

    f = figures
    print(f"\nTUI on a run of {f['messages']:,} messages ({f['episodes']:,} episodes, {f['db_mb']:,} MB)")
    row("a fresh interpreter importing the TUI", f"{f['interpreter_and_imports_s'] * 1000:.0f} ms")
    row("replay: first screen drawn (app start-up included)", f"{f['first_screen_s'] * 1000:.0f} ms",
        f"< 1 s with the line above: {(f['first_screen_s'] + f['interpreter_and_imports_s']):.2f} s")  # fmt: skip
    row("replay: ... and the app idle", f"{f['first_screen_settled_s'] * 1000:.0f} ms")
    row("replay: jump to the last episode", f"{f['jump_to_last_s'] * 1000:.0f} ms")
    row("replay: open the last episode", f"{f['open_last_episode_s'] * 1000:.0f} ms")
    row("watch: first screen drawn / totals counted (worker thread)",
        f"{f['watch_first_screen_s'] * 1000:.0f} / {f['watch_totals_s'] * 1000:.0f} ms")
    row("replay: page down / line down (per key, drawn)", f"{f['page_down_ms']:.1f} / {f['line_down_ms']:.1f} ms",
        f"(an unbound key: {f['unbound_key_ms']:.1f} ms)")  # fmt: skip
    row(f"search: common word ({f['search_common_matches']:,} episodes)", f"{f['search_common_s'] * 1000:.0f} ms",
        "in a worker: keys stay live")  # fmt: skip
    row("search: absent word (scans every message)", f"{f['search_absent_s'] * 1000:.0f} ms", "in a worker")
    row(f"  in the app ({f['search_in_app_s']:.1f} s): the event loop's longest stall",
        f"{f['loop_stall_during_search_ms']:.0f} ms", "the keys stay live")  # fmt: skip
    row(f"filter: correct, confidence >= 0.9 ({f['filter_verdict_confidence_matches']:,})",
        f"{f['filter_verdict_confidence_s'] * 1000:.0f} ms")  # fmt: skip
    row(f"live: {f['live_rate_per_s']:,} messages/s for {f['live_seconds']:.0f} s, max lag",
        f"{f['live_max_lag_messages']:,} msgs", "<= a poll's worth (0.2 s)")  # fmt: skip
    row("live: lag after the writer stopped", f"{f['live_final_lag_messages']:,} msgs", "0")
    row("live: one poll's queries (mean / max)", f"{f['live_poll_ms_mean']:.1f} / {f['live_poll_ms_max']:.1f} ms")
    row("live: one tick, queries + list + transcript (mean / max)",
        f"{f['live_tick_ms_mean']:.1f} / {f['live_tick_ms_max']:.1f} ms", "< 200 ms (the poll interval)")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
