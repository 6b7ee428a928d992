"""The typed events that flow one way: engine -> bus -> store, progress, TUI, analysis.

Plain slotted dataclasses rather than pydantic: tens of thousands are made per second on
the hot path, and they never cross a trust boundary (scenario files do, and are pydantic).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from moot.models.base import GenerateRequest
    from moot.transcript.images import Image
    from moot.transcript.quotes import Quote

# A message's audience: None means every seat of the episode; otherwise the seat ids.
Audience = frozenset[str] | None

EpisodeStatus = Literal["running", "done", "failed"]


@dataclass(slots=True)
class EpisodeStarted:
    episode: int
    question_id: str
    question: str
    answers: tuple[str, ...]
    correct: int | None
    source: str | None
    protocol: str
    # seat id -> index of the answer that seat is assigned to defend (debaters, consultants)
    assignments: dict[str, int]
    seats: dict[str, dict[str, Any]]
    started_at: float
    cell: str | None = None  # the sweep cell this episode belongs to
    attributes: dict[str, Any] | None = None  # facts from outside the run (imports)
    images: tuple[Image, ...] = ()  # shown with the question to the seats that see the source


@dataclass(slots=True)
class Message:
    """Something a seat said, as every permitted reader receives it."""

    episode: int
    seq: int
    round: int
    phase: str
    seat: str
    role: str
    side: int | None
    content: str
    audience: Audience
    created_at: float
    call_seq: int | None = None  # the model call behind the message, if any
    quotes: tuple[Quote, ...] | None = None  # its <quote> tags, checked against the source

    def visible_to(self, seat: str | None) -> bool:
        """Whether `seat` may read this message (None: the full view, which reads all)."""
        return seat is None or self.audience is None or seat in self.audience


def visible(messages: Iterable[Message], seat: str | None) -> tuple[Message, ...]:
    """What a seat may read of these messages: the one visibility rule, applied by the bus
    to live views and by every reader of stored transcripts (a message with no audience is
    everyone's; otherwise only its audience reads it)."""
    if seat is None:
        return tuple(messages)
    return tuple(m for m in messages if m.audience is None or seat in m.audience)


@dataclass(slots=True)
class ModelCall:
    """One call through the model gateway: its prompt, its answer and what it cost."""

    episode: int
    seq: int
    seat: str
    role: str
    model: str
    request: GenerateRequest
    response: str | None
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    latency_s: float
    attempts: int
    started_at: float
    error: str | None = None
    cached: bool = False  # answered from the response cache: nothing was paid this time


@dataclass(slots=True)
class Verdict:
    """A judge's ruling. Keyed by judge: several judges may rule on one transcript."""

    episode: int
    judge: str
    model: str
    round: int
    choice: int | None
    probabilities: tuple[float, ...] | None
    correct: bool | None
    method: str  # token_logprobs | text | none
    parse_status: str  # ok | invalid
    raw: str
    call_seq: int | None
    created_at: float


@dataclass(slots=True)
class Rating:
    """A reviewer's rating of a submission: a 1-9 score (pointwise), or the probability that
    `target` is better than `other` (pairwise, one row per order shown)."""

    episode: int
    rater: str
    target: str
    other: str | None
    round: int
    score: float | None
    probabilities: tuple[float, ...] | None
    method: str
    parse_status: str
    raw: str
    call_seq: int | None
    created_at: float


@dataclass(slots=True)
class Qualification:
    """A reviewer's answer to a check question with a known answer (not the episode's own
    question: its answers never count as the episode's verdict)."""

    episode: int
    rater: str
    question_id: str
    choice: int | None
    correct: bool | None
    probabilities: tuple[float, ...] | None
    method: str
    call_seq: int | None
    created_at: float


@dataclass(slots=True)
class MemoryEntry:
    """Something a seat will remember in later episodes (episode None: loaded at the start
    from a saved memory, `source` says where from)."""

    seat: str
    episode: int | None
    kind: str  # lesson | case
    content: str
    won: bool | None
    created_at: float
    source: str | None = None


@dataclass(slots=True)
class EpisodeFinished:
    episode: int
    status: EpisodeStatus
    stop_reason: str
    ended_at: float
    outcome: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    assignments: dict[str, int] | None = None  # final sides (open seats choose theirs)


Event = (
    EpisodeStarted | Message | ModelCall | Verdict | Rating | Qualification | MemoryEntry
    | EpisodeFinished
)


LOG_FLOOR = 0.01  # p(correct) below this scores as this: one certain wrong ruling is not -inf


def log_score(p_correct: float | None) -> float | None:
    """The log score of one ruling: ln of the probability it gave the correct answer."""
    return None if p_correct is None else math.log(max(p_correct, LOG_FLOOR))


@dataclass(slots=True)
class Totals:
    """A run's running totals: what the bus counts as events pass, what a live view counts
    from new rows, what a merged shard adds and what a finished run's summary reports. One
    type, so that every display means the same thing by "verdicts" or "cost"."""

    episodes: int = 0  # started (or stored)
    done: int = 0
    failed: int = 0
    messages: int = 0
    model_calls: int = 0
    tokens: int = 0
    cost: float = 0.0
    cached: int = 0  # calls answered from the response cache
    verdicts: int = 0  # rulings counted (the bus: every verdict; a stored run: each episode's)
    correct: int = 0
    invalid: int = 0
    # the stored rulings that gave the correct answer a probability, and the sum of their
    # log scores (ln p(correct), floored): the proper score beside accuracy
    scored: int = 0
    log_score: float = 0.0

    @property
    def running(self) -> int:
        return self.episodes - self.done - self.failed

    @property
    def accuracy(self) -> float | None:
        """Correct over valid rulings (None before any)."""
        valid = self.verdicts - self.invalid
        return self.correct / valid if valid else None

    @property
    def mean_log_score(self) -> float | None:
        return self.log_score / self.scored if self.scored else None

    def add(self, other: Totals) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
