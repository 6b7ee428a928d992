"""The terminal UI's commands: `watch`, `replay`, `join`, `judge`."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> dict[str, Any]:
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
    return {"watch": cmd_watch, "replay": cmd_replay, "join": cmd_join, "judge": cmd_judge}


def cmd_watch(args: argparse.Namespace) -> int:
    from moot.store.reader import check_database
    from moot.tui.watch import LiveApp

    LiveApp(check_database(args.db)).run()
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from moot.tui.replay import ReplayApp, check_replay_path

    ReplayApp(check_replay_path(args.path)).run()
    return 0


def cmd_join(args: argparse.Namespace) -> int:
    from moot.store.reader import check_database
    from moot.tui.join import JoinApp

    JoinApp(check_database(args.db), args.seat).run()
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    from moot.store.reader import check_database
    from moot.tui.join import JudgeApp

    app = JudgeApp(check_database(args.db), args.name, seat=args.seat, time_limit=args.time_limit)
    app.run()
    print(f"{app.session.judged} verdicts stored as {app.session.label} in {args.db}")
    return 0
