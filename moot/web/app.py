"""The study server's HTTP veneer (Starlette): links, checks, pages, nothing else.

Every URL carries a token: `/p/TOKEN/...` a participant's, `/admin/TOKEN/...` the admin's,
`/crowd/TOKEN?PROLIFIC_PID=...` a crowd platform's entry (which makes or finds the
participant and sends them on to their own link). A missing or wrong token gets the same 403
and the same body whatever the path. Posts carry a CSRF field (an HMAC of the page's token
with the study's key) and, when the browser sends one, an Origin that is the server's own;
each token's posts are rate-limited. The pages allow no inline script, no frames and no
other origin (Content-Security-Policy), and send no Referer (the token is in the URL).

A participant's browser only ever receives what their turn's request holds (the bus's view
of their seat, or the offline judge seat's view), and the correct answer only on the feedback
page of an episode whose last verdict is committed.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from moot.agents.human import TurnAnswer, normalise
from moot.agents.web_desk import LiveSeats, TurnRefused
from moot.store.study import NameTaken, Participant
from moot.web import pages
from moot.web.study import Study, display_name

__all__ = ["WebApp", "create_app"]

STATIC = Path(__file__).parent / "static"
MAX_BODY = 64 * 1024
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
                               " img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}  # fmt: skip
PID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Bucket:
    """A token bucket per key: `rate` posts a second, bursts of `burst`."""

    def __init__(self, rate: float = 5.0, burst: int = 20) -> None:
        self.rate, self.burst = rate, burst
        self._state: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        level, at = self._state.get(key, (float(self.burst), now))
        level = min(float(self.burst), level + (now - at) * self.rate)
        if level < 1:
            self._state[key] = (level, now)
            return False
        self._state[key] = (level - 1, now)
        return True


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=HEADERS)


def _forbidden() -> HTMLResponse:
    return _html(pages.refused(), 403)


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=HEADERS)


class WebApp:
    def __init__(self, study: Study, *, rate: float = 5.0, burst: int = 20) -> None:
        self.study = study
        self.live = LiveSeats(study.path)
        self.bucket = Bucket(rate, burst)
        self.limiter = anyio.CapacityLimiter(8)
        self.new_links: list[tuple[str, str]] = []
        # Set by the server: true once it is stopping. An event stream ends then, rather than
        # hold the graceful shutdown until it is cancelled (a traceback on Ctrl-C).
        self.stopping: Callable[[], bool] = lambda: False
        seats = [p.seat for p in study.tables.participants() if p.seat]
        study.tables.give_back_shown(sorted(set(seats)))  # a stopped server's open turns wait again

    def close(self) -> None:
        self.live.close()

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: fn(*args), limiter=self.limiter)

    def csrf(self, token: str) -> str:
        return hmac.new(self.study.secret.encode(), b"csrf:" + token.encode(), hashlib.sha256).hexdigest()[:32]

    async def form(self, request: Request, token: str) -> dict[str, str] | None:
        """The post's fields, or None if it fails the checks (CSRF, origin, size, rate)."""
        if not self.bucket.allow(token):
            return None
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
            return None
        body = await request.body()
        if len(body) > MAX_BODY:
            return None
        try:
            fields = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            return None
        if not hmac.compare_digest(fields.get("csrf", ""), self.csrf(token)):
            return None
        return fields

    # -- routes ----------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        p = self.participant_route
        return [
            Route("/p/{token}/{name:str}.{ext:str}", p(self.static)),
            Route("/p/{token}/", p(self.home), methods=["GET"]),
            Route("/p/{token}/consent", p(self.consent), methods=["POST"]),
            Route("/p/{token}/judge", p(self.judge), methods=["GET", "POST"]),
            Route("/p/{token}/feedback/{episode:int}", p(self.feedback), methods=["GET"]),
            Route("/p/{token}/leaderboard", p(self.leaderboard), methods=["GET", "POST"]),
            Route("/p/{token}/live", p(self.live_turn), methods=["GET", "POST"]),
            Route("/p/{token}/events", p(self.events), methods=["GET"]),
            Route("/crowd/{token}", self.crowd, methods=["GET"]),
            Route("/admin/{token}/{name:str}.{ext:str}", self.admin_route(self.admin_static)),
            Route("/admin/{token}/", self.admin_route(self.dashboard), methods=["GET"]),
            Route("/admin/{token}/participants", self.admin_route(self.add_participants), methods=["POST"]),
            Route("/admin/{token}/export/verdicts.csv", self.admin_route(self.export), methods=["GET"]),
        ]

    Handler = Callable[[Request, Participant, str, str], Awaitable[Response]]

    def participant_route(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            token = request.path_params.get("token", "")
            who = await self.run(self.study.participant, token)
            if who is None:
                return _forbidden()
            base = f"/p/{token}"
            if request.method == "POST":
                request.state.fields = await self.form(request, token)
                if request.state.fields is None:
                    return _forbidden()
            return await handler(request, who, token, base)

        return endpoint

    def admin_route(
        self, handler: Callable[[Request, str, str], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            token = request.path_params.get("token", "")
            if not token or not await self.run(self.study.tables.is_admin, token):
                return _forbidden()
            if request.method == "POST":
                request.state.fields = await self.form(request, token)
                if request.state.fields is None:
                    return _forbidden()
            return await handler(request, token, f"/admin/{token}")

        return endpoint

    async def static(self, request: Request, who: Participant, token: str, base: str) -> Response:
        return self._file(request)

    async def admin_static(self, request: Request, token: str, base: str) -> Response:
        return self._file(request)

    def _file(self, request: Request) -> Response:
        name = f"{request.path_params['name']}.{request.path_params['ext']}"
        if name not in ("app.js", "app.css"):
            return Response("", status_code=404, headers=HEADERS)
        return FileResponse(STATIC / name, headers=HEADERS)

    # -- the participant's pages --------------------------------------------------------------
    def completion(self, who: Participant) -> str | None:
        return self.study.tables.setting("completion_code") if who.crowd else None

    async def home(self, request: Request, who: Participant, token: str, base: str) -> Response:
        if not who.consented:
            return _html(pages.consent(base, self.csrf(token), self.study.title))
        history = await self.run(self.study.history, who)
        code = self.completion(who) if who.completed else None
        return _html(pages.queue(base, self.csrf(token), who, history, who.seat, code))

    async def consent(self, request: Request, who: Participant, token: str, base: str) -> Response:
        await self.run(self.study.tables.consent, who.id)
        return _see(f"{base}/")

    async def judge(self, request: Request, who: Participant, token: str, base: str) -> Response:
        if not who.consented:
            return _see(f"{base}/")
        error = ""
        if request.method == "POST":
            f = request.state.fields
            turn = await self.run(self.study.open_turn, who)  # a late one too: judge() refuses it, told
            n = len(turn.request.answers) if turn is not None else 0
            probs = _probabilities(f, n)
            try:
                episode, round_ = int(f.get("episode", "")), int(f.get("round", ""))
            except ValueError:
                return _html("bad request", 400)
            if probs is None:
                error = "Give each answer a probability (they must not all be 0%)."
            else:
                outcome = await self.run(self.study.judge, who, episode, round_, list(probs), f.get("reason", ""))
                # committed (or refused as a repeat) before the page says anything
                if outcome == "episode done":
                    return _see(f"{base}/feedback/{episode}")
                if outcome == "timed out":  # refused: the person is told, not silently moved on
                    return _html(pages.time_up(base), 409)
                return _see(f"{base}/judge")
        turn = await self.run(self.study.current, who)
        if turn is None:
            if who.crowd:
                await self.run(self.study.tables.complete, who.id)
            return _html(pages.finished(base, self.completion(who)))
        return _html(pages.judge_turn(base, self.csrf(token), turn.request, turn.clock_from,
                                      action=f"{base}/judge", error=error), 422 if error else 200)  # fmt: skip

    async def feedback(self, request: Request, who: Participant, token: str, base: str) -> Response:
        fb = await self.run(self.study.feedback, who, int(request.path_params["episode"]))
        if fb is None:
            return _html("<!doctype html><p>No feedback for this episode (yet).</p>", 404)
        return _html(pages.feedback(base, fb, self.study.config.scoring))

    async def leaderboard(self, request: Request, who: Participant, token: str, base: str) -> Response:
        """The board, and joining it under a name the person types (or leaving it)."""
        error, typed = "", ""
        if request.method == "POST":
            f = request.state.fields
            try:
                name = None if f.get("on") != "1" else display_name(typed := f.get("name", "")[:1000])
                await self.run(self.study.tables.set_leaderboard, who.id, name)
                return _see(f"{base}/leaderboard")
            except NameTaken:
                error = "Someone appears under that name already: choose another."
            except ValueError as exc:
                error = f"Not that name: {exc}."
            who = await self.run(self.study.participant, token) or who
        rows = await self.run(self.study.leaderboard, who)
        return _html(pages.leaderboard(base, self.csrf(token), rows, who.display_name if who.leaderboard else None,
                                       error=error, typed=typed), 422 if error else 200)  # fmt: skip

    # -- live seats --------------------------------------------------------------------------
    async def live_turn(self, request: Request, who: Participant, token: str, base: str) -> Response:
        if who.seat is None or not who.consented:
            return _see(f"{base}/")
        error, draft = "", ""
        if request.method == "POST":
            f = request.state.fields
            held = await self.run(self.live.turn, who.id, who.seat)
            if held is not None and str(held.id) == f.get("turn"):
                n = len(held.request.answers)
                probs = _probabilities(f, n)
                answer = TurnAnswer(content=f.get("content", ""), probabilities=probs, end=f.get("end") == "1")
                try:
                    await self.run(self.live.answer, who.id, who.seat, held.id, answer)
                    return _see(f"{base}/live")
                except TurnRefused as exc:
                    error, draft = str(exc), f.get("content", "")
            else:
                return _see(f"{base}/live")
        held = await self.run(self.live.turn, who.id, who.seat)
        if held is None:
            return _html(pages.waiting(base, who.seat, await self.run(self._run_status)))
        story = await self.run(self.study.story, held.request.episode)
        if story is not None:
            await self.run(self.study.tables.expose, who.id, story)
        r, code = held.request, 422 if error else 200
        if r.kind in ("verdict", "choose"):
            return _html(pages.judge_turn(base, self.csrf(token), r, held.shown_at, action=f"{base}/live",
                                          turn_id=str(held.id), error=error), code)  # fmt: skip
        return _html(pages.text_turn(base, self.csrf(token), r, held.shown_at, action=f"{base}/live",
                                     turn_id=str(held.id), error=error, draft=draft), code)  # fmt: skip

    def _run_status(self) -> str:
        return self.study.reader.status() or "starting"

    async def events(self, request: Request, who: Participant, token: str, base: str) -> Response:
        """Server-sent events: `turn` when the participant's seat has a turn for them."""
        seat = who.seat
        if seat is None or not who.consented:
            return Response("", status_code=404, headers=HEADERS)

        async def stream() -> AsyncIterator[str]:
            yield "retry: 1000\n\n"
            deadline = time.monotonic() + 25  # then the browser reconnects
            while time.monotonic() < deadline and not self.stopping():
                if await request.is_disconnected():
                    return
                held = await self.run(self.live.turn, who.id, seat)
                if held is not None:
                    yield f"event: turn\ndata: {int(held.id)}\n\n"
                    return
                yield ": waiting\n\n"
                await anyio.sleep(0.25)

        return StreamingResponse(stream(), media_type="text/event-stream", headers=HEADERS)

    # -- crowd platforms --------------------------------------------------------------------
    async def crowd(self, request: Request) -> Response:
        token = request.path_params.get("token", "")
        pid = request.query_params.get("PROLIFIC_PID") or request.query_params.get("pid") or ""
        if not token or not PID.match(pid) or not await self.run(self.study.tables.is_crowd, token):
            return _forbidden()
        if not self.bucket.allow("crowd:" + token):
            return _forbidden()
        _, personal = await self.run(self.study.tables.crowd_participant, pid)
        return _see(f"/p/{personal}/")

    # -- the admin ----------------------------------------------------------------------------
    async def dashboard(self, request: Request, token: str, base: str) -> Response:
        return _html(await self.run(self._dashboard, request, token, base))

    def _dashboard(self, request: Request, token: str, base: str) -> str:
        t = self.study.tables
        people = t.participants()
        c = self.study.config
        config = {"k": c.k, "per_person": c.per_person, "scoring": c.scoring, "time_limit": c.time_limit}
        links, self.new_links = self.new_links, []
        return pages.dashboard(base, self.csrf(token), self.study.title, t.condition_progress(), t.progress(),
                               {p.id: p.label for p in people}, config, links,
                               [(p.id, p.seat) for p in people if p.seat])  # fmt: skip

    async def add_participants(self, request: Request, token: str, base: str) -> Response:
        f = request.state.fields
        try:
            n = max(1, min(500, int(f.get("n") or 1)))
        except ValueError:
            return _html("bad request", 400)
        label, seat = f.get("label", "").strip()[:80] or None, f.get("seat", "").strip()[:80] or None
        root = str(request.base_url).rstrip("/")
        for _ in range(n):
            pid, personal = await self.run(self.study.tables.add_participant, label, seat)
            self.new_links.append((pid, f"{root}/p/{personal}/"))
        return _see(f"{base}/")

    async def export(self, request: Request, token: str, base: str) -> Response:
        rows = await self.run(self.study.tables.human_verdicts)
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["judge", "episode", "round", "probabilities", "choice", "correct", "seconds", "created_at"])
        w.writerows(rows)
        return Response(out.getvalue(), media_type="text/csv", headers={
            **HEADERS, "Content-Disposition": "attachment; filename=verdicts.csv"})  # fmt: skip


def _probabilities(f: dict[str, str], n: int) -> tuple[float, ...] | None:
    try:
        raw = tuple(float(f[f"p{i}"]) for i in range(n))
    except (KeyError, ValueError):
        return None
    if any(not 0 <= p <= 100 for p in raw):
        return None
    return normalise(raw, n)


def create_app(study: Study, **kw: Any) -> tuple[Starlette, WebApp]:
    web = WebApp(study, **kw)

    async def refuse(request: Request, exc: Exception) -> Response:
        return _forbidden()

    app = Starlette(routes=web.routes(), exception_handlers={404: refuse, 405: refuse})
    return app, web
