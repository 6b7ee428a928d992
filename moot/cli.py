"""The `moot` command: a thin veneer over the library.

Only argparse and the standard library load at start-up; each command imports what it needs,
so `moot --help` stays fast (litellm alone takes ~2.5 s to import).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moot.run import Prepared, RunSummary


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
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--tui", action="store_true", help="watch the run live in the terminal UI")
    run.add_argument(
        "--no-cache", action="store_true", help="call the models even for a cached request"
    )
    run.add_argument(
        "--executor", choices=("local", "ray"), default="local",
        help="where episodes run: this process, or a Ray cluster (pip install 'moot[ray]')",
    )  # fmt: skip
    run.add_argument("--address", help="--executor ray: the cluster (default: start a local one)")

    watch = sub.add_parser("watch", help="watch a run live (from another terminal)")
    watch.add_argument("db", metavar="RUN.db", help="the run's database")

    replay = sub.add_parser("replay", help="browse, filter and step through stored transcripts")
    replay.add_argument("path", metavar="RUN.db|DIR", help="a run's database, or a directory of runs")

    join = sub.add_parser("join", help="take a person's seat in a run another process is executing")
    join.add_argument("db", metavar="RUN.db", help="the run's database")
    join.add_argument("--seat", required=True, help="the seat to take, e.g. judge or debater_a")

    judge = sub.add_parser("judge", help="judge stored transcripts yourself, round by round")
    judge.add_argument("db", metavar="RUN.db", help="a run's (or an imported dataset's) database")
    judge.add_argument("--as", dest="name", required=True, metavar="NAME", help="your verdicts are stored as judge human:NAME")
    judge.add_argument("--seat", help="whose view to judge from (default: the judge seat)")
    judge.add_argument("--time-limit", type=float, metavar="S", help="seconds per round")

    validate = sub.add_parser("validate", help="check a scenario file without running it")
    validate.add_argument("scenario", help="scenario YAML file")

    sub.add_parser("protocols", help="list the built-in protocols")

    imp = sub.add_parser("import", help="import published transcripts into a run database")
    imp.add_argument("format", help="nyu-debate, khan-csv or moot-jsonl")
    imp.add_argument("path", help="the dataset's file or folder")
    imp.add_argument("--out", required=True, metavar="RUN.db", help="database (made if new; re-importing adds nothing twice)")

    merge = sub.add_parser("merge", help="merge shard databases of one run into a run database")
    merge.add_argument("out", metavar="OUT.db", help="the run database (made if new)")
    merge.add_argument("shards", nargs="+", metavar="SHARD.db", help="one transaction each")

    graph = sub.add_parser("graph", help="print a protocol's graph as Mermaid (or DOT)")
    graph.add_argument("protocol", help="a built-in protocol name or a scenario file")
    graph.add_argument("--dot", action="store_true", help="Graphviz DOT instead of Mermaid")

    analyze = sub.add_parser(
        "analyze", help="judge accuracy with intervals, tests, calibration, ratings, costs"
    )
    analyze.add_argument("db", nargs="+", metavar="RUN.db", help="one or more run databases")
    analyze.add_argument("--out", metavar="DIR", help="also write the tables and PNG plots here")
    analyze.add_argument(
        "--format", default="markdown", choices=("markdown", "csv", "json"), help="table format"
    )
    analyze.add_argument(
        "--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples (1000)"
    )
    analyze.add_argument("--seed", type=int, default=0, help="seed of the resampling (0)")
    analyze.add_argument(
        "--where", action="append", default=[], metavar="KEY=VALUE",
        help="only episodes whose attribute KEY is VALUE (e.g. included_in_paper=true)",
    )  # fmt: skip
    analyze.add_argument("--judge", metavar="LABEL", help="read only this judge's verdicts (e.g. judge)")
    analyze.add_argument("--no-plots", action="store_true", help="write no PNG files")
    analyze.add_argument(
        "--by",
        metavar="PARAM[,PARAM]",
        help="pool a sweep's cells by these parameters, e.g. --by protocol.name (seeds pooled)",
    )

    export = sub.add_parser("export", help="episodes, messages and verdicts as files")
    export.add_argument("db", nargs="+", metavar="RUN.db", help="one or more run databases")
    export.add_argument(
        "--format", default="jsonl",
        choices=("jsonl", "csv", "parquet", "preference", "trajectories"),
        help="file format, or training data: preference pairs or whole trajectories (JSONL)",
    )  # fmt: skip
    export.add_argument("--out", metavar="DIR", help="directory (default: RUN-export/ beside the db)")
    return parser


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
    from moot.run import Interrupted, apply_overrides, plan, plan_resume, resume_run, run_scenario
    from moot.scenario.load import load_file

    progress = None if args.quiet or args.tui else ConsoleProgress()
    if args.executor == "ray":
        if args.tui:
            raise ConfigError("--tui watches a local run; with --executor ray, use moot watch RUN.db")
        from moot.executors import ray_exec

        resume_run, run_scenario = ray_exec.on_ray(args.address)
    elif args.address:
        raise ConfigError("--address goes with --executor ray")
    try:
        if args.resume:
            if args.scenario or args.out or args.limit or args.model or args.no_cache:
                raise ConfigError("--resume takes only the database: the run keeps its scenario")
            if args.tui:
                summary = _run_live(*plan_resume(args.resume))
            else:
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
            base = Path(args.scenario).resolve().parent
            if args.tui:
                summary = _run_live(*plan(scenario, text, base=base, out=args.out))
            else:
                summary = run_scenario(scenario, text, base=base, out=args.out, progress=progress)
    except Interrupted as exc:
        print(f"\nmoot: {exc}", file=sys.stderr)
        return 130
    print("\n".join(summary.lines()))
    return 1 if summary.failed else 0


def _run_tui(prep: Prepared, path: Path, resume: bool) -> RunSummary:
    """`moot run --tui`: the run as a task of the live view's event loop."""
    from moot.tui.watch import run_with_tui

    return run_with_tui(prep, path, resume)


def cmd_watch(args: argparse.Namespace) -> int:
    from moot.tui.reader import check_database
    from moot.tui.watch import LiveApp

    LiveApp(check_database(args.db)).run()
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from moot.tui.replay import ReplayApp, check_replay_path

    ReplayApp(check_replay_path(args.path)).run()
    return 0


def _run_live(prep, path, resume):  # type: ignore[no-untyped-def]
    """`moot run --tui`; with people in seats, their turns come up in this terminal."""
    from moot.tui.human import has_people

    if has_people(prep):
        from moot.tui.human import run_with_tui

        return run_with_tui(prep, path, resume)
    return _run_tui(prep, path, resume)


def cmd_join(args: argparse.Namespace) -> int:
    from moot.tui.join import JoinApp
    from moot.tui.reader import check_database

    JoinApp(check_database(args.db), args.seat).run()
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    from moot.tui.join import JudgeApp
    from moot.tui.reader import check_database

    app = JudgeApp(check_database(args.db), args.name, seat=args.seat, time_limit=args.time_limit)
    app.run()
    print(f"{app.session.judged} verdicts stored as {app.session.label} in {args.db}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from moot.store.merge import merge_files

    m = merge_files(args.out, args.shards)
    print(f"{args.out}: merged {m.episodes} episodes ({m.done} done, {m.failed} failed), "
          f"skipped {m.skipped} already done, left out {m.unfinished} unfinished")
    return 0


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


def cmd_import(args: argparse.Namespace) -> int:
    from moot.importers import import_path

    summary = import_path(args.format, args.path, args.out)
    print("\n".join(summary.lines()))
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from moot.analysis.load import Scope, parse_where, scoped
    from moot.analysis.report import analyze, write

    by = [p.strip() for p in args.by.split(",") if p.strip()] if args.by else []
    where = parse_where(args.where)
    report = analyze(args.db, bootstrap=args.bootstrap, seed=args.seed, by=by, where=where, judge=args.judge)
    print(report.render(args.format), end="")
    if args.out:
        with scoped(Scope(where, args.judge)):  # plots read the same part of the databases
            written = write(report, args.out, args.format, plots=not args.no_plots)
        print(f"\nwrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from moot.analysis.export import export

    first = Path(args.db[0])
    out = args.out or first.with_name(first.stem + "-export")
    for path in export(args.db, out, args.format):
        print(path)
    return 0


COMMANDS = {
    "run": cmd_run,
    "import": cmd_import,
    "watch": cmd_watch,
    "replay": cmd_replay,
    "join": cmd_join,
    "judge": cmd_judge,
    "merge": cmd_merge,
    "validate": cmd_validate,
    "protocols": cmd_protocols,
    "graph": cmd_graph,
    "analyze": cmd_analyze,
    "export": cmd_export,
}
# plan, rejudge, fork, and run's --replay and --yes: their parsers and commands
from moot.cli_workflows import COMMANDS as _WORKFLOWS, with_parsers  # noqa: E402

COMMANDS.update(_WORKFLOWS)
build_parser = with_parsers(build_parser)


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
