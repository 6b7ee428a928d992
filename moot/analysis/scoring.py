"""The judge score S of the debate platform Michael et al. 2023 ran on (julianmichael/debate,
`ScoringFunction.scala`): a proper scoring rule of the judge's final probabilities minus a
penalty per turn, which the room records in its rules and paid its judges by.

The NYU rooms record `LogScoreWithLinearPenalty` (log base 2, 0.05 per turn): Table 1's
"judge score" is its mean. It is computed here from the stored transcript alone: the final
verdict's probabilities, the correct answer, and the turns (every belief the judge reported
but the last let the debate go on). On the NYU data it equals every room's recorded
`judgeReward` to the last digit (tests/test_import.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from moot.analysis.stats import LOG_FLOOR


def judge_score(rule: str | dict | None, probabilities: Sequence[float], correct: int, turns: int) -> float:
    """The rule's score for a final distribution when `correct` is the answer, after
    `turns` turns; NaN for a rule this does not know (or none). p is floored as for the
    log score, so a certain wrong verdict is finite."""
    if rule is None:
        return math.nan
    spec = json.loads(rule) if isinstance(rule, str) else rule
    if not isinstance(spec, dict) or len(spec) != 1:
        return math.nan
    (kind, k), = spec.items()
    p = [float(x) for x in probabilities]
    if not 0 <= correct < len(p):
        return math.nan
    penalty = float(k.get("perTurnPenalty", 0.0)) * turns
    base = float(k.get("baseCoefficient", 1.0))
    if kind == "LogScoreWithLinearPenalty":
        log_base = float(k.get("logBase", math.e))
        return base * math.log(max(p[correct], LOG_FLOOR)) / math.log(log_base) + float(k.get("constant", 0.0)) - penalty
    if kind == "QuadraticScoreWithLinearPenalty":
        return base * (2 * p[correct] - sum(x * x for x in p)) - penalty
    if kind == "SphericalScoreWithLinearPenalty":
        norm = math.sqrt(sum(x * x for x in p))
        return base * p[correct] / norm - penalty if norm else math.nan
    return math.nan


def describe(rule: str | None) -> str:
    """A short name for a rule, for the report's note: "log2, 0.05 per turn"."""
    if rule is None:
        return "none"
    try:
        (kind, k), = json.loads(rule).items()
    except (ValueError, AttributeError, TypeError):
        return "unreadable"
    name = {"LogScoreWithLinearPenalty": f"log{k.get('logBase', 'e'):g}" if isinstance(k.get("logBase"), (int, float)) else "log",
            "QuadraticScoreWithLinearPenalty": "quadratic",
            "SphericalScoreWithLinearPenalty": "spherical"}.get(kind, kind)  # fmt: skip
    return f"{name} score, {k.get('perTurnPenalty', 0):g} per turn"
