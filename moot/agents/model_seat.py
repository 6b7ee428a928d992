"""A seat filled by a model: renders its view into a prompt, calls the gateway, reads verdicts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from moot.agents import judging
from moot.agents.base import Judgement, Reply, Turn, View
from moot.agents.memory import REFLECT_TURN, Memory
from moot.agents.prompts import EPISODE_FIELDS, TURN_FIELDS, Bound, Compiled, Templates, compile_template, defaults
from moot.models import forms
from moot.models.base import GenerateRequest, GenerateResult
from moot.models.gateway import CallTag, Model
from moot.transcript import quotes as quoting


@lru_cache(maxsize=1024)
def seat_title(seat: str) -> str:
    """debater_a -> Debater A"""
    return " ".join(w.upper() if len(w) == 1 else w.capitalize() for w in seat.split("_"))


@lru_cache(maxsize=4096)
def _speaker(seat: str, side_label: str, round_: int) -> str:
    side = f" (for answer {side_label})" if side_label else ""
    return f"{seat_title(seat)}{side}, round {round_}:\n"


@lru_cache(maxsize=4096)
def _answers_block(labels: tuple[str, ...], answers: tuple[str, ...]) -> str:
    return "\n".join(f"{lab}: {ans}" for lab, ans in zip(labels, answers))


SHOWN = ("select", "rate")  # turns about the messages in view, not a running transcript


def _candidates(view: View) -> str:
    """Drafts or submissions, lettered (one alone is shown as it is)."""
    if len(view.messages) == 1:
        return view.messages[0].content
    return "\n\n".join(f"{lab}: {m.content}" for lab, m in zip(judging.LABELS, view.messages))


INCREMENTAL_AFTER = 8  # messages
STATIC_KEPT = 64  # system prompts filled in once and kept, per seat


def render_transcript(view: View, labels: tuple[str, ...]) -> str:
    """The messages in view, as the seat reads them. With the view's memo, only the messages
    new since the seat's last turn are rendered (a transcript only grows): long transcripts
    cost a turn what is new in them, not the whole of them again."""
    messages = view.messages
    if not messages:
        return ""
    # a short one renders faster than it is looked up and kept (bench/: a 7-call debate)
    memo = view.memo if len(messages) > INCREMENTAL_AFTER else None
    seen: tuple = ()
    text = "Transcript so far:\n"
    if memo is not None:
        last = memo.get("transcript")
        if last is not None and messages[: len(last[0])] == last[0] and last[2] == labels:
            seen, text = last[0], last[1]
    if len(seen) < len(messages):
        parts = [text]
        for m in messages[len(seen) :]:
            parts.append(_speaker(m.seat, labels[m.side] if m.side is not None else "", m.round))
            # quotes are shown as checked by the engine; a seat cannot write the marks itself
            parts.append(quoting.render_for_judge(m.content, list(m.quotes)) if m.quotes else m.content)
            parts.append("\n\n")
        text = "".join(parts)
        if memo is not None:
            memo["transcript"] = (messages, text, labels)
    return text


ANSWER_PREFIX = "Answer:"
LETTER_TURNS = ("verdict", "choose", "select", "rate")
SCORE_LABELS = tuple("123456789")  # a pointwise rating is one digit: its token probabilities
# When the scenario sets no max_tokens: room to argue or ask, a few tokens for a letter.
DEFAULT_MAX_TOKENS = {
    "speech": 120, "question": 60, "verdict": 8, "choose": 4, "review": 100, "select": 4,
    "rate": 4,
}  # fmt: skip


def _labels(view: View, turn: Turn) -> tuple[str, ...]:
    """What a one-token answer may be: a letter per answer, per draft (best-of-N) or per
    submission in a pair; a digit for a pointwise rating."""
    if turn.kind == "rate":
        return judging.labels_for(2) if turn.pairwise else SCORE_LABELS
    if turn.kind == "select":
        return judging.labels_for(len(view.messages))
    return judging.labels_for(len(view.answers))


@dataclass(slots=True)
class SeatPrompts:
    """The templates a seat uses, with the scenario's overrides applied."""

    system: str | None = None
    turn: str | None = None

    _resolved: dict[tuple[str, str, str], Templates] = field(default_factory=dict)

    def resolve(self, role: str, kind: str, phase: str = "") -> Templates:
        key = (role, kind, phase)
        found = self._resolved.get(key)
        if found is None:
            base = defaults(role, kind, phase)
            found = self._resolved[key] = Templates(self.system or base.system, self.turn or base.turn)
        return found


class ModelSeat:
    label: str | None = None  # what its calls are stored under, when not its id (re-judging)

    def __init__(
        self,
        seat_id: str,
        role: str,
        model: Model,
        *,
        temperature: float,
        max_tokens: int | None,
        seed: int,
        prompts: SeatPrompts | None = None,
        memory: Memory | None = None,
    ) -> None:
        self.id = seat_id
        self.memory = memory
        self.role = role
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.prompts = prompts or SeatPrompts()
        # system templates filled in, by what they read of the episode (see _system)
        self._static: dict[tuple[Compiled, tuple[Any, ...]], Bound] = {}

    def messages(self, view: View, turn: Turn) -> list[dict[str, str]]:
        """The prompt. Its episode fields are filled once per episode and seat, kept in the
        view's memo while the episode runs; only the turn's fields are filled on each call."""
        memo = view.memo
        key = (turn.kind, turn.phase, view.side)  # a seat's side is all that may change
        bound = memo.get(key) if memo is not None else None
        if bound is None:
            bound = self._bind(view, turn)
            if memo is not None:
                memo[key] = bound
        system, user, names = bound
        if names:
            values = self._turn_fields(view, turn, names)
            if type(system) is not str:
                system = system.fill(values)
            user = user.fill(values)
        elif type(user) is not str:  # format specs: the general path
            values = {**self._episode_fields(view), **self._turn_fields(view, turn, TURN_FIELDS)}
            system, user = system.text.format_map(values), user.text.format_map(values)
        if self.memory is not None:
            system += self.memory.block(view.question)
        if turn.form is not None and turn.kind not in LETTER_TURNS:
            user = f"{user}\n\n{turn.form.instruction()}"
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _system(self, view: View, system_t: Compiled) -> Bound:
        """The system template with the episode's fields filled in. It reads little of the
        episode, so the same text recurs from one episode to the next (a blind judge's reads
        only that the source is hidden): filled once per distinct reading. Not a passage's:
        one episode's text does not recur."""
        depends = system_t.depends
        if "source" in depends and view.source is not None:
            return system_t.bind(self._episode_fields(view, system_t.episode_fields))
        key = (system_t, tuple([getattr(view, a) for a in depends]))
        system = self._static.get(key)
        if system is None:
            if len(self._static) >= STATIC_KEPT:
                self._static.clear()
            system = self._static[key] = system_t.bind(self._episode_fields(view, system_t.episode_fields))
        return system

    def _bind(self, view: View, turn: Turn) -> tuple[Any, Any, frozenset[str]]:
        """The seat's templates for this turn with the episode's fields filled in: each a
        text, or a `Bound` when it has turn fields left (then their names come third)."""
        t = self.prompts.resolve(self.role, turn.kind, turn.phase)
        system_t, turn_t = compile_template(t.system), compile_template(t.turn)
        if not (system_t.plain and turn_t.plain):
            return system_t, turn_t, frozenset()
        system = self._system(view, system_t)
        user = turn_t.bind(self._episode_fields(view, turn_t.episode_fields))
        return (
            system.fill({}) if not system.names else system,
            user.fill({}) if not user.names else user,
            system_t.fields | turn_t.fields,
        )

    def _episode_fields(self, view: View, used: Iterable[str] = EPISODE_FIELDS) -> dict[str, object]:
        """The fields fixed for this seat in this episode, those of `used` only (a passage
        can be long: it is not copied into a field no template reads)."""
        labels = judging.labels_for(len(view.answers))
        side = view.side
        source = view.source
        out: dict[str, object] = {}
        for name in used:
            if name == "name":
                out[name] = seat_title(self.id)
            elif name == "question":
                out[name] = view.question
            elif name == "answers":
                out[name] = _answers_block(labels, view.answers)
            elif name == "label_list":
                out[name] = " or ".join(labels)
            elif name == "side_label":
                out[name] = labels[side] if side is not None else ""
            elif name == "side_answer":
                out[name] = view.answers[side] if side is not None else ""
            elif name == "passage":
                out[name] = source if source is not None else "(not shown to you)"
            elif name == "passage_block":
                out[name] = f"Passage:\n{source}\n\n" if source is not None else ""
            elif name == "blind_note":
                out[name] = "" if source is not None else " that you cannot read"
        return out

    @staticmethod
    def _turn_fields(view: View, turn: Turn, used: frozenset[str]) -> dict[str, object]:
        out: dict[str, object] = {"round": turn.round, "rounds": turn.rounds, "phase": turn.phase}
        if "transcript" in used:  # a rating or a pick reads its messages as `candidates` unless asked
            out["transcript"] = render_transcript(view, judging.labels_for(len(view.answers)))
        if "candidates" in used:
            out["candidates"] = _candidates(view) if turn.kind in SHOWN else ""
        if "rubric" in used or "rubric_block" in used:
            out["rubric"] = turn.rubric
            out["rubric_block"] = (
                f"Check the draft against this rubric:\n{turn.rubric}\n\n" if turn.rubric else ""
            )
        return out

    async def remember(self, view: View, won: bool | None) -> tuple[str, str] | None:
        """After an episode: what this seat keeps from it (its kind and text), also added to
        its memory. A lesson is written by the seat's own model, told the result."""
        if self.memory is None:
            return None
        labels = judging.labels_for(len(view.answers))
        side = view.side
        argued = f"{labels[side]}: {view.answers[side]}" if side is not None else "no side"
        result = "for you" if won else "against you" if won is False else "without a clear result"
        if self.memory.kind == "cases":
            text = f"{view.question} You argued {argued}; the judge ruled {result}."
            self.memory.add(view.question, text)
            return "case", text
        fields = {
            "question": view.question,
            "answers": _answers_block(labels, view.answers),
            "side_label": labels[side] if side is not None else "-",
            "side_answer": view.answers[side] if side is not None else "(none)",
            "result": result,
        }
        system = f"You are {seat_title(self.id)}, looking back on a case you took part in."
        request = GenerateRequest(
            messages=[
                {"role": "system", "content": system + self.memory.block(view.question)},
                {"role": "user", "content": REFLECT_TURN.format_map(fields)},
            ],
            max_tokens=self.max_tokens or DEFAULT_MAX_TOKENS["speech"],
            temperature=self.temperature,
            seed=(self.seed + 7919 * view.episode + 1) % 2**31,
        )
        result_, _ = await self.model.generate(request, CallTag(view.episode, self.id, self.role))
        lesson = result_.text.strip()
        self.memory.add(view.question, lesson)
        return "lesson", lesson

    async def act(self, view: View, turn: Turn) -> Reply:
        request = self.request(view, turn)
        tag = CallTag(view.episode, self.label or self.id, self.role)
        labels = request.answer_labels
        form = turn.form
        if form is not None and labels is None:  # a free reply in a declared form
            result, seqs, _ = await self.model.generate_in_form(request, tag, form)
            return Reply(content=result.text, call_seqs=seqs, model=self.model.name)
        result, seq = await self.model.generate(request, tag)
        reply = Reply(content=result.text, call_seqs=[seq], model=self.model.name)
        if labels is not None:
            reply.judgement = self._judgement(result, labels)
            # a letter or digit in a declared form: read from its probabilities where the
            # model gives them; asked again, the problem stated, when neither they nor the
            # text name one
            retries = self.model.settings.form_retries if form is not None else 0
            while retries and reply.judgement.parse_status != "ok":
                retries -= 1
                why = f"the reply must name one of {', '.join(labels)}"
                request = replace(request, messages=forms.retry_messages(request.messages, result.text, why, form))  # type: ignore[arg-type]
                result, seq = await self.model.generate(request, tag)
                reply = Reply(result.text, self._judgement(result, labels), [*reply.call_seqs, seq], self.model.name)
        return reply

    @staticmethod
    def _judgement(result: GenerateResult, labels: tuple[str, ...]) -> Judgement:
        return judging.from_logprobs(result.label_logprobs, labels) or judging.from_text(result.text, labels)

    def request(self, view: View, turn: Turn) -> GenerateRequest:
        """The call a turn makes: prompt, sampling and, for a letter, the answer labels."""
        # a verdict and a choice of side are both an answer letter, read the same way
        labels = _labels(view, turn) if turn.kind in LETTER_TURNS else None
        max_tokens = self.max_tokens or DEFAULT_MAX_TOKENS[turn.kind]
        return GenerateRequest(
            messages=self.messages(view, turn),
            max_tokens=min(max_tokens, turn.max_tokens) if turn.max_tokens else max_tokens,
            temperature=self.temperature,
            # varied per episode (and per best-of-N candidate), reproducible
            seed=(self.seed + 7919 * view.episode + 104729 * turn.candidate) % 2**31,
            images=view.images,
            answer_labels=labels,
            assistant_prefix=ANSWER_PREFIX if labels else None,
        )
