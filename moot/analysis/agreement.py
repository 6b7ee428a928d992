"""Peer review: the aggregated ranking of authors, and how far the reviewers agree.

Agreement is over categorical ratings: a pointwise score rounded to the 1-9 scale, or a
pairwise preference (the first shown better, the other, or a tie at exactly 0.5). Cohen's
kappa for each pair of reviewers, Fleiss' kappa for all of them, on the items every reviewer
rated validly.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np

from moot.analysis.load import Study
from moot.analysis.table import Table


def cohen_kappa(x: list, y: list) -> float:
    """(p_o - p_e) / (1 - p_e): observed agreement against agreement by chance from each
    rater's own category frequencies. 1 when p_e = 1 and they agree (a single category)."""
    n = len(x)
    if n == 0:
        return float("nan")
    po = sum(a == b for a, b in zip(x, y)) / n
    cx, cy = Counter(x), Counter(y)
    pe = sum(cx[k] * cy[k] for k in cx) / n**2
    return 1.0 if pe == 1 else (po - pe) / (1 - pe)


def fleiss_kappa(items: list[list]) -> float:
    """Fleiss' kappa for items each rated by the same number m of raters:
    P_i = (sum_j n_ij^2 - m) / (m (m - 1)), P = mean P_i, p_j = share of all ratings in
    category j, P_e = sum p_j^2, kappa = (P - P_e) / (1 - P_e)."""
    if not items:
        return float("nan")
    m = len(items[0])
    cats = sorted({c for it in items for c in it}, key=str)
    counts = np.array([[Counter(it)[c] for c in cats] for it in items], dtype=float)
    p_i = ((counts**2).sum(1) - m) / (m * (m - 1))
    p_j = counts.sum(0) / (len(items) * m)
    pe = float((p_j**2).sum())
    return 1.0 if pe == 1 else float((p_i.mean() - pe) / (1 - pe))


def category(score: float, pairwise: bool) -> object:
    if pairwise:
        return "first" if score > 0.5 else ("second" if score < 0.5 else "tie")
    return int(min(9, max(1, round(score))))


RATINGS_SQL = """
SELECT r.condition, t.episode, t.rater, t.target, t.other, t.score
FROM ratings AS t JOIN episode_results AS r ON r.episode = t.episode
WHERE r.status = 'done' ORDER BY t.episode, t.id
"""

AUTHORS_SQL = """
SELECT r.condition, a.key, count(*),
    sum(r.answer IS NOT NULL AND a.value = r.answer),
    sum(json_extract(e.outcome, '$.ranking[0][0]') = a.key)
FROM episode_results AS r JOIN episodes AS e ON e.id = r.episode, json_each(e.assignments) AS a
WHERE r.status = 'done' AND e.protocol = 'peer_review'
GROUP BY r.condition, a.key ORDER BY r.condition, a.key
"""


def peer_review_tables(study: Study) -> list[Table]:
    rows = study.query(RATINGS_SQL)
    if not rows:
        return []
    by_cond: dict[str, dict[tuple, dict[str, object]]] = {}
    received: dict[tuple[str, str], list[float]] = {}
    for cond, (ep, rater, target, other, score) in rows:
        if score is None:
            continue
        item = by_cond.setdefault(cond, {}).setdefault((ep, target, other), {})
        item[rater] = category(score, other is not None)
        received.setdefault((cond, target), []).append(score)
        if other is not None:
            received.setdefault((cond, other), []).append(1 - score)
    agree = Table(
        "agreement",
        "Agreement between reviewers",
        ["condition", "raters", "items", "fleiss_kappa", "pair", "cohen_kappa"],
        note="Items every reviewer rated validly; categories: the 1-9 score rounded, or which "
        "of a pair was preferred (a tie at 0.5 is a category of its own).",
        formats={"fleiss_kappa": "num", "cohen_kappa": "num"},
    )
    for cond, items in by_cond.items():
        raters = sorted({r for it in items.values() for r in it})
        full = [it for it in items.values() if len(it) == len(raters)]
        fk = fleiss_kappa([[it[r] for r in raters] for it in full]) if len(raters) > 1 else float("nan")
        for x, y in combinations(raters, 2):
            agree.rows.append([cond, len(raters), len(full), fk, f"{x} / {y}",
                               cohen_kappa([it[x] for it in full], [it[y] for it in full])])  # fmt: skip
    authors = Table(
        "authors",
        "Peer review: the authors' aggregated ranking",
        ["condition", "author", "episodes", "mean_score", "ranked_first", "answer_correct"],
        note="mean_score: the mean rating received (pointwise 1-9; pairwise, the mean "
        "probability of being preferred); ranked_first: share of episodes it topped.",
        formats={"mean_score": "num", "ranked_first": "pct", "answer_correct": "pct"},
    )
    for cond, (author, n, right, top) in study.query(AUTHORS_SQL):
        scores = received.get((cond, author), [])
        authors.rows.append([cond, author, n, float(np.mean(scores)) if scores else None, top / n, right / n])
    authors.rows.sort(key=lambda r: (r[0], -(r[3] if r[3] is not None else -1)))
    return [authors, agree]
