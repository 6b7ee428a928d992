"""`moot analyze`: every table of a study, printed and written next to its plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moot.analysis.accuracy import accuracy_tables
from moot.analysis.agreement import peer_review_tables
from moot.analysis.calibration import calibration_tables
from moot.analysis.costs import costs_table, judges_table
from moot.analysis.judges import judge_agreement_table
from moot.analysis.load import Results, Scope, Study, load_results, scoped
from moot.analysis.ratings import debater_table
from moot.analysis.table import Table, output_dir, render
from moot.errors import ConfigError

FORMATS = ("markdown", "csv", "json")
EXTENSION = {"markdown": "md", "csv": "csv", "json": "json"}


@dataclass
class Report:
    study: Study
    results: Results
    tables: list[Table]

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    def render(self, fmt: str = "markdown") -> str:
        return render(self.tables, fmt)


def analyze(
    paths: Sequence[str | Path],
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    by: Sequence[str] = (),
    where: Sequence[tuple[str, Any]] = (),
    judge: str | None = None,
) -> Report:
    """Every table for the run databases at `paths` (one or more; see `load.Study`); with
    `by`, a sweep's cells that share those parameters' values are pooled into one condition;
    with `where` (attribute -> value) only the episodes that match, and with `judge` only that
    judge's verdicts, are read."""
    if bootstrap < 1:
        raise ConfigError("--bootstrap: must be at least 1")
    with scoped(Scope(tuple(where), judge)):
        study = Study.open(paths, by)
        res = load_results(study)
        rng = np.random.default_rng(seed)
        tables = accuracy_tables(res, bootstrap, rng) + calibration_tables(res)
        for extra in (judges_table(study), judge_agreement_table(study), debater_table(study, res, bootstrap, rng)):
            if extra is not None:
                tables.append(extra)
        tables += peer_review_tables(study)
        tables.append(costs_table(study))
    return Report(study, res, tables)


def write(report: Report, out: str | Path, fmt: str = "markdown", plots: bool = True) -> list[Path]:
    """The tables (report.md, tables.json, or one CSV per table) and the plots, in `out`."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    d = output_dir(out)
    written = []
    if fmt == "csv":
        for t in report.tables:
            (p := d / f"{t.name}.csv").write_text(t.csv())
            written.append(p)
    else:
        name = "report.md" if fmt == "markdown" else "tables.json"
        (p := d / name).write_text(report.render(fmt))
        written.append(p)
    if plots:
        from moot.analysis import plots as plotting

        written += plotting.write_all(report, d)
    return written
