"""How a run that starts from a stored one differs from a fresh one (`Hooks`), and the hooks
of a replay or a fork: its seats answer from the parent (moot.agents.replay). A resumed
fork or replay goes on as one (`resume_hooks`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moot import store
from moot.agents.model_seat import ModelSeat
from moot.agents.replay import NoCalls, ReplaySeat, StoredCache, StoredOutputs
from moot.engine.bus import Bus
from moot.engine.episode import EpisodeSpec
from moot.errors import ConfigError
from moot.store.reader import RunReader

if TYPE_CHECKING:
    from moot.workflows.run import CellPlan


@dataclass(slots=True)
class Hooks:
    """How a run that starts from a stored one (a fork, a replay: moot.workflows.replay) differs from
    a fresh one: how models are made, what wraps each cell's seats, which episodes run, and
    what the run's config records besides the scenario (its parent)."""

    make_api: Callable[[str, Any], Any] | None = None
    wrap: Callable[[CellPlan, dict[str, ModelSeat], Bus], dict[str, Any]] | None = None
    episodes: set[int] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    # what each episode is shown, as the parent stored it (its images, byte for byte)
    spec: Callable[[EpisodeSpec], EpisodeSpec] | None = None


def replay_hooks(parent: Path, record: dict[str, Any], chosen: set[int]) -> Hooks:
    with RunReader(parent) as reader:
        stored = StoredOutputs(reader, chosen)
        images = {ep: shown for ep in chosen if (shown := reader.images(ep))}
    until = record["from_round"]

    cache = StoredCache(stored) if until is None else None

    def wrap(cell: Any, seats: dict[str, ModelSeat], bus: Bus) -> dict[str, Any]:
        if cache is not None:  # a replay: whatever else a seat asks its model is stored too
            for s in seats.values():
                s.model.cache = cache  # type: ignore[assignment]
        return {k: ReplaySeat(s, stored, bus, until) for k, s in seats.items()}

    return Hooks(
        make_api=(lambda name, settings: NoCalls(name)) if until is None else None,
        wrap=wrap,
        episodes=chosen,
        config={"parent": record},
        spec=(lambda s: replace(s, images=images[s.index]) if s.index in images else s) if images else None,
    )


def resume_hooks(path: Path) -> Hooks | None:
    """A fork or a replay resumes as itself (its parent must still be where it was)."""
    store.upgrade(path)
    with RunReader(path) as reader:
        stored = reader.record()
    record = stored[1].get("parent") if stored else None
    if not record:
        return None
    parent = Path(record["path"])
    if not parent.is_file():
        raise ConfigError(f"{path}: its parent run {parent} is gone; it cannot be resumed")
    store.upgrade(parent)
    with RunReader(parent) as reader:
        done = set(reader.done_ids())
    chosen = set(record["episodes"]) if record.get("episodes") else done
    return replay_hooks(parent, record, chosen)
