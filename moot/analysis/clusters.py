"""What a bootstrap resamples: passages or questions.

Questions on the same passage are not independent (the NYU rooms hold about five questions
per story; a judge who misreads a story may miss all five), so resampling questions alone
gives intervals too narrow. `source` resamples passages, each with every question on it;
`question` resamples questions; `auto` takes passages when any passage holds more than one
question, else questions. A question keeps one cluster in every condition, so statistics of
different conditions stay paired.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from moot.errors import ConfigError

MODES = ("auto", "source", "question")


@dataclass(frozen=True)
class Clusters:
    by: str  # "source" or "question": what was resampled
    of_question: np.ndarray  # cluster code of each question
    count: int  # how many clusters
    shared: int  # passages that hold more than one question

    def describe(self, questions: int) -> str:
        if self.by == "source":
            return f"passages (--cluster source): {self.count:,} clusters for {questions:,} questions"
        return f"questions (--cluster question): {self.count:,} clusters"


def source_key(text: str | None) -> str | None:
    """A passage's identity: its text's digest (the text itself may be long)."""
    if not text:
        return None
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def assign(sources: Sequence[str | None], mode: str = "auto") -> Clusters:
    """Clusters for questions whose passage keys are `sources` (one per question, in the
    order of their codes; None: no passage, a cluster of its own)."""
    if mode not in MODES:
        raise ConfigError(f"--cluster {mode}: choose source, question or auto")
    n = len(sources)
    holders: dict[str, int] = {}
    for key in sources:
        if key is not None:
            holders[key] = holders.get(key, 0) + 1
    shared = sum(1 for k in holders.values() if k > 1)
    by = "source" if mode == "source" or (mode == "auto" and shared) else "question"
    if by == "question":
        return Clusters("question", np.arange(n, dtype=np.int64), n, shared)
    codes: dict[str, int] = {}
    of_question = np.empty(n, dtype=np.int64)
    for q, key in enumerate(sources):
        of_question[q] = codes.setdefault(key if key is not None else f"question:{q}", len(codes))
    return Clusters("source", of_question, len(codes), shared)
