"""Whatever a scenario file holds, loading it either works or fails with one clean line."""

import os
import subprocess
import sys
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moot.errors import ConfigError
from moot.scenario.load import parse

QUICKSTART = (Path(__file__).parents[1] / "scenarios" / "quickstart.yaml").read_text()
BASE = yaml.safe_load(QUICKSTART)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
    st.text(max_size=20),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def mutate(data, path, value):
    """Set `value` at a path of keys into a copy of `data`, creating what is missing."""
    if not path:
        return value
    out = dict(data) if isinstance(data, dict) else {}
    out[path[0]] = mutate(out.get(path[0]), path[1:], value)
    return out


keys = st.sampled_from(
    ["name", "protocol", "rounds", "turns", "seats", "debater", "judge", "model", "temperature",
     "max_tokens", "dataset", "source", "limit", "concurrency", "seed", "output", "models",
     "budget", "cache", "prompts", "turn", "edges", "phases", "nonsense"]
)  # fmt: skip


def clean(text: str) -> None:
    try:
        parse(text, "fuzz.yaml")
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("fuzz.yaml") and "\n" not in message, message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.lists(keys, min_size=1, max_size=3), value=values)
def test_mutated_scenarios_load_or_fail_cleanly(path, value):
    clean(yaml.safe_dump(mutate(BASE, path, value), allow_unicode=True))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_loads_or_fails_cleanly(text):
    clean(text)


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(0, len(QUICKSTART)), junk=st.text(max_size=10))
def test_a_damaged_quickstart_loads_or_fails_cleanly(cut, junk):
    clean(QUICKSTART[:cut] + junk + QUICKSTART[cut:])


def test_an_unwritable_output_path_is_one_line_and_writes_nothing(tmp_path):
    if os.geteuid() == 0:  # root writes anywhere: block the path with a file instead
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("a file where a directory should be")
        out = blocker / "run.db"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        out = locked / "sub" / "run.db"
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: t\nseats: {debater: {model: scripted}, judge: {model: scripted}}\n"
                        "dataset: {limit: 1}\n")
    result = subprocess.run([sys.executable, "-m", "moot", "run", str(scenario), "--out", str(out),
                             "--quiet"], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cannot create the output directory" in result.stderr
    assert not out.exists()
