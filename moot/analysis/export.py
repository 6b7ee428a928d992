"""Exports of the transcripts: JSONL, CSV or Parquet files, one HTML page, and pandas
DataFrames.

Three tables, each row tagged with its condition: `episodes` (one per episode, with its
ruling and whether it was right, as in the `episode_results` view), `messages` and
`verdicts` (every verdict row, `final` marking each judge's last one). With several
databases a `run` column names the file each row came from. `html` writes the transcripts
as one page to read or share (moot.analysis.html).

File exports take a selection (`where`: episode attributes, `episodes`: ids) and leave out
the episodes marked not for publication (moot.analysis.privacy) unless `include_private`;
what they left out is listed in `excluded.json` beside the files (and on the HTML page).
The DataFrames are for analysis on your own machine and hold every episode.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from moot.analysis import privacy
from moot.analysis.load import Scope, Study, open_db, scoped
from moot.analysis.table import output_dir
from moot.errors import ConfigError

# an episode of a private dataset carries the mark in its own attributes, so it stays
# private when the export is read back (moot import moot-jsonl) without the run's scenario
CARRIED = (
    f"CASE WHEN {privacy.dataset_private('e.')} THEN json_set(coalesce(e.attributes, '{{}}'), '$.private',"
    " json('true')) ELSE e.attributes END"
)
SQL = {
    "episodes": f"""
        SELECT r.condition, e.id AS episode, e.question_id, e.question, e.answers,
            e.correct AS answer, e.source, e.protocol, e.assignments, e.seats, e.status,
            e.stop_reason, e.outcome, e.error, e.started_at, e.ended_at, e.cell, {CARRIED} AS attributes,
            r.judge, r.choice, r.valid, r.correct, r.p_correct, r.p_choice, r.chosen_answer
        FROM episodes AS e JOIN episode_results AS r ON r.episode = e.id ORDER BY e.id""",
    "messages": """
        SELECT r.condition, m.episode, m.seq, m.round, m.phase, m.seat, m.role, m.side,
            m.content, m.audience, m.quotes, m.call_seq, m.created_at
        FROM messages AS m JOIN episode_results AS r ON r.episode = m.episode
        ORDER BY m.episode, m.seq""",
    "verdicts": """
        SELECT r.condition, v.episode, v.id AS verdict, v.judge, v.model, v.round, v.choice,
            v.probabilities, v.correct, v.method, v.parse_status, v.raw, v.call_seq,
            v.created_at, v.id IN (SELECT verdict_id FROM episode_verdicts) AS final
        FROM verdicts AS v JOIN episode_results AS r ON r.episode = v.episode
        ORDER BY v.episode, v.id""",
}
TABLES = tuple(SQL)
FORMATS = ("jsonl", "csv", "parquet")
TRAINING = ("preference", "trajectories")  # training data: moot/analysis/training.py
PAGES = ("html",)  # one page to read: moot/analysis/html.py
JSON_COLUMNS = {"answers", "assignments", "seats", "outcome", "attributes", "audience", "quotes", "probabilities"}


def rows(study: Study, table: str) -> Iterator[dict[str, Any]]:
    """The table's rows, database after database, streamed."""
    several = len(study.paths) > 1
    for path, names in zip(study.paths, study.names):
        conn = open_db(path)
        try:
            cur = conn.execute(SQL[table])
            cols = [d[0] for d in cur.description]
            for r in cur:
                row = dict(zip(cols, r))
                row["condition"] = names.get(row["condition"], row["condition"])
                if several:
                    row = {"run": path.name} | row
                yield row
        finally:
            conn.close()


def export(
    paths: Sequence[str | Path], out: str | Path, fmt: str = "jsonl", *,
    where: Sequence[tuple[str, Any]] = (), episodes: Sequence[int] = (), include_private: bool = False,
) -> list[Path]:  # fmt: skip
    """Write episodes, messages and verdicts as `out/<table>.<fmt>` (or training data, or
    the HTML page): see `export_files`."""
    return export_files(paths, out, fmt, where=where, episodes=episodes, include_private=include_private)[0]


def export_files(
    paths: Sequence[str | Path], out: str | Path, fmt: str = "jsonl", *,
    where: Sequence[tuple[str, Any]] = (), episodes: Sequence[int] = (), include_private: bool = False,
) -> tuple[list[Path], privacy.LeftOut]:  # fmt: skip
    """The files written, and the private episodes of the selection: left out (listed in
    `excluded.json`), or kept when `include_private`. For `html`, `out` is a directory
    (`transcripts.html` is written in it) or a file name ending in `.html`."""
    if fmt not in FORMATS + TRAINING + PAGES:
        raise ConfigError(f"--format {fmt}: choose one of {', '.join(FORMATS + TRAINING + PAGES)}")
    scope = Scope(tuple(where), None, tuple(episodes), public=not include_private)
    with scoped(replace(scope, public=False)):
        private = privacy.left_out(paths)
    with scoped(scope):
        if fmt in TRAINING:
            from moot.analysis.training import export_training

            written = export_training(list(paths), out, fmt)
        elif fmt == "html":
            from moot.analysis import html

            study = Study.open(paths)
            target = Path(out)
            if target.suffix.lower() != ".html":
                target = output_dir(target) / "transcripts.html"
            else:
                output_dir(target.parent)
            written = [html.write(study, target, private, include_private)]
        else:
            written = _tables(paths, out, fmt)
    if fmt != "html" and (note := privacy.write_note(private if not include_private else privacy.LeftOut(), written[0].parent)):
        written.append(note)
    return written, private


def _tables(paths: Sequence[str | Path], out: str | Path, fmt: str) -> list[Path]:
    study = Study.open(paths)
    d = output_dir(out)
    written = []
    for table in TABLES:
        path = d / f"{table}.{fmt}"
        if fmt == "parquet":
            frame(study, table).to_parquet(path, index=False)
        else:
            with path.open("w", newline="", encoding="utf-8") as f:
                if fmt == "jsonl":
                    for row in rows(study, table):
                        for k in JSON_COLUMNS & row.keys():
                            if row[k] is not None:
                                row[k] = json.loads(row[k])
                        f.write(json.dumps(row, ensure_ascii=False) + "\n")
                else:
                    w = None
                    for row in rows(study, table):
                        if w is None:
                            w = csv.DictWriter(f, fieldnames=list(row))
                            w.writeheader()
                        w.writerow(row)
                    if w is None:
                        f.write(",".join(["run"] * (len(paths) > 1) + _columns(study, table)) + "\n")
        written.append(path)
    return written


def _columns(study: Study, table: str) -> list[str]:
    conn = open_db(study.paths[0])
    try:
        return [d[0] for d in conn.execute(SQL[table] + " LIMIT 0").description]
    finally:
        conn.close()


def pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise ConfigError("DataFrames and Parquet need pandas: pip install 'moot[analysis]'") from None
    return pd


def frame(study: Study, table: str) -> Any:
    pd = pandas()
    parts = []
    for path, names in zip(study.paths, study.names):
        conn = open_db(path)
        try:
            df = pd.read_sql_query(SQL[table], conn)
        finally:
            conn.close()
        df["condition"] = df["condition"].map(lambda c, names=names: names.get(c, c))
        if len(study.paths) > 1:
            df.insert(0, "run", path.name)
        parts.append(df)
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def frames(*paths: str | Path) -> dict[str, Any]:
    """{"episodes": DataFrame, "messages": ..., "verdicts": ...} for one or more databases."""
    study = Study.open(paths)
    return {t: frame(study, t) for t in TABLES}


def episodes(*paths: str | Path) -> Any:
    return frame(Study.open(paths), "episodes")


def messages(*paths: str | Path) -> Any:
    return frame(Study.open(paths), "messages")


def verdicts(*paths: str | Path) -> Any:
    return frame(Study.open(paths), "verdicts")
