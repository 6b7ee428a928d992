"""Commands about a scenario before it runs: `validate`, `plan`, `graph`, `protocols`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from moot.cli.options import add_limit, add_models, prepared, print_lines


def register(sub: Any) -> dict[str, Any]:
    validate = sub.add_parser("validate", help="check a scenario file without running it")
    validate.add_argument("scenario", help="scenario YAML file")

    plan = sub.add_parser("plan", help="episodes, calls, tokens, cost and time of a scenario, before running it")
    plan.add_argument("scenario", help="scenario YAML file")
    add_limit(plan, "plan")
    add_models(plan)

    graph = sub.add_parser("graph", help="print a protocol's graph as Mermaid (or DOT)")
    graph.add_argument("protocol", help="a built-in protocol name or a scenario file")
    graph.add_argument("--dot", action="store_true", help="Graphviz DOT instead of Mermaid")

    sub.add_parser("protocols", help="list the built-in protocols")
    return {"validate": cmd_validate, "plan": cmd_plan, "graph": cmd_graph, "protocols": cmd_protocols}


def cmd_validate(args: argparse.Namespace) -> int:
    from moot.scenario.load import load_file

    scenario, _ = load_file(args.scenario)
    if scenario.sweep:
        cells = scenario.cells()
        print(f"{args.scenario}: ok ({scenario.name}: a sweep of {len(cells)} cells)")
        for cell in cells:
            print(f"  {cell.name}")
    else:
        print(f"{args.scenario}: ok ({scenario.name}: {scenario.protocol.name}, {scenario.protocol.rounds} rounds)")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from moot.workflows.plan import make_plan

    plan = make_plan(prepared(args))
    print_lines(plan.lines())
    return 0 if plan.ok else 1


def cmd_graph(args: argparse.Namespace) -> int:
    from moot.errors import ConfigError
    from moot.protocols import registry, render
    from moot.scenario.model import ProtocolConfig

    target = args.protocol
    if target.endswith((".yaml", ".yml")) or Path(target).is_file():
        from moot.scenario.load import load_file

        config = load_file(target)[0].protocol
    elif target in registry.DESCRIPTIONS and target != "custom":
        config = ProtocolConfig(name=target)
    else:
        names = ", ".join(n for n in registry.DESCRIPTIONS if n != "custom")
        raise ConfigError(f"{target}: not a protocol ({names}) or a scenario file")
    protocol = registry.build_protocol(config)
    print(render.dot(protocol) if args.dot else render.mermaid(protocol))
    return 0


def cmd_protocols(args: argparse.Namespace) -> int:
    from moot.protocols.registry import DESCRIPTIONS

    for name, text in DESCRIPTIONS.items():
        print(f"{name:<12} {text}")
    return 0
