"""A study server on loopback for the web tests: uvicorn in a thread, on a free port."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from helpers import free_port

from moot.web.app import create_app
from moot.web.study import Study, StudyConfig


class Served:
    """`moot serve` in a thread: `.url`, `.admin` (the admin's link), `.stop()`."""

    def __init__(self, path, config: StudyConfig | None = None, sessions: int = 64, **kw) -> None:
        self.study = Study(path, config, sessions=sessions)
        self.app, self.web = create_app(self.study, **kw)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin = f"{self.url}/admin/{self.study.tables.new_admin_token()}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off", timeout_graceful_shutdown=1))  # fmt: skip
        self.web.stopping = lambda: self.server.should_exit
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.web.close()
        self.study.close()

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


CSRF = re.compile(r"name=csrf value='([0-9a-f]+)'")


def csrf_of(page: str) -> str:
    m = CSRF.search(page)
    assert m, "no CSRF field on the page"
    return m.group(1)


class Person:
    """A participant's browser, as an HTTP client that keeps every body it received."""

    def __init__(self, link: str) -> None:
        self.link = link.rstrip("/")
        self.http = httpx.Client(follow_redirects=True, timeout=30)
        self.bodies: list[str] = []

    def get(self, path: str = "/") -> httpx.Response:
        r = self.http.get(self.link + path)
        self.bodies.append(r.text)
        return r

    def post(self, path: str, page: str, **fields) -> httpx.Response:
        r = self.http.post(self.link + path, data={"csrf": csrf_of(page), **fields})
        self.bodies.append(r.text)
        return r

    def close(self) -> None:
        self.http.close()


_script = Path(sys.executable).with_name("moot")
MOOT = [str(_script)] if _script.is_file() else [sys.executable, "-m", "moot"]


class ServeProcess:
    """`moot serve ...` as a person types it, in a process of its own: `.admin` (the link it
    printed), `.url`, `.interrupt()` (Ctrl-C) -> (exit code, stdout, stderr)."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([*MOOT, "serve", *args, "--port", str(self.port)], cwd=cwd, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("admin: "):
            rc, out, err = self.interrupt()
            raise AssertionError(f"no admin link (exit {rc}): {line}{out}{err}")
        self.admin = line.split(" ", 1)[1].strip().rstrip("/")
        self.lines = [line]

    def interrupt(self, timeout: float = 30) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, "".join(self.lines) + out, err


TURN = re.compile(r"name=turn value='(\d+)'")


def take_live_turn(person: Person, probabilities=(70, 30), question: str = "Why?") -> str | None:
    """Answer the live turn in front of the person (a verdict, a question), if there is one:
    its kind, else None (their page says to wait)."""
    page = person.get("/live").text
    found = TURN.search(page)
    if found is None:
        return None
    if "Your verdict" in page:
        r = person.post("/live", page, turn=found.group(1), p0=probabilities[0], p1=probabilities[1])
        kind = "verdict"
    elif "Your question" in page:
        r = person.post("/live", page, turn=found.group(1), content=question)
        kind = "question"
    else:
        raise AssertionError(f"a turn this helper does not take: {page[:300]}")
    assert r.status_code == 200, r.text
    return kind
