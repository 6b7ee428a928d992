"""The `moot` command: a thin veneer over the library.

Only argparse and the standard library load at start-up; each command imports what it needs,
so `moot --help` stays fast (litellm alone takes ~2.5 s to import).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _model_override(text: str) -> tuple[str, str]:
    role, sep, model = text.partition("=")
    if not sep or not role:
        raise argparse.ArgumentTypeError(f"expected ROLE=MODEL, got {text!r}")
    return role, model


def build_parser() -> argparse.ArgumentParser:
    from moot import __version__

    parser = argparse.ArgumentParser(
        prog="moot",
        description="Multi-agent debate and simulation for scalable-oversight research.",
    )
    parser.add_argument("--version", action="version", version=f"moot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a scenario file and store every word in SQLite")
    run.add_argument("scenario", nargs="?", help="scenario YAML file")
    run.add_argument(
        "--resume", metavar="RUN.db", help="continue an interrupted or killed run (no scenario)"
    )
    run.add_argument(
        "--replay", metavar="RUN.db",
        help="re-run a stored run from its stored outputs, calling no model (no scenario)",
    )  # fmt: skip
    run.add_argument("--out", help="database path (default: <output>/<name>-<time>.db)")
    run.add_argument("--limit", type=int, help="run only the first N questions")
    run.add_argument(
        "--model",
        action="append",
        type=_model_override,
        default=[],
        metavar="ROLE=MODEL",
        help="fill a role or seat with another model, e.g. judge=openai/gpt-4o-mini",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar (nor the plan line)")
    run.add_argument("--yes", action="store_true", help="run even when the estimated cost is above the limit")
    run.add_argument(
        "--confirm-above", type=float, default=1.0, metavar="USD",
        help="ask before a run estimated to cost more than this (default: 1.0)",
    )  # fmt: skip
    run.add_argument(
        "--no-cache", action="store_true", help="call the models even for a cached request"
    )

    validate = sub.add_parser("validate", help="check a scenario file without running it")
    validate.add_argument("scenario", help="scenario YAML file")

    sub.add_parser("protocols", help="list the built-in protocols")

    graph = sub.add_parser("graph", help="print a protocol's graph as Mermaid (or DOT)")
    graph.add_argument("protocol", help="a built-in protocol name or a scenario file")
    graph.add_argument("--dot", action="store_true", help="Graphviz DOT instead of Mermaid")
    plan = sub.add_parser("plan", help="episodes, calls, tokens, cost and time of a scenario, before running it")
    plan.add_argument("scenario", help="scenario YAML file")
    plan.add_argument("--limit", type=int, help="plan only the first N questions")
    plan.add_argument(
        "--model", action="append", type=_model_override, default=[], metavar="ROLE=MODEL",
        help="fill a role or seat with another model",
    )  # fmt: skip
    _workflow_parsers(sub)
    return parser


def _workflow_parsers(sub: argparse._SubParsersAction) -> None:
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


def cmd_validate(args: argparse.Namespace) -> int:
    from moot.scenario.load import load_file

    scenario, _ = load_file(args.scenario)
    if scenario.sweep:
        cells = scenario.cells()
        print(f"{args.scenario}: ok ({scenario.name}: a sweep of {len(cells)} cells)")
        for cell in cells:
            print(f"  {cell.name}")
    else:
        print(f"{args.scenario}: ok ({scenario.name}: {scenario.protocol.name}, "
              f"{scenario.protocol.rounds} rounds)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from moot.errors import ConfigError
    from moot.progress import ConsoleProgress
    from moot.run import Interrupted, apply_overrides, resume_run, run_scenario
    from moot.scenario.load import load_file

    progress = None if args.quiet else ConsoleProgress()
    try:
        if args.replay:
            from moot.replay import replay

            if args.scenario or args.resume or args.limit or args.model or args.no_cache:
                raise ConfigError("--replay takes only the database (and --out): the run keeps its scenario")
            summary = replay(args.replay, out=args.out, progress=progress)
        elif args.resume:
            if args.scenario or args.out or args.limit or args.model or args.no_cache:
                raise ConfigError("--resume takes only the database: the run keeps its scenario")
            summary = resume_run(args.resume, progress=progress)
        else:
            if not args.scenario:
                raise ConfigError("run: give a scenario file (or --resume RUN.db)")
            scenario, text = load_file(args.scenario)
            scenario = apply_overrides(
                scenario,
                limit=args.limit,
                models=dict(args.model),
                cache=False if args.no_cache else None,
            )
            if not _confirmed(args, scenario, text):
                print("moot: not run", file=sys.stderr)
                return 1
            summary = run_scenario(
                scenario,
                text,
                base=Path(args.scenario).resolve().parent,
                out=args.out,
                progress=progress,
            )
    except Interrupted as exc:
        print(f"\nmoot: {exc}", file=sys.stderr)
        return 130
    print("\n".join(summary.lines()))
    return 1 if summary.failed else 0


def _confirmed(args: argparse.Namespace, scenario: object, text: str) -> bool:
    """Show the plan's estimate; above --confirm-above dollars, ask (or, with no terminal to
    ask at, refuse unless --yes)."""
    from moot.errors import ConfigError
    from moot.plan import make_plan
    from moot.run import prepare

    try:
        plan = make_plan(prepare(scenario, text, Path(args.scenario).resolve().parent))  # type: ignore[arg-type]
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


def cmd_protocols(args: argparse.Namespace) -> int:
    from moot.protocols.registry import DESCRIPTIONS

    for name, text in DESCRIPTIONS.items():
        print(f"{name:<12} {text}")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from moot.errors import ConfigError
    from moot.protocols import registry, render
    from moot.scenario.model import ProtocolConfig

    target = args.protocol
    if target.endswith((".yaml", ".yml")) or Path(target).is_file():
        from moot.scenario.load import load_file

        config = load_file(target)[0].protocol
    elif target in registry.DESCRIPTIONS and target != "custom":
        config = ProtocolConfig(name=target)  # type: ignore[arg-type]
    else:
        names = ", ".join(n for n in registry.DESCRIPTIONS if n != "custom")
        raise ConfigError(f"{target}: not a protocol ({names}) or a scenario file")
    protocol = registry.build_protocol(config)
    print(render.dot(protocol) if args.dot else render.mermaid(protocol))
    return 0


COMMANDS = {
    "run": cmd_run,
    "validate": cmd_validate,
    "protocols": cmd_protocols,
    "graph": cmd_graph,
    "plan": cmd_plan,
    "rejudge": cmd_rejudge,
    "fork": cmd_fork,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from moot.errors import ConfigError

    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"moot: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("moot: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
