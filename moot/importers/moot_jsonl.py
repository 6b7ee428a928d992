"""moot's own JSONL export (`moot export RUN.db --format jsonl`) read back into a store: the
round trip that shows an export loses nothing the analysis needs.

PATH is the export's folder (`episodes.jsonl`, `messages.jsonl`, `verdicts.jsonl`). Each
episode keeps its condition: its sweep cell, or (outside a sweep) the condition the export
named, so `moot analyze` groups the imported episodes exactly as it grouped the originals.
Model calls are not part of the export and so are not imported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moot.errors import ConfigError
from moot.importers import Imported
from moot.scenario.datasets import json_rows
from moot.transcript.events import EpisodeFinished, EpisodeStarted, Event, Message, Verdict
from moot.transcript.quotes import Quote, from_record

NAME = "moot-jsonl"
DESCRIPTION = "moot's own JSONL export (the folder moot export --format jsonl wrote)"


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing (a moot JSONL export has episodes, messages and verdicts)") from None
    return json_rows(text, str(path))


def _key(row: dict[str, Any]) -> str:
    return f"{row.get('run', '')}:{row['episode']}"


def read(path: Path) -> Iterator[Imported]:
    if not path.is_dir():
        raise ConfigError(f"{path}: give the export's folder (with episodes.jsonl)")
    messages: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    verdicts: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for name, into in (("messages", messages), ("verdicts", verdicts)):
        for n, row in _lines(path / f"{name}.jsonl"):
            if "episode" not in row:
                raise ConfigError(f"{path / name}.jsonl:{n}: no episode")
            into[_key(row)].append((n, row))
    for n, row in _lines(path / "episodes.jsonl"):
        where = f"{path / 'episodes.jsonl'}:{n}"
        try:
            key = _key(row)
            yield Imported(key, _episode(row, messages.get(key, []), verdicts.get(key, []), where))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: not a moot export row ({exc!r})") from None


def _quotes(value: Any) -> tuple[Quote, ...] | None:
    if not value:
        return None
    return tuple(from_record(q) for q in value)


def _episode(row: dict[str, Any], msgs: list, verdicts: list, where: str) -> Any:
    # Built now (so a bad row fails before anything is written), numbered later.
    answers = tuple(row["answers"])
    started = dict(
        question_id=str(row["question_id"]), question=row["question"], answers=answers,
        correct=row.get("answer"), source=row.get("source"), protocol=row["protocol"],
        assignments=row.get("assignments") or {}, seats=row.get("seats") or {},
        started_at=float(row.get("started_at") or 0.0),
        cell=row.get("cell") or row.get("condition"), attributes=dict(row.get("attributes") or {}),
    )  # fmt: skip
    said = [
        dict(seq=m["seq"], round=m["round"], phase=m["phase"], seat=m["seat"], role=m["role"],
             side=m.get("side"), content=m["content"],
             audience=None if m.get("audience") is None else frozenset(m["audience"]),
             created_at=float(m.get("created_at") or 0.0), call_seq=m.get("call_seq"), quotes=_quotes(m.get("quotes")))
        for _, m in sorted(msgs, key=lambda nm: nm[1]["seq"])
    ]  # fmt: skip
    ruled = [
        dict(judge=v["judge"], model=v.get("model") or "", round=v["round"], choice=v.get("choice"),
             probabilities=None if v.get("probabilities") is None else tuple(v["probabilities"]),
             correct=None if v.get("correct") is None else bool(v["correct"]), method=v["method"],
             parse_status=v["parse_status"], raw=v.get("raw") or "", call_seq=v.get("call_seq"),
             created_at=float(v.get("created_at") or 0.0))
        for _, v in sorted(verdicts, key=lambda nv: nv[1].get("verdict", 0))
    ]  # fmt: skip
    finished = dict(
        status=row["status"], stop_reason=row.get("stop_reason") or "", ended_at=float(row.get("ended_at") or 0.0),
        outcome=row.get("outcome") or {}, error=row.get("error"),
    )  # fmt: skip

    def events(episode: int) -> list[Event]:
        out: list[Event] = [EpisodeStarted(episode=episode, **started)]
        out += [Message(episode=episode, **m) for m in said]
        out += [Verdict(episode=episode, **v) for v in ruled]
        out.append(EpisodeFinished(episode=episode, **finished))
        return out

    return events
