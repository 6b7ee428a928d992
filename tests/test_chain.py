"""Generator, verifier, refiner (MALT) over tasks with a checkable answer: the order of the
roles, what each reads, and the engine's scoring of the final number."""

import json
import re
import sqlite3

import pytest

from moot.errors import ConfigError
from moot.protocols.rules import final_number
from moot.scenario.datasets import load
from moot.scenario.load import parse
from moot.workflows.run import run_scenario

CHAIN = """
name: chain
protocol: {{name: chain, rounds: {rounds}}}
seats:
  generator: {{model: scripted/solver}}
  verifier: {{model: scripted/checker}}
  refiner: {{model: scripted/solver}}
models:  # the solver's replies as written (forms off, not asked again): the scorer reads any text
  scripted/solver: {{replies: ["Step 1: add. Step 2: subtract.\\nAnswer: 48", "It is 1,000.5 or so, maybe 7", "no idea"], forms: false, form_retries: 0}}
  scripted/checker: {{replies: ["Step 2 is wrong.\\nDecision: revise"]}}
dataset: {{source: builtin:arithmetic, limit: 8}}
"""


def run(tmp_path, rounds=1):
    db = tmp_path / "c.db"
    run_scenario(parse(CHAIN.format(rounds=rounds)), out=db)
    return sqlite3.connect(db)


@pytest.mark.parametrize(
    ("text", "number"),
    [("Answer: 48", "48"), ("so 3 + 4 = 7.\nAnswer: **1,250**", "1250"), ("first 3, then 12", "12"),
     ("Answer: -2.5 apples", "-2.5"), ("no number here", None)],
)
def test_the_final_number_is_after_the_last_answer_line_else_the_last_number(text, number):
    assert final_number(text) == number


def test_roles_speak_in_order_and_nobody_sees_the_target(tmp_path):
    conn = run(tmp_path, rounds=2)
    order = [p for (p,) in conn.execute("SELECT phase FROM messages WHERE episode = 0 ORDER BY seq")]
    assert order == ["generate", "verify", "refine", "verify", "refine"]
    replies = ["Answer: 48", "1,000.5 or so, maybe 7"]
    for episode, question, target in conn.execute("SELECT id, question, attributes ->> '$.target' FROM episodes"):
        for (prompt,) in conn.execute(
            "SELECT coalesce(system, '') || coalesce(messages, '') || prompt FROM model_calls WHERE episode = ?",
            (episode,)):  # fmt: skip
            rest = prompt.replace(question, "")
            for r in replies:
                rest = rest.replace(r, "")
            assert not re.search(rf"\b{target}\b", rest)
    # the refiner reads the first solution and the verifier's check
    (prompt,) = conn.execute(
        "SELECT coalesce(messages, '') || prompt FROM model_calls WHERE episode = 0 AND seat = 'refiner' ORDER BY seq LIMIT 1"
    ).fetchone()
    assert "Step 2 is wrong." in prompt


def test_each_trajectory_is_scored_against_its_target(tmp_path):
    conn = run(tmp_path)
    rows = conn.execute(
        "SELECT e.attributes ->> '$.target', v.raw, v.correct, v.parse_status, m.content FROM episodes e"
        " JOIN verdicts v ON v.episode = e.id"
        " JOIN messages m ON m.episode = e.id AND m.seat = 'refiner' ORDER BY e.id"
    ).fetchall()
    assert len(rows) == 8
    for target, raw, correct, status, said in rows:
        assert raw == (final_number(said) or "")
        assert status == ("ok" if raw else "invalid")
        assert correct == (None if not raw else int(float(raw) == float(target)))
    assert any(c == 1 for _, _, c, _, _ in rows) and any(c == 0 for _, _, c, _, _ in rows)
    assert conn.execute("SELECT count(*) FROM verdicts WHERE judge != 'scorer'").fetchone() == (0,)


def test_open_tasks_read_numbers_and_gsm8k_solutions(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text(
        json.dumps({"question": "2+2?", "answer": 4}) + "\n"
        + json.dumps({"question": "Sum?", "answer": "We add 3 and 4.\n#### 1,007"}) + "\n"
        + json.dumps({"question": "Bad?", "answer": "seven"}) + "\n"
    )
    with pytest.raises(ConfigError, match=r"tasks.jsonl:3: answer 'seven': without options, the answer must be a number"):
        load(str(path))
    path.write_text("\n".join(path.read_text().splitlines()[:2]))
    assert [(q.options, q.target) for q in load(str(path))] == [((), "4"), ((), "1007")]
    assert len(load("builtin:arithmetic")) == 24
