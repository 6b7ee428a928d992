"""Calibration of the judge's probabilities: expected calibration error (with a cluster-
bootstrap interval) and the reliability diagram's bins, per condition.

Over valid rulings with a known answer and probabilities (a judge read as text without a
stated confidence has none, and is left out here, not in accuracy). Confidence is the
probability the judge gave the answer it chose; under `--ties wrong` a 50/50 is a wrong
verdict whose confidence is its top probability. (The Brier and log scores, which need no
chosen answer, are in moot.analysis.scores.)
"""

from __future__ import annotations

import numpy as np

from moot.analysis import stats
from moot.analysis.accuracy import scored
from moot.analysis.load import Results
from moot.analysis.table import Table

BINS = 10


def calibration_tables(res: Results, reps: int, rng: np.random.Generator) -> list[Table]:
    ok = scored(res) & ~np.isnan(res.p_correct) & ~np.isnan(res.p_choice)
    summary = Table(
        "calibration",
        "Calibration of the judge's probabilities",
        ["condition", "verdicts", "ece", "ece_low", "ece_high", "confidence", "accuracy"],
        note=f"ece: expected calibration error over {BINS} equal-width bins of confidence "
        f"([k/{BINS}, (k+1)/{BINS}), the last holding 1), with a 95% interval from {reps:,} "
        f"bootstrap resamples of {res.clusters.describe(len(res.questions))}; confidence: mean "
        "probability of the chosen answer. Verdicts without probabilities are left out; a "
        + ("tie is left out (--ties invalid)." if res.ties == "invalid" else "tie is wrong, at its top probability (--ties wrong)."),
        formats={"ece": "num", "ece_low": "num", "ece_high": "num", "confidence": "pct", "accuracy": "pct"},
    )
    bins = Table(
        "reliability",
        "Reliability diagram (bins of confidence)",
        ["condition", "bin_low", "bin_high", "verdicts", "confidence", "accuracy"],
        formats={"bin_low": "num", "bin_high": "num", "confidence": "pct", "accuracy": "pct"},
    )
    for k, c in enumerate(res.conditions):
        m = ok & (res.condition == k)
        conf, right = res.p_choice[m], res.correct[m]
        boot = stats.bootstrap_ece(res.cluster[m], conf, right, res.clusters.count, reps, rng, BINS)
        lo, hi = stats.percentile_ci(boot[:, None])
        summary.rows.append([
            c, int(m.sum()), stats.ece(conf, right, BINS), lo[0], hi[0],
            float(conf.mean()) if m.any() else np.nan, float(right.mean()) if m.any() else np.nan,
        ])  # fmt: skip
        bins.rows += [[c, *row] for row in stats.reliability_bins(conf, right, BINS)]
    return [summary, bins]
