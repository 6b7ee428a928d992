"""People in seats, driven headless with Pilot: a human judge in a live debate (probabilities
set with keys and digits, a question asked, the debate ended early), a human debater quoting
the passage within the protocol's limits, a seat joined from a second app on the same
database, and offline judging of a stored run. What they did is checked in the store."""

import json
import time

import pytest
from helpers import rows
from textual.widgets import TextArea

from moot.agents.human import TurnAnswer, TurnRequest, speech_problems, speech_size
from moot.scenario.load import parse
from moot.tui.human import HumanTurnScreen, ProbabilityBar, WaitingScreen, live_app, spread
from moot.workflows.run import plan

pytestmark = pytest.mark.anyio

HOSTILE = "[bold]x[/] \x1b[31mred [@click=app.quit]q[/]"

JUDGE = """
name: human-judge
protocol: {name: debate, rounds: 3, turns: simultaneous, judge_questions: true, stop_threshold: 1.0}
seats:
  debater: {model: scripted}
  judge: {model: human, time_limit: 600}
dataset: {source: builtin:reading, limit: 1}
concurrency: 1
"""


async def wait_for_turn(app, pilot, kind=None, timeout=10.0):
    """Until the app shows a person's turn (of `kind`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = app.screen
        if isinstance(screen, HumanTurnScreen) and not screen._done and (kind is None or screen.request.kind == kind):
            await pilot.pause()
            return screen
        await pilot.pause(0.05)
    raise AssertionError(f"no {kind or ''} turn came up; screen is {app.screen!r}")


# -- the pieces ------------------------------------------------------------------------------


def test_spread_keeps_whole_percentages_summing_to_100():
    assert spread([50, 50], 0, 70) == [70, 30]
    assert spread([50, 50], 1, 105) == [0, 100]
    assert spread([20, 30, 50], 0, 60) == [60, 15, 25]
    assert spread([100, 0, 0], 0, 40) == [40, 30, 30]
    for p in ([33, 33, 34], [0, 0, 100], [1, 2, 97]):
        for v in range(0, 101, 7):
            out = spread(p, 1, v)
            assert sum(out) == 100 and out[1] == v and min(out) >= 0


def test_speech_limits_count_text_and_quotes_without_tags():
    text = "We win: <quote>the lamp was lit</quote> and <quote>late</quote>."
    assert speech_size(text) == (len("We win: the lamp was lit and late."), len("the lamp was lit") + 4, 2)
    assert speech_problems(text, 100, 40) == []
    assert speech_problems(text, 10, 5) == [
        "34 characters, over the limit of 10", "20 quoted characters, over the limit of 5",
    ]


# -- a human judge, live -------------------------------------------------------------------


async def test_human_judge_live_rules_asks_and_ends_the_debate(tmp_path):
    prep, path, resume = plan(parse(JUDGE), JUDGE, out=tmp_path / "judge.db")
    app = live_app(prep, path, resume, poll=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        turn = await wait_for_turn(app, pilot, "verdict")
        req = turn.request
        assert req.source is None and req.may_end and req.round == 1  # a blind judge
        assert [m["seat"] for m in req.messages] == ["debater_a", "debater_b"]
        bar = turn.query_one(ProbabilityBar)
        assert bar.percents == [50, 50]
        await pilot.press("left", "left", "left")  # toward A: 65/35
        assert bar.percents == [65, 35]
        await pilot.press("enter")  # rule and go on
        turn = await wait_for_turn(app, pilot, "question")
        await pilot.press(*"Why?")  # typed, then pasted hostile text
        turn.query_one("#editor", TextArea).insert(" " + HOSTILE)
        await pilot.press("q")  # a q in the text area is text, not quit
        await pilot.press("ctrl+s")
        turn = await wait_for_turn(app, pilot, "verdict")
        assert turn.request.round == 2
        shown = [m["content"] for m in turn.request.messages]
        assert any(HOSTILE in c for c in shown)  # the question, as typed, in the view
        await pilot.press("down", "8", "0")  # B typed as 80%
        assert turn.query_one(ProbabilityBar).percents == [20, 80]
        await pilot.press("e")  # end the debate now
        for _ in range(100):
            if app.result is not None:
                break
            await pilot.pause(0.05)
        assert app.result is not None and app.error is None
        assert app.result.model_calls == 4  # the debaters' two rounds; the person's turns are no calls
        await pilot.pause(0.6)
        # between turns the judge sees progress, never the live view (it marks the correct answer)
        assert isinstance(app.screen, WaitingScreen)
        assert "the run is finished" in str(app.screen.query_one("#waiting").content)
        await pilot.press("q")
    assert rows(path, "SELECT status, stop_reason FROM episodes") == [("done", "judge_ended")]
    verdicts = rows(path, "SELECT judge, model, round, choice, probabilities, method, parse_status, raw"
                          " FROM verdicts ORDER BY id")  # fmt: skip
    assert [(v[0], v[1], v[2], json.loads(v[4]), v[5], v[6]) for v in verdicts] == [
        ("judge", "human", 1, [0.65, 0.35], "human", "ok"),
        ("judge", "human", 2, [0.2, 0.8], "human", "ok"),
    ]
    assert verdicts[1][7] == "A: 20%, B: 80% (ends the debate)"
    (question,) = rows(path, "SELECT content FROM messages WHERE phase = 'question'")
    assert question[0] == f"Why? {HOSTILE}q"  # verbatim
    calls = rows(path, "SELECT model, latency_s, prompt, response, params FROM model_calls"
                       " WHERE seat = 'judge' ORDER BY seq")  # fmt: skip
    assert len(calls) == 3 and all(c[0] == "human" and c[1] > 0 for c in calls)
    assert "Passage: (not shown)" in calls[0][2] and calls[1][3] == question[0]
    assert json.loads(calls[2][4])["end"] is True


# -- a human debater, live -----------------------------------------------------------------

DEBATER = """
name: human-debater
protocol: {name: debate, rounds: 1, turns: simultaneous, char_limit: 200, quote_limit: 60}
seats:
  debater_a: {model: human}
  debater_b: {model: scripted}
  judge: {model: scripted}
dataset: {source: builtin:reading, limit: 1}
concurrency: 1
"""


async def test_human_debater_quotes_the_passage_within_the_limits(tmp_path):
    from textual.widgets.text_area import Selection

    prep, path, resume = plan(parse(DEBATER), DEBATER, out=tmp_path / "debater.db")
    app = live_app(prep, path, resume, poll=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        turn = await wait_for_turn(app, pilot, "speech")
        req = turn.request
        assert req.source and req.side is not None and (req.char_limit, req.quote_limit) == (200, 60)
        assert req.messages == []  # simultaneous: the other speech is not in view
        passage = turn.query_one("#passage", TextArea)
        editor = turn.query_one("#editor", TextArea)
        passage.selection = Selection((0, 0), (0, 120))  # too long a quote
        await pilot.press("ctrl+o")
        assert editor.text.startswith("<quote>Mara runs the only bakery")
        await pilot.pause()
        assert "quoted 120/60" in str(turn.query_one("#limits").content)
        await pilot.press("ctrl+s")  # refused: over the quote limit
        await pilot.pause()
        assert app.screen is turn and not turn._done
        editor.clear()
        await pilot.press(*"It was the storm: ")
        passage.selection = Selection((0, 0), (0, 40))  # 40 + 17 quoted: within 60
        await pilot.press("ctrl+o")
        editor.insert("and <quote>the oven was fine</quote> is false. " + HOSTILE)
        await pilot.pause()
        limits = str(turn.query_one("#limits").content)
        assert "/200 characters" in limits and "2 quotes, 1 not in the passage" in limits
        await pilot.press("ctrl+s")
        for _ in range(100):
            if app.result is not None:
                break
            await pilot.pause(0.05)
        assert app.result is not None and app.error is None
    content, quotes = rows(path, "SELECT content, quotes FROM messages WHERE seat = 'debater_a'")[0]
    assert content == ("It was the storm: <quote>Mara runs the only bakery in the village</quote> "
                       f"and <quote>the oven was fine</quote> is false. {HOSTILE}")  # fmt: skip
    assert [q["verified"] for q in json.loads(quotes)] == [True, False]
    ((model, latency, response),) = rows(
        path, "SELECT model, latency_s, response FROM model_calls WHERE seat = 'debater_a'")
    assert model == "human" and latency > 0 and response == content


async def test_a_turn_shows_hostile_text_literally():
    request = TurnRequest(
        "judge", "judge", 0, "verdict", "verdict", 1, 2, HOSTILE, [HOSTILE, "B"], None, None,
        [{"episode": 0, "seq": 0, "round": 1, "phase": "speeches", "seat": "debater_a",
          "role": "debater", "side": 0, "content": HOSTILE, "audience": None, "created_at": 0.0,
          "call_seq": None, "quotes": []}],
    )  # fmt: skip
    from textual.app import App

    class One(App):
        def on_mount(self):
            self.push_screen(HumanTurnScreen(request), callback=self.exit)

    app = One()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        header = str(screen.query_one("#turn-header").content)
        assert "[bold]x[/]" in header and "␛[31m" in header and "\x1b" not in header
        from moot.tui.widgets import MessageBox

        (box,) = screen.query(MessageBox)
        assert "[@click=app.quit]q[/]" in str(box.content)
        await pilot.press("enter")
    assert app.return_value.probabilities == (0.5, 0.5)


# -- moot join: people in seats of a run another app executes --------------------------------

JOINED = """
name: human-join
protocol: {name: debate, rounds: 2, turns: sequential}
seats:
  debater_a: {model: human, join: true}
  debater_b: {model: scripted}
  judge: {model: human, join: true, time_limit: 300}
dataset: {source: builtin:reading, limit: 1}
concurrency: 1
"""


async def test_two_people_join_seats_of_a_run_another_app_executes(tmp_path):
    from moot.errors import ConfigError
    from moot.tui.join import JoinApp

    prep, path, resume = plan(parse(JOINED), JOINED, out=tmp_path / "join.db")
    runner = live_app(prep, path, resume, poll=0.05)  # `moot run --tui`: it watches, they play
    async with runner.run_test(size=(120, 40)) as run_pilot:
        for _ in range(200):  # the run has begun and asks debater_a
            if path.exists() and rows(path, "SELECT name FROM sqlite_master WHERE name = 'human_turns'"):
                if rows(path, "SELECT id FROM human_turns"):
                    break
            await run_pilot.pause(0.05)
        with pytest.raises(ConfigError, match="no such seat"):
            JoinApp(path, "nobody")
        debater, judge = JoinApp(path, "debater_a", poll=0.05), JoinApp(path, "judge", poll=0.05)
        async with debater.run_test(size=(120, 40)) as dp, judge.run_test(size=(120, 40)) as jp:
            for rnd in (1, 2):
                turn = await wait_for_turn(debater, dp, "speech")
                assert turn.request.round == rnd and turn.request.source
                await dp.press("R")
                turn.query_one("#editor", TextArea).insert(f"ound {rnd}: the storm.")
                await dp.press("ctrl+s")
            turn = await wait_for_turn(judge, jp, "verdict")
            req = turn.request
            assert req.source is None and not req.may_end and req.time_limit == 300
            assert "5:00 left" in str(turn.query_one("#turn-header").content) or "4:5" in str(
                turn.query_one("#turn-header").content)  # the clock is shown
            assert [m["seat"] for m in req.messages] == ["debater_a", "debater_b"] * 2
            assert req.messages[2]["content"] == "Round 2: the storm."
            await jp.press("q")  # the first judge leaves: the turn waits for the next one
            await jp.pause()
            assert rows(path, "SELECT status, shown_at FROM human_turns WHERE seat = 'judge'") == [("pending", None)]
            judge = JoinApp(path, "judge", poll=0.05)
            async with judge.run_test(size=(120, 40)) as jp:
                await wait_for_turn(judge, jp, "verdict")
                await jp.press("left", "left")
                await jp.press("enter")
                for _ in range(200):
                    if runner.result is not None:
                        break
                    await run_pilot.pause(0.05)
                assert runner.result is not None and runner.error is None
                assert debater.answered == 2 and judge.answered == 1
    assert rows(path, "SELECT judge, model, probabilities, parse_status FROM verdicts") == [
        ("judge", "human", "[0.6,0.4]", "ok")
    ]
    turns = rows(path, "SELECT seat, kind, status, shown_at <= answered_at FROM human_turns ORDER BY id")
    assert turns == [("debater_a", "speech", "answered", 1)] * 2 + [("judge", "verdict", "answered", 1)]
    calls = rows(path, "SELECT seat, latency_s FROM model_calls WHERE model = 'human' ORDER BY seq")
    assert [c[0] for c in calls] == ["debater_a", "debater_a", "judge"] and all(c[1] > 0 for c in calls)


# -- moot judge: offline judging of a stored run --------------------------------------------

STORED = """
name: stored
protocol: {name: debate, rounds: 2, turns: sequential, judge_questions: true}
seats:
  debater: {model: scripted}
  judge: {model: scripted}
dataset: {source: builtin:reading, limit: 2}
concurrency: 2
"""


@pytest.fixture
def stored_run(tmp_path):
    from moot.workflows.run import run_scenario

    run_scenario(parse(STORED), STORED, out=tmp_path / "stored.db")
    return tmp_path / "stored.db"


async def test_offline_judging_steps_through_rounds_and_stores_a_new_judge(stored_run):
    from moot.tui.join import JudgeApp

    path = stored_run
    before = rows(path, "SELECT * FROM verdicts ORDER BY id")
    app = JudgeApp(path, "ada")
    async with app.run_test(size=(120, 40)) as pilot:
        turn = await wait_for_turn(app, pilot, "verdict")
        req = turn.request
        assert (req.episode, req.round, req.rounds, req.seat) == (0, 1, 2, "human:ada")
        assert req.source is None  # the debate judge is blind
        assert [m["seat"] for m in req.messages] == ["debater_a", "debater_b"]
        await pilot.press("left")
        await pilot.press("enter")
        turn = await wait_for_turn(app, pilot, "verdict")
        req = turn.request
        assert (req.episode, req.round) == (0, 2)
        # round 1, the original judge's question, round 2; never the original verdict
        assert [(m["seat"], m["phase"]) for m in req.messages] == [
            ("debater_a", "speeches"), ("debater_b", "speeches"), ("judge", "question"),
            ("debater_a", "speeches"), ("debater_b", "speeches"),
        ]
        await pilot.press("9", "0")
        await pilot.press("enter")
        turn = await wait_for_turn(app, pilot, "verdict")
        assert (turn.request.episode, turn.request.round) == (1, 1)
        await pilot.press("q")  # leave mid-way: episode 1 is judged next time
    assert app.session.judged == 2
    assert rows(path, "SELECT * FROM verdicts WHERE judge NOT LIKE 'human:%' ORDER BY id") == before
    app = JudgeApp(path, "ada")
    async with app.run_test(size=(120, 40)) as pilot:
        for rnd in (1, 2):
            turn = await wait_for_turn(app, pilot, "verdict")
            assert (turn.request.episode, turn.request.round) == (1, rnd)
            await pilot.press("right")
            await pilot.press("enter")
        await pilot.pause()
        assert "every episode is judged" in str(app.query_one("#status").content)
        await pilot.press("q")
    got = rows(path, "SELECT v.episode, v.round, v.model, v.probabilities, v.method, v.correct = (v.choice = e.correct),"
                     " c.model, c.latency_s > 0 FROM verdicts v JOIN episodes e ON e.id = v.episode"
                     " JOIN model_calls c ON c.episode = v.episode AND c.seq = v.call_seq"
                     " WHERE v.judge = 'human:ada' ORDER BY v.id")  # fmt: skip
    assert got == [  # written by the store's one writer, as every verdict is
        (0, 1, "human", "[0.55,0.45]", "human", 1, "human", 1),
        (0, 2, "human", "[0.9,0.1]", "human", 1, "human", 1),
        (1, 1, "human", "[0.45,0.55]", "human", 1, "human", 1),
        (1, 2, "human", "[0.45,0.55]", "human", 1, "human", 1),
    ]


# -- time limits, quitting, and the shipped study ---------------------------------------------


async def test_a_turn_that_runs_out_of_time_is_an_invalid_verdict(tmp_path):
    text = JUDGE.replace("time_limit: 600", "time_limit: 0.5")
    prep, path, resume = plan(parse(text), text, out=tmp_path / "slow.db")
    app = live_app(prep, path, resume, poll=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):  # nobody answers: every turn runs out
            if app.result is not None:
                break
            await pilot.pause(0.1)
        assert app.result is not None
    verdicts = rows(path, "SELECT round, choice, probabilities, parse_status FROM verdicts ORDER BY id")
    assert verdicts and all(v == (v[0], None, None, "timeout") for v in verdicts)
    errors = rows(path, "SELECT error, latency_s FROM model_calls WHERE model = 'human'")
    assert all(e == "time limit of 0.5 s reached" and lat >= 0.5 for e, lat in errors)
    (question,) = rows(path, "SELECT content FROM messages WHERE phase = 'question' AND round = 1")
    assert question == ("",)  # an empty question, recorded


async def test_ctrl_c_during_a_turn_leaves_the_run_resumable(tmp_path):
    from moot.agents.human import DESK
    from moot.workflows.run import execute, plan_resume

    prep, path, resume = plan(parse(JUDGE), JUDGE, out=tmp_path / "quit.db")
    app = live_app(prep, path, resume, poll=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_turn(app, pilot, "verdict")
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert app.interrupted and app.result is None
    assert rows(path, "SELECT status FROM runs") == [("interrupted",)]

    class Decided:
        async def ask(self, request):
            return TurnAnswer(probabilities=(0.9, 0.1), end=True)

    DESK.set(Decided())
    summary = await execute(*plan_resume(path)[:2], resume=True)
    assert summary.done == 1 and rows(path, "SELECT status, stop_reason FROM episodes") == [("done", "judge_ended")]


def test_the_shipped_study_validates():
    from pathlib import Path

    from moot.scenario.load import load_file

    scenario, _ = load_file(Path(__file__).resolve().parents[1] / "scenarios" / "human" / "judge_study.yaml")
    assert scenario.seat("judge", "judge").model == "human" and scenario.protocol.stop_threshold == 1.0


def test_the_readme_shows_the_judges_screen():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    assert "## Human seats" in readme and "human-judge study" in readme
    for png in ("human-judge", "human-debater"):
        assert f"(docs/{png}.png)" in readme and (root / "docs" / f"{png}.png").is_file()


NYU = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nyu-debate-2023"


@pytest.fixture
def nyu_sample(tmp_path):
    """Three finished human debates of the published NYU dataset, imported."""
    import shutil

    from moot.importers import import_path

    if not NYU.is_dir():
        pytest.skip("the shared NYU dataset is not beside the project")
    folder = tmp_path / "nyu"
    (folder / "debates").mkdir(parents=True)
    lines = []
    with open(NYU / "debates-metadata.jsonl", encoding="utf-8") as f:
        for line in f:
            meta = json.loads(line)
            if "Complete" in meta["status"] and meta["setting"]["isDebate"] and meta["setting"]["isHuman"]:
                lines.append(line)
                shutil.copy(NYU / "debates" / f"{meta['name']}.json", folder / "debates")
            if len(lines) == 3:
                break
    (folder / "debates-metadata.jsonl").write_text("".join(lines), encoding="utf-8")
    import_path("nyu-debate", folder, tmp_path / "nyu.db")
    return tmp_path / "nyu.db"


async def test_offline_judging_of_an_imported_published_debate(nyu_sample):
    from moot.tui.join import JudgeApp

    app = JudgeApp(nyu_sample, "bo")
    async with app.run_test(size=(120, 40)) as pilot:
        turn = await wait_for_turn(app, pilot, "verdict")
        req = turn.request
        assert req.source is None and req.round == 1 and req.messages
        assert {m["seat"] for m in req.messages} <= {"debater_a", "debater_b"}
        assert any(q["verified"] for m in req.messages for q in m["quotes"])  # marks shown
        await pilot.press("7", "5")
        await pilot.press("enter")
        await wait_for_turn(app, pilot, "verdict")
        await pilot.press("q")
    ((judge, model, probs, first),) = rows(
        nyu_sample, "SELECT judge, model, probabilities, round FROM verdicts WHERE judge LIKE 'human:%'")
    assert (judge, model, json.loads(probs), first) == ("human:bo", "human", [0.75, 0.25], req.round)
    originals = rows(nyu_sample, "SELECT count(DISTINCT judge) FROM verdicts WHERE judge NOT LIKE 'human:%'")
    assert originals[0][0] >= 1  # the original judges stay, beside the new one


def test_join_and_judge_errors_are_one_line(tmp_path, stored_run):
    import subprocess
    import sys

    for args, expected in (
        (["join", str(stored_run), "--seat", "judge"], "a model sits there"),
        (["join", str(tmp_path / "missing.db"), "--seat", "judge"], "no such database"),
        (["judge", str(stored_run), "--as", "two words"], "without spaces"),
    ):
        result = subprocess.run([sys.executable, "-m", "moot", *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert expected in result.stderr


# -- a snapshot of the judge's screen (beside the run_test checks above) ----------------------


def _judge_request() -> TurnRequest:
    def said(seq, seat, side, text, quotes):
        return {"episode": 0, "seq": seq, "round": 1, "phase": "speeches", "seat": seat, "role": "debater",
                "side": side, "content": text, "audience": None, "created_at": 0.0, "call_seq": None,
                "quotes": quotes}  # fmt: skip

    a = "The oven failed: <quote>the electric oven in her kitchen stopped working</quote>."
    b = "She had no apples: <quote>she ran out of apples</quote>. " + HOSTILE
    s = a.index("the electric")
    return TurnRequest(
        "judge", "judge", 0, "verdict", "verdict", 1, 3, "Why did Mara close early?",
        ["The storm cut the power.", "She ran out of apples."], None, None,
        [said(0, "debater_a", 0, a, [{"text": "", "start": s, "end": s + 48, "verified": True}]),
         said(1, "debater_b", 1, b, [{"text": "", "start": 26, "end": 47, "verified": False}])],
        may_end=True,
    )  # fmt: skip


def test_snapshot_judge_turn(snap_compare):
    from textual.app import App

    class One(App):
        def on_mount(self):
            self.push_screen(HumanTurnScreen(_judge_request(), shown_at=0.0))

    assert snap_compare(One(), terminal_size=(100, 30), press=["left", "left"])
