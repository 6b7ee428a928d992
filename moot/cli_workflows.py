"""The commands that work before a run and on stored runs: `moot plan`, `moot rejudge`,
`moot fork`, and `moot run`'s `--replay` and cost confirmation. Kept beside `moot.cli`
(which registers them) so each stays a thin veneer over its library module."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from collections.abc import Callable
from typing import Any


def with_parsers(build: Callable[[], argparse.ArgumentParser]) -> Callable[[], argparse.ArgumentParser]:
    """`moot.cli.build_parser`, with these commands' parsers and `run`'s options added."""

    def build_parser() -> argparse.ArgumentParser:
        parser = build()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        add_parsers(sub, sub.choices["run"])
        return parser

    return build_parser


def add_parsers(sub: Any, run: argparse.ArgumentParser) -> None:
    from moot.cli import _model_override

    run.add_argument(
        "--replay", metavar="RUN.db",
        help="re-run a stored run from its stored outputs, calling no model (no scenario)",
    )  # fmt: skip
    run.add_argument("--yes", action="store_true", help="run even when the estimated cost is above the limit")
    run.add_argument(
        "--confirm-above", type=float, default=1.0, metavar="USD",
        help="ask before a run estimated to cost more than this (default: 1.0)",
    )  # fmt: skip

    plan = sub.add_parser("plan", help="episodes, calls, tokens, cost and time of a scenario, before running it")
    plan.add_argument("scenario", help="scenario YAML file")
    plan.add_argument("--limit", type=int, help="plan only the first N questions")
    plan.add_argument(
        "--model", action="append", type=_model_override, default=[], metavar="ROLE=MODEL",
        help="fill a role or seat with another model",
    )  # fmt: skip

    rejudge = sub.add_parser("rejudge", help="new judges over a stored run's transcripts")
    rejudge.add_argument("db", metavar="RUN.db", help="a run database")
    rejudge.add_argument(
        "--judge", action="append", default=[], metavar="MODEL",
        help="a judge model (repeat for a panel)",
    )  # fmt: skip
    rejudge.add_argument("--prompt", metavar="FILE", help="judge templates (YAML system:/turn:, or the turn as text)")
    rejudge.add_argument("--swap", action="store_true", help="also judge with the answers' order swapped")
    rejudge.add_argument("--concurrency", type=int, help="episodes judged at once (default: the run's)")

    fork = sub.add_parser("fork", help="copy a stored run up to a round, play the rest anew")
    fork.add_argument("db", metavar="RUN.db", help="the parent run's database")
    fork.add_argument("--from-round", type=int, metavar="K",
                      help="copy rounds 1..K from the parent; play the rest")  # fmt: skip
    fork.add_argument(
        "--model", action="append", type=_model_override, default=[], metavar="ROLE=MODEL",
        help="fill a role or seat with another model for the rounds played",
    )  # fmt: skip
    fork.add_argument("--episodes", metavar="IDS", help="only these episodes, e.g. 0-3,7")
    fork.add_argument("--out", help="database path (default: next to the parent, -forkK.db)")
    fork.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_run(args: argparse.Namespace) -> int:
    """`moot run`, with `--replay` and, before a new run, the plan's estimate (and a question
    above `--confirm-above`); everything else is `moot.cli.cmd_run`."""
    from moot import cli
    from moot.errors import ConfigError

    if args.replay:
        from moot.progress import ConsoleProgress
        from moot.replay import replay
        from moot.run import Interrupted

        if args.scenario or args.resume or args.limit or args.model or args.no_cache:
            raise ConfigError("--replay takes only the database (and --out): the run keeps its scenario")
        try:
            summary = replay(args.replay, out=args.out, progress=None if args.quiet else ConsoleProgress())
        except Interrupted as exc:
            print(f"\nmoot: {exc}", file=sys.stderr)
            return 130
        print("\n".join(summary.lines()))
        return 1 if summary.failed else 0
    if args.scenario and not args.resume and not _confirmed(args):
        print("moot: not run", file=sys.stderr)
        return 1
    return cli.cmd_run(args)


def _confirmed(args: argparse.Namespace) -> bool:
    """Show the plan's estimate; above --confirm-above dollars, ask (or, with no terminal to
    ask at, refuse unless --yes)."""
    from moot.errors import ConfigError
    from moot.plan import make_plan
    from moot.run import apply_overrides, check_keys, prepare
    from moot.scenario.load import load_file

    scenario, text = load_file(args.scenario)
    scenario = apply_overrides(
        scenario, limit=args.limit, models=dict(args.model), cache=False if args.no_cache else None
    )
    prep = prepare(scenario, text, Path(args.scenario).resolve().parent)
    check_keys(prep)
    try:
        plan = make_plan(prep)
    except ConfigError:
        raise  # bad input: the run would refuse it too
    except Exception as exc:  # the estimate is a service: its failure must not block a run
        if not args.yes:
            print(f"moot: warning: no cost estimate ({type(exc).__name__}: {exc})", file=sys.stderr)
        return True
    if not args.quiet:
        print(plan.summary(), file=sys.stderr)
        for c in plan.checks:
            for problem in c.problems:
                print(f"moot: warning: {c.model}: {problem}", file=sys.stderr)
    if args.yes or plan.known_cost <= args.confirm_above:
        return True
    ask = f"estimated cost ${plan.known_cost:.2f} is above ${args.confirm_above:.2f}"
    if not sys.stdin.isatty():
        raise ConfigError(f"{ask}; pass --yes to run it (moot plan {args.scenario} shows the estimate)")
    if args.quiet:
        print(plan.summary(), file=sys.stderr)
    answer = input(f"{ask}. Run it? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def cmd_plan(args: argparse.Namespace) -> int:
    from moot.plan import make_plan
    from moot.run import apply_overrides, prepare
    from moot.scenario.load import load_file

    scenario, text = load_file(args.scenario)
    scenario = apply_overrides(scenario, limit=args.limit, models=dict(args.model))
    plan = make_plan(prepare(scenario, text, Path(args.scenario).resolve().parent))
    print("\n".join(plan.lines()))
    return 0 if plan.ok else 1


def cmd_rejudge(args: argparse.Namespace) -> int:
    from moot.errors import ConfigError
    from moot.rejudge import rejudge

    if args.concurrency is not None and args.concurrency < 1:
        raise ConfigError("--concurrency: must be at least 1")
    summary = rejudge(args.db, args.judge, prompt=args.prompt, swap=args.swap, concurrency=args.concurrency)
    print("\n".join(summary.lines()))
    return 1 if any(j.failed for j in summary.judges) else 0


def cmd_fork(args: argparse.Namespace) -> int:
    from moot.errors import ConfigError
    from moot.progress import ConsoleProgress
    from moot.replay import fork
    from moot.run import Interrupted

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
    print("\n".join(summary.lines()))
    print(f"parent     {args.db} (rounds 1-{args.from_round} copied)")
    return 1 if summary.failed else 0


COMMANDS = {"run": cmd_run, "plan": cmd_plan, "rejudge": cmd_rejudge, "fork": cmd_fork}
