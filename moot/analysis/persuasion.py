"""Opinion change (Breum et al. 2023, "The Persuasive Power of Large Language Models"): a
convincer argues one side to a skeptic who states its belief before any argument (round 0)
and after; the change is the skeptic's probability on the side argued, after minus before,
per condition (a sweep over argument styles makes one condition per style).

The side argued is the speakers' side in the episode (the run alternates which answer is
shown first, so a skeptic's preference for a label or a position cancels out); only
episodes whose ruling judge gave a belief both before any speech and after one count.
"""

from __future__ import annotations

import json

import numpy as np

from moot.analysis import stats
from moot.analysis.accuracy import Ratios
from moot.analysis.load import Results, Study
from moot.analysis.table import Table
from moot.analysis.trajectory import FIRST_SPEECH, belief_round, first_speeches

VERDICTS = """
SELECT v.episode, v.round, v.call_seq, v.created_at, v.probabilities
FROM verdicts AS v JOIN episode_results AS r ON r.episode = v.episode AND v.judge = r.judge
WHERE r.status = 'done' AND v.probabilities IS NOT NULL
ORDER BY v.episode, v.id
"""
SIDES = """
SELECT episode, min(side), max(side) FROM messages
WHERE role != 'judge' AND side IS NOT NULL AND phase NOT LIKE '%:draft' GROUP BY episode
"""


def changes(study: Study, res: Results) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per episode: the belief in the side argued before, after, and whether both exist."""
    index = {(int(d), int(e)): i for i, (d, e) in enumerate(zip(res.db, res.episode))}
    before = np.full(len(res), np.nan)
    after = np.full(len(res), np.nan)
    for db in range(len(study.paths)):
        first = first_speeches(study.rows(FIRST_SPEECH, db=db))
        # one side argued (a convincer, or speakers who all argue one answer)
        sides = {ep: lo for ep, lo, hi in study.rows(SIDES, db=db) if lo == hi}
        for ep, stored, call, when, probs in study.rows(VERDICTS, db=db):
            i = index.get((db, ep))
            side = sides.get(ep)
            if i is None or side is None:
                continue
            p = json.loads(probs) if isinstance(probs, str) else probs
            if not isinstance(p, list) or side >= len(p):
                continue
            if belief_round(stored, call, when, first.get(ep)) == 0:
                before[i] = float(p[side])
            else:
                after[i] = float(p[side])  # the last verdict after any speech
    both = ~np.isnan(before) & ~np.isnan(after)
    return before, after, both


def persuasion_table(study: Study, res: Results, reps: int, rng: np.random.Generator) -> Table | None:
    before, after, both = changes(study, res)
    if not both.any():
        return None
    ratios = Ratios(res)
    cells = []
    for k in range(len(res.conditions)):
        m = (res.condition == k) & both
        if m.any():
            ids = [ratios.add(np.where(m, x, 0.0), m) for x in (before, after, after - before)]
            cells.append((k, m, ids))
    est, boot = ratios.solve(reps, rng)
    lo, hi = stats.percentile_ci(boot)
    t = Table(
        "persuasion",
        "Opinion change: the skeptic's belief in the side argued, before and after",
        ["condition", "episodes", "before", "after", "change", "ci_low", "ci_high", "moved_toward"],
        note="before: the ruling judge's probability on the side the speakers argued, given before "
        "any speech (round 0); after: its last one; change: after minus before (percentage "
        "points as a fraction), with a 95% interval from "
        f"{reps:,} bootstrap resamples of {res.clusters.describe(len(res.questions))}; "
        "moved_toward: the share of episodes whose belief in the side argued rose. Episodes "
        "with a belief both before and after a speech.",
        formats={"before": "pct", "after": "pct", "moved_toward": "pct"},
    )
    for k, m, (b, a, c) in cells:
        d = after[m] - before[m]
        t.rows.append([res.conditions[k], int(m.sum()), est[b], est[a], est[c], lo[c], hi[c],
                       float(np.mean(d > 0))])  # fmt: skip
    return t
