"""Calibration of the judge's probabilities: Brier score, expected calibration error and the
reliability diagram's bins, per condition.

Over valid rulings with a known answer and probabilities (a judge read as text without a
stated confidence has none, and is left out here, not in accuracy). Confidence is the
probability the judge gave the answer it chose.
"""

from __future__ import annotations

import numpy as np

from moot.analysis import stats
from moot.analysis.accuracy import scored
from moot.analysis.load import Results
from moot.analysis.table import Table

BINS = 10


def calibration_tables(res: Results) -> list[Table]:
    ok = scored(res) & ~np.isnan(res.p_correct) & ~np.isnan(res.p_choice)
    summary = Table(
        "calibration",
        "Calibration of the judge's probabilities",
        ["condition", "verdicts", "brier", "ece", "confidence", "accuracy"],
        note="brier: mean (1 - p(correct answer))^2 (0.25 = always 50%); ece: expected "
        f"calibration error over {BINS} equal-width bins of confidence; confidence: mean "
        "probability of the chosen answer. Verdicts without probabilities are left out.",
        formats={"brier": "num", "ece": "num", "confidence": "pct", "accuracy": "pct"},
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
        summary.rows.append([
            c, int(m.sum()), stats.brier(res.p_correct[m]), stats.ece(conf, right, BINS),
            float(conf.mean()) if m.any() else np.nan, float(right.mean()) if m.any() else np.nan,
        ])  # fmt: skip
        bins.rows += [[c, *row] for row in stats.reliability_bins(conf, right, BINS)]
    return [summary, bins]
