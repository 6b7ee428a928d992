"""The rules protocols read replies by: a reviewer's decision, a solution's final number.

Kept with the protocols, not the engine, so the run and everything that reads its transcripts
later (training-data exports, analysis) read a reply the same way.
"""

from __future__ import annotations

import re

_DECISION = re.compile(r"decision\s*[:\-]?\s*\**\s*(approve|approved|revise)\b", re.I)


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_ANSWER_LINE = re.compile(r"answer\s*[:=]?\s*\**\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)", re.I)


def final_number(text: str) -> str | None:
    """The number a solution concludes: after its last "Answer:", else its last number."""
    found = _ANSWER_LINE.findall(text) or _NUMBER.findall(text)
    if not found:
        return None
    value = found[-1].replace(",", "")
    return value if value.strip("-") else None


def approves(review: str) -> bool:
    """The reviewer's last stated decision; anything unclear asks for a revision."""
    found = _DECISION.findall(review)
    return bool(found) and found[-1].lower().startswith("approve")
