"""Scenario files: what validates, and what a user sees when theirs does not.

Every mistake a user can make in a scenario (or on the command line) ends the same way:
exit code 2 and one line on stderr that names the file, the line and the field,

    moot: error: my.yaml:4: seats.judge.temprature: unknown field (did you mean 'temperature'?)

and never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from moot.errors import ConfigError
from moot.protocols.registry import DESCRIPTIONS
from moot.scenario.load import load_file, parse
from moot.workflows.run import apply_overrides, output_path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"


def moot(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`moot ARGS...` as a user would run it, against this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "moot", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=60,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The CLI's contract for a user's mistake: exit 2, one stderr line, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("moot: error: "), lines[0]
    return lines[0].removeprefix("moot: error: ")


# --------------------------------------------------------------------------- good files


def test_there_are_shipped_scenarios():
    assert QUICKSTART in SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_scenario_validates_with_the_cli(path: Path):
    result = moot("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(f"{path}: ok (")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_scenario_loads_with_the_library(path: Path):
    scenario, text = load_file(path)
    assert text == path.read_text("utf-8")  # the text is kept, to be stored with the run
    assert scenario.name
    assert scenario.protocol.name in DESCRIPTIONS
    models = {scenario.seat(s, s).model for s in scenario.seats}
    if scenario.dataset.source == "builtin:memes":  # images: a vision model (the embedded one reads text)
        assert models == {"openai/gpt-4o-mini"}
    else:  # every other shipped scenario runs on the embedded model
        assert models == {"local/smollm2-135m"}


def test_quickstart_reads_as_written():
    scenario, _ = load_file(QUICKSTART)
    assert scenario.name == "quickstart"
    assert scenario.protocol.rounds == 2
    assert scenario.protocol.turns == "simultaneous"
    assert scenario.dataset.source == "builtin:reading"
    assert scenario.dataset.limit == 4
    # A seat takes its role's settings: both debaters inherit the `debater` entry.
    for seat in ("debater_a", "debater_b"):
        cfg = scenario.seat(seat, "debater")
        assert cfg.model == "local/smollm2-135m"
        assert cfg.max_tokens == 60
    assert scenario.seat("judge", "judge").max_tokens == 4


def test_a_seat_entry_overrides_its_role_entry():
    scenario = parse(
        "name: mixed\n"
        "seats:\n"
        "  debater: {model: scripted, temperature: 0.7}\n"
        "  debater_b: {model: scripted/other}\n"
    )
    assert scenario.seat("debater_a", "debater").model == "scripted"
    b = scenario.seat("debater_b", "debater")
    assert (b.model, b.temperature) == ("scripted/other", 0.7)
    # a seat nobody mentions gets the embedded default model
    assert scenario.seat("judge", "judge").model == "local/smollm2-135m"


def test_the_smallest_scenario_is_a_name():
    scenario = parse("name: tiny\n")
    assert scenario.protocol.rounds == 2
    assert scenario.dataset.source == "builtin:reading"


def test_provider_params_that_are_not_secrets_are_allowed():
    scenario = parse(
        "name: hosted\n"
        "models:\n"
        "  openai/gpt-4o-mini:\n"
        "    api_key_env: OPENAI_API_KEY\n"
        "    params: {max_tokens: 50, top_p: 0.9}\n"
    )
    settings = scenario.model_for("openai/gpt-4o-mini")
    assert settings.api_key_env == "OPENAI_API_KEY"
    assert settings.params == {"max_tokens": 50, "top_p": 0.9}


# --------------------------------------------------------------------------- bad files

# (id, file text, line the error must name, start of the message after "file:line: ",
#  other fragments the message must contain)
BAD_FILES = [
    (
        "misspelt-field",
        "name: typo\nseats:\n  judge:\n    temprature: 0.5\n",
        4,
        "seats.judge.temprature: unknown field",
        ["did you mean 'temperature'?"],
    ),
    (
        "misspelt-dataset-field",
        "name: typo\ndataset:\n  source: builtin:reading\n  shuffle_sed: 3\n",
        4,
        "dataset.shuffle_sed: unknown field",
        ["did you mean 'shuffle_seed'?"],
    ),
    (
        "misspelt-model-setting",
        "name: typo\nmodels:\n  scripted:\n    timout: 5\n",
        4,
        "models.scripted.timout: unknown field",
        ["did you mean 'timeout'?"],
    ),
    (
        "wrong-type",
        "name: words\nprotocol:\n  rounds: three\n",
        3,
        "protocol.rounds: ",
        ["integer", "'three'"],
    ),
    (
        "out-of-range",
        "name: zero\nprotocol:\n  name: debate\n  rounds: 0\n",
        4,
        "protocol.rounds: ",
        ["greater than or equal to 1", "(got 0)"],
    ),
    (
        "temperature-out-of-range",
        "name: hot\nseats:\n  judge:\n    temperature: 5\n",
        4,
        "seats.judge.temperature: ",
        ["less than or equal to 2"],
    ),
    (
        "unknown-seat",
        "name: court\nseats:\n  judge:\n    temperature: 0\n  jury:\n    model: scripted\n",
        5,
        "seats.jury: ",
        ["no seat or role 'jury'", "debater, debater_a, debater_b, judge"],
    ),
    (
        "unknown-protocol",
        "name: other\nprotocol:\n  name: tribunal\n",
        3,
        "protocol.name: ",
        ["'debate'", "'consultancy'", "'custom'"],
    ),
    (
        "name-with-slash",
        "description: a run\nname: team/run\n",
        2,
        "name: ",
        ["'team/run'"],
    ),
    (
        "secret-in-params",
        "name: leaky\nmodels:\n  openai/gpt-4o:\n    timeout: 30\n    params:\n      api_key: sk-123\n",
        6,
        "models.openai/gpt-4o",
        ["params.api_key", "api_key_env"],
    ),
    (
        "token-in-params",
        "name: leaky\nmodels:\n  openai/gpt-4o:\n    params:\n      auth_token: abc\n",
        5,
        "models.openai/gpt-4o",
        ["params.auth_token", "api_key_env"],
    ),
    (
        "bad-indentation",
        "name: x\n  rounds: 2\nseed: 1\n",
        2,
        "invalid YAML: ",
        [],
    ),
]


@pytest.mark.parametrize(
    "text, line, start, fragments",
    [case[1:] for case in BAD_FILES],
    ids=[case[0] for case in BAD_FILES],
)
def test_bad_scenario_is_one_line_naming_file_line_and_field(
    tmp_path: Path, text: str, line: int, start: str, fragments: list[str]
):
    path = tmp_path / "bad.yaml"
    path.write_text(text)

    message = one_line_error(moot("validate", str(path)))

    assert message.startswith(f"{path}:{line}: {start}"), message
    for fragment in fragments:
        assert fragment in message, message
    # the library raises the same message, as a ConfigError
    with pytest.raises(ConfigError) as exc:
        load_file(path)
    assert str(exc.value) == message
    assert exc.value.exit_code == 2


def test_secret_values_are_not_echoed(tmp_path: Path):
    path = tmp_path / "leaky.yaml"
    path.write_text("name: leaky\nmodels:\n  m:\n    params: {api_key: sk-very-secret}\n")
    with pytest.raises(ConfigError) as exc:
        load_file(path)
    assert "sk-very-secret" not in str(exc.value)


def test_unclosed_bracket(tmp_path: Path):
    path = tmp_path / "bracket.yaml"
    path.write_text("name: x\nprotocol:\n  rounds: [1, 2\nseed: 3\n")
    message = one_line_error(moot("validate", str(path)))
    match = re.fullmatch(rf"{re.escape(str(path))}:(\d+): invalid YAML: .+", message)
    assert match, message
    # the line of the bracket, or the line where the parser gave up on it
    assert int(match.group(1)) in (3, 4)


def test_a_list_is_not_a_scenario(tmp_path: Path):
    path = tmp_path / "list.yaml"
    path.write_text("- debater\n- judge\n")
    message = one_line_error(moot("validate", str(path)))
    assert re.fullmatch(rf"{re.escape(str(path))}(:1)?: a scenario is a YAML mapping .+", message)


def test_missing_file(tmp_path: Path):
    path = tmp_path / "nowhere.yaml"
    assert one_line_error(moot("validate", str(path))) == f"{path}: no such file"
    with pytest.raises(ConfigError, match="no such file"):
        load_file(path)


def test_only_the_first_of_several_errors_is_spelt_out():
    with pytest.raises(ConfigError) as exc:
        parse("name: x\nprotocol:\n  rounds: 0\nconcurrency: 0\n", "two.yaml")
    message = str(exc.value)
    assert message.startswith("two.yaml:3: protocol.rounds: ")
    assert message.endswith("(and 1 more)")
    assert "\n" not in message


# --------------------------------------------------------------------------- `moot run` input


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    """A copy of the quickstart scenario in an empty directory (its runs land in ./runs)."""
    path = tmp_path / "quickstart.yaml"
    shutil.copy(QUICKSTART, path)
    return path


def test_model_override_of_an_unknown_role(quickstart: Path):
    result = moot("run", str(quickstart), "--model", "jury=scripted", cwd=quickstart.parent)
    message = one_line_error(result)
    assert message.startswith("--model jury=scripted: no seat or role 'jury'")
    assert "judge" in message
    assert not (quickstart.parent / "runs").exists()  # nothing was created


def test_model_override_without_a_model(quickstart: Path):
    message = one_line_error(moot("run", str(quickstart), "--model", "judge=", cwd=quickstart.parent))
    assert message.startswith("--model judge=")


def test_limit_zero(quickstart: Path):
    message = one_line_error(moot("run", str(quickstart), "--limit", "0", cwd=quickstart.parent))
    assert message == "--limit: must be at least 1"
    assert not (quickstart.parent / "runs").exists()


def test_run_will_not_overwrite_a_file_that_is_not_its_database(quickstart: Path):
    existing = quickstart.parent / "earlier.db"
    existing.write_bytes(b"an earlier run")
    result = moot("run", str(quickstart), "--out", str(existing), "--quiet", cwd=quickstart.parent)
    message = one_line_error(result)
    assert message.startswith(f"{existing}: not a usable moot database")
    assert existing.read_bytes() == b"an earlier run"


def test_overrides_in_the_library():
    scenario, _ = load_file(QUICKSTART)
    changed = apply_overrides(scenario, limit=2, models={"judge": "scripted", "debater_b": "scripted/b"})
    assert changed.dataset.limit == 2
    assert changed.seat("judge", "judge").model == "scripted"
    assert changed.seat("judge", "judge").max_tokens == 4  # the rest of the entry is kept
    assert changed.seat("debater_b", "debater").model == "scripted/b"
    assert changed.seat("debater_a", "debater").model == "local/smollm2-135m"
    assert scenario.dataset.limit == 4  # the original is untouched
    with pytest.raises(ConfigError, match="--limit"):
        apply_overrides(scenario, limit=0)
    with pytest.raises(ConfigError, match="'jury'"):
        apply_overrides(scenario, models={"jury": "scripted"})


def test_output_path(tmp_path: Path):
    scenario = parse(f"name: paths\noutput: {tmp_path / 'runs'}\n")
    fresh = output_path(scenario, None)
    assert fresh.parent == tmp_path / "runs"
    assert fresh.name.startswith("paths-") and fresh.suffix == ".db"
    assert not fresh.exists()  # choosing a path creates nothing

    taken = tmp_path / "taken.db"
    taken.touch()
    with pytest.raises(ConfigError, match="already exists"):
        output_path(scenario, taken)
    with pytest.raises(ConfigError, match="already exists"):
        output_path(parse(f"name: paths\noutput: {taken}\n"), None)


# --------------------------------------------------------------------------- start-up


def test_help():
    result = moot("--help")
    assert result.returncode == 0, result.stderr
    assert "run" in result.stdout and "validate" in result.stdout


def test_no_command_prints_help():
    result = moot()
    assert result.returncode == 0
    assert "usage: moot" in result.stdout


HEAVY = ["litellm", "llama_cpp", "networkx", "sqlite_utils"]


def heavy_modules_after(code: str) -> list[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_cli_is_light():
    assert heavy_modules_after("import moot.cli") == []


def test_validating_a_scenario_is_light():
    code = f"from moot.scenario.load import load_file\nload_file({str(QUICKSTART)!r})"
    assert heavy_modules_after(code) == []
