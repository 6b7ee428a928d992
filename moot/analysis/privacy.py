"""Episodes not for publication: which they are, and what an export left out.

Some datasets ask that their questions never appear in plain text online (GPQA does). Two
marks say so, both read from the stored run, never from the dataset file:

- a whole dataset: `dataset: {private: true}` in the scenario, recorded in the run's config
  (or a sweep cell's), so every episode of that run or cell is private;
- one row: the episode's attribute `private` (true, "true", "yes" or 1), as an importer
  keeps it from the row (e.g. a `private` column of a CSV) or an export carries it (an
  exported episode of a private dataset has it set, so the mark survives a re-import).

File exports (`moot export`: JSONL, CSV, Parquet, HTML, training data) leave private
episodes out unless asked to keep them, and say what they left out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from moot.errors import ConfigError

# SQL over a row of `main.episodes`: 1 when the row itself is marked private ...
ROW_PRIVATE = "coalesce(lower(CAST(json_extract(attributes, '$.private') AS TEXT)), '') IN ('1', 'true', 'yes')"


def dataset_private(row: str = "") -> str:
    """SQL: 1 when the scenario the row's run (or sweep cell) recorded marks the dataset
    private; `row` qualifies the episode's columns (e.g. "e.") inside a join."""
    return (
        f"coalesce(json_extract(CASE WHEN {row}cell IS NULL"
        " THEN (SELECT config FROM main.runs ORDER BY started_at LIMIT 1)"
        f" ELSE (SELECT c.config FROM main.cells AS c WHERE c.name = {row}cell) END, '$.dataset.private'), 0)"
    )


PRIVATE = f"({ROW_PRIVATE} OR {dataset_private()})"


@dataclass
class LeftOut:
    """What an export left out, per database: episode ids, and why."""

    dataset: dict[str, list[int]] = field(default_factory=dict)  # database -> ids (private dataset)
    rows: dict[str, list[int]] = field(default_factory=dict)  # database -> ids (rows marked private)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.dataset.values()) + sum(len(v) for v in self.rows.values())

    def sentence(self) -> str:
        """One line for a person: how many episodes, why, and how to keep them."""
        if not self.count:
            return "nothing left out: no episode is marked not for publication"
        parts = []
        if n := sum(len(v) for v in self.dataset.values()):
            parts.append(f"{n} of a dataset marked private (dataset.private in the scenario)")
        if n := sum(len(v) for v in self.rows.values()):
            parts.append(f"{n} whose row is marked private")
        noun = "episode" if self.count == 1 else "episodes"
        return f"left out {self.count} {noun} not for publication: {'; '.join(parts)} (--include-private keeps them)"

    def record(self) -> dict[str, object]:
        return {"left_out": self.count, "reason": self.sentence(),
                "dataset_private": self.dataset, "rows_private": self.rows}  # fmt: skip


def left_out(paths: Sequence[str | Path]) -> LeftOut:
    """The private episodes of each database, within the current scope's other filters
    (`--where`, `--episodes`): open them with a scope that keeps private episodes."""
    from moot.analysis.load import open_db  # load narrows by this module's SQL

    out = LeftOut()
    for path in paths:
        conn = open_db(path)
        try:
            for ep, by_row in conn.execute(f"SELECT id, {ROW_PRIVATE} FROM episodes WHERE {PRIVATE} ORDER BY id"):
                (out.rows if by_row else out.dataset).setdefault(Path(path).name, []).append(ep)
        finally:
            conn.close()
    return out


def write_note(left: LeftOut, folder: Path) -> Path | None:
    """`excluded.json` beside an export's files when anything was left out, so the folder
    itself says so (ids and reasons, never the text); when nothing was, an earlier export's
    note in the folder is removed, so it cannot speak for this one."""
    path = folder / "excluded.json"
    try:
        if not left.count:
            path.unlink(missing_ok=True)
            return None
        path.write_text(json.dumps(left.record(), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write ({exc.strerror})") from None
    return path
