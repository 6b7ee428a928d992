"""Training data out of stored runs: preference pairs and whole trajectories.

`preference` writes one JSON object per pair in the conversational layout preference-
optimisation trainers read (`prompt`: the chat messages; `chosen`, `rejected`: one assistant
message each), with where it came from (`run`, `episode`, `judge`, `source`, `round`,
`seat`):

- `best_of`: a speech's drafts under best-of-N share one prompt (the exact one the model
  was sent); the draft the selector picked is chosen, each other draft rejected.
- `debate`: in each round, the speech of the debater whose answer the ruling chose over the
  other debater's. Their prompts differ (each argues its own side), so the pair's prompt is
  the neutral framing both answered: the question, the answers and the round.
- `feedback`: the generator's approved final draft over its first draft, on the
  generator's first prompt.
- `peer_review`: each submission over every submission ranked below it, on the question.

`trajectories` writes one object per finished episode: the question and answers, every
message in order with seat, role, side, round and phase, each model call as the exact chat
messages sent and the reply, every verdict, the outcome, and a reward per seat (1 when the
ruling chose the seat's answer, 0 when it chose another; for judges, whether the ruling was
right; None when nothing was ruled).
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from moot.protocols.rules import approves  # the reviewer's decision, read as the run read it

Row = dict[str, Any]


def _call_messages(system: str | None, middle: str | None, prompt: str) -> list[dict[str, str]]:
    out = [{"role": "system", "content": system}] if system is not None else []
    out += json.loads(middle) if middle else []
    if prompt:
        out.append({"role": "user", "content": prompt})
    return out


def _rulings(conn: sqlite3.Connection) -> dict[int, tuple[str, int | None, bool | None]]:
    """Each episode's ruling: the verdict its `episode_results` view names."""
    return {
        ep: (judge, choice, None if correct is None else bool(correct))
        for ep, judge, choice, correct in conn.execute(
            "SELECT episode, judge, choice, correct FROM episode_results")
    }  # fmt: skip


def _neutral_prompt(question: str, answers: list[str], rnd: int) -> list[dict[str, str]]:
    shown = "\n".join(f"{chr(65 + i)}: {a}" for i, a in enumerate(answers))
    return [{"role": "user", "content": f"Question: {question}\n{shown}\n\nRound {rnd}: argue for your answer."}]


def _pair(base: Row, source: str, rnd: int, seat: str, prompt: list[dict[str, str]], chosen: str, rejected: str) -> Row:
    return base | {
        "source": source, "round": rnd, "seat": seat, "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }  # fmt: skip


def preference_pairs(conn: sqlite3.Connection, run: str) -> Iterator[Row]:
    rulings = _rulings(conn)
    episodes = {
        ep: (protocol, question, json.loads(answers), json.loads(assignments), json.loads(outcome or "{}"))
        for ep, protocol, question, answers, assignments, outcome in conn.execute(
            "SELECT id, protocol, question, answers, assignments, outcome FROM episodes WHERE status = 'done'")
    }  # fmt: skip
    calls = {
        (ep, seq): _call_messages(system, middle, prompt)
        for ep, seq, system, middle, prompt in conn.execute(
            "SELECT episode, seq, system, messages, prompt FROM model_calls")
    }  # fmt: skip
    by_episode: dict[int, list[tuple]] = defaultdict(list)
    for row in conn.execute(
        "SELECT episode, seq, round, phase, seat, role, side, content, call_seq FROM messages ORDER BY episode, seq"
    ):
        by_episode[row[0]].append(row)
    for ep, msgs in by_episode.items():
        if ep not in episodes:
            continue
        protocol, question, answers, assignments, outcome = episodes[ep]
        judge, choice, _ = rulings.get(ep, (None, None, None))
        base = {"run": run, "episode": ep, "judge": judge}
        # best-of-N: the pick over the other drafts, on the prompt they all answered
        drafts: dict[tuple[str, int, str], list[tuple]] = defaultdict(list)
        picked: dict[tuple[str, int, str], str] = {}
        for _, _, rnd, phase, seat, _, _, content, call_seq in msgs:
            if phase.endswith(":draft"):
                drafts[(seat, rnd, phase[: -len(":draft")])].append((content, call_seq))
            else:
                picked.setdefault((seat, rnd, phase), content)
        for key, options in drafts.items():
            chosen = picked.get(key)
            prompt = calls.get((ep, options[0][1])) if options[0][1] is not None else None
            if chosen is None or prompt is None:
                continue
            for content, _ in options:
                if content != chosen:
                    yield _pair(base, "best_of", key[1], key[0], prompt, chosen, content)
        speeches = [m for m in msgs if not m[3].endswith(":draft")]
        if protocol == "debate" and choice is not None:
            winner = next((s for s, a in assignments.items() if a == choice), None)
            loser = next((s for s, a in assignments.items() if a is not None and a != choice), None)
            by_round: dict[int, dict[str, str]] = defaultdict(dict)
            for _, _, rnd, _, seat, role, _, content, _ in speeches:
                if role == "debater":
                    by_round[rnd].setdefault(seat, content)
            for rnd, said in sorted(by_round.items()):
                if winner in said and loser in said:
                    prompt = _neutral_prompt(question, answers, rnd)
                    yield _pair(base, "debate", rnd, winner, prompt, said[winner], said[loser])
        if protocol == "feedback":
            drafts_ = [(m[8], m[7]) for m in speeches if m[5] == "generator"]
            reviews = [m[7] for m in speeches if m[5] == "reviewer"]
            if len(drafts_) > 1 and reviews and approves(reviews[-1]):
                first_call, first = drafts_[0]
                prompt = calls.get((ep, first_call)) if first_call is not None else None
                if prompt is not None and drafts_[-1][1] != first:
                    yield _pair(base, "feedback", len(drafts_), "generator", prompt, drafts_[-1][1], first)
        if protocol == "peer_review" and outcome.get("ranking"):
            submitted = {m[4]: m[7] for m in speeches if m[5] == "author" and m[3] == "submit"}
            order = [author for author, _ in outcome["ranking"] if author in submitted]
            for i, better in enumerate(order):
                for worse in order[i + 1 :]:
                    if submitted[better] != submitted[worse]:
                        prompt = [{"role": "user", "content": f"Question: {question}"}]
                        yield _pair(base, "peer_review", 1, better, prompt, submitted[better], submitted[worse])


def trajectories(conn: sqlite3.Connection, run: str) -> Iterator[Row]:
    rulings = _rulings(conn)
    calls: dict[int, dict[int, tuple]] = defaultdict(dict)
    for ep, seq, seat, role, model, system, middle, prompt, response in conn.execute(
        "SELECT episode, seq, seat, role, model, system, messages, prompt, response FROM model_calls"
    ):
        calls[ep][seq] = (seat, role, model, _call_messages(system, middle, prompt), response)
    messages: dict[int, list[Row]] = defaultdict(list)
    for ep, seq, rnd, phase, seat, role, side, content, call_seq in conn.execute(
        "SELECT episode, seq, round, phase, seat, role, side, content, call_seq FROM messages ORDER BY episode, seq"
    ):
        messages[ep].append({"seq": seq, "round": rnd, "phase": phase, "seat": seat, "role": role,
                             "side": side, "content": content, "call": call_seq})  # fmt: skip
    verdicts: dict[int, list[Row]] = defaultdict(list)
    for ep, judge, rnd, choice, probs, correct, method, status in conn.execute(
        "SELECT episode, judge, round, choice, probabilities, correct, method, parse_status FROM verdicts ORDER BY id"
    ):
        verdicts[ep].append({"judge": judge, "round": rnd, "choice": choice,
                             "probabilities": json.loads(probs) if probs else None,
                             "correct": None if correct is None else bool(correct),
                             "method": method, "parse_status": status})  # fmt: skip
    for ep, protocol, question, answers, correct, assignments, seats, outcome, cell in conn.execute(
        "SELECT id, protocol, question, answers, correct, assignments, seats, outcome, cell FROM episodes"
        " WHERE status = 'done' ORDER BY id"
    ):
        assignments = json.loads(assignments)
        seats = json.loads(seats)
        _, choice, ruled_right = rulings.get(ep, (None, None, None))
        rewards: dict[str, int | None] = {}
        for seat in seats:
            if seat in assignments and choice is not None:
                rewards[seat] = int(assignments[seat] == choice)
            elif seats[seat].get("role") == "judge" and ruled_right is not None:
                rewards[seat] = int(ruled_right)
            else:
                rewards[seat] = None
        yield {
            "run": run, "episode": ep, "condition": cell, "protocol": protocol,
            "question": question, "answers": json.loads(answers), "correct": correct,
            "assignments": assignments, "messages": messages.get(ep, []),
            "calls": [
                {"seq": seq, "seat": s, "role": r, "model": m, "messages": msgs, "response": resp}
                for seq, (s, r, m, msgs, resp) in sorted(calls.get(ep, {}).items())
            ],
            "verdicts": verdicts.get(ep, []),
            "outcome": json.loads(outcome) if outcome else None,
            "rewards": rewards,
        }  # fmt: skip


def export_training(paths: list[Any], out: Any, fmt: str) -> list[Any]:
    """`out/preference.jsonl` or `out/trajectories.jsonl` from one or more run databases."""
    from pathlib import Path

    from moot.analysis.load import open_db
    from moot.analysis.table import output_dir

    d = output_dir(out)
    make = preference_pairs if fmt == "preference" else trajectories
    target = d / f"{fmt}.jsonl"
    tmp = target.with_suffix(".jsonl.part")  # never a half-written file under the real name
    with tmp.open("w", encoding="utf-8") as f:
        for path in paths:
            conn = open_db(path)
            try:
                (run,) = conn.execute("SELECT id FROM runs LIMIT 1").fetchone() or (Path(path).stem,)
                for row in make(conn, run):
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
            finally:
                conn.close()
    tmp.replace(target)
    return [target]
