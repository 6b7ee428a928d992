"""Templates are parsed once and filled in two layers (episode, then turn); the result must be
exactly what str.format_map gives, for moot's templates and for any a scenario may write."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from moot.agents import prompts
from moot.agents.base import Turn, View
from moot.agents.model_seat import ModelSeat
from moot.agents.prompts import EPISODE_FIELDS, FIELDS, compile_template
from moot.transcript.events import Message

VALUES = {name: f"<{name} {{braces}} [b]markup[/b]>" for name in FIELDS} | {"round": 2, "rounds": 3}


def two_layers(text: str) -> str:
    compiled = compile_template(text)
    episode = {k: v for k, v in VALUES.items() if k in EPISODE_FIELDS}
    turn = {k: v for k, v in VALUES.items() if k not in EPISODE_FIELDS}
    return compiled.bind(episode).fill(turn)


def test_every_default_template_fills_as_format_map_would():
    for name in dir(prompts):
        text = getattr(prompts, name)
        if name.isupper() and isinstance(text, str) and "{" in text:
            assert two_layers(text) == text.format_map(VALUES), name


pieces = st.one_of(
    st.text(alphabet="ab {}\n:", max_size=6).map(lambda s: s.replace("{", "{{").replace("}", "}}")),
    st.sampled_from(sorted(FIELDS)).map(lambda f: "{" + f + "}"),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(pieces, max_size=12).map("".join))
def test_any_scenario_template_fills_as_format_map_would(text):
    assert two_layers(text) == text.format_map(VALUES)


def test_a_template_reads_only_the_view_it_depends_on():
    assert compile_template(prompts.DEBATER_SYSTEM).depends == ()  # {name}: one text per seat
    assert compile_template(prompts.JUDGE_SYSTEM).depends == ("source",)
    assert set(compile_template(prompts.DEBATER_TURN).depends) == {"question", "answers", "side", "source"}


def test_format_specs_take_the_general_path():
    seat = ModelSeat("judge", "judge", None, temperature=0, max_tokens=None, seed=0)  # type: ignore[arg-type]
    seat.prompts.turn = "Round {round:02d} of {rounds}: {question!r}"
    view = View(0, "judge", "judge", "Q?", ("x", "y"), None, None, ())
    assert seat.messages(view, Turn("verdict", "verdict", 3, 9, False, 0))[1]["content"] == "Round 03 of 9: 'Q?'"


def test_a_seats_prompt_follows_its_episode_and_turn():
    seat = ModelSeat("debater_a", "debater", None, temperature=0, max_tokens=None, seed=0)  # type: ignore[arg-type]
    said = Message(0, 0, 1, "speech", "debater_b", "debater", 1, "B {is} right", None, 0.0)
    first = View(0, "debater_a", "debater", "Q1?", ("x", "y"), 0, "text one", ())
    later = View(0, "debater_a", "debater", "Q1?", ("x", "y"), 0, "text one", (said,))
    other = View(1, "debater_a", "debater", "Q2?", ("u", "v"), 1, "text two", ())
    speech = Turn("speech", "speech", 1, 3, False, 0)
    p1 = seat.messages(first, speech)[1]["content"]
    p2 = seat.messages(later, Turn("speech", "speech", 2, 3, False, 0))[1]["content"]
    p3 = seat.messages(other, speech)[1]["content"]
    assert "Q1?" in p1 and "Round 1 of 3" in p1 and "B {is} right" not in p1
    assert "B {is} right" in p2 and "Round 2 of 3" in p2 and "text one" in p2
    assert "Q2?" in p3 and "text two" in p3 and "answer B: v" in p3 and "Q1?" not in p3


def test_a_long_transcript_is_rendered_once_and_extended():
    from moot.agents.model_seat import INCREMENTAL_AFTER, render_transcript

    said = [
        Message(0, i, i // 2 + 1, "speech", f"debater_{'ab'[i % 2]}", "debater", i % 2, f"point {i} [b]x[/b]", None, 0.0)
        for i in range(INCREMENTAL_AFTER + 6)
    ]
    memo: dict = {}
    labels = ("A", "B")
    for n in range(len(said) + 1):
        view = View(0, "judge", "judge", "Q?", ("x", "y"), None, None, tuple(said[:n]), memo)
        fresh = View(0, "judge", "judge", "Q?", ("x", "y"), None, None, tuple(said[:n]))
        assert render_transcript(view, labels) == render_transcript(fresh, labels)
    assert "transcript" in memo
    # a view that is not an extension of what was rendered (another seat's, say) starts over
    other = View(0, "judge", "judge", "Q?", ("x", "y"), None, None, tuple(said[1:]), memo)
    assert render_transcript(other, labels) == render_transcript(
        View(0, "judge", "judge", "Q?", ("x", "y"), None, None, tuple(said[1:])), labels
    )


def test_a_system_prompt_is_filled_once_per_reading_of_the_episode():
    """A blind judge's system prompt reads only that the source is hidden: the text is made
    once and the same object serves every episode. One that reads the question, or a passage
    it is shown, is each episode's own."""
    verdict = Turn("verdict", "verdict", 1, 1, False, 0)
    judge = ModelSeat("judge", "judge", None, temperature=0, max_tokens=None, seed=0)  # type: ignore[arg-type]
    blind = [View(i, "judge", "judge", f"Q{i}?", ("x", "y"), None, None, (), {}) for i in range(3)]
    systems = [judge.messages(v, verdict)[0]["content"] for v in blind]
    assert systems[0] is systems[1] is systems[2] and "that you cannot read" in systems[0]
    shown = judge.messages(View(3, "judge", "judge", "Q3?", ("x", "y"), None, "the text", (), {}), verdict)
    assert "that you cannot read" not in shown[0]["content"]

    asking = ModelSeat("judge", "judge", None, temperature=0, max_tokens=None, seed=0)  # type: ignore[arg-type]
    asking.prompts.system = "You judge: {question}{blind_note}"
    fresh = [View(i, "judge", "judge", f"Q{i}?", ("x", "y"), None, None, (), {}) for i in range(3)]
    texts = [asking.messages(v, verdict)[0]["content"] for v in fresh]
    assert texts == ["You judge: Q0? that you cannot read", "You judge: Q1? that you cannot read",
                     "You judge: Q2? that you cannot read"]  # fmt: skip
    for i in range(100):  # many distinct readings: what is kept stays bounded
        asking.messages(View(i, "judge", "judge", f"R{i}?", ("x", "y"), None, None, (), {}), verdict)
    assert len(asking._static) <= 64
