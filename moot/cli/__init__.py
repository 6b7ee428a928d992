"""The `moot` command: one parser, one module per family of commands, each a thin veneer
over the library.

Only argparse and the standard library load at start-up; each command imports what it needs,
so `moot --help` stays fast (litellm alone takes ~2.5 s to import). A command is a function of
the parsed arguments returning the exit code; a `ConfigError` anywhere below is bad input:
one line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from moot.cli import analysis, runs, scenarios, stored, views, web

Command = Callable[[argparse.Namespace], int]
FAMILIES = (runs, scenarios, stored, views, analysis, web)  # the order `moot --help` lists them in


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    from moot import __version__

    parser = argparse.ArgumentParser(
        prog="moot",
        description="Multi-agent debate and simulation for scalable-oversight research.",
    )
    parser.add_argument("--version", action="version", version=f"moot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands: dict[str, Command] = {}
    for family in FAMILIES:
        commands.update(family.register(sub))
    return parser, commands


COMMANDS: dict[str, Command] = build_parser()[1]


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from moot.errors import ConfigError

    try:
        return commands[args.command](args)
    except ConfigError as exc:
        print(f"moot: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("moot: interrupted", file=sys.stderr)
        return 130
