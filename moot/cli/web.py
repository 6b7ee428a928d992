"""The web study's commands: `serve` and `study` (participants' links)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> dict[str, Any]:
    serve = sub.add_parser("serve", help="run a human study on the web over a run database")
    serve.add_argument("db", metavar="RUN.db", help="the run's database: stored episodes to judge, a live run's seats")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--k", type=int, metavar="K", help="distinct people per episode (default 2)")
    serve.add_argument("--per-person", type=int, metavar="N", help="episodes each person judges (default: all they may)")
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
    from moot.web.study import Study

    for name in ("k", "per_person", "port"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "port" else 1):
            raise ConfigError(f"--{name.replace('_', '-')} {value}: must be at least 1")
    config = None
    if any(v is not None for v in (args.k, args.per_person, args.scoring, args.time_limit)):
        stored = Study(args.db)  # start from the study's stored settings
        config = stored.config
        stored.close()
        config.k = args.k or config.k
        config.per_person = args.per_person if args.per_person is not None else config.per_person
        config.scoring = args.scoring or config.scoring
        config.time_limit = args.time_limit if args.time_limit is not None else config.time_limit
    return serve(args.db, host=args.host, port=args.port, config=config, public_url=args.public_url, log=args.log)


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
