"""What a seat is to the engine: it receives a view and a turn, and returns a reply.

Nothing here says who fills the seat. A model, a scripted stand-in, a person at the terminal
or a replay of a stored transcript all implement the same `act`, so the engine never
special-cases any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from moot.models.forms import Form
    from moot.transcript.events import Message
    from moot.transcript.images import Image

TurnKind = Literal["speech", "question", "verdict", "choose", "review", "select", "rate"]


class EpisodeFailed(Exception):
    """An episode cannot go on (a seat named no answer to defend, a replay has no stored
    answer for a turn): the engine ends it as failed with `reason` as its stop reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@dataclass(slots=True)
class View:
    """Everything one seat may see at one moment, built by the bus (which enforces it)."""

    episode: int
    seat: str
    role: str
    question: str
    answers: tuple[str, ...]
    side: int | None  # the answer this seat defends, if assigned
    source: str | None  # None when the seat may not see the source text (a blind judge)
    messages: tuple[Message, ...]
    # The seat's scratch space for this episode, kept by the bus while the episode runs (a
    # seat caches what it renders from the episode here, and it goes when the episode does);
    # None for a view made outside a run (re-judging), where nothing is kept.
    memo: dict[Any, Any] | None = None
    images: tuple[Image, ...] = ()  # the question's images, to a seat that sees the source


@dataclass(slots=True)
class Turn:
    """What is asked of the seat now."""

    kind: TurnKind
    phase: str
    round: int
    rounds: int
    simultaneous: bool
    max_tokens: int
    candidate: int = 0  # best-of-N: which of the N drafts this is (varies the sampling seed)
    rubric: str = ""  # what a reviewer checks, when the protocol gives a rubric
    form: Form | None = None  # the form the reply must take (`moot.models.forms`), if declared
    pairwise: bool = False  # a rating of two submissions side by side (else each on its own)


@dataclass(slots=True)
class Judgement:
    """A judge's ruling as the seat produced it; the engine checks and stores it."""

    choice: int | None
    probabilities: tuple[float, ...] | None
    method: str  # token_logprobs | text | none
    parse_status: str  # ok | invalid
    end: bool = False  # the seat asks to end the episode now, where the protocol can stop early


@dataclass(slots=True)
class Reply:
    content: str
    judgement: Judgement | None = None
    call_seqs: list[int] = field(default_factory=list)
    model: str = ""


@runtime_checkable
class Seat(Protocol):
    """A seat at the table. `act` is called once per turn with the seat's own view."""

    id: str
    role: str

    async def act(self, view: View, turn: Turn) -> Reply: ...


@runtime_checkable
class LearningSeat(Seat, Protocol):
    """A seat that carries a memory from one episode to the next (AgentCourt's lawyers).

    After each episode the engine tells it how the ruling went for it (`won`: its side
    chosen, or, for a judge, its ruling right; None when nothing was ruled); what it keeps
    (kind, text) is stored as a `MemoryEntry`. `memory` is None for a seat that keeps
    nothing, so episodes run concurrently again."""

    memory: Any

    async def remember(self, view: View, won: bool | None) -> tuple[str, str] | None: ...
