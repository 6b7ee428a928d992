"""Analysis a paper can cite, and the runs as files: `analyze`, `export`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--where", action="append", default=[], metavar="KEY=VALUE",
        help="only episodes whose attribute KEY is VALUE (e.g. included_in_paper=true)",
    )  # fmt: skip


def register(sub: Any) -> dict[str, Any]:
    analyze = sub.add_parser("analyze", help="judge accuracy with intervals, tests, calibration, ratings, costs")
    analyze.add_argument("db", nargs="+", metavar="RUN.db", help="one or more run databases")
    analyze.add_argument("--out", metavar="DIR", help="also write the tables and PNG plots here")
    analyze.add_argument("--format", default="markdown", choices=("markdown", "csv", "json"), help="table format")
    analyze.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples (1000)")
    analyze.add_argument("--seed", type=int, default=0, help="seed of the resampling (0)")
    add_where(analyze)
    analyze.add_argument("--judge", metavar="LABEL", help="read only this judge's verdicts (e.g. judge)")
    analyze.add_argument(
        "--ties", default="invalid", metavar="invalid|wrong",  # checked by the analysis: one line
        help="a 50/50 ruling: left out of accuracy and calibration (invalid) or a wrong verdict (wrong, as Michael et al. 2023)",
    )  # fmt: skip
    analyze.add_argument(
        "--cluster", default="auto", metavar="source|question|auto",
        help="what the bootstrap resamples: passages (source), questions, or passages when several questions share one (auto)",
    )  # fmt: skip
    analyze.add_argument("--no-plots", action="store_true", help="write no PNG files")
    analyze.add_argument(
        "--by", metavar="PARAM[,PARAM]",
        help="pool a sweep's cells by these parameters, e.g. --by protocol.name (seeds pooled)",
    )  # fmt: skip

    export = sub.add_parser("export", help="episodes, messages and verdicts as files")
    export.add_argument("db", nargs="+", metavar="RUN.db", help="one or more run databases")
    export.add_argument(
        "--format", default="jsonl", choices=("jsonl", "csv", "parquet", "html", "preference", "trajectories"),
        help="file format, one HTML page of the transcripts, or training data: preference pairs or whole trajectories (JSONL)",
    )  # fmt: skip
    export.add_argument("--out", metavar="DIR", help="directory (default: RUN-export/ beside the db); for html also FILE.html")
    add_where(export)
    export.add_argument("--episodes", metavar="IDS", help="only these episodes, e.g. 3,5,10-20")
    export.add_argument(
        "--include-private", action="store_true",
        help="keep episodes marked not for publication (dataset.private, or a row's private attribute)",
    )  # fmt: skip
    return {"analyze": cmd_analyze, "export": cmd_export}


def cmd_analyze(args: argparse.Namespace) -> int:
    from moot.analysis.load import Scope, parse_where, scoped
    from moot.analysis.report import analyze, write

    by = [p.strip() for p in args.by.split(",") if p.strip()] if args.by else []
    where = parse_where(args.where)
    report = analyze(
        args.db, bootstrap=args.bootstrap, seed=args.seed, by=by, where=where, judge=args.judge,
        ties=args.ties, cluster=args.cluster,
    )  # fmt: skip
    print(report.render(args.format), end="")
    if args.out:
        with scoped(Scope(where, args.judge)):  # plots read the same part of the databases
            written = write(report, args.out, args.format, plots=not args.no_plots)
        print(f"\nwrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from moot.analysis.export import export_files
    from moot.analysis.load import parse_episodes, parse_where

    first = Path(args.db[0])
    out = args.out or first.with_name(first.stem + "-export")
    written, private = export_files(
        args.db, out, args.format, where=parse_where(args.where), episodes=parse_episodes(args.episodes),
        include_private=args.include_private,
    )  # fmt: skip
    for path in written:
        print(path)
    if private.count:  # said where a person sees it, whichever way it went
        n = f"{private.count} episode{'s' * (private.count != 1)}"
        print(f"included {n} marked not for publication (--include-private): do not post these files"
              if args.include_private else private.sentence(), file=sys.stderr)  # fmt: skip
    return 0
