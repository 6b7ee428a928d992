"""Khan et al. 2024, "Debating with More Persuasive LLMs Leads to More Truthful Answers":
the human-judge CSV layout of its published data (one row per judged debate, consultancy
or baseline).

Columns used: `debate_id`, `judge_id`, `question`, `debate_method` (debate, consultancy,
baseline), `consultant_type` (correct, incorrect or empty), `swap` (False: the correct answer
is shown first), `confidence_correct` (the judge's probability on the correct answer), and
`transcript`, a JSON object with `answers` {correct, incorrect} and `rounds`, each round's
speeches keyed by `correct` / `incorrect` (the debater arguing that answer) plus the judge's
interjections under `judge`. The story itself is not in the published file. Every other
column is kept in the episode's attributes, so analysis can filter on it (e.g.
`experiment_name`).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moot.errors import ConfigError
from moot.importers import Imported
from moot.transcript.events import EpisodeFinished, EpisodeStarted, Event, Message, Verdict

NAME = "khan-csv"
DESCRIPTION = "Khan et al. 2024 human-judge CSV (debate_method, swap, confidence_correct, transcript)"
REQUIRED = ("debate_id", "question", "debate_method", "swap", "confidence_correct", "transcript")
PROTOCOL = {"debate": "debate", "consultancy": "consultancy", "baseline": "direct_qa"}


def _bool(value: str, where: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise ConfigError(f"{where}: expected True or False (got {value!r})")


def read(path: Path) -> Iterator[Imported]:
    csv.field_size_limit(sys.maxsize)  # transcripts are long JSON cells
    try:
        f = open(path, newline="", encoding="utf-8")
    except IsADirectoryError:
        raise ConfigError(f"{path}: give the CSV file, not a folder") from None
    with f:
        rows = csv.DictReader(f)
        missing = [c for c in REQUIRED if c not in (rows.fieldnames or [])]
        if missing:
            raise ConfigError(f"{path}:1: missing column {missing[0]!r} (needs {', '.join(REQUIRED)})")
        for row in rows:
            yield _row(row, f"{path}:{rows.line_num}")


def _row(row: dict[str, str], where: str) -> Imported:
    method = row["debate_method"].strip()
    if method not in PROTOCOL:
        raise ConfigError(f"{where}: debate_method: expected debate, consultancy or baseline (got {method!r})")
    swap = _bool(row["swap"], f"{where}: swap")
    try:
        p_correct = float(row["confidence_correct"])
    except ValueError:
        raise ConfigError(f"{where}: confidence_correct: not a number ({row['confidence_correct']!r})") from None
    if not 0.0 <= p_correct <= 1.0:
        raise ConfigError(f"{where}: confidence_correct: {p_correct} is not a probability")
    try:
        transcript = json.loads(row["transcript"])
        answer = transcript["answers"]
        right, wrong = answer["correct"], answer["incorrect"]
        rounds = transcript.get("rounds") or []
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{where}: transcript: not the published transcript JSON ({exc!r})") from None
    correct = 1 if swap else 0
    answers = (wrong, right) if swap else (right, wrong)
    # the debater (or consultant) arguing the correct answer sits on its side
    side_of = {"correct": correct, "incorrect": 1 - correct}
    protocol = PROTOCOL[method]
    if protocol == "debate":
        seat_of = {"correct": ("debater_a", "debater_b")[correct], "incorrect": ("debater_a", "debater_b")[1 - correct]}
    elif protocol == "consultancy":
        honest = row.get("consultant_type", "").strip() == "correct"
        seat_of = {"correct" if honest else "incorrect": "consultant"}
    else:
        seat_of = {}
    seats: dict[str, dict[str, Any]] = {
        seat: {"role": "debater" if protocol == "debate" else "consultant", "sees_source": True}
        for seat in seat_of.values()
    }
    seats["judge"] = {"role": "judge", "sees_source": False, "filled_by": "human"}
    assignments = {seat: side_of[key] for key, seat in seat_of.items()}
    attributes = {k: v for k, v in row.items() if k not in ("transcript", "question", "explanation")}
    judge = row.get("judge_id", "").strip()
    key = f"{row['debate_id'].strip()}:{judge}"
    probs = (1 - p_correct, p_correct) if swap else (p_correct, 1 - p_correct)

    def events(episode: int) -> list[Event]:
        out: list[Event] = [
            EpisodeStarted(
                episode=episode,
                question_id=(row.get("question_set_id") or "").strip() or row["question"].strip(),
                question=row["question"],
                answers=answers,
                correct=correct,
                source=None,  # not published with the transcripts
                protocol=protocol,
                assignments=assignments,
                seats=seats,
                started_at=0.0,
                cell=method if protocol != "consultancy" else f"consultancy ({row.get('consultant_type', '').strip() or '?'})",
                attributes=dict(attributes),
            )
        ]
        seq = 0
        for rnd, entry in enumerate(rounds, 1):
            for speaker in ("correct", "incorrect", "judge"):
                text = (entry or {}).get(speaker)
                if isinstance(text, dict):  # some rounds keep a speech with its metadata
                    text = text.get("text") or text.get("content") or json.dumps(text)
                if not text or (speaker != "judge" and speaker not in seat_of):
                    continue
                seat = seat_of.get(speaker, "judge")
                role = seats[seat]["role"]
                side = side_of[speaker] if speaker != "judge" else None
                out.append(Message(episode, seq, rnd, "speech" if side is not None else "judge_question",
                                   seat, role, side, str(text), None, 0.0))  # fmt: skip
                seq += 1
        best = max(probs)
        out.append(
            Verdict(
                episode=episode,
                judge=f"human:{judge}" if judge else "judge",
                model="human",
                round=len(rounds),
                choice=probs.index(best) if probs.count(best) == 1 else None,
                probabilities=probs,
                correct=p_correct > 0.5,
                method="reported",
                parse_status="ok",
                raw=row.get("explanation", ""),
                call_seq=None,
                created_at=0.0,
            )
        )
        out.append(EpisodeFinished(episode, "done", "judged", 0.0))
        return out

    return Imported(key, events)
