"""Analysis of stored runs: the study's tables, plots and exports, from the database alone.

It reads databases read-only through the store's SQL views (`episode_verdicts`,
`episode_results`, `call_costs`), so `sqlite3` users get the same numbers. It never imports
the engine. Numbers need numpy; plots, DataFrames and Parquet need the `analysis` extra.

    from moot.analysis import analyze, frames
    report = analyze(["runs/qa.db", "runs/debate.db"])
    print(report.render("markdown"))
    frames("runs/debate.db")["episodes"]      # pandas DataFrames
"""

from __future__ import annotations

from moot.analysis.export import episodes, export, frames, messages, verdicts
from moot.analysis.report import Report, analyze, write

__all__ = ["Report", "analyze", "episodes", "export", "frames", "messages", "verdicts", "write"]
