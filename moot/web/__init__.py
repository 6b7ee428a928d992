"""Human studies on the web (`moot serve`): participants judge and debate from their own
browser, over the same run database as every other seat.

`study.py` is what a study asks and records (offline judging with assignment, feedback,
leaderboard), `app.py` the HTTP veneer (Starlette: tokens, CSRF, rate limits, pages),
`pages.py` the HTML (every text escaped), `server.py` runs it on uvicorn. Live seats go
through the run database's desk (moot.agents.web_desk); the study's tables are the store's
(moot.store.study, migration V11).
"""

from __future__ import annotations

__all__ = ["serve"]


def __getattr__(name: str) -> object:
    if name == "serve":  # uvicorn and starlette load only when a server is started
        from moot.web.server import serve

        return serve
    raise AttributeError(name)
