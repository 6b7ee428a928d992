"""`moot serve`: the study server on uvicorn, bound to loopback unless told otherwise."""

from __future__ import annotations

import sys
from pathlib import Path

from moot.errors import ConfigError
from moot.web.study import Study, StudyConfig

__all__ = ["missing_extra", "serve"]


def missing_extra() -> ConfigError:
    return ConfigError("moot serve needs the web extra: pip install 'moot[web]'")


def serve(path: str | Path, *, host: str = "127.0.0.1", port: int = 8000, config: StudyConfig | None = None,
          public_url: str | None = None, log: bool = False) -> int:
    """Serve the study until Ctrl-C; prints the admin's link (a new one each start)."""
    try:
        import uvicorn

        from moot.web.app import create_app
    except ImportError:
        raise missing_extra() from None
    study = Study(path, config)
    app, web = create_app(study)
    token = study.tables.new_admin_token()
    root = (public_url or f"http://{'[' + host + ']' if ':' in host else host}:{port}").rstrip("/")
    print(f"moot: serving {study.path} on http://{host}:{port} (Ctrl-C stops)", file=sys.stderr)
    print(f"admin: {root}/admin/{token}/", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info" if log else "warning",
                                           access_log=log, lifespan="off", timeout_graceful_shutdown=3))  # fmt: skip
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled: it has stopped cleanly
        pass
    finally:
        web.close()
        study.close()
    if not server.started:
        raise ConfigError(f"cannot listen on {host}:{port} (in use, or not an address of this machine)")
    print("moot: stopped", file=sys.stderr)
    return 0
