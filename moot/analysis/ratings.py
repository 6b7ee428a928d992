"""Debater win rates and Bradley-Terry (Elo-scaled) ratings from cross-play.

A game is a finished episode with two advocates (debaters, lawyers) and a valid ruling: the
advocate whose answer the judge chose wins. Players are the advocates' models, or their
seats when every advocate ran on one model (then the rating measures the seat's advantage).
The model: P(i beats j) = sigmoid(s_i - s_j + t z), z = +1 when i argued the truth, -1 when
j did, 0 otherwise; t is the truth's advantage, which keeps a player from being rated on
the side it happened to draw. Fitted by Newton's method; Elo = 1500 + 400 log10(e) s with
the strengths centred. Intervals: bootstrap over questions.
"""

from __future__ import annotations

import json
import math

import numpy as np

from moot.analysis import stats
from moot.analysis.load import Results, Study
from moot.analysis.table import Table

ELO = 400 / math.log(10)
RATING_REPS = 200  # bootstrap fits (each a Newton solve)
LIMIT = 10.0  # logits: a player that won (or lost) every game is held here, not at infinity

def games(study: Study, res: Results) -> list[tuple[int, int, str, str, int, int, int]]:
    """(condition, question, player a, player b, a won, b won, truth: +1 a, -1 b, 0 neither)
    for every valid ruling between two advocates."""
    models = {k: study.seat_models(k) for k in np.unique(res.condition[res.advocates == 2])}
    by_model = len({m for seats in models.values() for m in seats.values()}) > 1
    memo: dict[str, list[tuple[str, int]]] = {}
    out = []
    keep = np.flatnonzero((res.advocates == 2) & res.valid)
    for k, q, choice, answer, text in zip(
        res.condition[keep], res.question[keep], res.choice[keep], res.answer[keep], res.assignments[keep]
    ):
        if text not in memo:
            memo[text] = sorted(json.loads(text).items())
        (s1, side1), (s2, side2) = memo[text]
        p1, p2 = (models[k].get(s1, s1), models[k].get(s2, s2)) if by_model else (s1, s2)
        truth = int(answer == side1) - int(answer == side2) if answer >= 0 else 0
        out.append((int(k), int(q), p1, p2, int(choice == side1), int(choice == side2), truth))
    return out


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
    if not g:
        return None
    names = sorted({x[2] for x in g} | {x[3] for x in g})
    code = {p: i for i, p in enumerate(names)}
    questions, qs = np.unique(np.array([x[1] for x in g]), return_inverse=True)
    a = np.array([code[x[2]] for x in g])
    b = np.array([code[x[3]] for x in g])
    won_a = np.array([x[4] for x in g], dtype=float)
    won_b = np.array([x[5] for x in g], dtype=float)
    z = np.array([x[6] for x in g], dtype=float)
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
