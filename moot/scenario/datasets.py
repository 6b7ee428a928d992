"""Questions for episodes: the shipped reading set, user JSONL/CSV files, and QuALITY.

A question has exactly two options (one correct), or none and a `target`: a task with a
checkable answer (a number), which a protocol's scorer compares with what the seats
concluded. A bad row is a ConfigError naming the file and line.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from moot.errors import ConfigError
from moot.transcript.images import Image

BUILTIN = {
    "builtin:reading": "reading.jsonl",
    "builtin": "reading.jsonl",
    "builtin:cases": "cases.jsonl",  # civil cases for the courtroom protocol
    "builtin:arithmetic": "arithmetic.jsonl",  # word problems with numeric answers (chains)
    "builtin:bargaining": "bargaining.jsonl",  # games: sums to divide, discount factors
    "builtin:negotiation": "negotiation.jsonl",  # games: the seller's and buyer's values
    # claims for a persuasion study: the answer is the position the convincer argues
    "builtin:claims": "claims.jsonl",
    # client profiles for a counselling role-play: the passage is the profile
    "builtin:clients": "clients.jsonl",
    "builtin:memes": "memes.jsonl",  # a picture and its words per row, drawn for moot (scripts/make_memes.py)
}


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    question: str
    options: tuple[str, ...]  # two, or none for an open task
    answer: int | None  # index of the correct option; None for an open task
    passage: str | None = None
    split: str | None = None
    target: str | None = None  # an open task's answer (e.g. "592")
    game: dict[str, Any] | None = None  # a game instance's numbers (language games)
    private: bool = False  # not for publication: exports leave it out (e.g. GPQA's rows)
    # a multiple-choice set reduced to two answers: how many options there were, which were
    # kept (correct, incorrect) and the seed that drew the incorrect one (moot.scenario.formats)
    reduced: dict[str, Any] | None = None
    images: tuple[Image, ...] = ()  # shown with the question to the seats that see the source


def load(
    source: str, *, fmt: str = "auto", split: str | None = None, base: Path | None = None, seed: int = 0
) -> list[Question]:
    """A dataset's questions. `fmt` names a task format (`moot.scenario.formats`: boolq,
    mmlu, gpqa, truthfulqa, prontoqa, mmmu), whose options are reduced to two by `seed`."""
    from moot.scenario.formats import FORMATS

    if fmt in FORMATS:
        path = Path(source).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            raise ConfigError(f"dataset.source: no such file {path}")
        where = str(path)
        questions = list(FORMATS[fmt](path, seed))
    elif source in BUILTIN:
        text = resources.files("moot.data").joinpath(BUILTIN[source]).read_text("utf-8")
        where = source
        questions = list(_moot_jsonl(_lines(text), where))
    else:
        path = Path(source).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        where = str(path)
        if not path.is_file():
            raise ConfigError(f"dataset.source: no such file {path}")
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read dataset ({exc})") from None
        if path.suffix.lower() == ".csv":
            questions = list(_csv(text, where))
        else:
            lines = _lines(text)
            if fmt == "auto":
                fmt = "quality" if _looks_like_quality(lines) else "moot"
            reader = _quality if fmt == "quality" else _moot_jsonl
            questions = list(reader(lines, where))
    if split is not None:
        questions = [q for q in questions if q.split == split]
    if not questions:
        raise ConfigError(
            f"{where}: dataset has no questions" + (f" in split {split!r}" if split else "")
        )
    return questions


def sample(questions: list[Question], *, limit: int | None, shuffle_seed: int | None) -> list[Question]:
    out = list(questions)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(out)
    return out[:limit] if limit else out


def _lines(text: str) -> list[str]:
    """JSON Lines break on \\n only: str.splitlines() would also split on U+2028 and other
    characters that JSON strings may hold raw."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def json_rows(text: str, where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """A JSONL text's objects with their line numbers; a bad line is a ConfigError."""
    return _rows(_lines(text), where)


def _rows(lines: list[str], where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{where}:{n}: each line must be a JSON object")
        yield n, row


def _answer_index(value: Any, options: list[str], where: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: answer must be an index, a letter or an option's text")
    if isinstance(value, int) and 0 <= value < len(options):
        return value
    if isinstance(value, str):
        v = value.strip()
        if v.isdigit() and int(v) < len(options):
            return int(v)
        if len(v) == 1 and v.upper() in "AB"[: len(options)]:
            return "AB".index(v.upper())
        if v in options:
            return options.index(v)
    raise ConfigError(f"{where}: answer {value!r} is not an index, letter or option of {options}")


def _target(value: Any, where: str) -> str:
    """An open task's answer: a number, or GSM8K's worked solution ending `#### 72`."""
    text = str(value)
    if isinstance(value, str) and "####" in value:
        text = value.rsplit("####", 1)[1]
    text = text.strip().replace(",", "")
    try:
        float(text)
    except ValueError:
        raise ConfigError(f"{where}: answer {value!r}: without options, the answer must be a number") from None
    return text


def _question(row: dict[str, Any], where: str, default_id: str) -> Question:
    if "game" in row and "answer" not in row:  # a game instance: no answer, the referee scores
        game = row["game"]
        if not isinstance(game, dict) or not all(isinstance(v, (int, float, list)) for v in game.values()):
            raise ConfigError(f"{where}: game must be an object of numbers")
        return Question(str(row.get("id", default_id)), str(row.get("question", "")), (), None, game=game)
    if "answer" not in row and "options" not in row and isinstance(row.get("passage"), str):
        # a role-play: no answer to find, only what one seat knows (a client's profile)
        return Question(str(row.get("id", default_id)), str(row.get("question", "")), (), None,
                        passage=row["passage"], split=row.get("split"))  # fmt: skip
    for key in ("question", "answer"):
        if key not in row:
            raise ConfigError(f"{where}: missing field {key!r}")
    if "options" not in row:  # an open task with a checkable answer
        return Question(
            id=str(row.get("id", default_id)),
            question=str(row["question"]),
            options=(),
            answer=None,
            passage=row.get("passage") if isinstance(row.get("passage"), str) else None,
            split=row.get("split"),
            target=_target(row["answer"], where),
        )
    options = row["options"]
    if not (isinstance(options, list) and len(options) == 2 and all(isinstance(o, str) for o in options)):
        raise ConfigError(f"{where}: options must be a list of exactly two strings")
    passage = row.get("passage")
    if passage is not None and not isinstance(passage, str):
        raise ConfigError(f"{where}: passage must be a string")
    private = row.get("private", False)
    if not isinstance(private, bool):
        raise ConfigError(f"{where}: private must be true or false")
    return Question(
        id=str(row.get("id", default_id)),
        question=str(row["question"]),
        options=(options[0], options[1]),
        answer=_answer_index(row["answer"], options, where),
        passage=passage,
        split=row.get("split"),
        private=private,
        images=_images(row.get("images"), where),
    )


def _images(value: Any, where: str) -> tuple[Image, ...]:
    """A row's images: local files (a JSONL list, or a CSV cell of paths separated by `;`),
    relative to the dataset's own folder; each read once, its type checked by its bytes."""
    if value is None or value == "" or value == []:
        return ()
    paths = value.split(";") if isinstance(value, str) else value
    if not isinstance(paths, list) or not all(isinstance(p, str) and p.strip() for p in paths):
        raise ConfigError(f"{where}: images must be a list of file paths")
    dataset = where.rsplit(":", 1)[0]
    folder = Path(str(resources.files("moot.data"))) if dataset in BUILTIN else Path(dataset).parent
    out = []
    for p in paths:
        file = Path(p.strip()).expanduser()
        file = file if file.is_absolute() else folder / file
        try:
            data = file.read_bytes()
        except OSError:
            raise ConfigError(f"{where}: images: no such file {file}") from None
        out.append(image_of(file.name, data, f"{where}: images"))
    return tuple(out)


def image_of(name: str, data: bytes, where: str) -> Image:
    try:
        return Image.of(name, data)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None


def _moot_jsonl(lines: list[str], where: str) -> Iterator[Question]:
    for n, row in _rows(lines, where):
        yield _question(row, f"{where}:{n}", default_id=str(n))


def _csv(text: str, where: str) -> Iterator[Question]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    line = 2  # a record's first line in the file (quoted cells may span several lines)
    for record, row in enumerate(reader, 1):
        n, line = line, reader.line_num + 1
        row = {k: v for k, v in row.items() if k is not None}
        if row.get("options"):
            try:
                row["options"] = json.loads(row["options"])
            except json.JSONDecodeError:
                raise ConfigError(f"{where}:{n}: options must be a JSON list") from None
        elif "option_a" in row and "option_b" in row:
            row["options"] = [row.pop("option_a"), row.pop("option_b")]
        for optional in ("passage", "split", "id", "images"):
            if row.get(optional) == "":
                row.pop(optional)
        yield _question(row, f"{where}:{n}", default_id=str(record))


def _looks_like_quality(lines: list[str]) -> bool:
    for line in lines:
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                return False
            return isinstance(row, dict) and "article" in row and "questions" in row
    return False


def _quality(lines: list[str], where: str) -> Iterator[Question]:
    """QuALITY's JSONL: one article per line, 4 options per question, 1-indexed gold_label.

    The distractor is the option annotators most often picked as `untimed_best_distractor`
    (ties: the lower index); without votes, the first wrong option."""
    for n, row in _rows(lines, where):
        article = row.get("article")
        if not isinstance(article, str):
            raise ConfigError(f"{where}:{n}: QuALITY row without an article")
        for k, q in enumerate(row.get("questions") or []):
            at = f"{where}:{n}: question {k + 1}"
            try:
                options = q["options"]
                gold = int(q["gold_label"]) - 1
                text = q["question"]
            except (KeyError, TypeError, ValueError):
                raise ConfigError(f"{at}: needs question, options and gold_label") from None
            if not 0 <= gold < len(options):
                raise ConfigError(f"{at}: gold_label out of range")
            votes = Counter(
                int(v["untimed_best_distractor"]) - 1
                for v in q.get("validation") or []
                if isinstance(v, dict) and str(v.get("untimed_best_distractor", "")).isdigit()
            )
            votes.pop(gold, None)
            candidates = [i for i in range(len(options)) if i != gold]
            distractor = max(candidates, key=lambda i: (votes.get(i, 0), -i))
            yield Question(
                id=str(q.get("question_unique_id") or f"{row.get('article_id', n)}-{k}"),
                question=text,
                options=(options[gold], options[distractor]),
                answer=0,
                passage=article,
                split=row.get("split"),
            )
