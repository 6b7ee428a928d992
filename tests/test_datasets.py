"""Datasets: the shipped reading set, your own JSONL or CSV, and QuALITY.

Whatever the source, `moot.scenario.datasets.load` gives `Question`s with exactly two options, one
of them correct; a bad row is a ConfigError that names the file and the line.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from moot.errors import ConfigError
from moot.scenario import datasets
from moot.scenario.datasets import Question
from moot.workflows.run import episode_specs

ROOT = Path(__file__).resolve().parents[1]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def q(n: int, answer: int = 0) -> Question:
    return Question(id=f"q{n}", question=f"Question {n}?", options=(f"yes {n}", f"no {n}"), answer=answer)


# --------------------------------------------------------------------------- the shipped set


def test_builtin_reading_set():
    questions = datasets.load("builtin:reading")
    assert len(questions) >= 20
    assert len({x.id for x in questions}) == len(questions)
    for x in questions:
        assert len(x.options) == 2 and all(o.strip() for o in x.options)
        assert x.options[0] != x.options[1]
        assert x.answer in (0, 1)
        assert x.question.strip()
        assert x.passage and len(x.passage) > 100
    # the correct answer is not given away by its position
    counts = Counter(x.answer for x in questions)
    assert counts[0] == counts[1]


def test_builtin_is_also_spelt_plainly():
    assert datasets.load("builtin") == datasets.load("builtin:reading")


# --------------------------------------------------------------------------- your own files


def test_jsonl_answer_as_index_letter_or_text(tmp_path: Path):
    path = write_jsonl(
        tmp_path / "mine.jsonl",
        [
            {"id": "by-index", "question": "Q1?", "options": ["red", "blue"], "answer": 1},
            {"id": "by-letter", "question": "Q2?", "options": ["red", "blue"], "answer": "A"},
            {"id": "lower-letter", "question": "Q3?", "options": ["red", "blue"], "answer": "b"},
            {"id": "by-text", "question": "Q4?", "options": ["red", "blue"], "answer": "blue"},
            {"id": "digit-string", "question": "Q5?", "options": ["red", "blue"], "answer": "0"},
            {"question": "Q6?", "options": ["red", "blue"], "answer": 0, "passage": "A text."},
        ],
    )
    questions = datasets.load(str(path))
    assert [x.answer for x in questions] == [1, 0, 1, 1, 0, 0]
    assert questions[0] == Question("by-index", "Q1?", ("red", "blue"), 1)
    # without an id, a question is named by its line; passage is optional
    assert questions[5].id == "6"
    assert questions[5].passage == "A text."
    assert questions[0].passage is None


def test_jsonl_text_may_hold_any_unicode(tmp_path: Path):
    # JSON allows these characters raw inside strings; writers with ensure_ascii=False
    # (and many non-Python tools) emit them as they are. Only "\n" ends a JSONL line.
    passage = "Line one\u2028line two\x85and\x0cmore\x1cend."
    path = tmp_path / "unicode.jsonl"
    row = {"question": "Q?", "options": ["a", "b"], "answer": 1, "passage": passage}
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", "utf-8")
    [question] = datasets.load(str(path))
    assert question.passage == passage


def test_jsonl_skips_blank_lines(tmp_path: Path):
    path = tmp_path / "gaps.jsonl"
    row = json.dumps({"question": "Q?", "options": ["a", "b"], "answer": 0})
    path.write_text(f"\n{row}\n\n{row}\n")
    assert [x.id for x in datasets.load(str(path))] == ["2", "4"]


def test_relative_source_is_found_next_to_the_scenario(tmp_path: Path):
    write_jsonl(tmp_path / "mine.jsonl", [{"question": "Q?", "options": ["a", "b"], "answer": 0}])
    assert len(datasets.load("mine.jsonl", base=tmp_path)) == 1


def test_csv_with_option_columns(tmp_path: Path):
    path = write_csv(
        tmp_path / "mine.csv",
        ["id", "question", "option_a", "option_b", "answer", "passage"],
        [
            ["c1", "Which is warmer?", "summer", "winter", "A", "Summer is warm."],
            ["c2", "Which is colder?", "summer", "winter", "winter", ""],
            ["c3", "Which is first?", "spring", "autumn", "0", ""],
        ],
    )
    questions = datasets.load(str(path))
    assert questions[0] == Question("c1", "Which is warmer?", ("summer", "winter"), 0, "Summer is warm.")
    assert questions[1].answer == 1
    assert questions[1].passage is None  # an empty cell is no passage
    assert questions[2].answer == 0


def test_csv_with_an_options_column(tmp_path: Path):
    path = write_csv(
        tmp_path / "mine.csv",
        ["question", "options", "answer"],
        [
            ["Which, of these, is a fruit?", json.dumps(["apple, green", "carrot"]), "0"],
            ["Which is a vegetable?", json.dumps(["apple", "carrot"]), "B"],
        ],
    )
    questions = datasets.load(str(path))
    assert questions[0].options == ("apple, green", "carrot")
    assert questions[0].question == "Which, of these, is a fruit?"
    assert [x.answer for x in questions] == [0, 1]
    assert [x.id for x in questions] == ["1", "2"]  # numbered by row, without the header


def test_split_filtering(tmp_path: Path):
    rows = [
        {"id": f"{split}-{i}", "question": "Q?", "options": ["a", "b"], "answer": i % 2, "split": split}
        for split in ("train", "dev", "test")
        for i in range(3)
    ]
    path = write_jsonl(tmp_path / "splits.jsonl", rows)
    assert len(datasets.load(str(path))) == 9
    dev = datasets.load(str(path), split="dev")
    assert [x.id for x in dev] == ["dev-0", "dev-1", "dev-2"]
    assert {x.split for x in dev} == {"dev"}
    with pytest.raises(ConfigError, match="no questions in split 'valid'"):
        datasets.load(str(path), split="valid")


def test_limit_and_shuffle_are_deterministic():
    questions = [q(n) for n in range(30)]

    assert datasets.sample(questions, limit=None, shuffle_seed=None) == questions
    assert datasets.sample(questions, limit=5, shuffle_seed=None) == questions[:5]

    first = datasets.sample(questions, limit=10, shuffle_seed=7)
    again = datasets.sample(questions, limit=10, shuffle_seed=7)
    other = datasets.sample(questions, limit=10, shuffle_seed=8)
    assert first == again
    assert first != other
    assert first != questions[:10]
    assert len(first) == 10 and len(set(first)) == 10
    # the limit takes a prefix of the same shuffle
    assert datasets.sample(questions, limit=4, shuffle_seed=7) == first[:4]
    assert sorted(datasets.sample(questions, limit=None, shuffle_seed=7), key=questions.index) == questions
    assert questions == [q(n) for n in range(30)]  # the input is not shuffled in place


# --------------------------------------------------------------------------- QuALITY


def quality_question(
    text: str, options: list[str], gold_label: int, distractor_votes: list[Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """A question as QuALITY stores it: 4 options, 1-indexed gold label and votes."""
    out: dict[str, Any] = {"question": text, "options": options, "gold_label": gold_label, **extra}
    if distractor_votes is not None:
        out["validation"] = [{"untimed_best_distractor": v} for v in distractor_votes]
    return out


FOUR = ["the lighthouse", "the harbour", "the mill", "the church"]


@pytest.fixture
def quality_file(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "QuALITY.v1.0.1.htmlstripped.dev",
        [
            {
                "article_id": "51120",
                "set_unique_id": "51120_X",
                "article": "It was a dark and stormy night by the sea.",
                "split": "dev",
                "questions": [
                    # most votes go to option 3 (the mill)
                    quality_question("Where did it end?", FOUR, 1, [3, 3, 2], question_unique_id="51120_X_1"),
                    # votes for the gold option do not count; 2 wins
                    quality_question("Where did it start?", FOUR, 4, [4, 4, 4, 2]),
                    # a tie between 2 and 4: the lower index
                    quality_question("Where was the bell?", FOUR, 3, [4, 2, 4, 2]),
                    # no validation at all: the first wrong option
                    quality_question("Where was the boat?", FOUR, 1),
                    # votes that are not numbers are ignored
                    quality_question("Where was the light?", FOUR, 2, ["", None, 4]),
                ],
            },
            {
                "article_id": "99",
                "article": "A second, shorter story.",
                "split": "dev",
                "questions": [quality_question("Who?", ["Ann", "Bob", "Cy", "Di"], 2, [])],
            },
        ],
    )


def test_quality_keeps_gold_and_most_voted_distractor(quality_file: Path):
    questions = datasets.load(str(quality_file))  # recognised without format: quality
    assert [x.options for x in questions] == [
        ("the lighthouse", "the mill"),
        ("the church", "the harbour"),
        ("the mill", "the harbour"),
        ("the lighthouse", "the harbour"),
        ("the harbour", "the church"),
        ("Bob", "Ann"),
    ]
    assert all(x.answer == 0 for x in questions)  # the gold option comes first
    assert questions[0].id == "51120_X_1"
    assert questions[1].id == "51120-1"  # article id and position, without a unique id
    assert questions[0].passage == "It was a dark and stormy night by the sea."
    assert questions[5].passage == "A second, shorter story."
    assert {x.split for x in questions} == {"dev"}


def test_quality_format_can_be_named(quality_file: Path):
    assert datasets.load(str(quality_file), fmt="quality") == datasets.load(str(quality_file))


def test_quality_question_without_gold_label(tmp_path: Path):
    bad = {"question": "Q?", "options": FOUR}
    path = write_jsonl(
        tmp_path / "q.jsonl",
        [
            {"article": "One.", "questions": [quality_question("Q?", FOUR, 1)]},
            {"article": "Two.", "questions": [quality_question("Q?", FOUR, 1), bad]},
        ],
    )
    with pytest.raises(ConfigError) as exc:
        datasets.load(str(path))
    assert str(exc.value).startswith(f"{path}:2: question 2: ")


def test_quality_gold_label_out_of_range(tmp_path: Path):
    path = write_jsonl(tmp_path / "q.jsonl", [{"article": "A.", "questions": [quality_question("Q?", FOUR, 5)]}])
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:1: question 1: gold_label out of range"):
        datasets.load(str(path))


# --------------------------------------------------------------------------- bad files


GOOD = {"question": "Q?", "options": ["a", "b"], "answer": 0}


def test_bad_json_names_file_and_line(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n" + '{"question": "Q?", \n')
    with pytest.raises(ConfigError) as exc:
        datasets.load(str(path))
    assert str(exc.value).startswith(f"{path}:3: not valid JSON")


def test_a_line_that_is_not_an_object(tmp_path: Path):
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD, ["Q?", "a", "b"]])
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:2: each line must be a JSON object"):
        datasets.load(str(path))


def test_three_options(tmp_path: Path):
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD, GOOD, {**GOOD, "options": ["a", "b", "c"]}])
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:3: options must be a list of exactly two strings"):
        datasets.load(str(path))


def test_a_row_is_private_only_when_it_says_so_plainly(tmp_path: Path):
    path = write_jsonl(tmp_path / "rows.jsonl", [GOOD, {**GOOD, "private": True}])
    assert [q.private for q in datasets.load(str(path))] == [False, True]
    path = write_jsonl(tmp_path / "bad.jsonl", [{**GOOD, "private": "yes"}])
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:1: private must be true or false"):
        datasets.load(str(path))


def test_missing_field(tmp_path: Path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"question": "Q?", "options": ["a", "b"]}])
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:1: missing field 'answer'"):
        datasets.load(str(path))


@pytest.mark.parametrize("answer", [2, -1, "C", "maybe", True])
def test_answer_that_is_not_an_option(tmp_path: Path, answer: Any):
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD, {**GOOD, "answer": answer}])
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:2: answer"):
        datasets.load(str(path))


def test_csv_bad_row_names_its_line(tmp_path: Path):
    path = write_csv(
        tmp_path / "bad.csv",
        ["question", "option_a", "option_b", "answer"],
        [["Q1?", "a", "b", "A"], ["Q2?", "a", "b", "C"]],
    )
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:3: answer 'C'"):
        datasets.load(str(path))


def test_csv_bad_row_after_a_multiline_passage_names_its_line(tmp_path: Path):
    # passages are paragraphs: a quoted cell may span several lines of the file
    path = write_csv(
        tmp_path / "bad.csv",
        ["question", "option_a", "option_b", "answer", "passage"],
        [["Q1?", "a", "b", "A", "First paragraph.\nSecond.\nThird."], ["Q2?", "a", "b", "C", ""]],
    )
    assert path.read_text().splitlines()[4].startswith("Q2?")  # the bad row is line 5
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:5: answer 'C'"):
        datasets.load(str(path))


def test_csv_options_column_that_is_not_json(tmp_path: Path):
    path = write_csv(tmp_path / "bad.csv", ["question", "options", "answer"], [["Q?", "a or b", "0"]])
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:2: options must be a JSON list"):
        datasets.load(str(path))


def test_missing_file(tmp_path: Path):
    path = tmp_path / "nowhere.jsonl"
    with pytest.raises(ConfigError) as exc:
        datasets.load(str(path))
    assert str(path) in str(exc.value)
    assert "no such file" in str(exc.value)


def test_empty_dataset(tmp_path: Path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: dataset has no questions"):
        datasets.load(str(path))


def test_bad_rows_print_as_one_line_from_the_cli(tmp_path: Path):
    # the CLI's contract, through the dataset: exit 2, one line naming file and line
    data = write_jsonl(tmp_path / "bad.jsonl", [GOOD, {**GOOD, "options": ["a"]}])
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: s\ndataset:\n  source: {data.name}\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "moot", "run", str(scenario), "--quiet"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    message = line.removeprefix("moot: error: ")
    assert message.startswith(f"{data}:2: options must be")
    assert not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------- answer order


@pytest.mark.parametrize(
    "answers",
    [
        [0] * 8,
        [1] * 8,
        [0, 1] * 4,  # alternating, as hand-written sets often are
        [1, 0] * 4,
        [0, 0, 1, 1] * 2,
        [1, 0, 0, 1, 1, 1, 0, 1],
    ],
    ids=["all-first", "all-second", "alternating", "alternating-1", "pairs", "mixed"],
)
def test_correct_answer_is_shown_first_in_half_the_episodes(answers: list[int]):
    questions = [q(n, a) for n, a in enumerate(answers)]
    specs = list(episode_specs(questions, both_orders=False))
    assert len(specs) == len(questions)
    assert sum(s.correct == 0 for s in specs) == len(questions) // 2
    for spec, question in zip(specs, questions):
        # whatever the order shown, `correct` points at the question's right answer
        assert spec.answers[spec.correct] == question.options[question.answer]
        assert set(spec.answers) == set(question.options)
        assert spec.question_id == question.id


def test_builtin_set_is_balanced_after_sampling():
    questions = datasets.sample(datasets.load("builtin:reading"), limit=4, shuffle_seed=7)
    specs = list(episode_specs(questions, both_orders=False))
    assert sum(s.correct == 0 for s in specs) == 2


def test_both_orders_shows_each_question_twice_swapped():
    questions = [q(0, 0), q(1, 1), q(2, 0)]
    specs = list(episode_specs(questions, both_orders=True))
    assert [s.index for s in specs] == list(range(6))
    assert [s.question_id for s in specs] == ["q0", "q0", "q1", "q1", "q2", "q2"]
    for first, second in zip(specs[::2], specs[1::2]):
        assert second.answers == first.answers[::-1]
        assert second.correct == 1 - first.correct
        assert first.answers[first.correct] == second.answers[second.correct]
    assert sum(s.correct == 0 for s in specs) == 3
