"""The README is part of the product: commands, protocols and set-up lines stay true."""

import re
from pathlib import Path

from moot.cli import COMMANDS
from moot.protocols.registry import DESCRIPTIONS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_first_two_lines_are_the_setup_and_test_commands():
    block = README.split("```")[1].splitlines()[1:]
    install, tests = [line for line in block if line.strip()]
    assert install.endswith("moot run scenarios/quickstart.yaml")
    assert "pytest" in tests and ".[local,test]" in tests
    ci = (ROOT / ".ci" / "run").read_text()
    assert "sed -n 2p" in ci  # CI runs exactly the README's second line


def test_every_command_is_documented():
    for name in COMMANDS:
        assert re.search(rf"`moot {name}\b|moot {name} ", README), f"moot {name} is undocumented"


def test_every_protocol_is_documented():
    for name in DESCRIPTIONS:
        assert f"`{name}`" in README, f"protocol {name} is undocumented"


def test_every_protocol_has_a_shipped_scenario():
    from moot.scenario.load import load_file

    used = {load_file(p)[0].protocol.name for p in (ROOT / "scenarios").glob("*.yaml")}
    assert used == set(DESCRIPTIONS)
