"""Proper scores of the judge's probabilities, per condition: the log score, the Brier score,
and the judge score S of the rule the episodes record (Michael et al. 2023's Table 1), each
with a cluster-bootstrap interval.

Proper scoring rules reward the probability a judge gives the truth, not the answer it
picks, so every final verdict with probabilities on a known answer counts, a 50/50 too (the
`--ties` convention, about which answer was chosen, does not apply here).
"""

from __future__ import annotations

import json

import numpy as np

from moot.analysis import scoring, stats
from moot.analysis.accuracy import Ratios
from moot.analysis.load import Results
from moot.analysis.table import Table


def forecasts(res: Results) -> np.ndarray:
    """Finished episodes whose ruling gave the correct answer a probability."""
    return (res.answer >= 0) & ~np.isnan(res.p_correct)


def judge_scores(res: Results) -> np.ndarray:
    """Each episode's score under the rule it records (NaN where it records none): the
    final distribution, with every belief the ruling judge reported but the last a turn."""
    out = np.full(len(res), np.nan)
    for i in np.flatnonzero(forecasts(res) & (res.scoring != None)):  # noqa: E711  (object array)
        probs = json.loads(res.probabilities[i])
        out[i] = scoring.judge_score(res.scoring[i], probs, int(res.answer[i]), max(0, int(res.reports[i]) - 1))
    return out


def scores_table(res: Results, reps: int, rng: np.random.Generator) -> Table:
    f = forecasts(res)
    p = np.where(f, res.p_correct, 1.0)
    log = stats.log_score(p)
    brier = (1 - p) ** 2
    s = judge_scores(res)
    ruled = ~np.isnan(s)
    ratios = Ratios(res)
    ids = []
    for k in range(len(res.conditions)):
        m = f & (res.condition == k)
        r = m & ruled
        ids.append((m, r, ratios.add(log * m, m), ratios.add(brier * m, m), ratios.add(np.where(r, s, 0.0), r)))
    est, boot = ratios.solve(reps, rng)
    lo, hi = stats.percentile_ci(boot)
    rules = {scoring.describe(x) for x in res.scoring[ruled & f]}
    t = Table(
        "scores",
        "Proper scores of the judge's probabilities",
        ["condition", "verdicts", "log_score", "log_low", "log_high", "brier", "brier_low",
         "brier_high", "judge_score", "score_low", "score_high"],
        note=(
            "log_score: mean ln p(correct answer) (0 is perfect; ln 0.5 = -0.693 always answering "
            f"50%; p floored at {stats.LOG_FLOOR}, so one certain wrong verdict costs "
            f"{np.log(stats.LOG_FLOOR):.2f}, not -inf); brier: mean (1 - p(correct))^2 (0.25 always "
            "answering 50%); judge_score: the scoring rule the episodes record, as their judges "
            f"were paid ({', '.join(sorted(rules)) if rules else 'none recorded here'}; Michael et "
            "al. 2023's S: log2 p(correct) - 0.05 per turn the judge let the debate go on). Over "
            "every final verdict with probabilities on a known answer (a 50/50 too). 95% intervals "
            f"from {reps:,} bootstrap resamples of {res.clusters.describe(len(res.questions))}."
        ),
        formats={c: "num" for c in ("log_score", "log_low", "log_high", "brier", "brier_low", "brier_high",
                                    "judge_score", "score_low", "score_high")},
    )  # fmt: skip
    for k, (m, r, i_log, i_brier, i_s) in enumerate(ids):
        has_s = bool(r.any())
        t.rows.append([
            res.conditions[k], int(m.sum()), est[i_log], lo[i_log], hi[i_log], est[i_brier],
            lo[i_brier], hi[i_brier], est[i_s] if has_s else None, lo[i_s] if has_s else None,
            hi[i_s] if has_s else None,
        ])  # fmt: skip
    return t
