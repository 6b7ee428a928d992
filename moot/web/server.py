"""`moot serve`: the study server on uvicorn, bound to loopback unless told otherwise; over a
run database, or over a scenario whose run it plays beside the server (moot.web.live_run)."""

from __future__ import annotations

import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moot.errors import ConfigError
from moot.web.study import Study, StudyConfig

if TYPE_CHECKING:
    from moot.web.live_run import LiveRun

__all__ = ["INTERRUPTED", "missing_extra", "serve"]

INTERRUPTED = 130  # as `moot run` stopped by Ctrl-C


def missing_extra() -> ConfigError:
    return ConfigError("moot serve needs the web extra: pip install 'moot[web]'")


def bind(host: str, port: int) -> socket.socket:
    """The listening address, taken before anything starts (a run included), so that a port
    in use is one line and no half-started run."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        raise ConfigError(f"cannot listen on {host}:{port} (not an address of this machine)") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # from now on a browser's connection waits for the server, not refused
    except OSError:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} (in use, or not an address of this machine)") from None
    return sock


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the server as Ctrl-C does (uvicorn re-raises the signal it handled
    once it has stopped; with the default handler that would kill the process before the run
    is stored as interrupted)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(sig: int, frame: Any) -> None:
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def serve(path: str | Path, *, host: str = "127.0.0.1", port: int = 8000, config: StudyConfig | None = None,
          overrides: dict[str, Any] | None = None, public_url: str | None = None, log: bool = False,
          run: LiveRun | None = None) -> int:  # fmt: skip
    """Serve the study until Ctrl-C; prints the admin's link (a new one each start). With
    `run`, the run plays beside the server into `path` (which it makes): Ctrl-C stops both
    and leaves the run resumable (exit 130 while it played, as `moot run`'s)."""
    try:
        import uvicorn

        from moot.web.app import create_app
    except ImportError:
        raise missing_extra() from None
    sock = bind(host, port)
    try:
        if run is not None:
            run.start()
            try:
                run.wait_for_database()
            except BaseException:
                _stop_run(run)
                raise
        return _serve(uvicorn, create_app, sock, Path(path), host, port, config, overrides, public_url, log, run)
    finally:
        sock.close()


def _serve(uvicorn: Any, create_app: Any, sock: socket.socket, path: Path, host: str, port: int,
           config: StudyConfig | None, overrides: dict[str, Any] | None, public_url: str | None, log: bool,
           run: LiveRun | None) -> int:  # fmt: skip
    try:
        study = Study(path, config, overrides)
    except BaseException:
        if run is not None:
            _stop_run(run)
        raise
    app, web = create_app(study)
    token = study.tables.new_admin_token()
    root = (public_url or f"http://{'[' + host + ']' if ':' in host else host}:{port}").rstrip("/")
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info" if log else "warning",
                                           access_log=log, lifespan="off", timeout_graceful_shutdown=3))  # fmt: skip
    web.stopping = lambda: server.should_exit
    failed: list[str] = []
    if run is not None and run.future is not None:

        def finished(_: object) -> None:  # on the run's thread, once execute has returned
            summary, exc = run.outcome()
            if summary is not None:
                print("moot: the run is done; the server goes on (Ctrl-C stops it)", file=sys.stderr)
                print("\n".join(summary.lines()), file=sys.stderr, flush=True)
            elif exc is not None:
                failed.append(run.describe_error(exc))
                server.should_exit = True

        run.future.add_done_callback(finished)
    print(f"moot: serving {study.path} on http://{host}:{port} (Ctrl-C stops)", file=sys.stderr)
    print(f"admin: {root}/admin/{token}/", flush=True)
    try:
        with _terminate_as_interrupt():
            server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled: it has stopped cleanly
        pass
    finally:
        interrupted = _stop_run(run) if run is not None else False
        web.close()
        study.close()
    if not server.started:
        raise ConfigError(f"cannot listen on {host}:{port} (in use, or not an address of this machine)")
    if failed:
        print(f"moot: the run failed: {failed[0]}", file=sys.stderr)
        return 1
    if interrupted:
        from moot.workflows.run import Interrupted

        print(f"moot: stopped; {Interrupted(path)}", file=sys.stderr)
        return INTERRUPTED
    print("moot: stopped", file=sys.stderr)
    return 0


def _stop_run(run: LiveRun) -> bool:
    """Stop the run (it stores what it has); a second Ctrl-C meanwhile is ignored rather than
    left to cut the storing short."""
    main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        return run.stop()
    finally:
        if main:
            signal.signal(signal.SIGINT, before)
