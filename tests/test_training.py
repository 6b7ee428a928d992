"""Training data out: preference pairs (best-of-N drafts, debate winners, approved revisions,
peer-review rankings) and whole trajectories, read back by an independent JSONL reader."""

import json
import sqlite3
import subprocess
import sys

import pandas as pd

from moot.analysis.export import export
from moot.scenario.load import parse
from moot.workflows.run import run_scenario


def run(tmp_path, text, name="r.db"):
    db = tmp_path / name
    run_scenario(parse(text), out=db)
    return db


def read(path):
    frame = pd.read_json(path, lines=True)  # an independent reader of the JSONL
    return frame, [json.loads(line) for line in path.read_text().splitlines()]


BEST_OF = """
name: bo
protocol: {name: debate, rounds: 2, best_of: 3}
seats:
  debater: {model: scripted/d}
  judge: {model: scripted}
  selector: {model: scripted}
models:
  scripted/d: {replies: ["Draft one.", "Draft two.", "Draft three.", "Draft four."]}
dataset: {limit: 3}
"""


def test_best_of_drafts_and_debate_winners_become_pairs(tmp_path):
    db = run(tmp_path, BEST_OF)
    (path,) = export([db], tmp_path / "out", "preference")
    frame, pairs = read(path)
    assert list(frame.columns[:4]) == ["run", "episode", "judge", "source"]
    conn = sqlite3.connect(db)
    for p in pairs:
        assert p["chosen"][0]["role"] == "assistant" and p["prompt"][-1]["role"] == "user"
        if p["source"] == "best_of":
            # the pick over another draft, on the exact prompt the drafts answered
            picked = conn.execute(
                "SELECT content FROM messages WHERE episode = ? AND seat = ? AND round = ? AND phase = 'speeches'",
                (p["episode"], p["seat"], p["round"])).fetchone()[0]  # fmt: skip
            assert p["chosen"][0]["content"] == picked != p["rejected"][0]["content"]
            (system,) = conn.execute("SELECT system FROM model_calls WHERE episode = ? AND seat = ? LIMIT 1",
                                     (p["episode"], p["seat"])).fetchone()  # fmt: skip
            assert p["prompt"][0] == {"role": "system", "content": system}
        else:
            assert p["source"] == "debate"
            # the winner is the debater whose answer the ruling chose
            choice, assignments = conn.execute(
                "SELECT v.choice, e.assignments FROM verdicts v JOIN episodes e ON e.id = v.episode"
                " WHERE v.episode = ? ORDER BY v.id DESC LIMIT 1", (p["episode"],)).fetchone()  # fmt: skip
            assert json.loads(assignments)[p["seat"]] == choice
    counts = frame["source"].value_counts().to_dict()
    # 3 episodes x 2 rounds x 2 debaters, each pick over 2 other drafts (when they differ)
    drafts_differ = conn.execute(
        "SELECT count(*) FROM messages d JOIN messages m ON m.episode = d.episode AND m.seat = d.seat"
        " AND m.round = d.round AND m.phase = 'speeches' WHERE d.phase = 'speeches:draft' AND d.content != m.content"
    ).fetchone()[0]
    assert counts == {"best_of": drafts_differ, "debate": 3 * 2}


def test_approved_revisions_and_peer_review_rankings_become_pairs(tmp_path):
    feedback = run(tmp_path, """
name: fb
protocol: {name: feedback, rounds: 3}
seats:
  generator: {model: scripted/g}
  reviewer: {model: scripted/r}
  judge: {model: scripted}
models:
  scripted/g: {replies: ["First try.", "Better try."]}
  scripted/r: {replies: ["Weak.\\nDecision: revise", "Good.\\nDecision: approve"]}
dataset: {limit: 4}
""", "fb.db")
    review = run(tmp_path, """
name: pr
protocol: {name: peer_review, authors: 3, reviewers: 2}
seats:
  author: {model: scripted/a}
  reviewer: {model: scripted}
models:
  scripted/a: {replies: ["Submission one.", "Submission two.", "Submission three."]}
dataset: {limit: 2}
""", "pr.db")
    (path,) = export([feedback, review], tmp_path / "out", "preference")
    _, pairs = read(path)
    fb = [p for p in pairs if p["source"] == "feedback"]
    conn = sqlite3.connect(feedback)
    for p in fb:
        drafts = [c for (c,) in conn.execute(
            "SELECT content FROM messages WHERE episode = ? AND seat = 'generator' ORDER BY seq", (p["episode"],))]  # fmt: skip
        assert (p["chosen"][0]["content"], p["rejected"][0]["content"]) == (drafts[-1], drafts[0])
    assert fb, "some episode was revised and then approved"
    pr = [p for p in pairs if p["source"] == "peer_review"]
    conn = sqlite3.connect(review)
    for p in pr:
        ranking = [a for a, _ in json.loads(conn.execute("SELECT outcome FROM episodes WHERE id = ?", (p["episode"],)).fetchone()[0])["ranking"]]
        rejected_by = conn.execute(
            "SELECT seat FROM messages WHERE episode = ? AND phase = 'submit' AND content = ?",
            (p["episode"], p["rejected"][0]["content"])).fetchone()[0]  # fmt: skip
        assert ranking.index(p["seat"]) < ranking.index(rejected_by)
    assert pr


def test_trajectories_hold_every_turn_with_its_prompt_and_a_reward_per_seat(tmp_path):
    db = run(tmp_path, BEST_OF)
    out = subprocess.run(
        [sys.executable, "-m", "moot", "export", str(db), "--format", "trajectories", "--out", str(tmp_path / "t")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    frame, trajectories = read(tmp_path / "t" / "trajectories.jsonl")
    assert out.stdout.strip().endswith("trajectories.jsonl") and len(frame) == 3
    conn = sqlite3.connect(db)
    for t in trajectories:
        calls = conn.execute("SELECT count(*) FROM model_calls WHERE episode = ?", (t["episode"],)).fetchone()[0]
        assert len(t["calls"]) == calls and all(c["messages"][-1]["role"] == "user" for c in t["calls"])
        choice = t["verdicts"][-1]["choice"]
        assert t["rewards"]["debater_a"] == int(t["assignments"]["debater_a"] == choice)
        assert t["rewards"]["debater_a"] + t["rewards"]["debater_b"] == 1
        assert t["rewards"]["judge"] == int(choice == t["correct"])
