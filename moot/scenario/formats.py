"""The weak-judge studies' tasks as their authors distribute them (Kenton et al. 2024): BoolQ,
MMLU, GPQA, TruthfulQA (multiple choice), PrOntoQA and MMMU, read from files on disk
(JSONL, CSV, JSON or Parquet; nothing is downloaded).

Debate needs two answers. A set with more is reduced the way those papers did: the correct
answer and one incorrect answer, the incorrect one drawn by `random.Random` seeded with the
dataset's `reduce_seed` and the question's id, so the same file and seed give the same pairs
whatever the order of the rows or the sample taken. Which options were kept is recorded on
the question (`Question.reduced`). The correct answer is listed first; the run balances the
order (the answers' order, `both_orders`) as it does for every dataset.

Every malformed row is one ConfigError naming the file and the line (a Parquet file has no
lines: its row number).
"""

from __future__ import annotations

import ast
import csv
import io
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from moot.errors import ConfigError
from moot.scenario.datasets import Question, image_of, json_rows
from moot.transcript.images import Image

LETTERS = "ABCDEFGHIJ"

Row = tuple[str, dict[str, Any]]  # (where: "file:line", the row)


def reduce(qid: str, options: list[str], gold: int, seed: int, where: str) -> tuple[tuple[str, str], dict[str, Any]]:
    """The correct option and one incorrect one, drawn reproducibly; and the record of it."""
    if not 0 <= gold < len(options):
        raise ConfigError(f"{where}: the answer is not one of the {len(options)} options")
    if len(options) < 2:
        raise ConfigError(f"{where}: needs at least two options")
    wrong = [i for i in range(len(options)) if i != gold]
    pick = random.Random(f"{seed}:{qid}").choice(wrong)
    record = {"options": len(options), "correct": gold, "incorrect": pick, "seed": seed}
    return (str(options[gold]), str(options[pick])), record


def text_id(prefix: str, text: str) -> str:
    """An id for a row without one, from its question's text: the same question keeps its id
    (and its drawn answers) wherever it sits in the file."""
    import hashlib

    return f"{prefix}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def _question(qid: str, text: str, options: list[str], gold: int, seed: int, where: str, **kw: Any) -> Question:
    pair, record = reduce(qid, options, gold, seed, where)
    if pair[0].strip() == pair[1].strip():
        raise ConfigError(f"{where}: the correct and the incorrect answer read the same ({pair[0]!r})")
    return Question(qid, text, pair, 0, reduced=record, **kw)


# -- reading the files: rows with where they are ----------------------------------------------


def rows(path: Path, *, header: bool = True, columns: tuple[str, ...] = ()) -> Iterator[Row]:
    """The file's records as dicts, each with its place ("file:line" or "file:row N")."""
    where = str(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from _parquet(path)
        return
    text = _text(path)
    if suffix == ".csv":
        yield from _csv(text, where, header=header, columns=columns)
    elif suffix == ".json":
        yield from _json(text, where)
    else:
        for n, row in json_rows(text, where):
            yield f"{where}:{n}", row


def _text(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read dataset ({exc})") from None


def _csv(text: str, where: str, *, header: bool, columns: tuple[str, ...]) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    names = list(columns)
    line = 1
    for record in reader:
        n, line = line, reader.line_num + 1
        if header and not names:
            names = record
            continue
        if not record or not any(cell.strip() for cell in record):
            continue
        if len(record) != len(names):
            raise ConfigError(f"{where}:{n}: {len(record)} cells where the header has {len(names)}")
        yield f"{where}:{n}", dict(zip(names, record, strict=True))


def _json(text: str, where: str) -> Iterator[Row]:
    """A JSON array of objects (TruthfulQA's mc_task.json) or an object of objects
    (PrOntoQA's generated files), each element placed at the line it starts on."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    items = list(data.items()) if isinstance(data, dict) else list(enumerate(data)) if isinstance(data, list) else None
    if items is None:
        raise ConfigError(f"{where}:1: a JSON dataset is an array or an object of rows")
    starts = _element_lines(text)
    for k, (key, row) in enumerate(items):
        at = f"{where}:{starts[k] if k < len(starts) else 1}"
        if not isinstance(row, dict):
            raise ConfigError(f"{at}: each element must be a JSON object")
        yield at, {"_key": key, **row}


def _element_lines(text: str) -> list[int]:
    """The line each top-level element of a JSON array or object starts on."""
    out, depth, line, in_str, esc, expect = [], 0, 1, False, False, False
    for ch in text:
        if ch == "\n":
            line += 1
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if depth == 1 and expect and not ch.isspace() and ch not in ",":
            out.append(line)
            expect = False
        if ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth == 1:
                expect = True
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 1:
            expect = True
        if depth == 1 and ch == ":":  # an object's key came first: its value is the element
            expect = False
    return out


def _parquet(path: Path) -> Iterator[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(f"{path}: reading Parquet needs pyarrow (pip install 'moot[analysis]')") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise ConfigError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    for n, row in enumerate(table.to_pylist(), 1):
        yield f"{path}:row {n}", row


def _need(row: dict[str, Any], where: str, *keys: str) -> list[Any]:
    out = []
    for key in keys:
        if key not in row or row[key] is None or row[key] == "":
            raise ConfigError(f"{where}: missing field {key!r}")
        out.append(row[key])
    return out


def _text_field(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be text")
    return value


def _options(value: Any, where: str, key: str) -> list[str]:
    if isinstance(value, str):  # MMMU writes its options as a Python list's repr
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ConfigError(f"{where}: {key} must be a list of options") from None
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not all(isinstance(o, str) for o in value):
        raise ConfigError(f"{where}: {key} must be a list of options (strings)")
    return list(value)


def _letter_or_index(value: Any, n: int, where: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: answer must be a letter or an index")
    if isinstance(value, int) and 0 <= value < n:
        return value
    if isinstance(value, str):
        v = value.strip()
        if len(v) == 1 and v.upper() in LETTERS[:n]:
            return LETTERS.index(v.upper())
        if v.isdigit() and int(v) < n:
            return int(v)
    raise ConfigError(f"{where}: answer {value!r} is not a letter or index of the {n} options")


# -- the formats -----------------------------------------------------------------------------


def boolq(path: Path, seed: int) -> Iterator[Question]:
    """BoolQ (Clark et al. 2019) JSONL: question, passage, answer true/false (title optional)."""
    for where, row in rows(path):
        question, passage, answer = _need(row, where, "question", "passage", "answer")
        if not isinstance(answer, bool):
            raise ConfigError(f"{where}: answer must be true or false")
        text = _text_field(question, where, "question").strip()
        qid = str(row.get("idx", row.get("id", text_id("boolq", text))))
        text = text[0].upper() + text[1:] + ("" if text.endswith("?") else "?")
        yield _question(qid, text, ["Yes", "No"], 0 if answer else 1, seed, where,
                        passage=_text_field(passage, where, "passage"))  # fmt: skip


MMLU_COLUMNS = ("question", "A", "B", "C", "D", "answer")


def mmlu(path: Path, seed: int) -> Iterator[Question]:
    """MMLU (Hendrycks et al. 2021): the authors' CSVs without a header (question, A, B, C, D,
    answer letter), or a JSONL/Parquet export with question, choices and answer (index)."""
    header = False if path.suffix.lower() == ".csv" else True
    for where, row in rows(path, header=header, columns=MMLU_COLUMNS if not header else ()):
        if "choices" in row:
            question, choices, answer = _need(row, where, "question", "choices", "answer")
            options = _options(choices, where, "choices")
        else:
            question, *options, answer = _need(row, where, *MMLU_COLUMNS)
        gold = _letter_or_index(answer, len(options), where)
        text = _text_field(question, where, "question")
        qid = str(row.get("id") or text_id(str(row.get("subject") or path.stem), text))
        yield _question(qid, text, options, gold, seed, where)


GPQA = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")


def gpqa(path: Path, seed: int) -> Iterator[Question]:
    """GPQA (Rein et al. 2023): the authors' CSV (Question, Correct Answer, Incorrect Answer
    1-3, Record ID, ...). Its authors ask that its questions not be published: every row is
    marked private, and exports leave it out unless asked."""
    for where, row in rows(path):
        question, correct, *wrong = _need(row, where, *GPQA)
        options = [str(correct).strip(), *(str(w).strip() for w in wrong)]
        qid = str(row.get("Record ID") or text_id("gpqa", str(question)))
        yield _question(qid, str(question).strip(), options, 0, seed, where, private=True)


def truthfulqa(path: Path, seed: int) -> Iterator[Question]:
    """TruthfulQA's multiple-choice task (Lin et al. 2022), MC1 (one true answer): the
    authors' mc_task.json (`mc1_targets`: answer -> 1 or 0), or a JSONL/Parquet export
    (`mc1_targets`: {choices, labels})."""
    for where, row in rows(path):
        question, targets = _need(row, where, "question", "mc1_targets")
        if isinstance(targets, dict) and "choices" in targets and "labels" in targets:
            options, labels = list(targets["choices"]), list(targets["labels"])
        elif isinstance(targets, dict):
            options, labels = list(targets), list(targets.values())
        else:
            raise ConfigError(f"{where}: mc1_targets must map answers to 1 or 0")
        if len(options) != len(labels) or sorted(int(x) for x in labels).count(1) != 1 or any(int(x) not in (0, 1) for x in labels):
            raise ConfigError(f"{where}: mc1_targets must mark exactly one answer 1 and the rest 0")
        gold = [int(x) for x in labels].index(1)
        text = _text_field(question, where, "question")
        qid = str(row.get("id") or text_id("truthfulqa", text))
        yield _question(qid, text, [str(o) for o in options], gold, seed, where)


def prontoqa(path: Path, seed: int) -> Iterator[Question]:
    """PrOntoQA (Saparov and He 2023): the generator's JSON (`exampleN: {test_example:
    {question, query, answer}}`) or JSONL rows of {question, query, answer}. The facts
    (`question`) are the passage; the query ("True or false: ...") is the question; the
    options are True and False."""
    for where, row in rows(path):
        example = row.get("test_example", row)
        if not isinstance(example, dict):
            raise ConfigError(f"{where}: test_example must be an object")
        facts, query, answer = _need(example, where, "question", "query", "answer")
        value = str(answer).strip().lower()
        if value not in ("true", "false"):
            raise ConfigError(f"{where}: answer must be True or False, not {answer!r}")
        qid = str(row.get("id") or row.get("_key") or text_id("prontoqa", str(facts) + str(query)))
        yield _question(qid, _text_field(query, where, "query"), ["True", "False"], 0 if value == "true" else 1,
                        seed, where, passage=_text_field(facts, where, "question"))  # fmt: skip


def mmmu(path: Path, seed: int) -> Iterator[Question]:
    """MMMU (Yue et al. 2024), its Parquet or a JSONL export: id, question, options (a list or
    its repr), answer (a letter), question_type (only multiple-choice rows are read; open
    ones are skipped) and image_1..image_7: a local file's path (relative to the dataset),
    or Parquet's {bytes, path}. The images go with the question; `<image N>` in the text
    names them."""
    for where, row in rows(path):
        if row.get("question_type", "multiple-choice") != "multiple-choice":
            continue
        question, options, answer = _need(row, where, "question", "options", "answer")
        opts = _options(options, where, "options")
        gold = _letter_or_index(answer, len(opts), where)
        images = tuple(img for k in range(1, 8) if (img := _image(row.get(f"image_{k}"), path, where, k)) is not None)
        qid = str(row.get("id") or text_id("mmmu", str(question)))
        yield _question(qid, _text_field(question, where, "question"), opts, gold, seed, where, images=images)


def _image(value: Any, path: Path, where: str, k: int) -> Image | None:
    """An image: a file beside the dataset, or Parquet's embedded bytes."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        data, name = value.get("bytes"), value.get("path") or f"image_{k}"
        if isinstance(data, (bytes, bytearray)):
            return image_of(Path(str(name)).name, bytes(data), f"{where}: image_{k}")
        value = value.get("path")
    if not isinstance(value, str):
        raise ConfigError(f"{where}: image_{k} must be a file path")
    file = (path.parent / value) if not Path(value).is_absolute() else Path(value)
    if not file.is_file():
        raise ConfigError(f"{where}: image_{k}: no such file {file}")
    return image_of(file.name, file.read_bytes(), f"{where}: image_{k}")


FORMATS: dict[str, Callable[[Path, int], Iterator[Question]]] = {
    "boolq": boolq,
    "mmlu": mmlu,
    "gpqa": gpqa,
    "truthfulqa": truthfulqa,
    "prontoqa": prontoqa,
    "mmmu": mmmu,
}
