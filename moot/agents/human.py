"""A seat filled by a person: the same `act` as a model seat, answered at a desk.

The engine hands a `HumanSeat` the view the bus built for it and a turn, exactly as it does a
model seat. The seat turns them into a `TurnRequest` (plain data: what the person may see and
what is asked) and awaits a `TurnAnswer` from a desk:

- the terminal UI of `moot run --tui`, in the same process (`moot.tui.human.TuiDesk`);
- the run database, for a person who takes the seat with `moot join` from another terminal
  (`moot.agents.desk.StoreDesk`);
- anything else with an async `ask` (tests answer with a function).

What the person typed is stored verbatim, like a model's reply. Each turn leaves a
`model_calls` row with model `human`: what the person was shown (prompt), what they wrote
(response), and how long they took (latency_s, from the moment the turn was shown); tokens
and cost are zero. A scenario may give a seat a `time_limit` per turn: a turn that runs out
is an empty speech or an invalid verdict (parse_status `timeout`), recorded as such.
"""

from __future__ import annotations

import json
import re
import time
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from moot.agents import judging
from moot.agents.base import Judgement, Reply, Turn, View
from moot.agents.prompts import Templates
from moot.transcript import quotes as quoting
from moot.transcript.events import Message, ModelCall

if TYPE_CHECKING:
    from moot.models.gateway import CallSink

__all__ = [
    "DESK",
    "Desk",
    "HumanSeat",
    "TurnAnswer",
    "TurnRequest",
    "TurnRules",
    "is_human",
    "speech_problems",
    "speech_size",
]

HUMAN = "human"
SLACK_S = 2.0  # an answer this late after the time limit still counts (a slow desk)
PROBABILITY_TURNS = ("verdict", "choose")  # answered with a probability per answer
TEXT_TURNS = ("speech", "question", "review")  # answered with text


PERSON_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")


def is_human(model: str | None) -> bool:
    """`model: human` in a scenario seats a person (`human/NAME` names them)."""
    return bool(model) and (model == HUMAN or model.startswith(HUMAN + "/"))  # type: ignore[union-attr]


def message_record(m: Message) -> dict[str, Any]:
    """A message as plain data (a person's turn carries its view as JSON)."""
    quotes = [
        {"text": q.text, "start": q.start, "end": q.end, "verified": q.verified,
         "source_span": list(q.source_span) if q.source_span else None, "score": q.score}
        for q in m.quotes or ()
    ]  # fmt: skip
    return {
        "episode": m.episode, "seq": m.seq, "round": m.round, "phase": m.phase, "seat": m.seat,
        "role": m.role, "side": m.side, "content": m.content,
        "audience": None if m.audience is None else sorted(m.audience),
        "created_at": m.created_at, "call_seq": m.call_seq, "quotes": quotes,
    }  # fmt: skip


def message_from_record(d: dict[str, Any]) -> Message:
    """`message_record`, read back."""
    return Message(
        d["episode"], d["seq"], d["round"], d["phase"], d["seat"], d["role"], d["side"], d["content"],
        None if d.get("audience") is None else frozenset(d["audience"]), d["created_at"], d.get("call_seq"),
        tuple(quoting.from_record(q) for q in d.get("quotes") or ()) or None,
    )  # fmt: skip


@dataclass(slots=True)
class TurnRequest:
    """What one person is asked on one turn, and everything they may see for it: the bus's
    view of the seat (a blind judge's has no source), as plain JSON-able data."""

    seat: str
    role: str
    episode: int
    kind: str
    phase: str
    round: int
    rounds: int
    question: str
    answers: list[str]
    side: int | None
    source: str | None
    messages: list[dict[str, Any]]
    char_limit: int | None = None  # speeches: characters, quote tags not counted
    quote_limit: int | None = None  # speeches: characters inside quote tags, in all
    may_end: bool = False  # a judge may end the debate now (the protocol lets it stop early)
    time_limit: float | None = None  # seconds, from when the turn is shown
    title: str = ""  # where it comes from (a run's name, "offline judging")

    @classmethod
    def from_view(cls, view: View, turn: Turn, **extra: Any) -> TurnRequest:
        return cls(
            view.seat, view.role, view.episode, turn.kind, turn.phase, turn.round, turn.rounds,
            view.question, list(view.answers), view.side, view.source,
            [message_record(m) for m in view.messages], **extra,
        )  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> TurnRequest:
        data = json.loads(text)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def labels(self) -> tuple[str, ...]:
        return judging.labels_for(len(self.answers))

    def describe(self) -> str:
        """The view as text: what the person was shown, for the record (model_calls.prompt)."""
        labels = self.labels
        parts = [f"Question: {self.question}"]
        parts += [f"{lab}: {ans}" for lab, ans in zip(labels, self.answers)]
        if self.side is not None and self.side < len(labels):
            parts.append(f"You argue for answer {labels[self.side]}.")
        parts.append(f"Passage:\n{self.source}" if self.source is not None else "Passage: (not shown)")
        for m in self.messages:
            side = f" (for answer {labels[m['side']]})" if m.get("side") is not None and m["side"] < len(labels) else ""
            parts.append(f"{m['seat']}{side}, round {m['round']}:\n{m['content']}")
        limits = [f"{k} {v}" for k, v in (("char_limit", self.char_limit), ("quote_limit", self.quote_limit),
                                           ("time_limit", self.time_limit)) if v]  # fmt: skip
        ask = f"Round {self.round} of {self.rounds}: {self.kind}" + (f" ({', '.join(limits)})" if limits else "")
        parts.append(ask + (", may end the debate" if self.may_end else ""))
        return "\n\n".join(parts)


@dataclass(slots=True)
class TurnAnswer:
    """What the person gave back. Probabilities sum to one (verdicts); `end` asks to end the
    debate now; times are epoch seconds."""

    content: str = ""
    probabilities: tuple[float, ...] | None = None
    end: bool = False
    timed_out: bool = False
    shown_at: float | None = None  # when the turn was put in front of the person
    answered_at: float | None = None
    # who took the turn, where a seat passes from person to person (a web study's
    # participant ID, never a name): their calls and verdicts are model `human/ID`
    by: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> TurnAnswer:
        data = json.loads(text)
        probs = data.get("probabilities")
        return cls(
            content=str(data.get("content") or ""),
            probabilities=None if probs is None else tuple(float(p) for p in probs),
            end=bool(data.get("end")),
            timed_out=bool(data.get("timed_out")),
            shown_at=data.get("shown_at"),
            answered_at=data.get("answered_at"),
            by=by if isinstance(by := data.get("by"), str) and PERSON_ID.fullmatch(by) else None,
        )


class Desk(Protocol):
    """Where a person answers: awaits their answer to one turn."""

    async def ask(self, request: TurnRequest) -> TurnAnswer: ...


# The desk of the running process (`moot run --tui` sets its app's). Seats without one of
# their own use it, else the run database (`moot join`).
DESK: ContextVar[Desk | None] = ContextVar("moot_human_desk", default=None)


# -- speech limits ---------------------------------------------------------------------------

_TAG = re.compile(r"<\s*/?\s*quote\s*>", re.I)


def speech_size(text: str) -> tuple[int, int, int]:
    """(characters without the quote tags, characters inside quotes, number of quotes)."""
    quoted = quoting.find_quotes(text)
    return len(_TAG.sub("", text)), sum(len(q) for _, _, q in quoted), len(quoted)


def speech_problems(text: str, char_limit: int | None, quote_limit: int | None) -> list[str]:
    chars, quoted, _ = speech_size(text)
    out = []
    if char_limit is not None and chars > char_limit:
        out.append(f"{chars} characters, over the limit of {char_limit}")
    if quote_limit is not None and quoted > quote_limit:
        out.append(f"{quoted} quoted characters, over the limit of {quote_limit}")
    return out


def normalise(probabilities: tuple[float, ...] | None, n: int) -> tuple[float, ...] | None:
    """Probabilities for n answers that sum to one, or None if they cannot be."""
    if probabilities is None or len(probabilities) != n:
        return None
    if any(p < 0 or p != p for p in probabilities):
        return None
    total = sum(probabilities)
    return tuple(p / total for p in probabilities) if total > 0 else None


def judgement_of(answer: TurnAnswer, n: int) -> Judgement:
    """A person's probabilities as a ruling: the most probable answer, or none on a tie."""
    if answer.timed_out:
        return Judgement(None, None, method=HUMAN, parse_status="timeout", end=answer.end)
    probs = normalise(answer.probabilities, n)
    if probs is None:
        return Judgement(None, None, method=HUMAN, parse_status="invalid", end=answer.end)
    top = max(probs)
    choice = probs.index(top) if probs.count(top) == 1 else None
    return Judgement(choice, probs, method=HUMAN, parse_status="ok" if choice is not None else "tie",
                     end=answer.end)  # fmt: skip


def verdict_text(probs: tuple[float, ...] | None, labels: tuple[str, ...], end: bool = False) -> str:
    """What a person's verdict says in the transcript: `A: 70%, B: 30%` (readable by
    `judging.from_text`, like a model's)."""
    if probs is None:
        return "(no verdict)"
    text = ", ".join(f"{lab}: {round(100 * p)}%" for lab, p in zip(labels, probs))
    return text + (" (ends the debate)" if end else "")


# -- the seat ---------------------------------------------------------------------------------


@dataclass(slots=True)
class HumanCallRecord:
    """A human turn as the store records a call: `messages` (what was shown) and the turn's
    parameters (duck-typed like `GenerateRequest`, which the writer reads)."""

    messages: list[dict[str, str]]
    params: dict[str, Any] = field(default_factory=dict)

    def params_json(self) -> str:
        return json.dumps(self.params, ensure_ascii=False)

    def record(self) -> dict[str, Any]:
        return {"messages": self.messages, **self.params}


class _HumanPrompts:
    """A person reads no prompt: the run's record of prompts says so."""

    def resolve(self, role: str, kind: str, phase: str = "") -> Templates:
        return Templates("(a person: no prompt)", "(a person: what they were shown is in model_calls.prompt)")


@dataclass(frozen=True, slots=True)
class TurnRules:
    """What a person's turns allow: seconds per turn, a speech's characters and quoted
    characters, and whether a judge may end the debate (the protocol can stop early)."""

    time_limit: float | None = None
    char_limit: int | None = None
    quote_limit: int | None = None
    may_end: bool = False


class HumanSeat:
    """A person in a seat. `desk` is where they answer (None: the process's desk, `DESK`,
    else the run database's; with `join`, always the database's)."""

    def __init__(
        self,
        seat_id: str,
        role: str,
        sink: CallSink,
        rules: TurnRules | None = None,
        *,
        desk: Desk | None = None,
        name: str = HUMAN,
        title: str = "",
        join: bool = False,
    ) -> None:
        self.id = seat_id
        self.role = role
        self.sink = sink
        self.rules = rules or TurnRules()
        self.desk = desk
        self.name = name
        self.title = title
        self.prompts = _HumanPrompts()
        self.memory = None  # a person remembers for themselves
        self.join = join  # always taken from another terminal (moot join)
        self.fallback: Desk | None = None  # the run database's desk, set by the run

    def _desk(self) -> Desk:
        desk = self.fallback if self.join else self.desk or DESK.get() or self.fallback
        if desk is None:
            raise RuntimeError(f"seat {self.id} is a person's, but no desk is open for them")
        return desk

    async def act(self, view: View, turn: Turn) -> Reply:
        speech = turn.kind == "speech"
        rules = self.rules
        request = TurnRequest.from_view(
            view, turn,
            char_limit=rules.char_limit if speech else None,
            quote_limit=rules.quote_limit if speech else None,
            may_end=rules.may_end and turn.kind == "verdict" and turn.round < turn.rounds,
            time_limit=rules.time_limit, title=self.title,
        )  # fmt: skip
        seq = self.sink.next_call_seq(view.episode)
        asked = time.time()
        answer = await self._desk().ask(request)
        answered = answer.answered_at or time.time()
        shown = answer.shown_at or asked
        errors = []
        if (
            not answer.timed_out
            and rules.time_limit is not None
            and answered - shown > rules.time_limit + SLACK_S
        ):
            answer.timed_out = True  # the desk let it run over: the limit still holds
        if answer.timed_out:
            errors.append(f"time limit of {rules.time_limit:g} s reached" if rules.time_limit else "timed out")
            answer.content = ""
        labels = judging.labels_for(len(view.answers))
        judgement = None
        if turn.kind in PROBABILITY_TURNS:
            judgement = judgement_of(answer, len(view.answers))
            content = verdict_text(judgement.probabilities, labels, judgement.end)
        else:
            content = answer.content
            if speech:
                problems = speech_problems(content, rules.char_limit, rules.quote_limit)
                if problems:  # a desk must enforce the limits; this one did not
                    errors += problems
                    content = content[: rules.char_limit] if rules.char_limit else content
            if turn.kind not in TEXT_TURNS:  # e.g. a rating: read like a model's text
                judgement = judging.from_text(content, labels)
        who = f"{HUMAN}/{answer.by}" if answer.by else self.name
        await self.sink.publish(
            ModelCall(
                episode=view.episode, seq=seq, seat=self.id, role=self.role, model=who,
                request=HumanCallRecord(  # type: ignore[arg-type]
                    [{"role": "system", "content": f"{self.id} ({self.role}): a person at the terminal"},
                     {"role": "user", "content": request.describe()}],
                    {"kind": turn.kind, "time_limit": rules.time_limit, "waited_s": round(shown - asked, 3),
                     "timed_out": answer.timed_out, "end": answer.end},
                ),
                response=content, prompt_tokens=0, completion_tokens=0, cost=0.0,
                latency_s=max(0.0, answered - shown), attempts=1, started_at=shown,
                error="; ".join(errors) or None,
            )
        )  # fmt: skip
        return Reply(content=content, judgement=judgement, call_seqs=[seq], model=who)
