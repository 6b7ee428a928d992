"""Debater win rates and Bradley-Terry (Elo-scaled) ratings from cross-play.

A game is a finished episode with two advocates (debaters, lawyers) and a valid ruling: the
advocate whose answer the judge chose wins. Players are the advocates' models, or their
seats when every advocate ran on one model (then the rating measures the seat's advantage).
The model: P(i beats j) = sigmoid(s_i - s_j + t z), z = +1 when i argued the truth, -1 when
j did, 0 otherwise; t is the truth's advantage, which keeps a player from being rated on
the side it happened to draw. Fitted by Newton's method; Elo = 1500 + 400 log10(e) s with
the strengths centred. Intervals: bootstrap over passages or questions (--cluster).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from moot.analysis import stats
from moot.analysis.load import Results, Study
from moot.analysis.table import Table

ELO = 400 / math.log(10)
RATING_REPS = 200  # bootstrap fits (each a Newton solve)
LIMIT = 10.0  # logits: a player that won (or lost) every game is held here, not at infinity


@dataclass
class Games:
    """Every valid ruling between two advocates, as arrays: players a and b (codes into
    `players`), who won, and truth: +1 when a argued the correct answer, -1 when b did."""

    players: list[str]
    question: np.ndarray
    a: np.ndarray
    b: np.ndarray
    won_a: np.ndarray
    won_b: np.ndarray
    truth: np.ndarray


def games(study: Study, res: Results) -> Games:
    keep = np.flatnonzero((res.advocates == 2) & res.valid & (res.choice >= 0))  # a tie has no winner
    models = {int(k): study.seat_models(int(k)) for k in np.unique(res.source[keep])}
    by_model = len({m for seats in models.values() for m in seats.values()}) > 1
    # a run has a handful of (condition, assignments) pairs: resolve each once
    texts, text_code = np.unique(res.assignments[keep].astype(str), return_inverse=True)
    combo, combo_code = np.unique(res.source[keep] * len(texts) + text_code.reshape(-1), return_inverse=True)
    names: dict[str, int] = {}
    side = np.zeros((len(combo), 2), dtype=np.int64)
    player = np.zeros((len(combo), 2), dtype=np.int64)
    for i, c in enumerate(combo):
        k, t = divmod(int(c), len(texts))
        for j, (seat, answer) in enumerate(sorted(json.loads(texts[t]).items())):
            name = models[k].get(seat, seat) if by_model else seat
            player[i, j] = names.setdefault(name, len(names))
            side[i, j] = answer
    combo_code = combo_code.reshape(-1)
    s1, s2 = side[combo_code, 0], side[combo_code, 1]
    contest = s1 != s2  # two open debaters who chose the same answer: no game
    s1, s2, combo_code, keep = s1[contest], s2[contest], combo_code[contest], keep[contest]
    choice, answer = res.choice[keep], res.answer[keep]
    known = answer >= 0
    ordered = sorted(names)
    rank = np.array([ordered.index(n) for n in names], dtype=np.int64)
    player = rank[player] if len(names) else player
    return Games(
        players=ordered,
        question=res.cluster[keep],  # what the bootstrap resamples: passages or questions
        a=player[combo_code, 0],
        b=player[combo_code, 1],
        won_a=(choice == s1).astype(float),
        won_b=(choice == s2).astype(float),
        truth=np.where(known, (answer == s1).astype(int) - (answer == s2).astype(int), 0).astype(float),
    )


def fit(players: int, a: np.ndarray, b: np.ndarray, y: np.ndarray, z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Strengths (centred) and the truth advantage, by Newton's method on the weighted
    log-likelihood of games a-vs-b with outcome y (1: a won) and truth indicator z."""
    n = players + 1
    x = np.zeros((len(a), n))
    np.add.at(x, (np.arange(len(a)), a), 1.0)
    np.add.at(x, (np.arange(len(a)), b), -1.0)
    x[:, -1] = z
    theta = np.zeros(n)
    keep = np.ones(n, dtype=bool)
    keep[0] = False  # s_0 = 0 pins the scale's origin; centred afterwards
    if not np.any(z):
        keep[-1] = False  # no game with a truth side: no advantage to fit
    xk = x[:, keep]
    ridge = 1e-9 * np.eye(keep.sum())
    for _ in range(60):
        p = 1 / (1 + np.exp(-(x @ theta)))
        grad = xk.T @ (w * (y - p))
        hk = (xk * (w * p * (1 - p))[:, None]).T @ xk + ridge
        try:
            step = np.linalg.solve(hk, grad)
        except np.linalg.LinAlgError:
            break
        before = theta[keep]
        theta[keep] = np.clip(before + step, -LIMIT, LIMIT)
        if np.max(np.abs(theta[keep] - before)) < 1e-10:  # converged, or held at the limit
            break
    s = theta[:-1] - theta[:-1].mean()
    return np.append(s, theta[-1])


def debater_table(study: Study, res: Results, reps: int, rng: np.random.Generator) -> Table | None:
    g = games(study, res)
    if not len(g.a):
        return None
    names = g.players
    a, b, won_a, won_b, z = g.a, g.b, g.won_a, g.won_b, g.truth
    questions, qs = np.unique(g.question, return_inverse=True)
    qs = qs.reshape(-1)
    # the fit sees distinct kinds of game with counts; a bootstrap replicate reweights them
    kinds, kind = np.unique(np.column_stack([a, b, won_a, z]), axis=0, return_inverse=True)
    kind = kind.reshape(-1)
    ka, kb, ky, kz = kinds[:, 0].astype(int), kinds[:, 1].astype(int), kinds[:, 2], kinds[:, 3]
    per_q = np.zeros((len(questions), len(kinds)), dtype=np.float32)
    np.add.at(per_q, (qs, kind), 1.0)
    theta = fit(len(names), ka, kb, ky, kz, per_q.sum(0).astype(float))
    boots = [
        fit(len(names), ka, kb, ky, kz, row.astype(float))
        for w in stats.bootstrap_weights(len(questions), min(reps, RATING_REPS), rng)
        for row in w @ per_q
    ]
    lo, hi = stats.percentile_ci(np.array(boots)) if boots else (theta * np.nan, theta * np.nan)
    t = Table(
        "debaters",
        "Debater win rates and ratings",
        ["player", "games", "wins", "win_rate", "win_rate_truth", "win_rate_false", "elo", "elo_low", "elo_high", "judge_accuracy"],
        note=f"Games between two different players (self-play only informs the truth advantage, "
        f"fitted at {theta[-1]:+.2f} logits). win_rate_truth/false: when arguing the correct/"
        "incorrect answer. Elo from a Bradley-Terry fit with 95% bootstrap intervals. "
        "judge_accuracy: in the player's self-play games, else in all its games.",
        formats={"win_rate": "pct", "win_rate_truth": "pct", "win_rate_false": "pct", "elo": "int", "elo_low": "int", "elo_high": "int", "judge_accuracy": "pct"},
    )  # fmt: skip
    right = (won_a * (z > 0) + won_b * (z < 0))  # the judge chose the truth
    has_truth = z != 0
    for i, p in enumerate(names):
        cross = (a != b) & ((a == i) | (b == i))
        wins = won_a * (a == i) + won_b * (b == i)
        truth = np.where(a == i, z > 0, z < 0)
        false = np.where(a == i, z < 0, z > 0)
        n = int(cross.sum())
        self_play = (a == i) & (b == i) & has_truth
        involved = ((a == i) | (b == i)) & has_truth
        judged = self_play if self_play.any() else involved
        t.rows.append([
            p, n, int(wins[cross].sum()), _rate(wins[cross]), _rate(wins[cross & truth]),
            _rate(wins[cross & false]), 1500 + ELO * theta[i], 1500 + ELO * lo[i],
            1500 + ELO * hi[i], _rate(right[judged]),
        ])  # fmt: skip
    return t


def _rate(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else math.nan
