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
    mass = [math.exp(logprobs.get(label, -math.inf)) for label in labels]
    total = sum(mass)
    if not total > 0:
        return None
    probs = tuple(m / total for m in mass)
    choice = max(range(len(labels)), key=probs.__getitem__)
    return Judgement(choice, probs, method="token_logprobs", parse_status="ok")


_NUM = r"(\d{1,3}(?:\.\d+)?)\s*(%?)"


def _fraction(number: str, percent: str) -> float | None:
    value = float(number)
    if percent or value > 1:
        value /= 100
    return value if 0 <= value <= 1 else None


def from_text(text: str, labels: tuple[str, ...]) -> Judgement:
    """Read 'Answer: B' (or a bare leading 'B'), and 'Confidence: 80%' or 'A: 20%, B: 80%'."""
    alts = "".join(labels)
    per_label = {}
    for label in labels:
        m = re.search(rf"(?<![A-Za-z]){label}\s*[:=]\s*{_NUM}", text)
        if m:
            per_label[label] = _fraction(m.group(1), m.group(2))
    if len(per_label) == len(labels) and all(v is not None for v in per_label.values()):
        total = sum(per_label.values())  # type: ignore[arg-type]
        if total > 0:
            probs = tuple(per_label[lab] / total for lab in labels)  # type: ignore[operator]
            choice = max(range(len(labels)), key=probs.__getitem__)
            return Judgement(choice, probs, method="text", parse_status="ok")

    m = re.search(rf"answer\s*(?:is)?\s*[:\-]?\s*\(?([{alts}])\)?(?![A-Za-z])", text, re.I)
    if m is None:
        m = re.match(rf"\s*\(?([{alts}])\)?(?![A-Za-z])", text)
    if m is None:
        return Judgement(None, None, method="none", parse_status="invalid")
    choice = labels.index(m.group(1).upper())
    conf = re.search(rf"confidence\s*[:=]?\s*{_NUM}", text, re.I)
    probs = None
    if conf and (c := _fraction(conf.group(1), conf.group(2))) is not None:
        rest = (1 - c) / (len(labels) - 1)
        probs = tuple(c if i == choice else rest for i in range(len(labels)))
    return Judgement(choice, probs, method="text", parse_status="ok")
