"""A response cache on disk, so re-running or extending a study does not pay twice.

Keyed on everything that decides a reply: the model, its endpoint, the prompt messages, the
sampling parameters and the seed. Failures are never cached. One SQLite file (WAL) shared
by runs; the default lives in the user's cache directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from moot.errors import ConfigError
from moot.models.base import GenerateRequest, GenerateResult


def default_path() -> Path:
    """$MOOT_CACHE_DIR/responses.db, else the user's cache directory."""
    if os.environ.get("MOOT_CACHE_DIR"):
        return Path(os.environ["MOOT_CACHE_DIR"]) / "responses.db"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "moot" / "responses.db"


def key(model: str, request: GenerateRequest, extra: dict[str, Any] | None = None) -> str:
    payload = {
        "model": model,
        "messages": request.messages,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "seed": request.seed,
        "answer_labels": request.answer_labels,
        "assistant_prefix": request.assistant_prefix,
        "extra": extra or {},
    }
    if request.images:  # what the model was shown, by content (absent: keys made before images)
        payload["images"] = [i.digest for i in request.images]
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class ResponseCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT,"
                " text TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, cost REAL,"
                " label_logprobs TEXT, created_at REAL DEFAULT (unixepoch('subsec')))"
            )
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"{path}: cannot open the response cache ({exc})") from None
        self._lock = threading.Lock()

    key = staticmethod(key)

    def get(self, k: str) -> GenerateResult | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT text, prompt_tokens, completion_tokens, cost, label_logprobs"
                " FROM responses WHERE key = ?",
                (k,),
            ).fetchone()
        if row is None:
            return None
        return GenerateResult(
            text=row[0],
            prompt_tokens=row[1],
            completion_tokens=row[2],
            cost=row[3],
            label_logprobs={
                lab: (v if v is not None else float("-inf")) for lab, v in json.loads(row[4]).items()
            }
            if row[4]
            else None,
        )

    def put(self, k: str, model: str, result: GenerateResult) -> None:
        logprobs = None
        if result.label_logprobs is not None:  # -inf is not JSON: store it as null
            logprobs = json.dumps(
                {lab: (v if v != float("-inf") else None) for lab, v in result.label_logprobs.items()}
            )
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO responses (key, model, text, prompt_tokens,"
                " completion_tokens, cost, label_logprobs) VALUES (?,?,?,?,?,?,?)",
                (k, model, result.text, result.prompt_tokens, result.completion_tokens,
                 result.cost, logprobs),
            )  # fmt: skip

    def close(self) -> None:
        self._conn.close()
