"""How long the debates ran and what evidence they carried: rounds per episode (and where
protocols that stop early stopped), and per condition, role and side the speeches' length
and quotes.

A round is the highest round of a speech in the episode: a message from a seat that is not
a judge (the judge's questions and rulings are not speeches; best-of drafts that were not
chosen were never delivered). An episode without speeches (direct QA) has 0 rounds.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict

import numpy as np

from moot.analysis import stats
from moot.analysis.accuracy import Ratios
from moot.analysis.load import Results, Study
from moot.analysis.table import Table

# what a reader reads: the speech without the quote tags around its citations
_QUOTE_TAG = re.compile(r"<\s*/?\s*quote\s*>", re.I)
# a tokenizer-independent count, the same for people and every model: words and marks
_TOKEN = re.compile(r"\w+|[^\w\s]")


def rounds_table(res: Results, reps: int, rng: np.random.Generator) -> Table:
    ratios = Ratios(res)
    ids = []
    for k in range(len(res.conditions)):
        m = res.condition == k
        ids.append((m, ratios.add(res.rounds * m, m)))
    est, boot = ratios.solve(reps, rng)
    lo, hi = stats.percentile_ci(boot)
    t = Table(
        "rounds",
        "Debate length",
        ["condition", "episodes", "rounds_mean", "ci_low", "ci_high", "rounds_sd", "rounds_min", "rounds_max"],
        note="rounds: the highest round of a speech in each finished episode (0 without speeches); "
        "sd: the sample standard deviation over episodes; 95% interval of the mean from the "
        f"same bootstrap as accuracy ({res.clusters.describe(len(res.questions))}).",
        formats={"rounds_mean": "num", "ci_low": "num", "ci_high": "num", "rounds_sd": "num"},
    )
    for k, (m, i) in enumerate(ids):
        r = res.rounds[m].astype(float)
        t.rows.append([
            res.conditions[k], int(m.sum()), est[i], lo[i], hi[i],
            float(r.std(ddof=1)) if len(r) > 1 else np.nan,
            int(r.min()) if len(r) else None, int(r.max()) if len(r) else None,
        ])  # fmt: skip
    return t


def stops_table(res: Results, study: Study) -> Table | None:
    """Where episodes stopped, by why, for conditions whose protocol can end before its
    last round (a judge confident enough, a person ending it): None when every finished
    episode ran its course."""
    reason: dict[tuple[int, int], str] = {}
    for db, rows in enumerate(study.rows("SELECT id, coalesce(stop_reason, '') FROM episodes WHERE status = 'done'")):
        for ep, why in rows:
            reason[(db, ep)] = why
    why = np.array([reason.get((int(d), int(e)), "") for d, e in zip(res.db, res.episode)], dtype=object)
    if not len(why) or set(why) <= {"completed", ""}:
        return None
    t = Table(
        "stops",
        "Where episodes stopped",
        ["condition", "stop_reason", "episodes", "share", "stop_round_mean", "stop_round_sd"],
        note="The stop round: the last round of a speech when the episode ended, by why it ended "
        "(judge_confident: a judge's belief passed the protocol's stop_threshold; judge_ended: a "
        "person ended it; rounds_done: it ran every round; imports keep their own reasons).",
        formats={"share": "pct", "stop_round_mean": "num", "stop_round_sd": "num"},
    )
    for k, c in enumerate(res.conditions):
        m = res.condition == k
        for reason_ in sorted(set(why[m])):
            sel = m & (why == reason_)
            r = res.rounds[sel].astype(float)
            t.rows.append([c, reason_ or "–", int(sel.sum()), sel.sum() / m.sum(), float(r.mean()),
                           float(r.std(ddof=1)) if len(r) > 1 else np.nan])  # fmt: skip
    return t


SPEECHES = """
SELECT r.condition, m.role, m.side, r.answer, m.content, m.quotes, c.completion_tokens
FROM messages AS m
JOIN episode_results AS r ON r.episode = m.episode
LEFT JOIN model_calls AS c ON c.episode = m.episode AND c.seq = m.call_seq
WHERE r.status = 'done' AND m.role != 'judge' AND m.phase NOT LIKE '%:draft'
"""


def side_label(side: int | None, answer: int | None) -> str:
    """Whether a speech argued the correct answer: what separates honest from dishonest."""
    if side is None:
        return "none"
    if answer is None:
        return f"answer {side + 1}"
    return "correct" if side == answer else "incorrect"


def speech_stats(content: str, quotes: str | None) -> tuple[int, int, int, int]:
    """(characters, tokens, quotes, verified quotes) of one speech."""
    text = _QUOTE_TAG.sub("", content)
    qs = json.loads(quotes) if quotes else []
    return len(text), len(_TOKEN.findall(text)), len(qs), sum(1 for q in qs if q.get("verified"))


def speeches_table(study: Study) -> Table | None:
    acc: dict[tuple[str, str, str], list[list[float]]] = defaultdict(lambda: [[], [], [], [], []])
    for cond, (role, side, answer, content, quotes, model_tokens) in study.query(SPEECHES):
        chars, tokens, n_quotes, verified = speech_stats(content, quotes)
        a = acc[(cond, role, side_label(side, answer))]
        a[0].append(chars)
        a[1].append(tokens)
        a[2].append(np.nan if model_tokens is None else model_tokens)
        a[3].append(n_quotes)
        a[4].append(verified)
    if not acc:
        return None
    t = Table(
        "speeches",
        "Speeches and evidence by condition, role and side",
        ["condition", "role", "side", "speeches", "chars_mean", "chars_sd", "tokens_mean",
         "model_tokens_mean", "quotes_per_speech", "quotes", "verified"],
        note="A speech: a message from a seat that is not a judge. side: whether it argued the "
        "correct answer. chars: without the quote tags; tokens: words and punctuation marks (the "
        "same count for people and every model); model_tokens: the model's own completion tokens, "
        "where a model spoke; verified: the share of quotes found in the passage.",
        formats={"chars_mean": "one", "chars_sd": "one", "tokens_mean": "one", "model_tokens_mean": "one",
                 "quotes_per_speech": "num", "verified": "pct"},
    )  # fmt: skip
    order = {c: i for i, c in enumerate(study.conditions)}
    for (cond, role, side), (lengths, counts, model, cited, checked) in sorted(
        acc.items(), key=lambda kv: (order.get(kv[0][0], 0), kv[0][1], kv[0][2])
    ):
        c = np.array(lengths, dtype=float)
        mt = np.array(model, dtype=float)
        n_quotes = int(sum(cited))
        t.rows.append([
            cond, role, side, len(c), float(c.mean()), float(c.std(ddof=1)) if len(c) > 1 else np.nan,
            float(np.mean(counts)), float(np.nanmean(mt)) if (~np.isnan(mt)).any() else np.nan,
            n_quotes / len(c), n_quotes, sum(checked) / n_quotes if n_quotes else np.nan,
        ])  # fmt: skip
    return t
