"""Sweeps: one scenario file, a grid of conditions, every cell on the same questions.

    sweep:
      protocol.name: [direct_qa, consultancy, debate]
      seed: [1, 2]

makes six cells, named `protocol.name=direct_qa seed=1` and so on, each a complete scenario
(the file with those fields set). Keys are dotted paths to scenario fields, so anything a
scenario says can be varied: `seats.judge.model`, `protocol.rounds`, `protocol.best_of`.
The dataset is shared, so conditions are compared on identical questions (a paired design).
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass
from typing import Any

MAX_CELLS = 10_000
# Fields that name the run itself: varying them would make one cell's run another's.
FIXED = ("name", "output", "sweep", "cache_path", "dataset")


@dataclass(frozen=True, slots=True)
class CellSpec:
    name: str
    position: int
    params: dict[str, Any]  # dotted path -> value
    data: dict[str, Any]  # the whole scenario with those values set (no sweep)


def check_keys(sweep: dict[str, list[Any]]) -> None:
    """Reject keys that cannot be a field path before building any cell; ValueError names
    the key as `sweep.KEY: ...` so the loader points at its line."""
    n = 1
    for key, values in sweep.items():
        head = key.split(".", 1)[0]
        if head in FIXED:
            why = (
                "the dataset is shared by every cell (that is what makes the design paired)"
                if head == "dataset"
                else "it names the run, not a condition"
            )
            raise ValueError(f"sweep.{key}: cannot be swept: {why}")
        if not key or any(not part for part in key.split(".")):
            raise ValueError(f"sweep.{key}: not a dotted field path (e.g. protocol.rounds)")
        if not isinstance(values, list) or not values:
            raise ValueError(f"sweep.{key}: give a non-empty list of values")
        names = [label(v) for v in values]
        if len(set(names)) != len(names):
            raise ValueError(f"sweep.{key}: a value is listed twice")
        n *= len(values)
    if n > MAX_CELLS:
        raise ValueError(f"sweep: {n} cells is more than {MAX_CELLS}; split the study")


def expand(base: dict[str, Any], sweep: dict[str, list[Any]]) -> list[CellSpec]:
    """The grid's cells in order (the first key varies slowest)."""
    keys = list(sweep)
    cells = []
    for position, values in enumerate(itertools.product(*(sweep[k] for k in keys))):
        data = copy.deepcopy(base)
        data.pop("sweep", None)
        for key, value in zip(keys, values, strict=True):
            assign(data, key, value)
        params = dict(zip(keys, values, strict=True))
        name = " ".join(f"{k}={label(v)}" for k, v in params.items())
        cells.append(CellSpec(name, position, params, data))
    return cells


def assign(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ValueError(f"sweep.{key}: {'.'.join(parts[: i + 1])} has no fields to set")
        node = nxt
    node[parts[-1]] = copy.deepcopy(value)


def label(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
