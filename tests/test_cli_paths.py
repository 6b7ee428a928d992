"""Every shipped scenario and every command the README shows, through the real CLI, typed the
way a user types it.

- Each `scenarios/*.yaml` and `scenarios/*/*.yaml` (a glob: a new file is covered as soon as
  it is added) validates, plans with its models as shipped (no check fails), and runs one
  question with every model's seat filled by the scripted stand-in (`--model SEAT=scripted`),
  as a `moot` subprocess, into a database whose episodes are all `done`. A person's seat
  stays a person's: the run waits for them and this test joins it with `moot join`, typed as
  the run prints it, and answers every turn on the screen.
- `moot run scenarios/human/judge_study.yaml --tui` shows the judge their turn, takes a
  verdict from the keys and stores it.
- Every command in the README's `sh` blocks is in `README_COMMANDS` (the README's text, and
  how this file types it), run against small real data made here; the apps (`moot watch`,
  `replay`, `join`, `judge`, `run --tui`) are driven headless through the CLI by swapping
  `App.run` for `App.run_test` and a Pilot script. A test fails when the README shows a
  command this table does not hold.

Nothing waits by sleeping: apps are driven until a condition holds, subprocesses are polled
with a deadline. No test touches the network; a command that needs a provider's key is
typed with the key unset and must be refused in one line (exit 2) before anything runs.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
import yaml
from textual.app import App

from moot.agents.human import PROBABILITY_TURNS, is_human
from moot.cli import main
from moot.protocols import registry
from moot.scenario.load import load_file
from moot.tui.human import HumanTurnScreen, ProbabilityBar, WaitingScreen

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHARED = ROOT.parent / "shared"
NYU = SHARED / "data" / "nyu-debate-2023"
SCENARIOS = sorted(str(p.relative_to(ROOT)) for p in [*ROOT.glob("scenarios/*.yaml"), *ROOT.glob("scenarios/*/*.yaml")])
_script = Path(sys.executable).with_name("moot")
MOOT = [str(_script)] if _script.is_file() else [sys.executable, "-m", "moot"]
KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "RAY_ADDRESS")
TIMEOUT = 120  # seconds: a bound for any one command, never a wait


# -- the README's commands, and how this file types each -------------------------------------


@dataclass(frozen=True)
class Typed:
    typed: str | None  # the command line this file runs; None: not run (see why)
    why: str = ""  # what differs from the README's line, or why it is not run


QS = "runs/quickstart-20261122-200149.db"  # the README's example run, made by this file
SCRIPTED = "--model debater=scripted --model judge=scripted"  # quickstart's seats as stand-ins
EMBEDDED = "the embedded model takes minutes a run on 2 cores: its seats are the scripted stand-in"

README_COMMANDS: dict[str, Typed] = {
    'python3 -m venv .venv && .venv/bin/pip install -e ".[local]" && .venv/bin/moot run scenarios/quickstart.yaml':
        Typed(None, "setup: CI installs from scratch (.ci/run); its moot run is the next line's"),
    'python3 -m venv .venv && .venv/bin/pip install -e ".[local,test]" && .venv/bin/python -m pytest':
        Typed(None, "setup: it is CI's own command (.ci/run runs it)"),
    "moot run scenarios/quickstart.yaml":
        Typed(f"moot run scenarios/quickstart.yaml {SCRIPTED}", EMBEDDED),
    "moot run scenarios/quickstart.yaml --limit 2 --out runs/try.db":
        Typed(f"moot run scenarios/quickstart.yaml --limit 2 --out runs/try.db {SCRIPTED}", EMBEDDED),
    "moot run scenarios/quickstart.yaml --model judge=openai/gpt-4o-mini":
        Typed("moot run scenarios/quickstart.yaml --model judge=openai/gpt-4o-mini",
              "as shown, with OPENAI_API_KEY unset: refused in one line, exit 2"),
    f"moot run --resume {QS}":
        Typed(f"moot run --resume {QS}", "as shown, on a (slowed) run of the quickstart stopped with Ctrl-C"
              " (SIGINT), and on one stopped with q in `moot run --tui`"),
    "moot run scenarios/quickstart.yaml --tui":
        Typed(f"moot run scenarios/quickstart.yaml --tui {SCRIPTED}", EMBEDDED + "; the app driven by Pilot"),
    f"moot watch {QS}": Typed(f"moot watch {QS}", "as shown, while a (slowed) quickstart runs in another"
                                                  " process; the app driven by Pilot"),
    f"moot replay {QS}": Typed(f"moot replay {QS}", "as shown; the app driven by Pilot"),
    "moot replay runs/": Typed("moot replay runs/", "as shown; the app driven by Pilot"),
    "moot run scenarios/human/judge_study.yaml --tui":
        Typed("moot run scenarios/human/judge_study.yaml --tui --limit 1 --out runs/judge-study.db --yes"
              " --model debater=scripted", "one question, model debaters scripted; the person's turns by Pilot"),
    "moot join runs/human-judge-study-….db --seat judge":
        Typed("moot join runs/human-judge-study-<time>.db --seat judge",
              "typed as `moot run scenarios/human/judge_study.yaml --limit 1 --model debater=scripted`"
              " prints it; the app driven by Pilot"),
    f"moot judge {QS} --as ada": Typed(f"moot judge {QS} --as ada", "as shown; the app driven by Pilot"),
    'sqlite3 "$(ls -t runs/quickstart-*.db | head -1)" "\n'
    "  SELECT e.id, e.question, v.choice, e.correct, v.probabilities ->> '\\$[0]' AS p_first\n"
    '  FROM verdicts v JOIN episodes e ON e.id = v.episode;"':
        Typed("<as shown, by bash>", "as shown, by bash, over the quickstart run"),
    'sqlite3 "$(ls -t runs/quickstart-*.db | head -1)" "\n'
    '  SELECT seat, round, content FROM messages WHERE episode = 0 ORDER BY seq;"':
        Typed("<as shown, by bash>", "as shown, by bash, over the quickstart run"),
    "moot analyze runs/direct-qa.db runs/consultancy.db runs/debate.db --out report/":
        Typed("moot analyze runs/direct-qa.db runs/consultancy.db runs/debate.db --out report/",
              "as shown, over scripted runs of direct_qa_blind, consultancy and quickstart"),
    "moot analyze runs/sweep.db --format json":
        Typed("moot analyze runs/sweep.db --format json", "as shown, over a scripted run of sweep.yaml"),
    "moot export runs/debate.db --format parquet":
        Typed("moot export runs/debate.db --format parquet", "as shown, over a scripted quickstart run"),
    'pip install -e ".[ray]"': Typed(None, "an install: the test extra holds ray, CI installs it"),
    "moot run scenarios/debate_open.yaml --executor ray":
        Typed(None, "not run here, for time: each `--executor ray` process starts a local cluster (10-15 s"
                    " on 2 cores); the resume line below starts one from the CLI the same way"
                    " (ray_exec.on_ray(None)), and tests/test_ray.py::test_the_cli_runs_on_ray runs a scenario"
                    " on Ray through the CLI"),
    "moot run scenarios/debate_open.yaml --executor ray --address HEAD:6379":
        Typed(None, "needs a cluster already running at HEAD: starting one with `ray start` leaves daemons"
                    " only `ray stop` ends, and that ends every Ray process on the machine; tests/test_ray.py"
                    " runs `moot run --executor ray --address` against its own cluster"),
    "moot run --resume runs/debate_open-20261122-231500.db --executor ray":
        Typed("moot run --resume runs/debate_open-20261122-231500.db --executor ray",
              "as shown, on a local run of debate_open killed with kill -9"),
    "moot merge runs/study.db part-a.db part-b.db":
        Typed("moot merge runs/study.db part-a.db part-b.db", "as shown, two shards cut from a scripted run"),
    "moot import nyu-debate ../shared/data/nyu-debate-2023 --out runs/nyu.db":
        Typed("moot import nyu-debate ../shared/data/nyu-debate-2023 --out runs/nyu.db",
              "as shown, where ../shared/data/nyu-debate-2023 holds 6 rooms of the published set"
              " (skipped when the set is not beside the project)"),
    "moot import khan-csv human_judgements.csv --out runs/khan.db":
        Typed("moot import khan-csv human_judgements.csv --out runs/khan.db",
              "as shown, over a small CSV of Khan et al.'s columns written here"),
    f"moot rejudge {QS} --judge openai/gpt-4o-mini --judge local/smollm2-135m --swap":
        Typed(f"moot rejudge {QS} --judge openai/gpt-4o-mini --judge local/smollm2-135m --swap",
              f"as shown, with OPENAI_API_KEY unset: refused in one line, exit 2; then"
              f" `moot rejudge {QS} --judge scripted --swap` gives the next line judges to count"),
    f'sqlite3 {QS} "SELECT judge, avg(correct) FROM verdicts GROUP BY judge"':
        Typed("<as shown, by bash>", "as shown, by bash, after the rejudge"),
    'sqlite3 runs/courtroom-learning-*.db "SELECT seat, episode, won,\n'
    "  round(avg(won) OVER (PARTITION BY seat ORDER BY episode ROWS 9 PRECEDING), 2) AS last_10\n"
    '  FROM memories WHERE episode IS NOT NULL ORDER BY seat, episode;"':
        Typed("<as shown, by bash>", "as shown, by bash, over a scripted run of courtroom_learning"),
}  # fmt: skip


def readme_commands(readme: str | None = None) -> list[tuple[int, str]]:
    """The commands of the README's `sh` blocks: (line, text without its comment), a
    command running on over lines while a quote is open."""
    out: list[tuple[int, str]] = []
    inside = False
    pending: tuple[int, list[str]] | None = None
    text = README.read_text(encoding="utf-8") if readme is None else readme
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            inside = line.strip() == "```sh"
            pending = None
            continue
        if not inside:
            continue
        start, lines = pending or (n, [])
        lines.append(line)
        text = "\n".join(lines)
        try:
            tokens = shlex.split(text, comments=True)
        except ValueError:  # a quote still open: the command goes on
            pending = (start, lines)
            continue
        pending = None
        if tokens:
            out.append((start, strip_comment(text)))
    return out


def strip_comment(text: str) -> str:
    """The command without its trailing `# ...` comment (only outside quotes)."""
    # a '#' beginning a word outside quotes starts the comment
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
            elif ch == "\\" and quote == '"':
                continue
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].rstrip()
    return text.rstrip()


def normal(text: str) -> str:
    return " ".join(shlex.split(text, comments=True))


def subcommand(text: str) -> str | None:
    """`run` of `moot run ...` (or `.venv/bin/moot run ...`); None when moot is not called."""
    tokens = shlex.split(text, comments=True)
    for i, token in enumerate(tokens[:-1]):
        if token == "moot" or token.endswith("/moot"):
            return tokens[i + 1]
    return None


def typed(readme: str) -> str:
    entry = README_COMMANDS[readme]
    assert entry.typed and not entry.typed.startswith("<"), readme
    return entry.typed


# -- running things as typed ----------------------------------------------------------------


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in KEYS}
    e["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no price map fetched: no network
    e.update(extra)
    return e


def moot(cmdline: str, cwd: Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """A `moot ...` command line, typed in a terminal at `cwd`."""
    argv = shlex.split(cmdline)
    assert argv[0] == "moot", cmdline
    return subprocess.run([*MOOT, *argv[1:]], cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)


def start(cmdline: str, cwd: Path, out: Path) -> subprocess.Popen[str]:
    """A `moot ...` command left running, its output in files beside `out`."""
    argv = shlex.split(cmdline)
    assert argv[0] == "moot", cmdline
    return subprocess.Popen(
        [*MOOT, *argv[1:]], cwd=cwd, env=env(), text=True,
        stdout=open(out.with_suffix(".stdout"), "w"), stderr=open(out.with_suffix(".stderr"), "w"),
    )  # fmt: skip


def finish(proc: subprocess.Popen[str], out: Path) -> tuple[int, str, str]:
    rc = proc.wait(timeout=TIMEOUT)
    return rc, out.with_suffix(".stdout").read_text(), out.with_suffix(".stderr").read_text()


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("sqlite3") is None:
        pytest.skip("the sqlite3 command-line shell is not installed")
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=TIMEOUT)  # fmt: skip


def poll(condition, what: str, timeout: float = 60.0, every: float = 0.02):  # type: ignore[no-untyped-def]
    """Until `condition()` is true (returned), within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def rows(db: Path, query: str, *args: object) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(query, args).fetchall()
    finally:
        conn.close()


def try_rows(db: Path, query: str) -> list[tuple]:
    """`rows`, or none while the database is not there yet (a run just starting)."""
    try:
        return rows(db, query)
    except sqlite3.Error:
        return []


def copy_db(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(src)
    try:
        backup = sqlite3.connect(dst)
        conn.backup(backup)
        backup.close()
    finally:
        conn.close()
    return dst


# -- apps, headless -------------------------------------------------------------------------


def drive(monkeypatch, script, size=(120, 40)) -> list[App]:  # type: ignore[no-untyped-def]
    """The next apps' `App.run` runs them headless (`run_test`) under the Pilot `script`
    (`async def script(app, pilot)`), instead of taking over the terminal."""
    apps: list[App] = []

    def run(self: App, *args: object, **kwargs: object) -> object:
        apps.append(self)

        async def go() -> None:
            async with self.run_test(size=size) as pilot:
                await script(self, pilot)

        anyio.run(go, backend="asyncio")
        return self.return_value

    monkeypatch.setattr(App, "run", run)
    return apps


def tui(cmdline: str, monkeypatch, script, size=(120, 40)) -> tuple[int, list[App]]:  # type: ignore[no-untyped-def]
    """A `moot ...` command that opens an app, typed into the CLI's own entry point."""
    argv = shlex.split(cmdline)
    assert argv[0] == "moot", cmdline
    apps = drive(monkeypatch, script, size)
    code = main(argv[1:])
    assert len(apps) == 1, f"{cmdline}: opened {len(apps)} apps"
    return code, apps


def screen_text(app: App) -> str:
    """What the screen shows now, as text (every line the compositor draws)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def until(pilot, condition, what: str, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    """Let the app run until `condition()` holds (returned), within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            await pilot.pause()
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; the screen shows:\n{screen_text(pilot.app)}")
        await pilot.pause(0.05)


def turn_up(app: App, kind: str | None = None) -> HumanTurnScreen | None:
    screen = app.screen
    if isinstance(screen, HumanTurnScreen) and not screen._done and kind in (None, screen.request.kind):
        return screen
    return None


async def answer_turns(app: App, pilot, finished, timeout: float = 60.0) -> list[tuple[str, str, int]]:  # type: ignore[no-untyped-def]
    """Answer each person's turn the app shows until `finished()`: a probability turn leans
    5% toward A and rules (ending the debate where the protocol lets it), a text turn is a
    short line sent with ctrl+s. Returns (seat, kind, round) of each turn answered."""
    answered: list[tuple[str, str, int]] = []
    deadline = time.monotonic() + timeout
    while not finished():
        if time.monotonic() > deadline:
            raise AssertionError(f"the run did not finish; the screen shows:\n{screen_text(app)}")
        turn = turn_up(app)
        if turn is not None:
            await pilot.pause()
            r = turn.request
            if r.kind in PROBABILITY_TURNS:
                await pilot.press("left")
                await pilot.press("e" if r.may_end else "enter")
            else:
                await pilot.press(*"Why?")
                await pilot.press("ctrl+s")
            assert turn._done, f"the {r.kind} turn did not take the answer"
            answered.append((r.seat, r.kind, r.round))
        await pilot.pause(0.05)
    return answered


# -- workspaces -----------------------------------------------------------------------------


def workspace(base: Path) -> Path:
    """A project directory as a user has it: `scenarios/` (the shipped ones), `runs/`, and
    `../shared` where the project has it beside itself."""
    proj = base / "proj"
    (proj / "runs").mkdir(parents=True)
    (proj / "scenarios").symlink_to(ROOT / "scenarios", target_is_directory=True)
    if SHARED.is_dir():
        (base / "shared").symlink_to(SHARED, target_is_directory=True)
    return proj


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return workspace(tmp_path)


def seats_of(rel: str) -> tuple[list[str], list[str]]:
    """A scenario's seats and roles (over every cell of a sweep, as tests/test_plan.py finds
    them): those filled by a model, and those where a person sits."""
    scenario, _ = load_file(ROOT / rel)
    models: set[str] = set()
    people: set[str] = set()
    for cell in scenario.cells():
        s = cell.scenario
        names = registry.seat_names(s.protocol)  # what --model takes: seats and roles
        for role, seats in registry.roles(s.protocol).items():
            assert {role, *seats} <= names
            for seat in seats:
                (people if is_human(s.seat(seat, role).model) else models).add(seat)
            if not any(is_human(s.seat(seat, role).model) for seat in seats):
                models.add(role)
    return sorted(models - people), sorted(people)


def scripted_run(rel: str, out: Path) -> str:
    """The command of a short run of `rel` with every model's seat scripted."""
    models, _ = seats_of(rel)
    swaps = " ".join(f"--model {name}=scripted" for name in models)
    return f"moot run {rel} --limit 1 --out {out} --yes --quiet {swaps}"


_runs: dict[str, tuple[Path, str]] = {}  # scenario -> its scripted run's database and output


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    return tmp_path_factory.mktemp("scenario-runs")


def scenario_run(rel: str, run_dir: Path) -> Path:
    """A finished scripted run of a shipped scenario with no people (made once, then shared
    by the README's commands that read such runs)."""
    if rel not in _runs:
        out = run_dir / (rel.replace("/", "-").removesuffix(".yaml") + ".db")
        result = moot(scripted_run(rel, out), ROOT)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stderr == ""  # --quiet
        _runs[rel] = out, result.stdout
    return _runs[rel][0]


def run_and_join(cmdline: str, cwd: Path, out: Path, monkeypatch) -> tuple[int, str, str, list, str]:  # type: ignore[no-untyped-def]
    """Start a run with a person's seat (a `moot run` without --tui waits for them), type the
    `moot join` line it prints, answer every turn, and let the run finish. Returns its exit
    code and output, the turns answered and the join line typed."""
    monkeypatch.chdir(cwd)  # the person types the join line where the run was started
    proc = start(cmdline, cwd, out)
    try:
        said = out.with_suffix(".stderr")
        line = poll(lambda: re.search(r"moot join \S+ --seat \S+", said.read_text()) or proc.poll() is not None,
                    "the run to say how to join it")  # fmt: skip
        assert line is not True, f"the run ended without asking for anyone: {said.read_text()}"
        join = line.group(0)
        answered: list = []

        async def script(app, pilot):  # type: ignore[no-untyped-def]
            answered.extend(await answer_turns(app, pilot, lambda: proc.poll() is not None))
            await until(pilot, lambda: "the run is over" in screen_text(app), "the joined app to see the run end")
            await pilot.press("q")

        code, _ = tui(join, monkeypatch, script)
        assert code == 0
        rc, stdout, stderr = finish(proc, out)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return rc, stdout, stderr, answered, join


# -- 1. every shipped scenario ---------------------------------------------------------------


def test_the_glob_finds_the_shipped_scenarios():
    assert "scenarios/quickstart.yaml" in SCENARIOS and "scenarios/human/judge_study.yaml" in SCENARIOS
    assert len(SCENARIOS) >= 20


@pytest.mark.parametrize("rel", SCENARIOS)
def test_validate(rel, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["validate", rel]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{rel}: ok (") and load_file(ROOT / rel)[0].name in out


API = re.compile(r"^(?!local/|scripted|human)[a-z_]+/")  # a provider's model: needs a key


@pytest.mark.parametrize("rel", SCENARIOS)
def test_plan_as_shipped(rel):
    """Plans with the models as shipped (the embedded model is installed; people are people);
    a model behind a provider's API would be swapped for the scripted stand-in (none is)."""
    scenario, _ = load_file(ROOT / rel)
    api = sorted({
        role for c in scenario.cells() for role, seats in registry.roles(c.scenario.protocol).items()
        for seat in seats if API.match(c.scenario.seat(seat, role).model)
    })  # fmt: skip
    swaps = "".join(f" --model {role}=scripted" for role in api)
    result = moot(f"moot plan {rel}{swaps}", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["scenario", scenario.name]
    checks = lines[lines.index("checks") + 1 :]
    assert checks and all(c.split()[0] in ("ok", "warn") for c in checks), result.stdout
    assert not any(line.lstrip().startswith("FAIL") for line in lines), result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("rel", SCENARIOS)
def test_a_short_run_with_scripted_seats(rel, run_dir, tmp_path, monkeypatch):
    models, people = seats_of(rel)
    assert models, rel
    if not people:
        db = scenario_run(rel, run_dir)
        stdout = _runs[rel][1]
        assert stdout.startswith(f"run        {db}\n") and re.search(
            r"^episodes   (\d+) \(\1 done, 0 failed\)$", stdout, re.M
        )
    else:  # people stay people: the run waits for them, and they join it
        assert len(people) == 1, f"{rel}: one `moot join` per person; this test joins one seat"
        db = tmp_path / "x.db"
        rc, stdout, stderr, answered, _ = run_and_join(scripted_run(rel, db), ROOT, db, monkeypatch)
        assert rc == 0, stderr
        assert {seat for seat, _, _ in answered} == set(people)
        assert stdout.startswith(f"run        {db}\n")
    statuses = rows(db, "SELECT status FROM episodes")
    assert statuses and set(statuses) == {("done",)}
    assert rows(db, "SELECT status FROM runs") == [("done",)]
    stored = {m for (m,) in rows(db, "SELECT DISTINCT model FROM model_calls")}
    assert stored and stored <= {"scripted", "human"}, stored  # no seat kept its shipped model
    assert ("human" in stored) == bool(people)


# -- 2. a person at the terminal -------------------------------------------------------------


def test_the_judge_study_in_the_terminal_shows_the_judge_their_turn(ws, monkeypatch, capsys):
    """`moot run scenarios/human/judge_study.yaml --tui`: the person's turn comes up over the
    live view with the question and the judge's controls; keys set the verdict, the run
    stores it and finishes, and the app quits."""
    monkeypatch.chdir(ws)
    out = ws / "runs" / "judge-study.db"
    seen: dict[str, object] = {}

    async def script(app, pilot):  # type: ignore[no-untyped-def]
        turn = await until(pilot, lambda: turn_up(app, "verdict"), "the judge's first turn")
        # under the turn, the waiting screen covers the live view (which marks the right answer)
        assert [type(s) for s in app.screen_stack[-2:]] == [WaitingScreen, HumanTurnScreen]
        r = turn.request
        assert (r.seat, r.role, r.round, r.source) == ("judge", "judge", 1, None)  # a blind judge
        shown = screen_text(app)
        assert r.question and f"Q {r.question}" in shown
        for letter, answer in zip("AB", r.answers):
            assert f"{letter} {answer}"[:60] in shown
        assert "you do not see the passage" in shown
        assert "enter: rule and go on · e: end the debate now" in shown  # the judge's keys
        assert [m["seat"] for m in r.messages] == ["debater_a", "debater_b"]
        bar = turn.query_one(ProbabilityBar)
        assert app.focused is bar and bar.percents == [50, 50]
        assert "A  50%" in shown and "B  50%" in shown
        await pilot.press("left", "left", "left")  # 5% toward A, three times
        assert bar.percents == [65, 35]
        await pilot.pause()
        assert "A  65%" in screen_text(app)
        await pilot.press("enter")  # rule and go on
        turn = await until(pilot, lambda: turn_up(app, "question"), "the judge's question")
        await pilot.press(*"Why?")
        await pilot.press("ctrl+s")
        turn = await until(pilot, lambda: turn_up(app, "verdict"), "the judge's second verdict")
        assert turn.request.round == 2
        assert "Why?" in [m["content"] for m in turn.request.messages]
        await pilot.press("down", "9", "0")  # B typed as 90%
        assert turn.query_one(ProbabilityBar).percents == [10, 90]
        await pilot.press("e")  # end the debate
        await until(pilot, lambda: app.result is not None or app.error is not None, "the run to finish")
        assert app.error is None
        await until(pilot, lambda: "the run is finished" in screen_text(app), "the waiting screen to say so")
        seen["question"] = r.question
        await pilot.press("q")

    code, _ = tui(typed("moot run scenarios/human/judge_study.yaml --tui"), monkeypatch, script)
    assert code == 0
    assert f"run        {Path('runs/judge-study.db')}" in capsys.readouterr().out
    assert rows(out, "SELECT question, status, stop_reason FROM episodes") == [
        (seen["question"], "done", "judge_ended")
    ]
    verdicts = rows(out, "SELECT judge, model, round, probabilities, method, parse_status FROM verdicts ORDER BY id")
    assert [(j, m, rnd, json.loads(p), meth, ok) for j, m, rnd, p, meth, ok in verdicts] == [
        ("judge", "human", 1, [0.65, 0.35], "human", "ok"),
        ("judge", "human", 2, [0.1, 0.9], "human", "ok"),
    ]
    assert rows(out, "SELECT content FROM messages WHERE phase = 'question'") == [("Why?",)]


# -- 3. the README's commands ----------------------------------------------------------------


def not_in_table(readme: str | None = None) -> tuple[list[str], list[str]]:
    """README commands the table lacks, and table entries the README no longer shows."""
    shown = readme_commands(readme)
    table = {normal(k): k for k in README_COMMANDS}
    missing = [f"README.md:{n}: {text}" for n, text in shown if normal(text) not in table]
    gone = sorted(table[g] for g in set(table) - {normal(text) for _, text in shown})
    return missing, gone


def untyped_subcommands(readme: str | None = None) -> list[tuple[int, str]]:
    """(line, subcommand) of README commands whose `moot` subcommand no test types."""
    typed_ = {subcommand(t.typed) for t in README_COMMANDS.values() if t.typed and not t.typed.startswith("<")}
    shown = {(n, subcommand(text)) for n, text in readme_commands(readme)}
    return sorted((n, sub) for n, sub in shown if sub is not None and sub not in typed_)


def test_every_readme_command_is_in_the_table():
    """A command added to (or changed in) the README's sh blocks fails here until it is
    typed by a test; a command the README dropped fails until the table drops it."""
    missing, gone = not_in_table()
    assert not missing, "README commands no test types:\n" + "\n".join(missing)
    assert not gone, f"the table holds commands the README no longer shows: {gone}"


def test_every_moot_subcommand_in_the_readme_is_typed_by_a_test():
    typed_ = {subcommand(t.typed) for t in README_COMMANDS.values() if t.typed and not t.typed.startswith("<")}
    assert {"run", "watch", "replay", "join", "judge", "analyze", "export", "merge", "import", "rejudge"} <= typed_
    untyped = untyped_subcommands()
    assert not untyped, f"README lines whose moot subcommand no test types: {untyped}"


def test_the_readme_checks_catch_a_new_command():
    """The two checks above fail on a README with a command added, changed or dropped."""
    text = README.read_text(encoding="utf-8")
    n, dropped = next((n, t) for n, t in readme_commands(text) if t.startswith("moot ") and "\n" not in t)
    lines = text.splitlines()
    del lines[n - 1]
    edited = "\n".join(lines) + "\n```sh\nmoot frobnicate x.db   # new\nmoot replay --all runs/\n```\n"
    missing, gone = not_in_table(edited)
    assert [m.split(": ", 1)[1] for m in missing] == ["moot frobnicate x.db", "moot replay --all runs/"]
    assert gone == [dropped]
    assert untyped_subcommands(edited) == [(len(lines) + 2, "frobnicate")]


def test_the_table_parser_reads_multiline_commands_and_comments():
    cmds = [text for _, text in readme_commands()]
    assert sum(text.startswith("sqlite3") and text.count("\n") == 2 for text in cmds) == 2
    assert "moot replay runs/" in cmds  # its comment is not part of it
    assert subcommand(".venv/bin/moot run x.yaml") == "run" and subcommand("sqlite3 x.db") is None
    assert strip_comment("moot replay runs/   # pick one") == "moot replay runs/"


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):  # type: ignore[no-untyped-def]
    """`moot run scenarios/quickstart.yaml` in a fresh project directory: the run the
    README's later commands name runs/quickstart-20261122-200149.db."""
    proj = workspace(tmp_path_factory.mktemp("quickstart"))
    result = moot(typed("moot run scenarios/quickstart.yaml"), proj)
    made = sorted((proj / "runs").glob("quickstart-*.db"))
    return result, made


@pytest.fixture
def qs(ws, quickstart) -> Path:  # type: ignore[no-untyped-def]
    """This test's copy of the quickstart run, under the README's name for it."""
    result, made = quickstart
    assert result.returncode == 0 and len(made) == 1, result.stderr
    return copy_db(made[0], ws / QS)


def test_readme_run_quickstart(quickstart):
    result, made = quickstart
    assert result.returncode == 0, result.stderr
    assert len(made) == 1 and re.fullmatch(r"quickstart-\d{8}-\d{6}\.db", made[0].name)
    assert result.stderr.startswith("plan: 4 episodes, 20 model calls")
    assert "4/4 episodes" in result.stderr  # the progress bar
    assert result.stdout.startswith(f"run        {Path('runs') / made[0].name}\nepisodes   4 (4 done, 0 failed)\n")
    assert rows(made[0], "SELECT status FROM episodes") == [("done",)] * 4


def test_readme_run_limit_and_out(ws):
    result = moot(typed("moot run scenarios/quickstart.yaml --limit 2 --out runs/try.db"), ws)
    assert result.returncode == 0, result.stderr
    assert "episodes   2 (2 done, 0 failed)" in result.stdout
    assert rows(ws / "runs/try.db", "SELECT status FROM episodes") == [("done",)] * 2
    assert sorted(p.name for p in (ws / "runs").iterdir() if p.suffix == ".db") == ["try.db"]


def test_readme_run_with_an_api_judge_and_no_key_is_refused(ws):
    result = moot(typed("moot run scenarios/quickstart.yaml --model judge=openai/gpt-4o-mini"), ws)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("moot: error: model openai/gpt-4o-mini: ") and "OPENAI_API_KEY is not set" in line
    assert not list((ws / "runs").iterdir())  # nothing ran, nothing was written


def slow_variant(rel: str, proj: Path, limit: int = 4) -> tuple[Path, str]:
    """A copy of a shipped scenario on `limit` questions whose scripted seats take 0.1 s a
    call, one episode at a time: a run slow enough to stop part-way (after the first episode,
    the rest take over a second). Returns the file and its seats' swaps."""
    data = yaml.safe_load((ROOT / rel).read_text())
    data["concurrency"] = 1
    data["dataset"]["limit"] = limit
    data["models"] = {"scripted/slow": {"latency": 0.1}}
    path = proj / Path(rel).name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    models, _ = seats_of(rel)
    return path, " ".join(f"--model {m}=scripted/slow" for m in models)


def stop_part_way(cmdline: str, proj: Path, db: Path, sig: int) -> tuple[int, str]:
    """Start a run and send `sig` once an episode is done: its exit code and stderr."""
    proc = start(cmdline, proj, proj / "stopped")
    try:
        poll(lambda: try_rows(db, "SELECT 1 FROM episodes WHERE status = 'done'") or proc.poll() is not None,
             "a first episode to finish")  # fmt: skip
        proc.send_signal(sig)
        rc, _, stderr = finish(proc, proj / "stopped")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return rc, stderr


def test_readme_run_tui(ws, monkeypatch, capsys):
    monkeypatch.chdir(ws)

    async def script(app, pilot):  # type: ignore[no-untyped-def]
        await until(pilot, lambda: app.result is not None or app.error is not None, "the run to finish")
        assert app.error is None
        await until(pilot, lambda: "quickstart done  episodes 4/4 done" in screen_text(app), "the live view to see it")
        shown = screen_text(app)
        assert re.search(r"judge \d+\.\d% of 4", shown), shown
        assert "20 messages  20 calls" in shown
        assert len(app.episodes.ids) == 4
        # the newest episode's words: the view loads them on its next poll after the status line
        await until(pilot, lambda: bool(app.transcript.messages), "the newest episode's transcript")
        await pilot.press("q")

    code, _ = tui(typed("moot run scenarios/quickstart.yaml --tui"), monkeypatch, script)
    assert code == 0
    assert "episodes   4 (4 done, 0 failed)" in capsys.readouterr().out
    (db,) = (ws / "runs").glob("quickstart-*.db")
    assert rows(db, "SELECT status FROM episodes") == [("done",)] * 4


def test_readme_watch_a_run_then_ctrl_c_and_resume(ws, monkeypatch):
    """`moot watch`, typed while the run goes on in another process (a slowed quickstart of 6
    questions at the README's path): the live view shows it running; Ctrl-C (SIGINT) stops
    the run, which says how to go on and shows as interrupted; `moot run --resume`, typed
    as shown, finishes it and keeps what was done."""
    monkeypatch.chdir(ws)
    path, swaps = slow_variant("scenarios/quickstart.yaml", ws, limit=6)
    db = ws / QS
    proc = start(f"moot run {path.name} --out {QS} {swaps}", ws, ws / "live")
    seen: list[str] = []
    try:
        poll(lambda: try_rows(db, "SELECT 1 FROM episodes") or proc.poll() is not None, "the run to begin")

        async def script(app, pilot):  # type: ignore[no-untyped-def]
            await until(pilot, lambda: app.state is not None, "the live view to count the run")
            seen.append(screen_text(app))
            await until(pilot, lambda: re.search(r"episodes [1-5]/\d done", screen_text(app)), "an episode done")
            proc.send_signal(signal.SIGINT)  # Ctrl-C in the run's terminal
            await until(pilot, lambda: "quickstart interrupted" in screen_text(app), "the view to see it stop")
            seen.append(screen_text(app))
            await pilot.press("q")

        code, _ = tui(typed(f"moot watch {QS}"), monkeypatch, script)
        rc, _, stderr = finish(proc, ws / "live")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0
    assert re.search(r"quickstart running  episodes [0-5]/\d done", seen[0]), seen[0]  # under way
    questions = [q for (q,) in rows(db, "SELECT question FROM episodes ORDER BY id")]
    assert any(f"episode {i} " in seen[1] and q[:40] in seen[1] for i, q in enumerate(questions))
    assert rc == 130, stderr
    assert stderr.rstrip().endswith(f"moot: interrupted: resume with  moot run --resume {QS}")  # says how to go on
    done = rows(db, "SELECT id FROM episodes WHERE status = 'done'")
    assert 1 <= len(done) < 6 and rows(db, "SELECT status FROM runs") == [("interrupted",)]
    said = "SELECT episode, seq, content FROM messages WHERE episode = ? ORDER BY seq"
    kept = rows(db, said, done[0][0])
    result = moot(typed(f"moot run --resume {QS}"), ws)
    assert result.returncode == 0, result.stderr
    assert "episodes   6 (6 done, 0 failed)" in result.stdout
    assert rows(db, "SELECT status FROM episodes") == [("done",)] * 6
    assert rows(db, "SELECT status FROM runs") == [("done",)]
    assert rows(db, said, done[0][0]) == kept


def test_readme_replay_a_run(qs, ws, monkeypatch):
    monkeypatch.chdir(ws)
    questions = [q for (q,) in rows(qs, "SELECT question FROM episodes ORDER BY id")]

    async def script(app, pilot):  # type: ignore[no-untyped-def]
        await until(pilot, lambda: "4 episodes" in screen_text(app), "the episode list")
        shown = screen_text(app)
        assert f"quickstart · done · 4 episodes · {Path(QS).name}" in shown
        for q in questions:
            assert q[:30] in shown
        await pilot.press("enter")  # open the first episode
        await until(pilot, lambda: type(app.screen).__name__ == "EpisodeScreen", "the episode")
        assert app.screen.transcript.messages
        await pilot.press("q")

    code, _ = tui(typed(f"moot replay {QS}"), monkeypatch, script)
    assert code == 0


def test_readme_replay_a_directory(qs, ws, monkeypatch):
    monkeypatch.chdir(ws)

    async def script(app, pilot):  # type: ignore[no-untyped-def]
        await until(pilot, lambda: Path(QS).name in screen_text(app), "the runs in the directory")
        assert f"runs in {Path('runs')}" in screen_text(app)
        line = next(ln for ln in screen_text(app).splitlines() if Path(QS).name in ln)
        assert "quickstart" in line and "done" in line and "4 episodes" in line
        await pilot.press("enter")
        await until(pilot, lambda: "quickstart · done · 4 episodes" in screen_text(app), "the run's episodes")
        await pilot.press("q")

    code, _ = tui(typed("moot replay runs/"), monkeypatch, script)
    assert code == 0


def test_readme_join(ws, monkeypatch):
    """`moot join`, typed as the run of the judge study (started without --tui) prints it."""
    rc, stdout, stderr, answered, join = run_and_join(
        "moot run scenarios/human/judge_study.yaml --limit 1 --model debater=scripted", ws, ws / "study", monkeypatch
    )
    assert rc == 0, stderr
    assert re.fullmatch(r"moot join runs/human-judge-study-\d{8}-\d{6}\.db --seat judge", join)
    assert answered[0] == ("judge", "verdict", 1) and answered[-1][1] == "verdict"
    db = ws / join.split()[2]
    verdicts = rows(db, "SELECT judge, model, round, probabilities FROM verdicts ORDER BY id")
    assert verdicts == [("judge", "human", 1, "[0.55,0.45]")]  # leaned to A, then ended it
    assert rows(db, "SELECT status, stop_reason FROM episodes") == [("done", "judge_ended")]
    assert "episodes   1 (1 done, 0 failed)" in stdout


def test_readme_judge_offline(qs, ws, monkeypatch, capsys):
    monkeypatch.chdir(ws)
    first = rows(qs, "SELECT question FROM episodes WHERE id = 0")[0][0]
    before = rows(qs, "SELECT * FROM verdicts ORDER BY id")

    async def script(app, pilot):  # type: ignore[no-untyped-def]
        turn = await until(pilot, lambda: turn_up(app, "verdict"), "the first episode to judge")
        r = turn.request
        assert (r.episode, r.round, r.seat) == (0, 1, "human:ada") and r.question == first
        shown = screen_text(app)
        assert f"Q {first}" in shown and "human:ada · 4 episodes to go" in shown
        assert "enter: rule" in shown
        await pilot.press("left")
        await pilot.press("enter")
        await until(pilot, lambda: turn_up(app, "verdict") and turn_up(app).request.round == 2, "round 2")
        await pilot.press("q")  # stop part-way: the rest waits for next time

    code, _ = tui(typed(f"moot judge {QS} --as ada"), monkeypatch, script)
    assert code == 0
    assert capsys.readouterr().out == f"1 verdicts stored as human:ada in {QS}\n"
    assert rows(qs, "SELECT episode, round, model, probabilities FROM verdicts WHERE judge = 'human:ada'") == [
        (0, 1, "human", "[0.55,0.45]")
    ]
    assert rows(qs, "SELECT * FROM verdicts WHERE judge != 'human:ada' ORDER BY id") == before


SQL_FIRST, SQL_MESSAGES, SQL_JUDGES, SQL_MEMORIES = (k for k in README_COMMANDS if k.startswith("sqlite3"))


def test_readme_sqlite3_reads_the_run(qs, ws):
    result = shell(SQL_FIRST, ws)
    assert result.returncode == 0, result.stderr
    want = rows(qs, "SELECT e.id, e.question, v.choice, e.correct, json_extract(v.probabilities, '$[0]')"
                    " FROM verdicts v JOIN episodes e ON e.id = v.episode")  # fmt: skip
    assert len(want) == 4
    got = result.stdout.splitlines()
    assert [line.split("|")[:2] for line in got] == [[str(i), q] for i, q, *_ in want]
    assert [float(line.split("|")[-1]) for line in got] == pytest.approx([w[-1] for w in want])
    result = shell(SQL_MESSAGES, ws)
    assert result.returncode == 0, result.stderr
    said = rows(qs, "SELECT seat, round, content FROM messages WHERE episode = 0 ORDER BY seq")
    assert result.stdout == "".join(f"{s}|{r}|{c}\n" for s, r, c in said) and len(said) == 5


def test_readme_rejudge(qs, ws, monkeypatch, capsys):
    result = moot(typed(f"moot rejudge {QS} --judge openai/gpt-4o-mini --judge local/smollm2-135m --swap"), ws)
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("moot: error: model openai/gpt-4o-mini: ") and "OPENAI_API_KEY is not set" in line
    assert rows(qs, "SELECT DISTINCT judge FROM verdicts") == [("judge",)]  # nothing was added
    monkeypatch.chdir(ws)  # a judge that needs no key, typed into the CLI's entry point
    assert main(shlex.split(f"rejudge {QS} --judge scripted --swap")) == 0
    assert "rejudge:scripted:swapped: 4 new verdicts" in capsys.readouterr().out
    result = shell(SQL_JUDGES, ws)
    assert result.returncode == 0, result.stderr
    want = rows(qs, "SELECT judge, avg(correct) FROM verdicts GROUP BY judge")
    assert {w[0] for w in want} == {"judge", "rejudge:scripted", "rejudge:scripted:swapped"}
    got = [line.split("|") for line in result.stdout.splitlines()]
    assert [g[0] for g in got] == [w[0] for w in want]
    assert [float(g[1]) for g in got] == pytest.approx([w[1] for w in want])


def test_readme_analyze_three_runs(ws, run_dir):
    for name, rel in (("direct-qa", "direct_qa_blind"), ("consultancy", "consultancy"), ("debate", "quickstart")):
        copy_db(scenario_run(f"scenarios/{rel}.yaml", run_dir), ws / "runs" / f"{name}.db")
    result = moot(typed("moot analyze runs/direct-qa.db runs/consultancy.db runs/debate.db --out report/"), ws)
    assert result.returncode == 0, result.stderr
    for condition in ("direct-qa-blind", "consultancy", "quickstart"):
        assert re.search(rf"^\| {condition} \| 1 \| 1 \|", result.stdout, re.M), result.stdout
    report = (ws / "report" / "report.md").read_text()
    assert report.strip() and "| direct-qa-blind | quickstart |" in report
    assert (ws / "report" / "accuracy.png").stat().st_size > 1000
    assert "wrote " in result.stderr


def test_readme_analyze_a_sweep_as_json(ws, run_dir):
    copy_db(scenario_run("scenarios/sweep.yaml", run_dir), ws / "runs" / "sweep.db")
    result = moot(typed("moot analyze runs/sweep.db --format json"), ws)
    assert result.returncode == 0, result.stderr
    tables = json.loads(result.stdout)
    cells = [c.name for c in load_file(ROOT / "scenarios/sweep.yaml")[0].cells()]
    assert [row["condition"] for row in tables["accuracy"]] == cells


def test_readme_export_parquet(ws, run_dir):
    import pyarrow.parquet as pq

    db = copy_db(scenario_run("scenarios/quickstart.yaml", run_dir), ws / "runs" / "debate.db")
    result = moot(typed("moot export runs/debate.db --format parquet"), ws)
    assert result.returncode == 0, result.stderr
    written = [Path(p) for p in result.stdout.split()]
    assert sorted(p.name for p in written) == ["episodes.parquet", "messages.parquet", "verdicts.parquet"]
    assert all(p.parent == Path("runs/debate-export") for p in written)
    messages = pq.read_table(ws / "runs/debate-export/messages.parquet")
    assert messages.num_rows == rows(db, "SELECT count(*) FROM messages")[0][0] > 0


def test_readme_resume_a_killed_run_on_ray(ws):
    pytest.importorskip("ray")
    out = "runs/debate_open-20261122-231500.db"
    db = ws / out
    path, swaps = slow_variant("scenarios/debate_open.yaml", ws)
    rc, stderr = stop_part_way(f"moot run {path.name} --out {out} {swaps}", ws, db, signal.SIGKILL)
    assert rc == -signal.SIGKILL, stderr
    done = rows(db, "SELECT id FROM episodes WHERE status = 'done'")
    assert done and rows(db, "SELECT status FROM runs") == [("running",)]
    result = moot(typed(f"moot run --resume {out} --executor ray"), ws)
    assert result.returncode == 0, result.stderr
    total = int(re.search(r"^episodes   (\d+) \(\1 done, 0 failed\)$", result.stdout, re.M).group(1))
    assert len(done) < total  # the kill cut the run short
    assert rows(db, "SELECT status FROM episodes") == [("done",)] * total
    assert rows(db, "SELECT status FROM runs") == [("done",)]


def test_readme_merge(qs, ws):
    """Two shards of the quickstart run, episodes 0-1 and 2-3, merged into a new database."""
    for name, keep in (("part-a.db", "id < 2"), ("part-b.db", "id >= 2")):
        conn = sqlite3.connect(copy_db(qs, ws / name))
        with conn:
            for table in ("messages", "model_calls", "verdicts"):
                conn.execute(f"DELETE FROM {table} WHERE episode NOT IN (SELECT id FROM episodes WHERE {keep})")
            conn.execute(f"DELETE FROM episodes WHERE NOT ({keep})")
        conn.close()
    result = moot(typed("moot merge runs/study.db part-a.db part-b.db"), ws)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "runs/study.db: merged 4 episodes (4 done, 0 failed), skipped 0 already done, left out 0 unfinished\n"
    )
    content = "SELECT episode, seq, seat, content FROM messages ORDER BY episode, seq"
    assert rows(ws / "runs/study.db", content) == rows(qs, content)
    assert rows(ws / "runs/study.db", "SELECT id, status FROM episodes") == [(i, "done") for i in range(4)]


def test_readme_import_nyu_debate(tmp_path):
    """Typed as shown, where ../shared/data/nyu-debate-2023 holds the first rooms of the
    published set as it is laid out (tests/test_import.py imports all 631)."""
    if not NYU.is_dir():
        pytest.skip(f"{NYU} (the published NYU debates) is not beside the project")
    (tmp_path / "proj" / "runs").mkdir(parents=True)
    sample = tmp_path / "shared" / "data" / "nyu-debate-2023"
    (sample / "debates").mkdir(parents=True)
    with open(NYU / "debates-metadata.jsonl", encoding="utf-8") as f:
        lines = [line for line, _ in zip(f, range(6))]
    for line in lines:
        name = json.loads(line)["name"]
        shutil.copy(NYU / "debates" / f"{name}.json", sample / "debates")
    (sample / "debates-metadata.jsonl").write_text("".join(lines), encoding="utf-8")
    result = moot(typed("moot import nyu-debate ../shared/data/nyu-debate-2023 --out runs/nyu.db"), tmp_path / "proj")
    assert result.returncode == 0, result.stderr
    assert "episodes   6 imported, 0 already there" in result.stdout
    db = tmp_path / "proj/runs/nyu.db"
    assert rows(db, "SELECT count(*) FROM episodes")[0][0] == 6
    assert rows(db, "SELECT count(*) FROM verdicts")[0][0] > 6  # every judge turn, from the prior on
    assert rows(db, "SELECT count(*) FROM messages")[0][0] > 6


def test_readme_import_khan_csv(ws):
    with open(ws / "human_judgements.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["debate_id", "judge_id", "question", "debate_method", "consultant_type", "swap",
                    "confidence_correct", "transcript"])  # fmt: skip
        transcript = {"answers": {"correct": "Right", "incorrect": "Wrong"},
                      "rounds": [{"correct": "I am right", "incorrect": "No, I am", "judge": None}]}  # fmt: skip
        w.writerow(["d1", "7", "Which?", "debate", "", "False", "0.8", json.dumps(transcript)])
        w.writerow(["c1", "9", "Which?", "consultancy", "incorrect", "True", "0.3", json.dumps(transcript)])
    result = moot(typed("moot import khan-csv human_judgements.csv --out runs/khan.db"), ws)
    assert result.returncode == 0, result.stderr
    assert "episodes   2 imported, 0 already there" in result.stdout
    db = ws / "runs/khan.db"
    assert rows(db, "SELECT protocol, correct FROM episodes ORDER BY id") == [("debate", 0), ("consultancy", 1)]
    assert rows(db, "SELECT judge, correct FROM verdicts ORDER BY episode") == [("human:7", 1), ("human:9", 0)]


def test_readme_sqlite3_reads_a_seats_memory(ws, run_dir):
    db = copy_db(scenario_run("scenarios/courtroom_learning.yaml", run_dir),
                 ws / "runs" / "courtroom-learning-20261122-200149.db")  # fmt: skip
    result = shell(SQL_MEMORIES, ws)
    assert result.returncode == 0, result.stderr
    want = rows(db, "SELECT seat, episode, won FROM memories WHERE episode IS NOT NULL ORDER BY seat, episode")
    assert want, "the learning courtroom kept no memory"
    got = [line.split("|") for line in result.stdout.splitlines()]
    assert [tuple(g[:3]) for g in got] == [(s, str(e), str(w)) for s, e, w in want]
    assert all(float(g[3]) == float(g[2]) for g in got)  # one episode each: its own record


# -- the commands the README names in its prose ------------------------------------------------

PROSE = {  # `moot SUB` named in the README's text, outside code blocks: how this file types it
    "--help": "moot --help",
    "validate": "(test_validate, every scenario)",
    "plan": "(test_plan_as_shipped, every scenario)",
    "protocols": "moot protocols",
    "graph": "moot graph debate; moot graph scenarios/custom_graph.yaml --dot",
    "fork": f"moot fork {QS} --from-round 1 --model judge=scripted --out runs/fork.db",
    "run": f"moot run --replay {QS} --out runs/replayed.db",
    "export": f"moot export {QS} --format preference|trajectories|jsonl --out runs/x",
    "import": "moot import moot-jsonl runs/x --out runs/back.db",
}
PROSE_ALSO = {"analyze", "join", "judge", "merge", "rejudge", "replay", "watch"}  # typed above
PROSE_ALSO |= {"serve", "study"}  # typed in tests/test_web.py (test_the_commands, the browser tests)


def test_every_moot_subcommand_the_readme_names_is_typed():
    named = {m.split()[1] for m in re.findall(r"`(moot [^`]*)`", README.read_text(encoding="utf-8"))}
    assert {"protocols", "graph", "fork"} <= named
    assert not named - set(PROSE) - PROSE_ALSO, sorted(named - set(PROSE) - PROSE_ALSO)


def test_readme_prose_commands(qs, ws, monkeypatch, capsys):
    """The commands the README's text names, typed into the CLI's entry point (in this
    process: each is quick, and the subprocess path is the same `main`)."""
    from moot.cli import COMMANDS

    monkeypatch.chdir(ws)

    def type_(cmdline: str) -> tuple[int, str]:
        code = main(shlex.split(cmdline)[1:])
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        return code, out

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    help_ = capsys.readouterr().out
    assert all(name in help_ for name in COMMANDS)
    code, out = type_("moot protocols")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == list(registry.DESCRIPTIONS)
    code, out = type_("moot graph debate")
    assert code == 0 and out.startswith("flowchart") and "verdict" in out
    code, out = type_("moot graph scenarios/custom_graph.yaml --dot")
    assert code == 0 and out.startswith("digraph")
    code, out = type_(PROSE["fork"])
    assert code == 0 and "episodes   4 (4 done, 0 failed)" in out and f"parent     {QS} (rounds 1-1 copied)" in out
    parent = json.loads(rows(ws / "runs/fork.db", "SELECT config FROM runs")[0][0])["parent"]
    assert parent["from_round"] == 1 and parent["mode"]
    code, out = type_(PROSE["run"])
    assert code == 0 and "episodes   4 (4 done, 0 failed)" in out
    said = "SELECT episode, seq, seat, content FROM messages ORDER BY episode, seq"
    assert rows(ws / "runs/replayed.db", said) == rows(qs, said)
    for fmt, files in (("preference", ["preference.jsonl"]), ("trajectories", ["trajectories.jsonl"]),
                       ("jsonl", ["episodes.jsonl", "messages.jsonl", "verdicts.jsonl"])):  # fmt: skip
        code, out = type_(f"moot export {QS} --format {fmt} --out runs/{fmt}")
        assert code == 0 and sorted(Path(p).name for p in out.split()) == files
    code, out = type_("moot import moot-jsonl runs/jsonl --out runs/back.db")
    assert code == 0 and "episodes   4 imported" in out
    assert rows(ws / "runs/back.db", said) == rows(qs, said)


def test_readme_run_tui_q_stops_the_run_resumably(ws, monkeypatch, capsys):
    """In `moot run --tui`, q while the run goes on stops it, marked interrupted, exit 130;
    `moot run --resume` goes on (a slowed quickstart, so there is time to press q)."""
    monkeypatch.chdir(ws)
    path, swaps = slow_variant("scenarios/quickstart.yaml", ws)

    async def script(app, pilot):  # type: ignore[no-untyped-def]
        await until(pilot, lambda: re.search(r"episodes [1-3]/\d done", screen_text(app)), "an episode done")
        assert app.result is None  # still running
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "the app to close", timeout=10)

    code, _ = tui(f"moot run {path.name} --tui --out {QS} {swaps}", monkeypatch, script)
    assert code == 130
    assert capsys.readouterr().err.rstrip().endswith(f"moot: interrupted: resume with  moot run --resume {QS}")
    assert rows(ws / QS, "SELECT status FROM runs") == [("interrupted",)]
    done = rows(ws / QS, "SELECT count(*) FROM episodes WHERE status = 'done'")[0][0]
    assert 1 <= done < 4
    result = moot(typed(f"moot run --resume {QS}"), ws)
    assert result.returncode == 0 and "episodes   4 (4 done, 0 failed)" in result.stdout, result.stderr
