"""The weak-judge studies' tasks as their authors distribute them, each read from a small
fixture made for moot (tests/fixtures/task_formats): two answers per question (the correct
one and an incorrect one drawn by seed, recorded), and a one-line error naming the file and
line for a malformed row."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest

from moot.errors import ConfigError
from moot.scenario.datasets import load
from moot.scenario.load import parse
from moot.workflows.run import run_scenario

HERE = Path(__file__).parent / "fixtures" / "task_formats"
FIXTURES = {
    "boolq": ("boolq.jsonl", 3),
    "mmlu": ("abstract_algebra_test.csv", 4),
    "gpqa": ("gpqa_main.csv", 3),
    "truthfulqa": ("mc_task.json", 2),
    "prontoqa": ("prontoqa.json", 2),
    "mmmu": ("mmmu.jsonl", 2),  # the open question is skipped
}


@pytest.mark.parametrize("fmt", sorted(FIXTURES))
def test_each_format_reads_its_fixture_into_two_answers(fmt):
    name, n = FIXTURES[fmt]
    qs = load(str(HERE / name), fmt=fmt)
    assert len(qs) == n
    for q in qs:
        assert len(q.options) == 2 and q.answer == 0 and q.options[0] != q.options[1]
        r = q.reduced
        assert r is not None and r["seed"] == 0 and r["correct"] != r["incorrect"]
        assert q.private == (fmt == "gpqa")


def test_what_each_format_reads():
    (tomato, penguin, _) = load(str(HERE / "boolq.jsonl"), fmt="boolq")
    assert tomato.question == "Is a tomato botanically a fruit?" and tomato.options == ("Yes", "No")
    assert penguin.options == ("No", "Yes") and "Southern Hemisphere" in penguin.passage
    z6 = load(str(HERE / "abstract_algebra_test.csv"), fmt="mmlu")[0]
    assert z6.options[0] == "6" and z6.options[1] in ("3", "12", "36") and z6.reduced["options"] == 4
    gas = load(str(HERE / "gpqa_main.csv"), fmt="gpqa")[0]
    assert gas.id == "recMOOT001" and gas.options[0] == "Nitrogen" and gas.private
    gum = load(str(HERE / "mc_task.json"), fmt="truthfulqa")[0]
    assert gum.options[0] == "It passes through your digestive system"
    max_, sally = load(str(HERE / "prontoqa.json"), fmt="prontoqa")
    assert max_.question == "True or false: Max is bright." and max_.options == ("True", "False")
    assert sally.options == ("False", "True") and sally.passage.startswith("Zumpuses are not sour.")
    red, _ = load(str(HERE / "mmmu.jsonl"), fmt="mmmu")
    assert red.options[0] == "1/2" and [i.name for i in red.images] == ["triangle.png"]
    assert red.images[0].data == (HERE / "triangle.png").read_bytes() and red.images[0].media_type == "image/png"


@pytest.mark.parametrize("fmt", ["mmlu", "gpqa", "truthfulqa"])
def test_the_reduction_is_reproducible_by_seed_and_independent_of_row_order(fmt, tmp_path):
    name, _ = FIXTURES[fmt]
    path = HERE / name

    def pairs(p, seed):
        return {q.id: (q.options, q.reduced["incorrect"]) for q in load(str(p), fmt=fmt, seed=seed)}

    assert pairs(path, 3) == pairs(path, 3)
    assert any(pairs(path, s) != pairs(path, 0) for s in range(1, 10))  # the seed decides
    # the same questions in another order draw the same incorrect answers
    text = path.read_text()
    if path.suffix == ".json":
        rows = json.loads(text)
        random.Random(1).shuffle(rows)
        shuffled = json.dumps(rows)
    else:
        head, *lines = text.splitlines(keepends=True)
        head = [head] if fmt == "gpqa" else []
        lines = lines if fmt == "gpqa" else text.splitlines(keepends=True)
        random.Random(1).shuffle(lines)
        shuffled = "".join(head + lines)
    other = tmp_path / name
    other.write_text(shuffled)
    assert pairs(other, 3) == pairs(path, 3)


def test_parquet_is_read_too(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"question": ["2 + 2 = ?", "Capital of France?"], "subject": ["math", "geo"],
                      "choices": [["3", "4", "5", "22"], ["Lyon", "Nice", "Paris", "Lille"]], "answer": [1, 2]})  # fmt: skip
    pq.write_table(table, tmp_path / "test-00000-of-00001.parquet")
    qs = load(str(tmp_path / "test-00000-of-00001.parquet"), fmt="mmlu")
    assert [q.options[0] for q in qs] == ["4", "Paris"]
    bad = pa.table({"question": ["2 + 2 = ?"], "choices": [["3", "4"]], "answer": [7]})
    pq.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(ConfigError, match=r"bad\.parquet:row 1: answer 7 is not a letter or index"):
        load(str(tmp_path / "bad.parquet"), fmt="mmlu")


# file, the line spoiled, the line named (a JSON file's row is named where it starts), error
MALFORMED = {
    "boolq": ("boolq.jsonl", 2, 2, lambda line: line.replace('"answer": false', '"answer": "nope"'), "answer must be true or false"),
    "mmlu": ("abstract_algebra_test.csv", 3, 3, lambda line: line.replace(",D\n", ",E\n"), "answer 'E' is not a letter"),
    "gpqa": ("gpqa_main.csv", 2, 2, lambda line: line.replace("Nitrogen,", ","), "missing field 'Correct Answer'"),
    "prontoqa": ("prontoqa.json", 15, 10, lambda line: line.replace('"False"', '"Maybe"'), "answer must be True or False"),
    "truthfulqa": ("mc_task.json", 9, 7, lambda line: line.replace('"Yes, only ten percent": 0', '"Yes, only ten percent": 1'), "exactly one answer 1"),
    "mmmu": ("mmmu.jsonl", 2, 2, lambda line: line.replace("bars.png", "missing.png"), "image_1: no such file"),
}  # fmt: skip


@pytest.mark.parametrize("fmt", sorted(MALFORMED))
def test_a_malformed_row_is_one_line_naming_file_and_line(fmt, tmp_path):
    name, spoiled, line_no, spoil, message = MALFORMED[fmt]
    lines = (HERE / name).read_text().splitlines(keepends=True)
    changed = spoil(lines[spoiled - 1])
    assert changed != lines[spoiled - 1], "the fixture changed: the spoiling no longer applies"
    lines[spoiled - 1] = changed
    path = tmp_path / name
    path.write_text("".join(lines))
    for png in HERE.glob("*.png"):
        (tmp_path / png.name).write_bytes(png.read_bytes())
    with pytest.raises(ConfigError) as info:
        load(str(path), fmt=fmt)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{path}:{line_no}: ") and message in text


def test_a_scenario_names_the_format_and_the_seed_and_gpqa_stays_private(tmp_path):
    text = f"""
name: weak_judge
protocol: {{name: debate, rounds: 1}}
seats: {{debater: {{model: scripted}}, judge: {{model: scripted}}}}
dataset: {{source: {HERE / 'gpqa_main.csv'}, format: gpqa, reduce_seed: 5}}
"""
    db = tmp_path / "g.db"
    run_scenario(parse(text), out=db)
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT question_id FROM episodes").fetchall()
    assert sorted(r for (r,) in rows) == ["recMOOT001", "recMOOT002", "recMOOT003"]
    # each episode records how its question was reduced, and that it is private
    stored = {q: json.loads(a) for q, a in conn.execute("SELECT question_id, attributes FROM episodes")}
    drawn = {q.id: q.reduced for q in load(str(HERE / "gpqa_main.csv"), fmt="gpqa", seed=5)}
    assert {q: a["reduced"] for q, a in stored.items()} == drawn
    assert all(a["private"] is True for a in stored.values())
    assert all(r["seed"] == 5 and r["options"] == 4 for r in drawn.values())
    from moot.cli import main

    out = tmp_path / "out"
    assert main(["export", str(db), "--format", "jsonl", "--out", str(out)]) in (0, None)
    exported = "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert "recMOOT" not in exported and "Nitrogen" not in exported  # not for publication
    kept = tmp_path / "kept"
    assert main(["export", str(db), "--format", "jsonl", "--out", str(kept), "--include-private"]) in (0, None)
    assert "Nitrogen" in "".join(p.read_text() for p in kept.rglob("*") if p.is_file())
