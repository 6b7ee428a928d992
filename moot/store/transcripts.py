"""A stored run as the workflows that start from one see it: its scenario (per cell), read
back through the one reader (`moot.store.reader.RunReader`). Re-judging, forking, replay,
offline judging and the desk start here."""

from __future__ import annotations

from pathlib import Path

from moot.errors import ConfigError
from moot.scenario.model import Scenario
from moot.store.reader import RunReader


def open_run(path: str | Path) -> tuple[RunReader, Scenario, Path | None]:
    """A stored run (migrated to this moot's schema first) with its resolved scenario and
    the directory its dataset paths are relative to; a one-line error if the file is not a
    moot run."""
    p = Path(path)
    scenario, _, base = stored_scenario(p)  # migrates
    return RunReader(p), scenario, base


def cell_scenarios(scenario: Scenario) -> dict[str | None, Scenario]:
    """Each cell's scenario by the name its episodes carry (None outside a sweep)."""
    return {c.name: c.scenario for c in scenario.cells()}


def parse_episodes(text: str, known: list[int]) -> set[int]:
    """`0-3,7` -> {0, 1, 2, 3, 7}; every id must be a stored episode."""
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                out.update(range(lo, hi + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise ConfigError(f"--episodes {text}: expected ids and ranges, e.g. 0-3,7") from None
    missing = sorted(out - set(known))
    if missing:
        raise ConfigError(f"--episodes: no finished episode {missing[0]} in the run")
    return out


def stored_scenario(path: Path) -> tuple[Scenario, str, Path | None]:
    """A stored run's resolved scenario, its YAML as written, and the directory its dataset
    paths are relative to."""
    from moot import store

    store.upgrade(path)
    with RunReader(path) as reader:
        record = reader.record()
    if record is None:
        raise ConfigError(f"{path}: holds no run to resume")
    text, config = record
    base = config.pop("base", None)
    config.pop("prompts", None)
    config.pop("parent", None)  # a fork or replay's origin (moot.workflows.replay)
    return Scenario.model_validate(config), text, Path(base) if base else None
