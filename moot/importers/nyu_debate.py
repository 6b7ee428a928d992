"""Michael et al. 2023, "Debate Helps Supervise Unreliable Experts": the NYU rooms.

A room is one episode. Its story (QuALITY tokens, joined back into text) is the source; each
speech is a message whose quotes (token spans into the story) become `<quote>` tags marked
verified, because they are the story's own words by construction; every judge turn is a
verdict row with its round and both probabilities (the judge's belief trajectory, from the
prior before any speech to the final judgement); offline judges are judges of their own
(`offline:NAME`). The paper's sample is the `includedInPaper` flag, kept in the episode's
attributes, and the setting (human or GPT-4 debaters, debate or consultancy) is the cell.

PATH is the dataset's folder: `debates-metadata.jsonl` and `debates/<room>.json`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moot.errors import ConfigError
from moot.importers import Imported
from moot.transcript.events import EpisodeFinished, EpisodeStarted, Event, Message, Verdict
from moot.transcript.quotes import Quote

NAME = "nyu-debate"
DESCRIPTION = "Michael et al. 2023 debate and consultancy rooms (folder with debates/)"

# QuALITY's tokens are Penn Treebank style: brackets escaped, quotes doubled, clitics split.
_TOKEN_TEXT = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}",
               "``": '"', "''": '"'}  # fmt: skip
_ATTACH_LEFT = {".", ",", ";", ":", "!", "?", "%", "...", "-RRB-", "-RSB-", "-RCB-", "''",
                "'s", "n't", "'re", "'ve", "'ll", "'d", "'m", "'S", "N'T"}  # fmt: skip
_ATTACH_RIGHT = {"-LRB-", "-LSB-", "-LCB-", "``", "$"}


def detokenize(tokens: list[str]) -> tuple[str, list[int], list[int]]:
    """The text, and each token's start and end offset in it."""
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    glue = True  # no space before the first token
    for tok in tokens:
        text = _TOKEN_TEXT.get(tok, tok)
        if tok == "\n" or (parts and parts[-1].endswith("\n")):
            glue = True
        if not glue and tok not in _ATTACH_LEFT:
            parts.append(" ")
            pos += 1
        starts.append(pos)
        parts.append(text)
        pos += len(text)
        ends.append(pos)
        glue = tok in _ATTACH_RIGHT
    return "".join(parts), starts, ends


def read(path: Path) -> Iterator[Imported]:
    meta_path = path / "debates-metadata.jsonl"
    rooms = path / "debates"
    if not meta_path.is_file() or not rooms.is_dir():
        raise ConfigError(f"{path}: not the NYU debate dataset (needs debates-metadata.jsonl and debates/)")
    with open(meta_path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                meta = json.loads(line)
                name = meta["name"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ConfigError(f"{meta_path}:{n}: not a room's metadata ({exc})") from None
            room_path = rooms / f"{name}.json"
            try:
                room = json.loads(room_path.read_text("utf-8"))
                yield _room(name, meta, room)
            except FileNotFoundError:
                raise ConfigError(f"{meta_path}:{n}: room {name!r} has no file {room_path}") from None
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
                raise ConfigError(f"{room_path}: not a room this importer understands ({exc!r})") from None


def _room(name: str, meta: dict[str, Any], room: dict[str, Any]) -> Imported:
    setup = room["setup"]
    material = setup["sourceMaterial"]["QuALITYSourceMaterial"]
    story, starts, ends = detokenize(material["contents"])
    answers = tuple(setup["answers"])
    correct = setup["correctAnswerIndex"]
    setting = meta["setting"]
    debate = bool(setting["isDebate"])
    human = bool(setting["isHuman"])
    roles = setup["roles"]
    # Debater A defends answers[0] and Debater B answers[1]; a consultant is whichever one
    # the room has.
    if debate:
        seat_of = {0: "debater_a", 1: "debater_b"}
    else:
        present = [i for i, r in enumerate(("Debater A", "Debater B")) if r in meta["roleAssignments"] or r in roles]
        seat_of = {present[0] if present else 0: "consultant"}
    expert = "human" if human else "GPT-4"
    seats: dict[str, dict[str, Any]] = {seat: {"role": "debater" if debate else "consultant", "sees_source": True,
                    "filled_by": expert} for seat in seat_of.values()}  # fmt: skip
    seats["judge"] = {"role": "judge", "sees_source": False, "filled_by": "human"}
    assignments = {seat: i for i, seat in seat_of.items()}
    status = next(iter(meta["status"]))
    result = meta["status"][status].get("result") if status == "Complete" else None
    question = setup["question"]
    qhash = hashlib.sha1(question.encode()).hexdigest()[:8]
    attributes = {
        "room": name,
        "included_in_paper": bool(meta.get("includedInPaper")),
        "setting": {"human": human, "debate": debate},
        "story_title": meta.get("storyTitle") or material.get("title"),
        "article_id": material.get("articleId"),
        "participants": {k: v for k, v in roles.items()},
        "rules": setup.get("rules"),
    }
    created = setup.get("creationTime", meta.get("creationTime", 0)) / 1000

    def events(episode: int) -> list[Event]:
        out: list[Event] = [
            EpisodeStarted(
                episode=episode,
                question_id=f"quality-{material.get('articleId')}-{qhash}",
                question=question,
                answers=answers,
                correct=correct,
                source=story,
                protocol="debate" if debate else "consultancy",
                assignments=assignments,
                seats=seats,
                started_at=created,
                cell=f"{'human' if human else 'AI'} {'debate' if debate else 'consultancy'}",
                attributes=dict(attributes),
            )
        ]
        seq = 0
        rnd = 0  # a speech round starts a new round; the judge's first turn (round 0) is the prior
        last_time = created
        for entry in room["rounds"]:
            kind, body = next(iter(entry.items()))
            if kind in ("SimultaneousSpeeches", "SequentialSpeeches"):
                rnd += 1
                phase = "opening" if kind == "SimultaneousSpeeches" else "speech"
                speeches = sorted(body["speeches"].items(), key=lambda kv: (kv[1].get("timestamp", 0), kv[0]))
                for key, speech in speeches:
                    side = int(key)
                    seat = seat_of.get(side, f"debater_{'ab'[side] if side < 2 else side}")
                    text, quotes = _speech(speech["content"], story, starts, ends)
                    last_time = speech.get("timestamp", last_time * 1000) / 1000
                    out.append(Message(episode, seq, rnd, phase, seat, seats.get(seat, {}).get("role", "debater"),
                                       side, text, None, last_time, None, quotes))  # fmt: skip
                    seq += 1
            elif kind == "JudgeFeedback":
                feedback = body.get("feedback") or {}
                text, _ = _speech(feedback.get("content") or [], story, starts, ends)
                last_time = feedback.get("timestamp", last_time * 1000) / 1000
                if text:
                    out.append(Message(episode, seq, rnd, "judge_feedback", "judge", "judge", None, text,
                                       None, last_time))  # fmt: skip
                    seq += 1
                out.append(_verdict(episode, "judge", rnd, body, correct, text, last_time))
            elif kind == "OfflineJudgments":
                # Stored before the room's own judge (right after the episode starts): the
                # room's ruling is its judge's last verdict, as in the paper.
                offline = []
                for judge, record in body["judgments"].items():
                    for i, j in enumerate(record.get("judgments") or []):
                        fb = j.get("feedback") or {}
                        text, _ = _speech(fb.get("content") or [], story, starts, ends)
                        when = fb.get("timestamp", last_time * 1000) / 1000
                        offline.append(_verdict(episode, f"offline:{judge}", i, j, correct, text, when))
                out[1:1] = offline
            # NegotiateEnd (the debaters' votes to stop) carries no speech or judgement.
        ended = (result or {}).get("timestamp", meta.get("latestUpdateTime", 0)) / 1000
        judging = (result or {}).get("judgingInfo") or {}
        out.append(
            EpisodeFinished(
                episode=episode,
                status="done" if status == "Complete" else "incomplete",  # type: ignore[arg-type]
                stop_reason=next(iter((result or {}).get("endedBy") or {}), status),
                ended_at=ended,
                outcome={
                    "final_judgement": judging.get("finalJudgement"),
                    "num_continues": judging.get("numContinues"),
                    "judge_reward": judging.get("judgeReward"),
                },
            )
        )
        return out

    return Imported(name, events)


def _speech(content: list[dict[str, Any]], story: str, starts: list[int], ends: list[int]) -> tuple[str, tuple[Quote, ...]]:
    """A speech's text with its quotes as `<quote>` tags, each verified by construction: a
    span of the story's own tokens."""
    parts: list[str] = []
    quotes: list[Quote] = []
    pos = 0
    for segment in content:
        if "Text" in segment:
            t = segment["Text"]["text"]
            parts.append(t)
            pos += len(t)
        elif "Quote" in segment:
            a, b = segment["Quote"]["span"]
            a, b = max(0, a), min(b, len(starts))
            if b <= a:
                continue
            cs, ce = starts[a], ends[b - 1]
            q = story[cs:ce]
            parts.append("<quote>")
            pos += len("<quote>")
            quotes.append(Quote(q, pos, pos + len(q), True, (cs, ce), 1.0))
            parts.append(q)
            parts.append("</quote>")
            pos += len(q) + len("</quote>")
    return "".join(parts), tuple(quotes)


def _verdict(episode: int, judge: str, rnd: int, body: dict[str, Any], correct: int, text: str, when: float) -> Verdict:
    probs = tuple(float(p) for p in body["distribution"])
    best = max(probs)
    # a tie is no choice, and (as in the paper) not a correct judgement
    choice = probs.index(best) if probs.count(best) == 1 else None
    return Verdict(
        episode=episode,
        judge=judge,
        model="human",
        round=rnd,
        choice=choice,
        probabilities=probs,
        correct=probs[correct] > 0.5,
        method="reported",
        parse_status="ok",
        raw=text,
        call_seq=None,
        created_at=when,
    )
