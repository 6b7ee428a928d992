"""Belief trajectories: the judge's probability on the correct answer after each round, per
condition, for protocols whose judge rules more than once (a judge reporting after every
round, the NYU rooms' human judges, a persuasion study's skeptic before and after).

The judge is the one whose verdict is the episode's ruling; its belief at a round is its
last verdict of that round. A verdict given before any speech is the judge's prior, round 0:
runs and imports store it so; runs stored before the engine did (it numbered such a verdict
round 1) are read the same way, since a verdict that precedes every speech of an episode
that has speeches is round 0 whatever its stored number.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from moot.analysis import stats
from moot.analysis.accuracy import Ratios
from moot.analysis.load import Results, Study
from moot.analysis.table import Table

# the first speech of each episode: by model call (its order in the episode) and by time
FIRST_SPEECH = """
SELECT episode, min(call_seq), min(created_at) FROM messages
WHERE role != 'judge' AND phase NOT LIKE '%:draft' GROUP BY episode
"""
RULING_JUDGE_VERDICTS = """
SELECT v.episode, v.round, v.call_seq, v.created_at,
    CAST(v.probabilities ->> ('$[' || r.answer || ']') AS REAL)
FROM verdicts AS v JOIN episode_results AS r ON r.episode = v.episode AND v.judge = r.judge
WHERE r.status = 'done' AND r.answer IS NOT NULL AND v.probabilities IS NOT NULL
ORDER BY v.episode, v.id
"""


def belief_round(stored: int, call_seq: int | None, created_at: float, first: tuple[int | None, float] | None) -> int:
    """The round a verdict belongs to: its stored round, or 0 when it came before the
    episode's first speech (`first`: that speech's call and time; None: no speeches)."""
    if stored == 0 or first is None:
        return stored
    first_call, first_time = first
    before = call_seq < first_call if call_seq is not None and first_call is not None else created_at < first_time
    return 0 if before else stored


def first_speeches(rows: list[tuple]) -> dict[int, tuple[int | None, float]]:
    return {ep: (call, when) for ep, call, when in rows}


@dataclass
class Beliefs:
    rounds: list[int]  # the rounds any judge reported at, in order
    p: np.ndarray  # episodes x rounds: p(correct) after that round, NaN where none
    several: np.ndarray  # per episode: the judge reported more than once


def beliefs(study: Study, res: Results) -> Beliefs:
    index = {(int(d), int(e)): i for i, (d, e) in enumerate(zip(res.db, res.episode))}
    by_episode: dict[int, dict[int, float]] = defaultdict(dict)
    counts: dict[int, int] = defaultdict(int)
    for db in range(len(study.paths)):
        first = first_speeches(study.rows(FIRST_SPEECH, db=db))
        for ep, stored, call, when, p in study.rows(RULING_JUDGE_VERDICTS, db=db):
            i = index.get((db, ep))
            if i is None or p is None:
                continue
            by_episode[i][belief_round(stored, call, when, first.get(ep))] = p  # the round's last
            counts[i] += 1
    rounds = sorted({r for b in by_episode.values() for r in b})
    col = {r: j for j, r in enumerate(rounds)}
    out = np.full((len(res), len(rounds)), np.nan)
    for i, b in by_episode.items():
        for r, p in b.items():
            out[i, col[r]] = p
    several = np.array([counts.get(i, 0) > 1 for i in range(len(res))], dtype=bool)
    return Beliefs(rounds, out, several)


def trajectory_table(study: Study, res: Results, reps: int, rng: np.random.Generator) -> Table | None:
    b = beliefs(study, res)
    ratios = Ratios(res)
    cells = []
    for k in range(len(res.conditions)):
        m = (res.condition == k) & b.several
        if not m.any():
            continue  # the judge ruled once: no trajectory
        for j, r in enumerate(b.rounds):
            has = m & ~np.isnan(b.p[:, j])
            if has.any():
                cells.append((k, r, has, ratios.add(np.where(has, b.p[:, j], 0.0), has)))
    if not cells:
        return None
    est, boot = ratios.solve(reps, rng)
    lo, hi = stats.percentile_ci(boot)
    t = Table(
        "trajectory",
        "The judge's belief in the correct answer, round by round",
        ["condition", "round", "episodes", "p_correct", "ci_low", "ci_high", "above_half"],
        note="p_correct: mean probability the ruling judge gave the correct answer after the "
        "round (its last verdict of the round; round 0: its prior, before any speech), over the "
        "episodes whose judge reported then (episodes that ended earlier drop out of later "
        "rounds); above_half: the share of those beliefs above 0.5. Conditions whose judge rules "
        f"more than once. 95% intervals: {reps:,} bootstrap resamples of "
        f"{res.clusters.describe(len(res.questions))}.",
        formats={"p_correct": "pct", "ci_low": "pct", "ci_high": "pct", "above_half": "pct"},
    )
    for k, r, has, i in cells:
        p = b.p[has, b.rounds.index(r)]
        t.rows.append([res.conditions[k], r, int(has.sum()), est[i], lo[i], hi[i], float(np.mean(p > 0.5))])
    return t
