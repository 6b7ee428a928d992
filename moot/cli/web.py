"""The web study's commands: `serve` and `study` (participants' links)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moot.cli.options import add_limit, add_models, prepared

if TYPE_CHECKING:
    from moot.web.live_run import LiveRun


def register(sub: Any) -> dict[str, Any]:
    serve = sub.add_parser("serve", help="run a human study on the web over a run database, or a scenario's run")
    serve.add_argument(
        "target", metavar="RUN.db|SCENARIO.yaml",
        help="a run's database (stored episodes to judge, a live run's seats), or a scenario to run"
             " here while people take its seats (model: human) and judge its finished episodes",
    )  # fmt: skip
    serve.add_argument("--out", help="with a scenario: the run's database (default: <output>/<name>-<time>.db)")
    add_limit(serve)
    add_models(serve, " (with a scenario)")
    serve.add_argument("--yes", action="store_true", help="with a scenario: run even above the cost limit")
    serve.add_argument(
        "--confirm-above", type=float, default=1.0, metavar="USD",
        help="with a scenario: ask before a run estimated to cost more than this (default: 1.0)",
    )  # fmt: skip
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--k", type=int, metavar="K", help="distinct people per episode (default 2)")
    serve.add_argument(
        "--per-person", type=int, metavar="N", help="episodes each person judges (default: all they may)"
    )
    serve.add_argument("--scoring", choices=("log", "quadratic"), help="the score in feedback (default log)")
    serve.add_argument("--time-limit", type=float, metavar="S", help="seconds per offline verdict")
    serve.add_argument("--public-url", metavar="URL", help="the address people reach it by (behind a reverse proxy)")
    serve.add_argument("--log", action="store_true", help="log every request")

    study = sub.add_parser("study", help="a web study's participants and links")
    what = study.add_subparsers(dest="study_command", metavar="WHAT", required=True)
    add = what.add_parser("add-participants", help="make participants and print their personal links")
    add.add_argument("db", metavar="RUN.db")
    add.add_argument("-n", type=int, default=1, help="how many (default 1)")
    add.add_argument("--label", help="your own note on them (stored; nothing else names a person)")
    add.add_argument("--seat", help="a live seat they take (e.g. judge)")
    add.add_argument("--url", default="http://127.0.0.1:8000", help="the server's address, for the links")
    crowd = what.add_parser("crowd-link", help="a link for a crowd platform (PROLIFIC_PID) and its completion code")
    crowd.add_argument("db", metavar="RUN.db")
    crowd.add_argument("--completion-code", required=True, metavar="CODE")
    crowd.add_argument("--url", default="http://127.0.0.1:8000")
    return {"serve": cmd_serve, "study": cmd_study}


def cmd_serve(args: argparse.Namespace) -> int:
    from moot.errors import ConfigError
    from moot.web.server import serve

    for name in ("k", "per_person", "port"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "port" else 1):
            raise ConfigError(f"--{name.replace('_', '-')} {value}: must be at least 1")
    overrides = {"k": args.k, "per_person": args.per_person, "scoring": args.scoring, "time_limit": args.time_limit}
    common = {"host": args.host, "port": args.port, "overrides": overrides, "public_url": args.public_url,
              "log": args.log}  # fmt: skip
    if not is_scenario(args.target):
        given = [f for f, v in (("--out", args.out), ("--limit", args.limit), ("--model", args.model)) if v]
        if given:
            raise ConfigError(f"{given[0]} goes with a scenario; {args.target} is a run database")
        from moot.store.reader import check_database

        return serve(check_database(args.target), **common)
    run = live_run(args)
    if run is None:
        return 1
    return serve(run.path, run=run, **common)


def is_scenario(target: str) -> bool:
    return Path(target).suffix.lower() in (".yaml", ".yml")


def live_run(args: argparse.Namespace) -> LiveRun | None:
    """The scenario's run, prepared as `moot run` prepares it (overrides, keys, the cost
    estimate and where it is stored), not started yet; None if the person declined it."""
    import sys

    from moot.agents.human import is_human
    from moot.cli.runs import _confirmed
    from moot.web.live_run import LiveRun
    from moot.workflows.run import check_keys, locate

    args.scenario, args.quiet = args.target, False
    prep = prepared(args)
    check_keys(prep)
    if not _confirmed(args, prep):
        print("moot: not run", file=sys.stderr)
        return None
    path, resume = locate(prep, args.out)
    people = sorted({seat for cell in prep.cells for seat, cfg in cell.seat_configs.items() if is_human(cfg.model)})
    if people:
        print(f"moot: people's seats: {', '.join(people)} (links: moot study add-participants {path}"
              f" --seat {people[0]}, or the admin's page)", file=sys.stderr)  # fmt: skip
    return LiveRun(prep, path, resume)


def cmd_study(args: argparse.Namespace) -> int:
    from moot.errors import ConfigError
    from moot.store.reader import check_database
    from moot.store.study import StudyTables

    tables = StudyTables(check_database(args.db))
    url = args.url.rstrip("/")
    try:
        if args.study_command == "add-participants":
            if args.n < 1 or args.n > 10_000:
                raise ConfigError(f"-n {args.n}: between 1 and 10000")
            for _ in range(args.n):
                pid, token = tables.add_participant(args.label, args.seat)
                print(f"{pid}\t{url}/p/{token}/")
        else:
            token = tables.new_crowd_token(args.completion_code)
            print(f"{url}/crowd/{token}?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}")
    finally:
        tables.close()
    return 0
