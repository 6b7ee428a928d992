"""The TUI driven headless with Textual's Pilot: the replay (navigation, filters, stepping,
the judge's view), the live view (rows written while it runs, `moot run --tui`), hostile
model text shown literally, and snapshots of the main screens."""

import json
import math
import sqlite3
import subprocess
import sys
import time

import anyio
import pytest

from moot.errors import ConfigError
from moot.store.reader import Filters, RunReader
from moot.store.synthetic import HOSTILE, build
from moot.tui.episode import SPEEDS, CallScreen, EpisodeScreen
from moot.tui.help import HelpScreen
from moot.tui.replay import EpisodesScreen, FilterScreen, ReplayApp, RunsScreen
from moot.tui.text import one_line, plain
from moot.tui.watch import LiveApp
from moot.tui.widgets import EpisodeList, MessageBox, Transcript

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def run_db(tmp_path_factory):
    """40 finished debates; episode 0's first speech is hostile text."""
    return build(tmp_path_factory.mktemp("tui") / "run.db", 40, hostile=True)


@pytest.fixture
def live_db(tmp_path):
    return build(tmp_path / "live.db", 6, running=2)


def box_text(box: MessageBox) -> str:
    return str(box.content)


# -- text ------------------------------------------------------------------------------------


def test_plain_shows_escapes_and_control_characters_instead_of_obeying_them():
    assert plain("\x1b[31mred\x1b[0m") == "␛[31mred␛[0m"
    assert plain("bell\x07 nul\x00 del\x7f") == "bell␇ nul␀ del␡"
    assert plain("line\r\nnext\ttab") == "line\nnext\ttab"  # newlines and tabs are kept
    assert plain("over\rwrite") == "over␍write"
    assert plain("csi\x9b31m") == "csi<U+009B>31m"  # the one-byte CSI
    assert plain("abc\u202edef") == "abc<U+202E>def"  # a bidi override cannot reorder text
    assert plain("[bold]x[/] [@click=app.quit]") == "[bold]x[/] [@click=app.quit]"  # markup: untouched
    assert plain(None) == "" and plain("plain") == "plain"
    assert one_line("a\nb\t c", 10) == "a b c" and one_line("x" * 20, 5) == "xxxx…"


def test_the_readme_lists_every_key():
    from pathlib import Path

    from moot.tui.help import KEYS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for section, keys in KEYS.items():
        for key, what in keys:
            assert f"| {section} | `{key}` | {what} |" in readme, key
    for png in ("watch", "replay", "episode", "judge-view"):
        assert f"(docs/tui-{png}.png)" in readme
        assert (Path(__file__).resolve().parents[1] / "docs" / f"tui-{png}.png").is_file()


# -- the reader ------------------------------------------------------------------------------


def test_reader_filters_and_pages(run_db):
    r = RunReader(run_db)
    assert list(r.episode_ids()) == list(range(40))
    rows = r.episode_rows([3, 1])
    assert [row.id for row in rows] == [3, 1] and rows[0].messages == 6
    failed = list(r.episode_ids(Filters(status="failed")))
    assert failed == [22]
    correct = set(r.episode_ids(Filters(verdict="correct")))
    incorrect = set(r.episode_ids(Filters(verdict="incorrect")))
    invalid = set(r.episode_ids(Filters(verdict="invalid")))
    assert invalid == {16, 33} and not correct & incorrect
    assert correct | incorrect | invalid | {22} == set(range(40))
    sure = r.episode_ids(Filters(min_confidence=0.9))
    assert sure and all(row.confidence >= 0.9 for row in r.episode_rows(sure))
    assert list(r.episode_ids(Filters(text="[@click=app.quit]"))) == [0]  # literal, LIKE-escaped
    assert list(r.episode_ids(Filters(text="100%_"))) == []
    both = r.episode_ids(Filters(verdict="correct", max_confidence=0.7))
    assert set(both) <= correct
    r.close()


async def test_a_sweep_is_filtered_by_cell(tmp_path):
    db = build(tmp_path / "sweep.db", 6)
    conn = sqlite3.connect(db)
    with conn:
        for i, name in enumerate(("seed=1", "seed=2")):
            conn.execute("INSERT INTO cells VALUES (?, ?, '{}', '{}')", (name, i))
        conn.execute("UPDATE episodes SET cell = CASE WHEN id < 3 THEN 'seed=1' ELSE 'seed=2' END")
    conn.close()
    r = RunReader(db)
    assert r.cells() == ["seed=1", "seed=2"]
    assert list(r.episode_ids(Filters(cell="seed=2"))) == [3, 4, 5]
    r.close()
    app = ReplayApp(db)
    async with app.run_test(size=(80, 24)) as pilot:
        lst = app.screen.query_one(EpisodeList)
        await pilot.press("F")
        await pilot.pause()
        app.screen.query_one("#cell").value = "seed=1"
        await pilot.click("#apply")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert list(lst.ids) == [0, 1, 2]
        await pilot.press("q")


def test_reader_never_writes(run_db):
    r = RunReader(run_db)
    with pytest.raises(sqlite3.OperationalError):
        r.conn.execute("DELETE FROM messages")
    r.close()


def test_reader_refuses_what_is_not_a_run(tmp_path):
    (tmp_path / "junk.db").write_text("not sqlite")
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)")
    for name in ("junk.db", "other.db"):
        with pytest.raises(ConfigError, match="not a moot database"):
            RunReader(tmp_path / name)


def test_cli_errors_are_one_line(tmp_path):
    for args in (["replay", str(tmp_path / "missing.db")], ["watch", str(tmp_path / "missing.db")]):
        result = subprocess.run([sys.executable, "-m", "moot", *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "no such database" in result.stderr


# -- the replay ----------------------------------------------------------------------------


async def test_replay_navigates_opens_and_steps(run_db):
    app = ReplayApp(run_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, EpisodesScreen)
        lst = screen.query_one(EpisodeList)
        await pilot.press("down", "down", "j")
        assert lst.current == 3
        await pilot.press("end")
        assert lst.current == 39
        await pilot.press("home", "enter")
        await pilot.pause()
        ep = app.screen
        assert isinstance(ep, EpisodeScreen) and ep.episode_id == 0
        tr = ep.query_one(Transcript)
        assert len(tr.messages) == 6 and tr.step == 5  # opens on the last message, all shown
        await pilot.press("home")
        assert tr.step == 0
        assert [b.display for b in tr.boxes()] == [True] + [False] * 5  # only what was said so far
        await pilot.press("n", "right")
        assert tr.step == 2
        await pilot.press("p")
        assert tr.step == 1
        await pilot.press("right_square_bracket")  # next episode
        await pilot.pause()
        assert ep.episode_id == 1
        await pilot.press("c")  # the model call behind the message
        await pilot.pause()
        assert isinstance(app.screen, CallScreen) and app.screen.call["episode"] == 1
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("q")  # quits from anywhere, a modal included
    assert app.return_code == 0 and not app.is_running


async def test_replay_plays_at_a_chosen_speed(run_db):
    app = ReplayApp(run_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        ep = app.screen
        tr = ep.query_one(Transcript)
        for _ in range(5):
            await pilot.press("plus")
        assert SPEEDS[ep.speed_index] == 16
        await pilot.press("minus")
        assert SPEEDS[ep.speed_index] == 8
        await pilot.press("space")  # at the end: plays from the start, 8 messages a second
        assert ep.playing and tr.step < 5
        seen = {tr.step}
        for _ in range(100):  # 8 a second: under a second, unless the machine is busy
            await pilot.pause(0.05)
            seen.add(tr.step)
            if not ep.playing:
                break
        assert tr.step == 5 and not ep.playing  # reached the end and stopped
        assert len(seen) >= 3  # one message at a time
        await pilot.press("q")


async def test_judge_view_hides_what_the_judge_could_not_see(run_db):
    app = ReplayApp(run_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        ep = app.screen
        tr = ep.query_one(Transcript)
        draft = [i for i, m in enumerate(tr.messages) if m.phase == "speeches:draft"]
        assert draft and tr.boxes()[draft[0]].display  # the full view shows the draft
        await pilot.press("v")
        assert tr.view == "judge"
        assert not tr.boxes()[draft[0]].display  # audience []: nobody saw it
        assert tr.visible_count() == len(tr.messages) - 1
        quoted = [b for b in tr.boxes() if b.message.quotes]
        assert quoted and all("_quote>" in box_text(b) for b in quoted)  # the engine's marks, as read
        await pilot.press("s")  # the source panel says the judge is blind
        source = str(ep.query_one("#source-text").content)
        assert "does not see the source" in source
        header = str(ep.query_one("#ep-header").content)
        assert "correct" not in header  # the gold answer is not shown in the judge's view
        judge_box = tr.boxes()[-1]
        assert "verdict of judge" in box_text(judge_box) and "correct" not in box_text(judge_box)
        await pilot.press("home")
        steps = []
        for _ in range(6):
            steps.append(tr.step)
            await pilot.press("n")
        assert draft[0] not in steps  # stepping skips what the judge did not see
        await pilot.press("v")
        assert tr.view == "debater_a"
        await pilot.press("q")


async def test_a_long_episode_mounts_a_window_of_messages(tmp_path):
    db = build(tmp_path / "long.db", 2, rounds=60)  # 122 messages an episode
    app = ReplayApp(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        tr = app.screen.query_one(Transcript)
        n = len(tr.messages)
        assert n == 122 and len(tr.boxes()) <= tr.window < n
        assert tr.box_for(n - 1) is not None and tr.box_for(0) is None
        assert "earlier messages" in str(tr._note.content)
        await pilot.press("home")
        await pilot.pause()
        assert tr.step == 0 and tr.box_for(0) is not None and tr._note is None
        app.screen.set_step(tr.window - 2)
        for _ in range(3):  # stepping past the window remounts it
            await pilot.press("n")
        assert tr.step == tr.window + 1 and tr.box_for(tr.step).has_class("current")
        assert tr.box_for(0) is None
        await pilot.press("q")


async def test_filters_run_in_a_worker_and_narrow_the_list(run_db):
    app = ReplayApp(run_db)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        lst = screen.query_one(EpisodeList)
        await pilot.press("slash")
        await pilot.press(*"[@click=app.quit]", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert list(lst.ids) == [0]
        await pilot.press("x")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert len(lst.ids) == 40
        await pilot.press("F")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, FilterScreen)
        modal.query_one("#verdict").value = "invalid"
        modal.query_one("#min").value = ""
        await pilot.click("#apply")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert list(lst.ids) == [16, 33]
        assert "verdict=invalid" in str(screen.query_one("#filter-line").content)
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("right_square_bracket")  # next episode follows the filtered list
        await pilot.pause()
        assert app.screen.episode_id == 33
        await pilot.press("q")


async def test_hostile_model_text_is_shown_literally(run_db):
    app = ReplayApp(run_db)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        box = app.screen.query_one(MessageBox)
        text = box_text(box)
        for literal in ("[bold red]x[/]", "[@click=app.quit]click me[/]", "[link=https://example.com]",
                        "[/bold] list[int]", "␛[31mred␛[0m", "bell␇", "cr␍back", "<U+009B>31m", "del␡"):  # fmt: skip
            assert literal in text
        assert "\x1b" not in text and "\x07" not in text
        await pilot.press("home")
        await pilot.pause()
        await pilot.click(MessageBox, offset=(30, 1))  # on "[@click=app.quit]": runs nothing
        await pilot.pause()
        assert app.is_running
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, CallScreen)
        await pilot.press("q")
    # what the run planted holds the raw escape and bell the screen must never get
    stored = sqlite3.connect(run_db).execute("SELECT content FROM messages WHERE content LIKE '%[@click=%'").fetchone()
    assert stored == (HOSTILE,) and "\x1b" in HOSTILE and "\x07" in HOSTILE


async def test_replay_of_a_directory_lists_its_runs(run_db, tmp_path):
    build(tmp_path / "a.db", 3)
    (tmp_path / "junk.db").write_text("no")
    app = ReplayApp(tmp_path)
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen) and len(app.screen.paths) == 1
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, EpisodesScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("q")


# -- the live view ---------------------------------------------------------------------------


async def until(pilot, condition, timeout=10.0):
    """Wait for the app to catch up (polls are timed; a busy machine is slower)."""
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    assert condition()


def _append_episode(path, e, finish=False):
    """Another process's writer, as the run would: an episode row, then its messages."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO episodes (id, question_id, question, answers, correct, source, protocol,"
            " assignments, seats, status, started_at) VALUES (?,?,?,?,?,?,?,?,?,'running',?)",
            (e, f"new{e}", f"Late question {e}?", json.dumps(["yes", "no"]), 0, "src", "debate",
             json.dumps({"debater_a": 0, "debater_b": 1}),
             json.dumps({"debater_a": {"role": "debater"}, "judge": {"role": "judge", "sees_source": False}}),
             time.time()),
        )  # fmt: skip
        for seq in range(3):
            conn.execute(
                "INSERT INTO messages (episode, seq, round, phase, seat, role, side, content,"
                " audience, created_at, call_seq) VALUES (?,?,1,'speeches','debater_a','debater',0,?,NULL,?,?)",
                (e, seq, f"live message {seq} [bold]not bold[/]", time.time(), seq),
            )
            conn.execute(
                "INSERT INTO model_calls (episode, seq, seat, role, model, prompt, params,"
                " prompt_tokens, completion_tokens, cost, latency_s, attempts, started_at)"
                " VALUES (?,?,'debater_a','debater','m','p','{}',10,5,0.5,0.1,1,?)",
                (e, seq, time.time()),
            )
    if finish:
        with conn:
            conn.execute(
                "INSERT INTO verdicts (episode, judge, model, round, choice, probabilities, correct,"
                " method, parse_status, raw, call_seq, created_at)"
                " VALUES (?, 'judge', 'm', 1, 0, '[0.8,0.2]', 1, 'text', 'ok', 'A', 2, ?)",
                (e, time.time()),
            )
            conn.execute("UPDATE episodes SET status='done', outcome='{\"choice\":0,\"correct\":true}' WHERE id=?", (e,))
    conn.close()


async def test_live_view_shows_rows_written_while_it_runs(live_db):
    app = LiveApp(live_db, poll=0.05, follow_every=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.state is not None and app.selected is not None)
        t = app.state.totals
        assert (t.episodes, t.done, t.running) == (6, 4, 2)
        assert app.following and app.selected == 5  # the newest running episode
        before_msgs, before_done = t.messages, t.done
        _append_episode(live_db, 6)
        await until(pilot, lambda: app.selected == 6 and len(app.transcript.messages) == 3)  # followed, streamed in
        assert t.messages == before_msgs + 3 and t.model_calls >= 3 and t.cost >= 1.5
        assert "[bold]not bold[/]" in box_text(app.transcript.boxes()[0])
        await pilot.press("space")  # pause following
        assert not app.following
        _append_episode(live_db, 7, finish=True)
        await until(pilot, lambda: 7 in app.episodes.ids and t.verdicts >= 1)
        assert app.selected == 6  # paused: stays put
        assert t.done == before_done + 1 and t.verdicts >= 1
        await pilot.press("up")  # moving by hand keeps following off
        assert app.selected == 5 and not app.following
        await pilot.press("f")
        await until(pilot, lambda: app.selected == 6)
        assert app.following  # on the newest still running
        await pilot.press("q")


async def test_replay_reloads_a_run_that_is_still_going(live_db):
    app = ReplayApp(live_db)
    async with app.run_test(size=(80, 24)) as pilot:
        lst = app.screen.query_one(EpisodeList)
        assert len(lst.ids) == 6
        _append_episode(live_db, 6)
        await pilot.press("r")
        assert list(lst.ids) == list(range(7))
        await pilot.press("q")


def test_live_state_finds_episodes_written_out_of_order(live_db):
    """A resumed run re-runs cleared episodes under their old (smaller) ids: they are found
    by their messages, and every total moves by exactly what was written."""
    from moot.tui.live import LiveState

    state = LiveState(RunReader(live_db))
    state.load()
    assert (state.totals.done, state.totals.running) == (4, 2) and state.totals.verdicts == 4
    before = state.totals.messages
    _append_episode(live_db, 100)
    ch = state.poll()
    assert ch.new_episodes == [100] and ch.messages == {100: 3}
    _append_episode(live_db, 50, finish=True)
    ch = state.poll()
    assert 50 in ch.new_episodes and 50 in ch.finished
    assert list(state.ids)[-2:] == [50, 100] and state.totals.messages == before + 6
    assert (state.totals.done, state.totals.running) == (5, 3) and state.totals.verdicts == 5
    assert not state.poll()  # nothing new: an empty poll
    # the proper score beside accuracy: ln p(correct) of each finished episode's ruling, by hand
    rulings = sqlite3.connect(live_db).execute(
        "SELECT v.probabilities, e.correct FROM episodes e JOIN verdicts v ON v.episode = e.id"
        " WHERE e.status = 'done' AND v.probabilities IS NOT NULL").fetchall()  # fmt: skip
    scores = [math.log(max(json.loads(p)[c], 0.01)) for p, c in rulings]
    assert state.totals.scored == len(scores) == 5
    assert state.totals.mean_log_score == pytest.approx(sum(scores) / 5)
    fresh = LiveState(RunReader(live_db))  # counted at once, the same
    fresh.load()
    assert (fresh.totals.scored, fresh.totals.log_score) == (5, pytest.approx(state.totals.log_score))


SCENARIO = """
name: tui-run
protocol: {name: debate, rounds: 2}
seats:
  debater: {model: scripted/slow, max_tokens: 30}
  judge: {model: scripted}
models:
  scripted/slow: {latency: 0.05}
dataset: {source: builtin:reading, limit: 24}
concurrency: 2
"""



async def test_run_with_tui_finishes_or_stops_resumably(tmp_path):
    from moot.scenario.load import parse
    from moot.workflows.run import execute, plan, resume_run

    quick = SCENARIO.replace("limit: 24", "limit: 2")
    prep, path, resume = plan(parse(quick), quick, out=tmp_path / "done.db")
    app = LiveApp(path, runner=lambda: execute(prep, path, resume=resume), poll=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.result is not None and app.state is not None
                    and app.state.totals.done == 2)  # fmt: skip
        assert app.result.done == 2
        await pilot.press("q")
    assert sqlite3.connect(path).execute("SELECT status FROM runs").fetchone() == ("done",)

    prep, path, resume = plan(parse(SCENARIO), SCENARIO, out=tmp_path / "stop.db")
    app = LiveApp(path, runner=lambda: execute(prep, path, resume=resume), poll=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.state is not None and app.state.totals.done > 0)
        await pilot.press("q")
    assert app.interrupted and app.result is None
    db = sqlite3.connect(path)
    assert db.execute("SELECT status FROM runs").fetchone() == ("interrupted",)
    assert db.execute("SELECT count(*) FROM episodes WHERE status='done'").fetchone()[0] < 24
    db.close()
    summary = await anyio.to_thread.run_sync(resume_run, path)  # moot run --resume
    assert summary.done == 24 and summary.failed == 0


async def test_a_run_that_cannot_start_ends_the_app_with_its_error(tmp_path):
    async def runner():
        raise ConfigError("unknown model 'nonsense'")

    app = LiveApp(tmp_path / "never.db", runner=runner)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.error is not None)
    assert isinstance(app.error, ConfigError) and not (tmp_path / "never.db").exists()


# -- snapshots (each beside a plain run_test check above) -------------------------------------


def test_snapshot_replay_list(run_db, snap_compare):
    assert snap_compare(ReplayApp(run_db), terminal_size=(80, 24), press=["down", "down"])


def test_snapshot_episode(run_db, snap_compare):
    assert snap_compare(ReplayApp(run_db), terminal_size=(80, 24), press=["down", "enter", "_", "home", "n"])


def test_snapshot_episode_wide_judge_view(run_db, snap_compare):
    assert snap_compare(ReplayApp(run_db), terminal_size=(140, 40), press=["enter", "_", "v", "s"])


def test_snapshot_filters_80x24(run_db, snap_compare):
    assert snap_compare(ReplayApp(run_db), terminal_size=(80, 24), press=["F"])


def test_snapshot_help(run_db, snap_compare):
    assert snap_compare(ReplayApp(run_db), terminal_size=(100, 36), press=["question_mark"])


def test_snapshot_live(tmp_path, snap_compare):
    db = build(tmp_path / "live.db", 12, running=2)

    async def attached(pilot):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.3)

    assert snap_compare(LiveApp(db, poll=10), terminal_size=(100, 30), run_before=attached)


def test_snapshot_live_80x24(tmp_path, snap_compare):
    db = build(tmp_path / "live.db", 12, running=2)

    async def attached(pilot):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.3)

    assert snap_compare(LiveApp(db, poll=10), terminal_size=(80, 24), run_before=attached)
