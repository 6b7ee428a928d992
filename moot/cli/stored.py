"""Commands that make runs from stored ones: `import`, `merge`, `rejudge`, `fork`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from moot.cli.options import add_models, print_lines


def register(sub: Any) -> dict[str, Any]:
    imp = sub.add_parser("import", help="import published transcripts into a run database")
    imp.add_argument("format", help="nyu-debate, khan-csv or moot-jsonl")
    imp.add_argument("path", help="the dataset's file or folder")
    imp.add_argument("--out", required=True, metavar="RUN.db", help="database (made if new; re-importing adds nothing twice)")

    merge = sub.add_parser("merge", help="merge shard databases of one run into a run database")
    merge.add_argument("out", metavar="OUT.db", help="the run database (made if new)")
    merge.add_argument("shards", nargs="+", metavar="SHARD.db", help="one transaction each")

    rejudge = sub.add_parser("rejudge", help="new judges over a stored run's transcripts")
    rejudge.add_argument("db", metavar="RUN.db", help="a run database")
    rejudge.add_argument(
        "--judge", action="append", default=[], metavar="MODEL", help="a judge model (repeat for a panel)"
    )
    rejudge.add_argument("--prompt", metavar="FILE", help="judge templates (YAML system:/turn:, or the turn as text)")
    rejudge.add_argument("--swap", action="store_true", help="also judge with the answers' order swapped")
    rejudge.add_argument("--concurrency", type=int, help="episodes judged at once (default: the run's)")

    fork = sub.add_parser("fork", help="copy a stored run up to a round, play the rest anew")
    fork.add_argument("db", metavar="RUN.db", help="the parent run's database")
    fork.add_argument("--from-round", type=int, metavar="K", help="copy rounds 1..K from the parent; play the rest")
    add_models(fork, " for the rounds played")
    fork.add_argument("--episodes", metavar="IDS", help="only these episodes, e.g. 0-3,7")
    fork.add_argument("--out", help="database path (default: next to the parent, -forkK.db)")
    fork.add_argument("--quiet", action="store_true", help="no progress bar")
    return {"import": cmd_import, "merge": cmd_merge, "rejudge": cmd_rejudge, "fork": cmd_fork}


def cmd_import(args: argparse.Namespace) -> int:
    from moot.importers import import_path

    print_lines(import_path(args.format, args.path, args.out).lines())
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from moot.store.merge import merge_files

    m = merge_files(args.out, args.shards)
    print(f"{args.out}: merged {m.episodes} episodes ({m.done} done, {m.failed} failed), "
          f"skipped {m.skipped} already done, left out {m.unfinished} unfinished")  # fmt: skip
    return 0


def cmd_rejudge(args: argparse.Namespace) -> int:
    from moot.errors import ConfigError
    from moot.workflows.rejudge import rejudge

    if args.concurrency is not None and args.concurrency < 1:
        raise ConfigError("--concurrency: must be at least 1")
    summary = rejudge(args.db, args.judge, prompt=args.prompt, swap=args.swap, concurrency=args.concurrency)
    print_lines(summary.lines())
    return 1 if any(j.failed for j in summary.judges) else 0


def cmd_fork(args: argparse.Namespace) -> int:
    from moot.cli.progress import ConsoleProgress
    from moot.errors import ConfigError
    from moot.workflows.replay import fork
    from moot.workflows.run import Interrupted

    if args.from_round is None:
        raise ConfigError("fork: give --from-round K (copy rounds 1..K, play the rest)")
    try:
        summary = fork(
            args.db, args.from_round, models=dict(args.model), episodes=args.episodes,
            out=args.out, progress=None if args.quiet else ConsoleProgress(),
        )  # fmt: skip
    except Interrupted as exc:
        print(f"\nmoot: {exc}", file=sys.stderr)
        return 130
    print_lines(summary.lines())
    print(f"parent     {args.db} (rounds 1-{args.from_round} copied)")
    return 1 if summary.failed else 0
