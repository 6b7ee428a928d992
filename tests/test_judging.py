"""The judge-probability paths: token log-probabilities first, then the reply text, and
unparseable replies recorded as invalid rather than guessed."""

from __future__ import annotations

import math
import zlib

import pytest
from helpers import RecordingSink

from moot.agents.base import Judgement, Turn, View
from moot.agents.judging import from_logprobs, from_text, labels_for
from moot.agents.model_seat import ANSWER_PREFIX, ModelSeat
from moot.models.gateway import Model, ModelSettings
from moot.models.scripted import ScriptedModel
from moot.transcript.events import ModelCall

AB = ("A", "B")
ABC = ("A", "B", "C")


@pytest.fixture
def anyio_backend():
    return "asyncio"


def log(p: float) -> float:
    return math.log(p) if p > 0 else -math.inf


# -- from_logprobs ---------------------------------------------------------------------


def test_labels_for():
    assert labels_for(2) == AB
    assert labels_for(3) == ABC


def test_logprobs_normalised_over_labels_only():
    # The labels hold 0.2 + 0.6 of the mass; other tokens ("The", "\n") are ignored.
    j = from_logprobs({"A": log(0.2), "B": log(0.6), "The": log(0.15), "\n": log(0.05)}, AB)
    assert j is not None
    assert j.method == "token_logprobs"
    assert j.parse_status == "ok"
    assert j.choice == 1
    assert j.probabilities == pytest.approx((0.25, 0.75))
    assert sum(j.probabilities) == pytest.approx(1.0)


def test_logprobs_argmax_choice_three_labels():
    j = from_logprobs({"A": log(0.1), "B": log(0.2), "C": log(0.3)}, ABC)
    assert j is not None
    assert j.choice == 2
    assert j.probabilities == pytest.approx((1 / 6, 2 / 6, 3 / 6))


def test_logprobs_first_label_wins_argmax():
    j = from_logprobs({"A": log(0.9), "B": log(0.05)}, AB)
    assert j is not None and j.choice == 0
    assert j.probabilities == pytest.approx((0.9 / 0.95, 0.05 / 0.95))


def test_logprobs_missing_label_has_probability_zero():
    j = from_logprobs({"B": -0.3}, AB)
    assert j is not None
    assert j.choice == 1
    assert j.probabilities == (0.0, 1.0)


def test_logprobs_minus_infinity_is_zero():
    j = from_logprobs({"A": -math.inf, "B": -2.0}, AB)
    assert j is not None and j.choice == 1 and j.probabilities == (0.0, 1.0)


@pytest.mark.parametrize(
    "logprobs",
    [
        None,
        {},
        {"C": -0.1, "The": -1.0},  # no label present
        {"A": -math.inf, "B": -math.inf},  # labels present, no mass
    ],
)
def test_logprobs_without_mass_is_none(logprobs):
    assert from_logprobs(logprobs, AB) is None


# -- from_text -------------------------------------------------------------------------


def assert_text(j: Judgement, choice: int, probs: tuple[float, ...] | None) -> None:
    assert j.parse_status == "ok"
    assert j.method == "text"
    assert j.choice == choice
    if probs is None:
        assert j.probabilities is None
    else:
        assert j.probabilities == pytest.approx(probs)


def test_text_answer_and_confidence_percent():
    assert_text(from_text("Answer: B\nConfidence: 80%", AB), 1, (0.2, 0.8))


def test_text_answer_and_confidence_fraction():
    assert_text(from_text("Answer: A, confidence: 0.9", AB), 0, (0.9, 0.1))


def test_text_confidence_spread_over_other_labels():
    assert_text(from_text("Answer: C\nConfidence: 70%", ABC), 2, (0.15, 0.15, 0.7))


def test_text_answer_without_confidence_has_no_probabilities():
    assert_text(from_text("Answer: B", AB), 1, None)


def test_text_per_label_percentages():
    assert_text(from_text("A: 30%, B: 70%", AB), 1, (0.3, 0.7))


def test_text_per_label_fractions():
    assert_text(from_text("A: 0.3 B: 0.7", AB), 1, (0.3, 0.7))


def test_text_per_label_renormalised():
    # Numbers that do not add up to 1 are normalised over the labels.
    assert_text(from_text("A = 20%\nB = 20%\nC = 60%", ABC), 2, (0.2, 0.2, 0.6))


def test_text_per_label_scale_is_shared():
    # Bare numbers on a 0-100 scale: "1" next to "99" is 1%, not a probability of 1.
    assert_text(from_text("A: 1, B: 99", AB), 1, (0.01, 0.99))
    assert_text(from_text("A: 0, B: 1", AB), 1, (0.0, 1.0))  # fractions stay fractions


def test_text_per_label_beats_a_lone_answer_line():
    # All labels given numbers: the numbers decide.
    assert_text(from_text("A: 65%, B: 35%", AB), 0, (0.65, 0.35))


def test_text_bare_leading_label():
    # What follows an "Answer:" assistant prefix: just the letter.
    assert_text(from_text(" B", AB), 1, None)
    assert_text(from_text("A", AB), 0, None)
    assert_text(from_text("(B)", AB), 1, None)
    assert_text(from_text("B.", AB), 1, None)


def test_text_answer_phrasings():
    assert_text(from_text("The answer is B.", AB), 1, None)
    assert_text(from_text("Final answer - A", AB), 0, None)
    assert_text(from_text("Answer: (B)", AB), 1, None)


def test_text_lower_case_label_at_the_end():
    # "the answer is a" (a lone lower-case letter closing the reply) is read as label A.
    assert_text(from_text("the answer is a", AB), 0, None)
    assert_text(from_text("Answer: b", AB), 1, None)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "I cannot decide",
        "no idea",
        "Debater A makes a strong case.",  # a label in prose, no answer
        "Debater A and Debater B both make good points; I cannot decide.",
        "Answer: C",  # not one of the labels
        "Answer: unclear",
        "Debater B: 70%",  # a number for one label only, no answer
    ],
)
def test_text_unparseable_is_invalid(text):
    j = from_text(text, AB)
    assert j.parse_status == "invalid"
    assert j.method == "none"
    assert j.choice is None
    assert j.probabilities is None


@pytest.mark.parametrize(
    "text",
    [
        # "answer is a <word>" is the English article, not label A.
        "Debater A argues well, but the answer is a matter of interpretation.",
        "The answer is a toss-up.",
    ],
)
def test_text_lower_case_article_after_answer_is_not_a_label(text):
    j = from_text(text, AB)
    assert j.parse_status == "invalid", j
    assert j.choice is None


@pytest.mark.parametrize(
    "text",
    [
        # A reply opening with the article "A" is not a vote for answer A.
        "A tough call; I cannot decide.",
        "A difficult question. Both debaters are persuasive.",
    ],
)
def test_text_leading_article_is_not_a_label(text):
    j = from_text(text, AB)
    assert j.parse_status == "invalid", j
    assert j.choice is None


# -- through a ModelSeat and the scripted model ----------------------------------------


Sink = RecordingSink


def judge_seat(scripted: ScriptedModel, sink: Sink) -> ModelSeat:
    model = Model("scripted/judge", scripted, ModelSettings(), sink)
    return ModelSeat("judge", "judge", model, temperature=0.0, max_tokens=32, seed=1)


def judge_view(question: str, answers: tuple[str, ...] = ("Yes", "No"), episode: int = 3) -> View:
    return View(
        episode=episode,
        seat="judge",
        role="judge",
        question=question,
        answers=answers,
        side=None,
        source=None,
        messages=(),
    )


VERDICT = Turn(kind="verdict", phase="verdict", round=1, rounds=1, simultaneous=False, max_tokens=8)

QUESTIONS = [f"Is statement {i} supported by the passage?" for i in range(6)]


def scripted_p_first(seat: ModelSeat, view: View) -> float:
    """The scripted model's probability for the first label, for this seat's prompt."""
    prompt = seat.messages(view, VERDICT)[-1]["content"]
    h = zlib.crc32(prompt.encode())
    return 0.15 + 0.7 * ((h % 1000) / 999)


def test_questions_cover_both_choices():
    seat = judge_seat(ScriptedModel(), Sink())
    firsts = {scripted_p_first(seat, judge_view(q)) >= 0.5 for q in QUESTIONS}
    assert firsts == {True, False}  # the seat tests below see both verdicts


@pytest.mark.anyio
@pytest.mark.parametrize("question", QUESTIONS)
async def test_seat_token_logprobs_path(question):
    sink = Sink()
    seat = judge_seat(ScriptedModel("scripted/judge"), sink)
    view = judge_view(question)
    reply = await seat.act(view, VERDICT)

    p = scripted_p_first(seat, view)
    j = reply.judgement
    assert j is not None
    assert j.method == "token_logprobs"
    assert j.parse_status == "ok"
    assert j.probabilities == pytest.approx((p, 1 - p))
    assert j.choice == (0 if p >= 0.5 else 1)

    # The call is recorded, with the labels and the "Answer:" prefix it asked for.
    (call,) = sink.events
    assert isinstance(call, ModelCall)
    assert reply.call_seqs == [call.seq] == [0]
    assert call.episode == 3 and call.seat == "judge" and call.role == "judge"
    assert call.request.answer_labels == ("A", "B")
    assert call.request.assistant_prefix == ANSWER_PREFIX
    assert call.request.max_tokens == 8
    assert call.response == reply.content
    assert call.error is None and call.attempts == 1
    assert reply.model == "scripted/judge"


@pytest.mark.anyio
async def test_seat_token_logprobs_three_answers():
    sink = Sink()
    seat = judge_seat(ScriptedModel(), sink)
    view = judge_view(QUESTIONS[0], answers=("red", "green", "blue"))
    reply = await seat.act(view, VERDICT)
    p = scripted_p_first(seat, view)
    j = reply.judgement
    assert j is not None and j.method == "token_logprobs"
    assert j.probabilities == pytest.approx((p, (1 - p) / 2, (1 - p) / 2))
    assert sink.events[0].request.answer_labels == ("A", "B", "C")


@pytest.mark.anyio
@pytest.mark.parametrize("question", QUESTIONS)
async def test_seat_text_path(question):
    sink = Sink()
    seat = judge_seat(ScriptedModel(logprobs=False), sink)
    view = judge_view(question)
    reply = await seat.act(view, VERDICT)

    p = scripted_p_first(seat, view)
    j = reply.judgement
    assert j is not None
    assert j.method == "text"
    assert j.parse_status == "ok"
    assert j.choice == (0 if p >= 0.5 else 1)
    conf = round(100 * max(p, 1 - p)) / 100
    expected = (conf, 1 - conf) if j.choice == 0 else (1 - conf, conf)
    assert j.probabilities == pytest.approx(expected)
    assert reply.content.startswith("Answer: ")


@pytest.mark.anyio
async def test_seat_text_and_token_paths_agree():
    for question in QUESTIONS:
        view = judge_view(question)
        by_tokens = await judge_seat(ScriptedModel(), Sink()).act(view, VERDICT)
        by_text = await judge_seat(ScriptedModel(logprobs=False), Sink()).act(view, VERDICT)
        assert by_tokens.judgement.choice == by_text.judgement.choice


@pytest.mark.anyio
async def test_seat_given_verdict_text():
    seat = judge_seat(ScriptedModel(logprobs=False, verdict="B: 0.9, A: 0.1"), Sink())
    reply = await seat.act(judge_view(QUESTIONS[0]), VERDICT)
    assert reply.judgement == Judgement(1, pytest.approx((0.1, 0.9)), "text", "ok")


@pytest.mark.anyio
async def test_seat_logprobs_win_over_text():
    # With token probabilities available, a contradicting text verdict is not used.
    seat = judge_seat(ScriptedModel(verdict="no idea"), Sink())
    reply = await seat.act(judge_view(QUESTIONS[0]), VERDICT)
    assert reply.judgement.method == "token_logprobs"
    assert reply.judgement.parse_status == "ok"
    assert reply.content == "no idea"


@pytest.mark.anyio
async def test_seat_invalid_path():
    sink = Sink()
    seat = judge_seat(ScriptedModel(logprobs=False, verdict="no idea"), sink)
    reply = await seat.act(judge_view(QUESTIONS[0]), VERDICT)
    j = reply.judgement
    assert j is not None
    assert j.parse_status == "invalid"
    assert j.method == "none"
    assert j.choice is None
    assert j.probabilities is None
    assert reply.content == "no idea"
    # The call itself succeeded and is recorded; only the verdict is invalid.
    (call,) = sink.events
    assert call.error is None and call.response == "no idea"


@pytest.mark.anyio
async def test_seat_speech_has_no_judgement():
    sink = Sink()
    model = Model("scripted", ScriptedModel(), ModelSettings(), sink)
    seat = ModelSeat("debater_a", "debater", model, temperature=0.7, max_tokens=100, seed=1)
    view = View(
        episode=0,
        seat="debater_a",
        role="debater",
        question="Q?",
        answers=("Yes", "No"),
        side=1,
        source="A passage.",
        messages=(),
    )
    turn = Turn(kind="speech", phase="argue", round=1, rounds=2, simultaneous=True, max_tokens=0)
    reply = await seat.act(view, turn)
    assert reply.judgement is None
    assert "answer B" in reply.content
    (call,) = sink.events
    assert call.request.answer_labels is None
    assert call.request.assistant_prefix is None
    assert call.request.max_tokens == 100
