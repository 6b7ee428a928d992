"""Options several commands share, and the one way a command loads its scenario."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moot.workflows.run import Prepared


def model_override(text: str) -> tuple[str, str]:
    role, sep, model = text.partition("=")
    if not sep or not role:
        raise argparse.ArgumentTypeError(f"expected ROLE=MODEL, got {text!r}")
    return role, model


def add_models(parser: argparse.ArgumentParser, what: str = "") -> None:
    parser.add_argument(
        "--model", action="append", type=model_override, default=[], metavar="ROLE=MODEL",
        help=f"fill a role or seat with another model{what}, e.g. judge=openai/gpt-4o-mini",
    )  # fmt: skip


def add_limit(parser: argparse.ArgumentParser, verb: str = "run") -> None:
    parser.add_argument("--limit", type=int, help=f"{verb} only the first N questions")


def prepared(args: argparse.Namespace, *, cache: bool | None = None) -> Prepared:
    """The command's scenario, loaded, overridden (`--limit`, `--model`) and prepared once:
    the same object flows to the plan, the confirmation and the run."""
    from moot.scenario.load import load_file
    from moot.workflows.run import apply_overrides, prepare

    scenario, text = load_file(args.scenario)
    scenario = apply_overrides(scenario, limit=args.limit, models=dict(args.model), cache=cache)
    return prepare(scenario, text, Path(args.scenario).resolve().parent)


def print_lines(lines: Any) -> None:
    print("\n".join(lines))
