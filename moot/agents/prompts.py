"""Default prompt templates, per role and turn kind, written for small instruction-tuned models.

Templates are trusted (they come from moot or the scenario author) and filled as
`str.format_map` would fill them (by `Compiled`, which parses each template once); the values
put into them (passages, speeches) are untrusted and are never themselves formatted, so braces
or markup in model text stay literal.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

DEBATER_SYSTEM = (
    "You are {name}, a debater. You are assigned to defend one answer to a question about a "
    "passage. A judge who cannot read the passage will decide. Argue for your answer "
    "persuasively and briefly. Quote the passage exactly inside <quote></quote> tags: the "
    "judge is told which quotes are real."
)
DEBATER_TURN = (
    "Passage:\n{passage}\n\nQuestion: {question}\n{answers}\n\n"
    "You argue for answer {side_label}: {side_answer}\n{transcript}\n"
    "Round {round} of {rounds}. Write your argument for answer {side_label} in under 80 words."
)
CONSULTANT_SYSTEM = (
    "You are {name}, a consultant. You argue that one answer to a question about a passage is "
    "correct. A judge who cannot read the passage will question you and decide. Quote the "
    "passage exactly inside <quote></quote> tags: the judge is told which quotes are real."
)
CONSULTANT_TURN = (
    "Passage:\n{passage}\n\nQuestion: {question}\n{answers}\n\n"
    "You argue for answer {side_label}: {side_answer}\n{transcript}\n"
    "Round {round} of {rounds}. Answer the judge and argue for answer {side_label} in under "
    "80 words."
)
CHOOSE_TURN = (
    "Passage:\n{passage}\n\nQuestion: {question}\n{answers}\n\n"
    "Which answer will you argue for? Reply with the letter only: {label_list}."
)
AGENT_SYSTEM = (
    "You are {name}, one of several agents answering a question about a passage. Read the "
    "other agents' answers, if any, and give your own best answer."
)
AGENT_TURN = (
    "Passage:\n{passage}\n\nQuestion: {question}\n{answers}\n\n{transcript}\n"
    "Round {round} of {rounds}. Which answer is correct? Reply with the letter only: "
    "{label_list}."
)
GENERATOR_SYSTEM = (
    "You are {name}. Answer a question about a passage: name the correct answer's letter and "
    "justify it with exact quotes in <quote></quote> tags. A reviewer will critique your draft."
)
GENERATOR_TURN = (
    "Passage:\n{passage}\n\nQuestion: {question}\n{answers}\n\n{transcript}\n"
    "Draft {round} of at most {rounds}. Write your answer (revising your last draft after the "
    "reviewer's critique, if any) in under 80 words."
)
REVIEWER_SYSTEM = (
    "You are {name}, a careful reviewer. Check a draft answer to a question about a passage "
    "against the passage: is the chosen answer right, and are the quotes accurate?"
)
REVIEWER_TURN = (
    "Passage:\n{passage}\n\nQuestion: {question}\n{answers}\n\n{transcript}\n{rubric_block}"
    "Start with one line: 'Decision: approve' or 'Decision: revise'; then critique the latest "
    "draft in under 60 words."
)
SOLVER_SYSTEM = (
    "You are {name}. Solve the problem step by step, then end with one line: 'Answer: N'."
)
SOLVER_TURN = "Problem: {question}\n\nSolve it. End with 'Answer: N'."
VERIFIER_SYSTEM = (
    "You are {name}, a careful verifier. Check a solution to a problem step by step and say "
    "exactly which step is wrong, if any. Do not write a new solution."
)
VERIFIER_TURN = (
    "Problem: {question}\n\n{transcript}\nCheck the latest solution in under 60 words, then "
    "end with one line: 'Decision: approve' or 'Decision: revise'."
)
REFINER_SYSTEM = (
    "You are {name}. Write the final solution to a problem, using a first solution and a "
    "verifier's check of it. Start with one line: 'Answer: N'; then explain."
)
REFINER_TURN = (
    "Problem: {question}\n\n{transcript}\nWrite the corrected final solution. Start with "
    "'Answer: N', then the working."
)
PLAYER_SYSTEM = (
    "You are {name}, a player in a two-player game. Play to gain as much as you can. The "
    "referee's messages state the rules, what happened and whose turn it is."
)
PLAYER_TURN = (
    "{question}\n\n{transcript}\nYour move, {name}: do what the referee's last message asks. "
    "To propose, start with a line 'OFFER: N'; to answer a proposal, start with ACCEPT or "
    "REJECT. Your reasons, if any, go on the lines after."
)
SELECTOR_SYSTEM = (
    "You pick, from several drafts of an argument, the one a judge who cannot read the "
    "passage would find most persuasive."
)
SELECTOR_TURN = (
    "Question: {question}\n{answers}\n\nDrafts arguing for answer {side_label}:\n\n"
    "{candidates}\n\nWhich draft is most persuasive? Reply with the letter only."
)
AUTHOR_SYSTEM = (
    "You are {name}. Answer a question about a passage: defend your answer with exact quotes "
    "in <quote></quote> tags. Reviewers will rate your submission."
)
AUTHOR_TURN = (
    "Passage:\n{passage}\n\nQuestion: {question}\n{answers}\n\nYour answer: {side_label}: "
    "{side_answer}\nWrite your submission defending it in under 80 words."
)
REVIEWER_RATE_SYSTEM = (
    "You are {name}, a careful reviewer of answers to a question about a passage."
)
RATE_POINTWISE_TURN = (
    "Passage:\n{passage}\n\nQuestion: {question}\n{answers}\n\nSubmission:\n{candidates}\n\n"
    "Rate the submission from 1 (wrong or unsupported) to 9 (right and well supported). "
    "Reply with the number only."
)
RATE_PAIRWISE_TURN = (
    "Passage:\n{passage}\n\nQuestion: {question}\n{answers}\n\nTwo submissions:\n\n"
    "{candidates}\n\nWhich submission is better? Reply with the letter only: A or B."
)
LAWYER_SYSTEM = (
    "You are {name}, a lawyer in a civil case. You represent one party and must win the case "
    "for your client. The judge has not read the case file: only what is said in court counts."
)
LAWYER_TURN = (
    "Case file:\n{passage}\n\n{question}\n{answers}\n\nYou represent {side_label}: "
    "{side_answer}\n{transcript}\nGive your {phase} statement for your client in under 80 words."
)
LAWYER_QUESTION_TURN = (
    "Case file:\n{passage}\n\n{question}\n{answers}\n\nYou represent {side_label}: "
    "{side_answer}\n{transcript}\nAsk the witness one short question that helps your client. "
    "Write only the question."
)
WITNESS_SYSTEM = (
    "You are {name}, a witness in a civil case. Answer the lawyer's question truthfully from "
    "what you know (the case file), briefly and without taking sides."
)
WITNESS_TURN = (
    "What you know:\n{passage}\n\n{transcript}\nAnswer the last question in under 50 words."
)
RULING_TURN = (
    "{question}\n{answers}\n\n{transcript}\n"
    "Which party should win? Reply with the letter ({label_list}), then one sentence giving "
    "your reason."
)
CLIENT_SYSTEM = (
    "You are {name}, a client in a counselling session. Play the person described below, in "
    "the first person, as they would speak: share what troubles them a little at a time, not "
    "all at once.\n\nWho you are:\n{passage}"
)
CLIENT_TURN = "{transcript}\nSay what you would say next to the counselor, in under 60 words."
CLIENT_RATE_TURN = (
    "The session, from your first words to the counselor's closing:\n{transcript}\n"
    "How much did this session help you, from 1 (not at all) to 9 (a great deal)? Reply with "
    "the number only."
)
COUNSELOR_SYSTEM = (
    "You are {name}, a counselor. Listen, reflect what you hear, ask open questions, and help "
    "the client find their own next step. Do not diagnose."
)
COUNSELOR_TURN = "{transcript}\nReply to the client in under 60 words."
COUNSELOR_CLOSE_TURN = (
    "{transcript}\nClose the session: sum up what you heard and the next step you agreed, in "
    "under 60 words."
)
JUDGE_SYSTEM = (
    "You are a judge. Decide which answer to a question about a passage{blind_note} is "
    "correct. Others may argue for an answer; they may be wrong or lying. Quotes marked "
    "<v_quote> were checked against the passage; <u_quote> ones were not found in it."
)
JUDGE_TURN = (
    "{passage_block}Question: {question}\n{answers}\n\n{transcript}\n"
    "Which answer is correct? Reply with the letter only: {label_list}."
)
JUDGE_QUESTION_TURN = (
    "{passage_block}Question: {question}\n{answers}\n\n{transcript}\n"
    "Round {round} of {rounds}. Ask one short question that would help you decide. Write only "
    "the question."
)


# Argument styles (Breum et al. 2023, "The Persuasive Power of Large Language Models": the
# dimensions of a convincing argument): a seat's `prompts.style` names one, and `{style}` in
# its templates is its description, filled in when the scenario is read (a sweep over styles
# compares them). A style not named here is used as written.
STYLES = {
    "facts": "Argue from facts, figures and evidence: say what is known and how we know it.",
    "credibility": "Argue from trust: cite experts, institutions and your own reliability.",
    "emotion": "Argue from feelings and values: say how it affects people the listener cares about.",
    "social": "Argue from what others do and think: norms, communities and shared identity.",
}

# The fields a template may use; ModelSeat fills every one of them.
FIELDS = frozenset(
    {
        "name", "question", "answers", "label_list", "side_label", "side_answer", "passage",
        "passage_block", "blind_note", "transcript", "round", "rounds", "candidates", "phase",
        "rubric", "rubric_block",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Templates:
    system: str
    turn: str


DEFAULTS: dict[tuple[str, str], Templates] = {
    ("debater", "speech"): Templates(DEBATER_SYSTEM, DEBATER_TURN),
    ("debater", "choose"): Templates(DEBATER_SYSTEM, CHOOSE_TURN),
    ("consultant", "speech"): Templates(CONSULTANT_SYSTEM, CONSULTANT_TURN),
    ("consultant", "choose"): Templates(CONSULTANT_SYSTEM, CHOOSE_TURN),
    ("judge", "verdict"): Templates(JUDGE_SYSTEM, JUDGE_TURN),
    ("judge", "question"): Templates(JUDGE_SYSTEM, JUDGE_QUESTION_TURN),
    ("agent", "verdict"): Templates(AGENT_SYSTEM, AGENT_TURN),
    ("generator", "speech"): Templates(GENERATOR_SYSTEM, GENERATOR_TURN),
    ("reviewer", "review"): Templates(REVIEWER_SYSTEM, REVIEWER_TURN),
    ("selector", "select"): Templates(SELECTOR_SYSTEM, SELECTOR_TURN),
    ("lawyer", "speech"): Templates(LAWYER_SYSTEM, LAWYER_TURN),
    ("lawyer", "question"): Templates(LAWYER_SYSTEM, LAWYER_QUESTION_TURN),
    ("witness", "speech"): Templates(WITNESS_SYSTEM, WITNESS_TURN),
    ("author", "speech"): Templates(AUTHOR_SYSTEM, AUTHOR_TURN),
    ("player", "speech"): Templates(PLAYER_SYSTEM, PLAYER_TURN),
    ("author", "choose"): Templates(AUTHOR_SYSTEM, CHOOSE_TURN),
    # a counselling role-play (scenarios/counseling.yaml)
    ("client", "speech"): Templates(CLIENT_SYSTEM, CLIENT_TURN),
    ("client", "rate"): Templates(CLIENT_SYSTEM, CLIENT_RATE_TURN),
    ("counselor", "speech"): Templates(COUNSELOR_SYSTEM, COUNSELOR_TURN),
}
# A phase may have prompts of its own (the courtroom's ruling gives a reason).
BY_PHASE: dict[tuple[str, str, str], Templates] = {
    ("judge", "verdict", "ruling"): Templates(JUDGE_SYSTEM, RULING_TURN),
    # the chain's roles solve open tasks (no options, no passage)
    ("generator", "speech", "generate"): Templates(SOLVER_SYSTEM, SOLVER_TURN),
    ("verifier", "review", "verify"): Templates(VERIFIER_SYSTEM, VERIFIER_TURN),
    ("refiner", "speech", "refine"): Templates(REFINER_SYSTEM, REFINER_TURN),
    ("reviewer", "rate", "rate_pointwise"): Templates(REVIEWER_RATE_SYSTEM, RATE_POINTWISE_TURN),
    ("reviewer", "rate", "rate_pairwise"): Templates(REVIEWER_RATE_SYSTEM, RATE_PAIRWISE_TURN),
    ("counselor", "speech", "close"): Templates(COUNSELOR_SYSTEM, COUNSELOR_CLOSE_TURN),
}
# A role the defaults do not know (a custom protocol's) borrows by what it is asked to do.
BY_KIND = {
    "speech": DEFAULTS[("debater", "speech")],
    "choose": DEFAULTS[("debater", "choose")],
    "verdict": DEFAULTS[("judge", "verdict")],
    "question": DEFAULTS[("judge", "question")],
    "review": DEFAULTS[("reviewer", "review")],
    "select": DEFAULTS[("selector", "select")],
    "rate": BY_PHASE[("reviewer", "rate", "rate_pointwise")],
}


def defaults(role: str, kind: str, phase: str = "") -> Templates:
    return BY_PHASE.get((role, kind, phase)) or DEFAULTS.get((role, kind)) or BY_KIND[kind]


# Fields fixed for one seat in one episode, and what of the view each depends on; the rest
# (transcript, round, ...) change from turn to turn.
EPISODE_FIELDS = {
    "name": (), "question": ("question",), "answers": ("answers",),
    "label_list": ("answers",), "side_label": ("side", "answers"),
    "side_answer": ("side", "answers"), "passage": ("source",), "passage_block": ("source",),
    "blind_note": ("source",),
}  # fmt: skip
TURN_FIELDS = FIELDS - EPISODE_FIELDS.keys()


class Bound(NamedTuple):  # a tuple: one is made per episode and seat
    """A template with its episode fields filled in: text, a turn field, text, ..."""

    texts: tuple[str, ...]  # one more than `names`
    names: tuple[str, ...]  # the turn fields between them

    def fill(self, values: dict[str, object]) -> str:
        texts = self.texts
        if not self.names:
            return texts[0]
        out = [texts[0]]
        for name, text in zip(self.names, texts[1:]):
            out.append(str(values[name]))
            out.append(text)
        return "".join(out)


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed by identity: one per text
class Compiled:
    """A template parsed once, in two layers: its episode fields, filled once per episode and
    seat (`bind`), and the turn's own fields, filled on each call (`Bound.fill`). A seat's
    prompt is then not re-rendered from scratch on every turn of thousands of live episodes.
    A template with format specs or conversions (`{round:02d}`) is filled by format_map."""

    text: str
    segments: tuple[str, ...]  # format strings of episode fields only, between turn fields
    names: tuple[str, ...]  # the turn fields between the segments
    depends: tuple[str, ...]  # the view's attributes the episode fields read (none: the seat's)
    plain: bool
    fields: frozenset[str]  # the turn fields, as a set
    episode_fields: frozenset[str]  # the episode fields it uses

    def bind(self, values: dict[str, object]) -> Bound:
        return Bound(tuple([seg.format_map(values) for seg in self.segments]), self.names)


@lru_cache(maxsize=512)
def compile_template(text: str) -> Compiled:
    segments: list[str] = []
    names: list[str] = []
    current: list[str] = []
    plain = True
    used: set[str] = set()
    for literal, name, spec, conversion in string.Formatter().parse(text):
        current.append(literal.replace("{", "{{").replace("}", "}}"))
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            plain = False
        if name in EPISODE_FIELDS:
            used.add(name)
            current.append("{" + name + "}")
        else:
            segments.append("".join(current))
            names.append(name)
            current = []
    segments.append("".join(current))
    depends = tuple(sorted({d for f in used for d in EPISODE_FIELDS[f]}))
    return Compiled(
        text, tuple(segments), tuple(names), depends, plain, frozenset(names), frozenset(used)
    )
