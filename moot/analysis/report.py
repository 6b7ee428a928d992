"""`moot analyze`: every table of a study, printed and written next to its plots."""

from __future__ import annotations

import json
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
from moot.analysis.length import rounds_table, speeches_table, stops_table
from moot.analysis.load import Results, Scope, Study, load_results, scoped
from moot.analysis.persuasion import persuasion_table
from moot.analysis.ratings import debater_table
from moot.analysis.scores import scores_table
from moot.analysis.stats import LOG_FLOOR
from moot.analysis.table import Table, output_dir, render
from moot.analysis.trajectory import trajectory_table
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
    ties: str = "invalid",
    cluster: str = "auto",
) -> Report:
    """Every table for the run databases at `paths` (one or more; see `load.Study`); with
    `by`, a sweep's cells that share those parameters' values are pooled into one condition;
    with `where` (attribute -> value) only the episodes that match, and with `judge` only that
    judge's verdicts, are read. `ties`: a 50/50 ruling is "invalid" (left out of accuracy
    and calibration) or "wrong" (Michael et al. 2023); `cluster`: the bootstrap resamples
    passages ("source"), questions ("question"), or passages when several questions share
    one ("auto")."""
    if bootstrap < 1:
        raise ConfigError("--bootstrap: must be at least 1")
    with scoped(Scope(tuple(where), judge)):
        study = Study.open(paths, by)
        res = load_results(study, ties, cluster)
        rng = np.random.default_rng(seed)
        tables = [method_table(res, bootstrap, seed, where, judge)]
        tables += accuracy_tables(res, bootstrap, rng)
        tables.append(scores_table(res, bootstrap, rng))
        tables += calibration_tables(res, bootstrap, rng)
        tables.append(rounds_table(res, bootstrap, rng))
        for extra in (
            stops_table(res, study), speeches_table(study), trajectory_table(study, res, bootstrap, rng),
            judges_table(study), judge_agreement_table(study), debater_table(study, res, bootstrap, rng),
            persuasion_table(study, res, bootstrap, rng),
        ):  # fmt: skip
            if extra is not None:
                tables.append(extra)
        tables += peer_review_tables(study)
        tables.append(costs_table(study))
    return Report(study, res, tables)


def method_table(res: Results, reps: int, seed: int, where: Sequence[tuple[str, Any]], judge: str | None) -> Table:
    """How the figures were computed: the conventions a reader must know to compare them."""
    shared = res.clusters.shared
    rows = [
        ["episodes", f"{len(res):,} finished, of {len(res.questions):,} questions"],
        ["resampled", res.clusters.describe(len(res.questions))
         + (f" ({shared:,} passages hold several questions)" if shared else " (no passage holds several questions)")],
        ["bootstrap", f"{reps:,} resamples, seed {seed}; 95% percentile intervals"],
        ["ties", "invalid: a ruling that gives its top probability to two answers chose nothing and is left out "
         "of accuracy and calibration" if res.ties == "invalid" else
         "wrong: a ruling that gives its top probability to two answers is a wrong verdict (Michael et al. 2023)"],
        ["log score", f"natural log of p(correct answer), p floored at {LOG_FLOOR}"],
        ["where", ", ".join(f"{k}={json.dumps(v)}" for k, v in where) or "every episode"],
        ["judge", judge or "each episode's ruling (its run's own judge)"],
    ]  # fmt: skip
    return Table("method", "How these figures were computed", ["setting", "value"], rows)


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
