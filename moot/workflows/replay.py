"""Runs that start from a stored one: an exact replay, and forks from a round.

Both run the ordinary engine over the parent's episodes (same questions, answer orders and
seeds) with every seat wrapped in a `ReplaySeat` (moot.agents.replay), which answers a turn
the stored run already answered from its stored call. A replay answers every turn that
way and calls no model at all; a fork answers the turns of rounds 1..K that way and lets the
seats (some on other models) play the rest. The new run records its parent in
`runs.config` under `parent`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moot.errors import ConfigError
from moot.store.reader import RunReader
from moot.store.transcripts import parse_episodes, stored_scenario
from moot.workflows import aio
from moot.workflows.hooks import replay_hooks

if TYPE_CHECKING:
    from moot.workflows.run import RunSummary


# -- entry points --------------------------------------------------------------------


def replay(path: str | Path, *, out: str | Path | None = None, progress: Any = None) -> RunSummary:
    """Re-run a stored run from its stored outputs alone: zero model calls, the same
    transcripts and verdicts, into a new database."""
    return _start(Path(path), None, {}, None, out, progress)


def fork(
    path: str | Path,
    from_round: int,
    *,
    models: dict[str, str] | None = None,
    episodes: str | None = None,
    out: str | Path | None = None,
    progress: Any = None,
) -> RunSummary:
    """Copy each (chosen) finished episode up to round `from_round` and play the rest,
    with `models` overriding roles or seats, into a new database that records its parent."""
    return _start(Path(path), from_round, models or {}, episodes, out, progress)


def _start(
    parent: Path,
    until: int | None,
    models: dict[str, str],
    episodes: str | None,
    out: str | Path | None,
    progress: Any,
) -> RunSummary:
    from moot.workflows.run import Interrupted, apply_overrides, check_keys, execute, prepare

    scenario, text, base = stored_scenario(parent)
    reader = RunReader(parent)
    try:
        run_id = (reader.run() or {})["id"]
        done = reader.done_ids()
        if not done:
            raise ConfigError(f"{parent}: no finished episode to start from")
        chosen = parse_episodes(episodes, done) if episodes else set(done)
        if until is not None:
            last = reader.last_round(chosen)
            if last == 1:
                raise ConfigError(f"--from-round {until}: the stored episodes have one round: nothing to fork")
            if not 1 <= until < last:
                raise ConfigError(
                    f"--from-round {until}: the stored episodes have rounds 1-{last}; fork from 1-{last - 1}"
                )
    finally:
        reader.close()
    if until is not None:
        scenario = apply_overrides(scenario, models=models)
    target = _output(parent, until, out)
    record = {
        "mode": "replay" if until is None else "fork",
        "path": str(parent.resolve()),
        "run": run_id,
        "from_round": until,
        "episodes": sorted(chosen) if episodes else None,
        "models": models,
    }
    hooks = replay_hooks(parent, record, chosen)
    prep = prepare(scenario, text, base)
    if until is not None:  # a fork plays rounds: a missing key is one line, before anything
        check_keys(prep)
    # a fork plays on: local models in their deterministic mode (unless told otherwise), for
    # this run only (loaded models are kept per mode, so nothing else changes with it)
    told = os.environ.get("MOOT_LLAMA_BATCHING")
    if until is not None and told is None:
        os.environ["MOOT_LLAMA_BATCHING"] = "exact"
    try:
        return aio.run(lambda: execute(prep, target, progress=progress, hooks=hooks))
    except KeyboardInterrupt:
        raise Interrupted(target) from None
    finally:
        if until is not None and told is None:
            del os.environ["MOOT_LLAMA_BATCHING"]


def _output(parent: Path, until: int | None, out: str | Path | None) -> Path:
    if out is not None:
        path = Path(out)
        if path.exists():
            raise ConfigError(f"{path}: already exists; choose another --out")
        return path
    suffix = "replay" if until is None else f"fork{until}"
    path = parent.with_name(f"{parent.stem}-{suffix}.db")
    n = 2
    while path.exists():
        path = parent.with_name(f"{parent.stem}-{suffix}-{n}.db")
        n += 1
    return path
