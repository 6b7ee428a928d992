"""`moot run`: a scenario, a resumed run or a replay of a stored one, on either executor."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moot.cli.options import add_limit, add_models, prepared, print_lines

if TYPE_CHECKING:
    from moot.workflows.run import Executor, Prepared


def register(sub: Any) -> dict[str, Any]:
    run = sub.add_parser("run", help="run a scenario file and store every word in SQLite")
    run.add_argument("scenario", nargs="?", help="scenario YAML file")
    run.add_argument("--resume", metavar="RUN.db", help="continue an interrupted or killed run (no scenario)")
    run.add_argument(
        "--replay", metavar="RUN.db",
        help="re-run a stored run from its stored outputs, calling no model (no scenario)",
    )  # fmt: skip
    run.add_argument("--out", help="database path (default: <output>/<name>-<time>.db)")
    add_limit(run)
    add_models(run)
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--tui", action="store_true", help="watch the run live in the terminal UI")
    run.add_argument("--no-cache", action="store_true", help="call the models even for a cached request")
    run.add_argument(
        "--executor", choices=("local", "ray"), default="local",
        help="where episodes run: this process, or a Ray cluster (pip install 'moot[ray]')",
    )  # fmt: skip
    run.add_argument("--address", help="--executor ray: the cluster (default: start a local one)")
    run.add_argument("--yes", action="store_true", help="run even when the estimated cost is above the limit")
    run.add_argument(
        "--confirm-above", type=float, default=1.0, metavar="USD",
        help="ask before a run estimated to cost more than this (default: 1.0)",
    )  # fmt: skip
    return {"run": cmd_run}


def cmd_run(args: argparse.Namespace) -> int:
    from moot.cli.progress import ConsoleProgress
    from moot.errors import ConfigError
    from moot.workflows.run import Interrupted, check_keys, locate, plan_resume

    scenario_given = any((args.scenario, args.limit, args.model, args.no_cache))
    if args.resume and (scenario_given or args.out or args.replay):
        raise ConfigError("--resume takes only the database: the run keeps its scenario")
    if args.replay and scenario_given:
        raise ConfigError("--replay takes only the database (and --out): the run keeps its scenario")
    executor = _executor(args)
    progress = None if args.quiet or args.tui else ConsoleProgress()
    try:
        if args.replay:
            from moot.workflows.replay import replay

            summary = replay(args.replay, out=args.out, progress=progress)
        elif args.resume:
            summary = _play(executor, args, *plan_resume(args.resume), progress)
        else:
            if not args.scenario:
                raise ConfigError("run: give a scenario file (or --resume RUN.db)")
            prep = prepared(args, cache=False if args.no_cache else None)
            check_keys(prep)  # before the estimate: a missing key is one line, not failed episodes
            if not _confirmed(args, prep):
                print("moot: not run", file=sys.stderr)
                return 1
            summary = _play(executor, args, prep, *locate(prep, args.out), progress)
    except Interrupted as exc:
        print(f"\nmoot: {exc}", file=sys.stderr)
        return 130
    print_lines(summary.lines())
    return 1 if summary.failed else 0


def _executor(args: argparse.Namespace) -> Executor:
    from moot.errors import ConfigError

    if args.executor == "local":
        if args.address:
            raise ConfigError("--address goes with --executor ray")
        from moot.workflows.run import LocalExecutor

        return LocalExecutor()
    if args.tui:
        raise ConfigError("--tui watches a local run; with --executor ray, use moot watch RUN.db")
    if args.replay:
        raise ConfigError("--replay calls no model: it runs locally (no --executor)")
    from moot.executors.ray_exec import RayExecutor, RayOptions

    return RayExecutor(RayOptions(address=args.address))


def _play(executor: Executor, args: argparse.Namespace, prep: Prepared, path: Path, resume: bool, progress: Any) -> Any:
    """The run itself: on the executor, or as a task of the live view (`--tui`), where
    people in seats take their turns in this terminal."""
    if not args.tui:
        return executor.run(prep, path, resume, progress)
    from moot.tui.human import has_people

    if has_people(prep):
        from moot.tui.human import run_with_tui
    else:
        from moot.tui.watch import run_with_tui
    return run_with_tui(prep, path, resume)


def _confirmed(args: argparse.Namespace, prep: Prepared) -> bool:
    """Show the plan's estimate; above --confirm-above dollars, ask (or, with no terminal to
    ask at, refuse unless --yes)."""
    from moot.errors import ConfigError
    from moot.workflows.plan import make_plan

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
