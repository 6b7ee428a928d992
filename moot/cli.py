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
    run.add_argument(
        "--no-cache", action="store_true", help="call the models even for a cached request"
    )
    run.add_argument(
        "--executor", choices=("local", "ray"), default="local",
        help="where episodes run: this process, or a Ray cluster (pip install 'moot[ray]')",
    )  # fmt: skip
    run.add_argument("--address", help="--executor ray: the cluster (default: start a local one)")

    validate = sub.add_parser("validate", help="check a scenario file without running it")
    validate.add_argument("scenario", help="scenario YAML file")

    sub.add_parser("protocols", help="list the built-in protocols")

    imp = sub.add_parser("import", help="import published transcripts into a run database")
    imp.add_argument("format", help="nyu-debate or khan-csv")
    imp.add_argument("path", help="the dataset's file or folder")
    imp.add_argument("--out", required=True, metavar="RUN.db", help="database (made if new; re-importing adds nothing twice)")

    merge = sub.add_parser("merge", help="merge shard databases of one run into a run database")
    merge.add_argument("out", metavar="OUT.db", help="the run database (made if new)")
    merge.add_argument("shards", nargs="+", metavar="SHARD.db", help="one transaction each")

    graph = sub.add_parser("graph", help="print a protocol's graph as Mermaid (or DOT)")
    graph.add_argument("protocol", help="a built-in protocol name or a scenario file")
    graph.add_argument("--dot", action="store_true", help="Graphviz DOT instead of Mermaid")
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
    from moot.run import Interrupted, apply_overrides, resume_run, run_scenario
    from moot.scenario.load import load_file

    progress = None if args.quiet else ConsoleProgress()
    if args.executor == "ray":
        from moot.executors import ray_exec

        resume_run, run_scenario = ray_exec.on_ray(args.address)
    elif args.address:
        raise ConfigError("--address goes with --executor ray")
    try:
        if args.resume:
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


COMMANDS = {
    "run": cmd_run,
    "import": cmd_import,
    "merge": cmd_merge,
    "validate": cmd_validate,
    "protocols": cmd_protocols,
    "graph": cmd_graph,
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
