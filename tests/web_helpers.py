"""A study server on loopback for the web tests: uvicorn in a thread, on a free port."""

from __future__ import annotations

import re
import threading
import time

import httpx
import uvicorn
from helpers import free_port

from moot.web.app import create_app
from moot.web.study import Study, StudyConfig


class Served:
    """`moot serve` in a thread: `.url`, `.admin` (the admin's link), `.stop()`."""

    def __init__(self, path, config: StudyConfig | None = None, **kw) -> None:
        self.study = Study(path, config)
        self.app, self.web = create_app(self.study, **kw)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin = f"{self.url}/admin/{self.study.tables.new_admin_token()}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off", timeout_graceful_shutdown=1))  # fmt: skip
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
