"""A seat filled by a model: renders its view into a prompt, calls the gateway, reads verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from moot import judging
from moot import quotes as quoting
from moot.agents.base import Reply, Turn, View
from moot.agents.memory import REFLECT_TURN, Memory
from moot.agents.prompts import Compiled, Templates, compile_template, defaults
from moot.models.base import GenerateRequest
from moot.models.gateway import CallTag, Model


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
        return SCORE_LABELS if len(view.messages) == 1 else judging.labels_for(len(view.messages))
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
        # by turn kind and phase: the system and turn templates, and their turn fields
        self._compiled: dict[tuple[str, str], tuple[Compiled, Compiled, frozenset[str]]] = {}

    def messages(self, view: View, turn: Turn) -> list[dict[str, str]]:
        """The prompt. Its episode fields are filled once per episode and seat, kept in the
        view's memo while the episode runs; only the turn's fields are filled on each call."""
        kind = (turn.kind, turn.phase)
        templates = self._compiled.get(kind)
        if templates is None:
            t = self.prompts.resolve(self.role, turn.kind, turn.phase)
            system_t, turn_t = compile_template(t.system), compile_template(t.turn)
            templates = self._compiled[kind] = (system_t, turn_t, system_t.fields | turn_t.fields)
        system_t, turn_t, names = templates
        if system_t.plain and turn_t.plain:
            memo = view.memo
            key = (templates, view.side)  # a seat's side is all that may change in an episode
            bound = memo.get(key) if memo is not None else None
            if bound is None:
                fields = self._episode_fields(view)
                bound = (system_t.bind(fields), turn_t.bind(fields))
                if memo is not None:
                    memo[key] = bound
            values = self._turn_fields(view, turn, names) if names else {}
            system, user = bound[0].fill(values), bound[1].fill(values)  # type: ignore[index]
        else:  # format specs: filled by format_map, every field at once
            values = {**self._episode_fields(view), **self._turn_fields(view, turn, names)}
            system, user = system_t.text.format_map(values), turn_t.text.format_map(values)
        if self.memory is not None:
            system += self.memory.block(view.question)
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _episode_fields(self, view: View) -> dict[str, object]:
        labels = judging.labels_for(len(view.answers))
        side = view.side
        source = view.source
        return {
            "name": seat_title(self.id),
            "question": view.question,
            "answers": _answers_block(labels, view.answers),
            "label_list": " or ".join(labels),
            "side_label": labels[side] if side is not None else "",
            "side_answer": view.answers[side] if side is not None else "",
            "passage": source if source is not None else "(not shown to you)",
            "passage_block": f"Passage:\n{source}\n\n" if source is not None else "",
            "blind_note": "" if source is not None else " that you cannot read",
        }

    @staticmethod
    def _turn_fields(view: View, turn: Turn, used: frozenset[str]) -> dict[str, object]:
        out: dict[str, object] = {"round": turn.round, "rounds": turn.rounds, "phase": turn.phase}
        if "transcript" in used:
            shown = turn.kind not in SHOWN
            out["transcript"] = render_transcript(view, judging.labels_for(len(view.answers))) if shown else ""
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
        result, seq = await self.model.generate(request, tag)
        reply = Reply(content=result.text, call_seqs=[seq], model=self.model.name)
        labels = request.answer_labels
        if labels is not None:
            reply.judgement = judging.from_logprobs(
                result.label_logprobs, labels
            ) or judging.from_text(result.text, labels)
        return reply

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
            answer_labels=labels,
            assistant_prefix=ANSWER_PREFIX if labels else None,
        )
