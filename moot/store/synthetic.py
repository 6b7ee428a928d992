"""Synthetic runs written straight into the real schema: deterministic databases of any size
for the TUI's tests, screenshots and benchmark (a million messages in about a minute).

Each episode is a two-round debate with a blind judge: two speeches per round (some with
verified and unverified quotes), a best-of draft no seat sees, then the judge's verdict
message and verdict row; every message has its model call. Some episodes fail, some
verdicts are invalid, and with `running` the last episodes are left unfinished."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from moot import store
from moot.store.writer import INSERT_CALL, INSERT_EPISODE, INSERT_MESSAGE, INSERT_VERDICT

HOSTILE = (
    "Markup: [bold red]x[/] [@click=app.quit]click me[/] [link=https://example.com]l[/link]"
    " [/bold] list[int]\nEscapes: \x1b[31mred\x1b[0m \x1b]0;title\x07 bell\x07 cr\rback"
    " \x9b31m del\x7f"
)
WORDS = (
    "the passage says clearly that answer holds because evidence witness storm harbour lamp"
    " bakery train river notes ledger letter clock bridge because therefore however earlier"
    " later first second never always only some most paragraph sentence quote claim"
).split()
SEATS = {
    "debater_a": {"role": "debater", "sees_source": True},
    "debater_b": {"role": "debater", "sees_source": True},
    "judge": {"role": "judge", "sees_source": False},
}
T0 = 1_795_000_000.0  # fixed: screenshots must not depend on the clock


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _speech(rng: random.Random, side: int, words: int) -> tuple[str, list[dict] | None]:
    head = f"I argue for answer {'AB'[side]}. "
    body = " ".join(_sentence(rng, rng.randint(6, 14)) for _ in range(max(1, words // 10)))
    if rng.random() < 0.5:
        return head + body, None
    quoted = _sentence(rng, 5)
    verified = rng.random() < 0.6
    text = f"{head}<quote>{quoted}</quote> {body}"
    start = len(head) + len("<quote>")
    return text, [{"text": quoted, "start": start, "end": start + len(quoted), "verified": verified,
                   "source_span": [0, len(quoted)] if verified else None, "score": 1.0 if verified else 0.4}]


def build(
    path: str | Path,
    episodes: int,
    *,
    rounds: int = 2,
    words: int = 40,
    running: int = 0,
    hostile: bool = False,
    seed: int = 0,
    batch: int = 20_000,
) -> Path:
    """Write a run of `episodes` debates (each 2 * rounds + 2 messages) to a new database."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(path)
    conn = store.connect(path, create=True)
    conn.execute("PRAGMA synchronous=OFF")
    rng = random.Random(seed)
    config = {"name": "synthetic", "protocol": {"name": "debate", "rounds": rounds}}
    store.create_run(conn, {
        "id": f"synthetic-{seed}", "name": "synthetic", "scenario_yaml": "name: synthetic\n",
        "config": config, "versions": {}, "models": {}, "started_at": T0,
    })  # fmt: skip
    eps: list[tuple[Any, ...]] = []
    msgs: list[tuple[Any, ...]] = []
    calls: list[tuple[Any, ...]] = []
    verdicts: list[tuple[Any, ...]] = []
    finished: list[tuple[Any, ...]] = []

    def flush() -> None:
        with conn:
            conn.executemany(INSERT_EPISODE, eps)
            conn.executemany(INSERT_MESSAGE, msgs)
            conn.executemany(INSERT_CALL, calls)
            conn.executemany(INSERT_VERDICT, verdicts)
            conn.executemany(
                "UPDATE episodes SET status=?, stop_reason=?, ended_at=?, outcome=?, error=? WHERE id=?",
                finished,
            )
        for rows in (eps, msgs, calls, verdicts, finished):
            rows.clear()

    for e in range(episodes):
        t = T0 + e
        correct = e % 2
        answers = [f"Option one of question {e}: {_sentence(rng, 4)}", f"Option two: {_sentence(rng, 4)}"]
        source = " ".join(_sentence(rng, 12) for _ in range(6))
        eps.append((e, f"q{e:07d}", f"Why did {_sentence(rng, 6).lower()[:-1]}?",
                    json.dumps(answers), correct, source, "debate",
                    json.dumps({"debater_a": 0, "debater_b": 1}), json.dumps(SEATS), t, None, None))  # fmt: skip
        live = e >= episodes - running
        seq = 0
        n_rounds = 1 if live else rounds
        for r in range(1, n_rounds + 1):
            for side, seat in enumerate(("debater_a", "debater_b")):
                content, quotes = _speech(rng, side, words)
                if hostile and e == 0 and seq == 0:
                    content = HOSTILE
                    quotes = None
                msgs.append((e, seq, r, "speeches", seat, "debater", side, content, None,
                             t + seq * 0.01, seq, None if quotes is None else json.dumps(quotes)))  # fmt: skip
                calls.append((e, seq, seat, "debater", "scripted", "You are a debater.",
                              f"Round {r}: argue for {'AB'[side]}.", None, "{}", content,
                              120 + seq, 40 + side, 0.0001 * (seq + 1), 0.25 + 0.01 * seq, 1,
                              t + seq * 0.01, None, 0))  # fmt: skip
                seq += 1
            if r == 1 and not live:  # a best-of draft nobody reads
                msgs.append((e, seq, r, "speeches:draft", "debater_a", "debater", 0,
                             "A draft that lost the best-of selection.", "[]", t + seq * 0.01, seq, None))  # fmt: skip
                calls.append((e, seq, "debater_a", "debater", "scripted", None, "Draft.", None, "{}",
                              "draft", 100, 10, 0.0, 0.1, 1, t + seq * 0.01, None, 1))  # fmt: skip
                seq += 1
        if live:
            continue
        failed = e % 23 == 22
        if failed:
            finished.append(("failed", "model_error", t + 1, "{}", "RateLimitError: too many requests", e))
            continue
        p = round(0.5 + 0.49 * rng.random(), 4)
        choice = correct if rng.random() < 0.7 else 1 - correct
        probs = [p, 1 - p] if choice == 0 else [1 - p, p]
        invalid = e % 17 == 16
        raw = "I cannot decide." if invalid else f"Answer: {'AB'[choice]}\nConfidence: {p:.0%}"
        msgs.append((e, seq, rounds, "verdict", "judge", "judge", None, raw, None, t + seq * 0.01, seq, None))
        calls.append((e, seq, "judge", "judge", "scripted", "You are a judge.", "Which answer is correct?",
                      None, '{"answer_labels":["A","B"]}', raw, 300, 4, 0.0002, 0.3, 1, t + seq * 0.01, None, 0))  # fmt: skip
        if invalid:
            verdicts.append((e, "judge", "scripted", rounds, None, None, None, "text", "invalid", raw, seq, t + 0.5))
            outcome: dict[str, Any] = {"choice": None, "correct": None}
        else:
            verdicts.append((e, "judge", "scripted", rounds, choice, json.dumps(probs), choice == correct,
                             "token_logprobs", "ok", raw, seq, t + 0.5))  # fmt: skip
            outcome = {"choice": choice, "correct": choice == correct}
        finished.append(("done", "completed", t + 1, json.dumps(outcome), None, e))
        if len(msgs) >= batch:
            flush()
    flush()
    with conn:
        conn.execute("UPDATE runs SET status = ?, ended_at = ?", ("running" if running else "done", None if running else T0 + episodes))
    conn.close()
    return path
