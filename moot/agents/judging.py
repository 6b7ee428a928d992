"""Turning a judge's output into a verdict: from token probabilities where the backend gives
them, else from the text. Unparseable output is recorded as invalid, never guessed."""

from __future__ import annotations

import math
import re

from moot.agents.base import Judgement

LABELS = tuple("ABCDEFGH")


def labels_for(n: int) -> tuple[str, ...]:
    return LABELS[:n]


def from_logprobs(logprobs: dict[str, float] | None, labels: tuple[str, ...]) -> Judgement | None:
    """Normalise the labels' probabilities at the answer position; None if there is no mass."""
    if not logprobs:
        return None
    values = [logprobs.get(label, -math.inf) for label in labels]
    peak = max(values)
    if peak == -math.inf:
        return None
    mass = [math.exp(v - peak) for v in values]  # shifted: no underflow for tiny logprobs
    total = sum(mass)
    probs = tuple(m / total for m in mass)
    choice = max(range(len(labels)), key=probs.__getitem__)
    return Judgement(choice, probs, method="token_logprobs", parse_status="ok")


_NUM = r"(\d{1,3}(?:\.\d+)?)\s*(%?)"


def _fraction(number: str, percent: str, scale_percent: bool = False) -> float | None:
    value = float(number)
    if percent or value > 1 or scale_percent:
        value /= 100
    return value if 0 <= value <= 1 else None


def from_text(text: str, labels: tuple[str, ...]) -> Judgement:
    """Read 'Answer: B' (or a bare leading 'B'), and 'Confidence: 80%' or 'A: 20%, B: 80%'."""
    alts = "".join(labels)
    found = {}
    for label in labels:
        m = re.search(rf"(?<![A-Za-z]){label}\s*[:=]\s*{_NUM}", text)
        if m:
            found[label] = (m.group(1), m.group(2))
    if len(found) == len(labels):
        # one scale for all labels: "A: 1, B: 99" is percentages, not 1.0 and 0.99
        percent = any(pct or float(num) > 1 for num, pct in found.values())
        values = [_fraction(num, pct, percent) for num, pct in found.values()]
        if all(v is not None for v in values) and sum(values) > 0:  # type: ignore[arg-type]
            total = sum(values)  # type: ignore[arg-type]
            shares: tuple[float, ...] = tuple(v / total for v in values)  # type: ignore[operator]
            choice = max(range(len(labels)), key=shares.__getitem__)
            return Judgement(choice, shares, method="text", parse_status="ok")

    # A label counts only as a label: "the answer is a matter of taste" or a leading article
    # ("A tough call") is not a vote. Lower case is accepted only when nothing follows it.
    end = r"(?=\s*$|\s*[.,;:)!\n])"
    m = re.search(rf"(?i:answer)\s*(?:(?i:is))?\s*[:\-]?\s*\(?([{alts}])\)?(?![A-Za-z])", text)
    if m is None:
        m = re.search(rf"(?i:answer)\s*(?:(?i:is))?\s*[:\-]?\s*\(?([{alts.lower()}])\)?{end}", text)
    if m is None:
        m = re.match(rf"\s*\(?([{alts}])\)?(?:{end}|(?=\s+is\b))", text)
    if m is None:
        return Judgement(None, None, method="none", parse_status="invalid")
    choice = labels.index(m.group(1).upper())
    conf = re.search(rf"confidence\s*[:=]?\s*{_NUM}", text, re.I)
    probs: tuple[float, ...] | None = None
    if conf and (c := _fraction(conf.group(1), conf.group(2))) is not None:
        rest = (1 - c) / (len(labels) - 1)
        probs = tuple(c if i == choice else rest for i in range(len(labels)))
    return Judgement(choice, probs, method="text", parse_status="ok")
