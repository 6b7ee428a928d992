"""A small OpenAI-compatible chat-completions server that misbehaves on schedule, for tests.

Standard library only: a ThreadingHTTPServer in a background thread, bound to 127.0.0.1 on an
ephemeral port. It serves POST /v1/chat/completions (and /chat/completions) with a valid
OpenAI response body, and with `choices[0].logprobs.content` when the request asks for
`logprobs` and `top_logprobs` (the first token is the answer letter, with the top
log-probabilities of both "A" and "B").

Faults come from a deterministic schedule: a list indexed by the request's number (0-based,
in arrival order; past its end every request succeeds), or a function of (number, request)
returning a `Fault` or None:

    with FaultServer([Fault.http(429, retry_after=1), None, Fault.drop()]) as server:
        ... api_base=server.api_base ...
    server.requests[0].fault.kind == "http"

Every request is recorded (arrival and finish times, path, headers, parsed body, the fault
served). Traffic is bounded: past `max_requests` every request gets a 503 and
`server.exhausted` is set; a watchdog stops the server after `lifetime` seconds; a slow
response is cut short when the server stops.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST = "127.0.0.1"
PATHS = ("/v1/chat/completions", "/chat/completions")


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do instead of (or before) a normal reply."""

    kind: str  # http | slow | drop | malformed
    status: int = 200
    retry_after: float | str | None = None  # Retry-After: seconds, or a string sent as is
    delay: float = 0.0  # slow: seconds to wait before answering normally
    message: str = "injected fault"  # the error body's message (http)

    @classmethod
    def http(cls, status: int, *, retry_after: float | str | None = None, message: str = "injected fault") -> Fault:
        return cls("http", status=status, retry_after=retry_after, message=message)

    @classmethod
    def slow(cls, delay: float) -> Fault:
        """Answer normally, but only after `delay` seconds (longer than the client's timeout)."""
        return cls("slow", delay=delay)

    @classmethod
    def drop(cls) -> Fault:
        """Read the request, then close the connection without a response."""
        return cls("drop")

    @classmethod
    def malformed(cls) -> Fault:
        """A 200 whose body is not valid JSON."""
        return cls("malformed")

    def label(self) -> str:
        return f"http {self.status}" if self.kind == "http" else self.kind


Schedule = Sequence["Fault | None"] | Callable[[int, "Request"], "Fault | None"]


@dataclass(slots=True)
class Request:
    index: int
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any  # the parsed JSON, or None when it was not JSON
    received: float  # time.monotonic() once the whole request was read
    wall: float  # time.time() at the same moment
    fault: Fault | None = None
    finished: float | None = None  # time.monotonic() once the response was written (or dropped)
    outcome: str = ""  # ok | http 429 | slow | drop | malformed | client gone | exhausted | not found

    @property
    def judging(self) -> bool:
        return bool(isinstance(self.body, dict) and self.body.get("logprobs") and self.body.get("top_logprobs"))


class _Server(ThreadingHTTPServer):
    # The stdlib's backlog of 5 drops connections when a run opens a dozen at once; the
    # client's SYN is then retried after 1 s, which looks like a timeout that never happened.
    request_queue_size = 128


class FaultServer:
    def __init__(
        self,
        schedule: Schedule = (),
        *,
        letter: str | Callable[[Request], str] = "B",
        p_letter: float = 0.8,
        max_requests: int = 200,
        lifetime: float = 120.0,
    ) -> None:
        self.schedule = schedule
        self.letter = letter
        self.p_letter = p_letter
        self.max_requests = max_requests
        self.lifetime = lifetime
        self.requests: list[Request] = []
        self.counts: Counter[str] = Counter()
        self.exhausted = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Timer | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FaultServer:
        handler = type("Handler", (_Handler,), {"owner": self})
        httpd = _Server((HOST, 0), handler)
        httpd.daemon_threads = False  # server_close() joins the handlers: nothing outlives stop()
        httpd.block_on_close = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-server", daemon=True
        )
        self._thread.start()
        self._watchdog = threading.Timer(self.lifetime, self.stop)
        self._watchdog.daemon = True
        self._watchdog.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes slow handlers
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.cancel()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not running"
        return self._httpd.server_address[1]

    @property
    def api_base(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def __len__(self) -> int:
        return len(self.requests)

    # -- decisions -------------------------------------------------------------------------

    def _fault_for(self, request: Request) -> Fault | None:
        s = self.schedule
        if callable(s):
            return s(request.index, request)
        return s[request.index] if request.index < len(s) else None

    def _record(self, request: Request, outcome: str) -> None:
        request.finished = time.monotonic()
        request.outcome = outcome
        with self._lock:
            self.counts[outcome] += 1

    def reply_body(self, request: Request) -> dict[str, Any]:
        body = request.body if isinstance(request.body, dict) else {}
        n = request.index
        out: dict[str, Any] = {
            "id": f"chatcmpl-fault-{n}",
            "object": "chat.completion",
            "created": int(request.wall),
            "model": str(body.get("model", "fault-test")),
            "system_fingerprint": None,
            "choices": [],
            "usage": {},
        }
        if request.judging:
            letter = self.letter(request) if callable(self.letter) else self.letter
            other = "A" if letter == "B" else "B"
            p = self.p_letter
            lp, lq = math.log(p), math.log(1 - p)
            content = letter
            logprobs: dict[str, Any] | None = {
                "content": [
                    {
                        "token": letter,
                        "logprob": lp,
                        "bytes": list(letter.encode()),
                        "top_logprobs": [
                            {"token": letter, "logprob": lp, "bytes": list(letter.encode())},
                            {"token": other, "logprob": lq, "bytes": list(other.encode())},
                        ],
                    }
                ],
                "refusal": None,
            }
        else:
            content = f"Reply {n}: the passage supports my answer, and the other side misreads it."
            logprobs = None
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []) if isinstance(m, dict))
        completion_tokens = len(content.split())
        out["choices"] = [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": logprobs,
                "finish_reason": "stop",
            }
        ]
        out["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return out


class _Handler(BaseHTTPRequestHandler):
    owner: FaultServer
    protocol_version = "HTTP/1.0"  # one request per connection: request counts are exact
    timeout = 10  # a client that stalls mid-request cannot hold a handler thread for long
    server_version = "FaultServer/1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: everything is in owner.requests

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        owner = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with owner._lock:
            index = len(owner.requests)
            request = Request(
                index=index,
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                raw=raw,
                body=body,
                received=time.monotonic(),
                wall=time.time(),
            )
            owner.requests.append(request)
            exhausted = index >= owner.max_requests
            if exhausted:
                owner.exhausted = True
        try:
            if exhausted:
                self._json(503, {"error": {"message": "fault server: request budget exhausted", "type": "server_error"}})
                owner._record(request, "exhausted")
                return
            if self.command != "POST" or self.path.split("?")[0] not in PATHS:
                self._json(404, {"error": {"message": f"no route {self.command} {self.path}", "type": "not_found"}})
                owner._record(request, "not found")
                return
            fault = request.fault = owner._fault_for(request)
            if fault is None:
                self._json(200, owner.reply_body(request))
                owner._record(request, "ok")
            elif fault.kind == "http":
                error_type = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(fault.status, "server_error")
                ra = fault.retry_after
                headers = {} if ra is None else {"Retry-After": ra if isinstance(ra, str) else f"{ra:g}"}
                self._json(
                    fault.status,
                    {"error": {"message": fault.message, "type": error_type, "param": None, "code": None}},
                    headers,
                )
                owner._record(request, fault.label())
            elif fault.kind == "slow":
                if owner._stop.wait(fault.delay):
                    self.close_connection = True
                    owner._record(request, "slow (server stopped)")
                    return
                self._json(200, owner.reply_body(request))
                owner._record(request, "slow")
            elif fault.kind == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                owner._record(request, "drop")
            elif fault.kind == "malformed":
                self._send(200, b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"mess')
                owner._record(request, "malformed")
            else:
                raise ValueError(f"unknown fault kind {fault.kind!r}")
        except OSError:  # the client gave up (a timed-out attempt)
            self.close_connection = True
            owner._record(request, "client gone")
        except Exception as exc:  # a bug in a schedule or here: visible in the log, not lost
            self.close_connection = True
            owner._record(request, f"server error: {type(exc).__name__}: {exc}")
            raise

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def _send(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
