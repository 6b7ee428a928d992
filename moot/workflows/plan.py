"""A study's plan before anything runs: episodes, calls per role, tokens, cost, time, and a
check of every seat's model (key, context window, token probabilities).

The counts come from the engine itself: it walks each cell's protocol over a sample of the
episodes with probe seats that render every prompt exactly as the model would receive it,
reply with `max_tokens` of filler and never sound sure, agree, approve or accept an offer.
So the walk takes the longest path a protocol allows: where a protocol can stop early (a
confident judge, agreement, an approved draft, a deal), the figures are upper bounds, and
the plan says so.
Tokens are estimated at 4 characters each; each reply counts as its full `max_tokens`.
Prices come from litellm's offline price table; a model it has no price for is "unknown",
never zero; scripted and local models cost nothing.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import anyio

from moot.agents.base import Judgement, Reply, Turn, View
from moot.agents.human import is_human
from moot.agents.model_seat import DEFAULT_MAX_TOKENS, ModelSeat, SeatPrompts
from moot.engine import Engine
from moot.engine.bus import Bus
from moot.errors import ConfigError
from moot.models.gateway import ModelSettings, is_scripted, with_defaults
from moot.models.keys import missing_key
from moot.protocols.graph import END, PhaseState
from moot.workflows.run import CellPlan, Prepared, episode_specs

SAMPLE = 20  # episodes walked per cell; the rest are scaled from them
# Conditions under which a protocol may end before its longest path.
EARLY = {"confident", "unsure", "unsure_rounds_left", "agreed", "disagree_rounds_left",
         "approved", "revise_rounds_left", "offer_made", "accepted"}  # fmt: skip
# Seconds per call assumed for the time estimate (see `_latency`).
API_CALL_S = 1.0
API_TOKENS_S = 60.0
LOCAL_PROMPT_TOKENS_S = 600.0
LOCAL_TOKENS_S = 70.0
HUMAN_TURN_S = 60.0  # a person's turn, for the time estimate
LETTER_KINDS = ("verdict", "rate")  # turns where a judge's probability is read


def tokens(text: str) -> int:
    return len(text) // 4 + 1


@dataclass(slots=True)
class Use:
    """What one role on one model asks for, over the whole run."""

    calls: float = 0
    prompt_tokens: float = 0
    completion_tokens: float = 0
    longest_prompt: int = 0
    longest_reply: int = 0
    judges: bool = False  # reads a verdict or a rating from this seat


@dataclass(slots=True)
class Check:
    model: str
    roles: list[str]
    problems: list[str] = field(default_factory=list)  # fail: do not spend money yet
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "FAIL" if self.problems else "warn" if self.warnings else "ok"


@dataclass(slots=True)
class Plan:
    name: str
    dataset: str
    questions: int
    episodes: int
    cells: list[tuple[str | None, int, str]]  # name, episodes, round structure
    upper_bound: bool
    uses: dict[tuple[str, str], Use]  # (role, model) -> use
    prices: dict[str, float | None]  # model -> dollars for its calls; None: unknown
    seconds: float
    concurrency: int
    checks: list[Check]
    budget: str | None = None  # the scenario's spending limit, in words
    forms: list[str] = field(default_factory=list)  # "phases: form", the replies' declared forms

    @property
    def calls(self) -> int:
        return round(sum(u.calls for u in self.uses.values()))

    @property
    def known_cost(self) -> float:
        return sum(v for v in self.prices.values() if v is not None)

    @property
    def unknown(self) -> list[str]:
        return sorted(m for m, v in self.prices.items() if v is None)

    @property
    def ok(self) -> bool:
        return not any(c.problems for c in self.checks)

    def cost_text(self) -> str:
        if not self.unknown:
            return f"${self.known_cost:.4f}"
        rest = f"; ${self.known_cost:.4f} for the rest" if len(self.unknown) < len(self.prices) else ""
        return f"unknown (no price for {', '.join(self.unknown)}){rest}"

    def summary(self) -> str:
        """One line, for `moot run`."""
        bound = "at most " if self.upper_bound else ""
        p = sum(u.prompt_tokens for u in self.uses.values())
        c = sum(u.completion_tokens for u in self.uses.values())
        return (
            f"plan: {self.episodes} episodes, {bound}{self.calls:,} model calls, "
            f"~{round(p + c):,} tokens, cost {self.cost_text()}, time ~{_duration(self.seconds)}"
        )

    def lines(self) -> list[str]:
        bound = " (upper bound: the protocol may stop early)" if self.upper_bound else ""
        out = [
            f"scenario   {self.name}",
            f"dataset    {self.dataset}: {self.questions} questions",
            f"episodes   {self.episodes}" + (f" in {len(self.cells)} cells" if len(self.cells) > 1 else ""),
        ]
        for name, n, structure in self.cells:
            out.append(f"rounds     {structure}" + (f"  [{name}: {n} episodes]" if name else ""))
        for form in self.forms:
            out.append(f"form       {form}")
        out.append(f"calls      {self.calls:,}{bound}")
        for (role, model), u in sorted(self.uses.items()):
            out.append(
                f"  {role:<11}{round(u.calls):>8,} calls  ~{round(u.prompt_tokens):,} prompt + "
                f"~{round(u.completion_tokens):,} completion tokens  {model}"
            )
        p = sum(u.prompt_tokens for u in self.uses.values())
        c = sum(u.completion_tokens for u in self.uses.values())
        out.append(f"tokens     ~{round(p):,} prompt + ~{round(c):,} completion (4 characters a token;"
                   " every reply at its max_tokens)")  # fmt: skip
        out.append(f"cost       {self.cost_text()}")
        if self.budget:
            out.append(f"budget     {self.budget}")
        for model, price in sorted(self.prices.items()):
            out.append(f"  {model}: " + ("unknown" if price is None else f"${price:.4f}"))
        models = {m for _, m in self.uses}
        assumed = [
            text for text, present in (
                (f"{API_CALL_S:g} s + {API_TOKENS_S:g} tokens/s per API call", any(map(_routed, models))),
                (f"llama.cpp at {LOCAL_PROMPT_TOKENS_S:g} prompt and {LOCAL_TOKENS_S:g} reply tokens/s",
                 any(m.startswith("local/") for m in models)),
                (f"{HUMAN_TURN_S:g} s per person's turn", any(map(is_human, models))),
            ) if present
        ]  # fmt: skip
        out.append(f"time       ~{_duration(self.seconds)} at {self.concurrency} episodes at once"
                   + (f" (assuming {'; '.join(assumed)})" if assumed else ""))  # fmt: skip
        out.append("checks")
        for check in self.checks:
            said = check.problems + check.warnings + check.notes
            out.append(f"  {check.status:<5}{check.model} ({', '.join(check.roles)}): {'; '.join(said)}")
        return out


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _Probe:
    """A seat that renders its prompt, counts it, and answers with filler."""

    def __init__(self, seat: ModelSeat, model: str, tally: _Tally, index: int) -> None:
        self.id = seat.id
        self.role = seat.role
        self.seat = seat
        self.model = model
        self.tally = tally
        self.index = index

    async def act(self, view: View, turn: Turn) -> Reply:
        req = self.seat.request(view, turn)
        prompt = sum(tokens(m["content"]) for m in req.messages)
        self.tally.add(view.episode, self, turn, prompt, req.max_tokens)
        labels = req.answer_labels
        if labels:
            n = len(labels)
            # never sure, never unanimous: the walk takes the longest path
            choice = self.index % n if turn.kind in ("verdict", "choose") else 0
            return Reply(labels[choice], Judgement(choice, tuple([1 / n] * n), "plan", "ok"))
        text = ("lorem " * req.max_tokens)[: 4 * req.max_tokens]
        if turn.kind == "review":
            text += "\nDecision: revise"
        elif turn.kind == "speech":  # a game's player: a valid offer, and no deal
            text += "\nOFFER: 1\nREJECT"
        return Reply(text)

    @property
    def memory(self) -> Any:
        return getattr(self.seat, "memory", None)

    async def remember(self, view: View, won: bool | None) -> tuple[str, str] | None:
        """A seat that keeps lessons between episodes writes one after each (a call); one
        that keeps cases only files the case."""
        memory = self.memory
        if memory is None:
            return None
        completion = self.seat.max_tokens or DEFAULT_MAX_TOKENS["speech"]
        text = ("lorem " * completion)[: 4 * completion]
        if getattr(memory, "kind", None) == "lessons":
            prompt = 80 + tokens(view.question) + sum(tokens(a) for a in view.answers)
            prompt += tokens(memory.block(view.question))
            self.tally.add(view.episode, self, Turn("speech", "lesson", 0, 0, False, 0), prompt, completion)
        memory.add(view.question, text)
        return None


class _Tally:
    def __init__(self, latency: dict[str, Any]) -> None:
        self.uses: dict[tuple[str, str], Use] = defaultdict(Use)
        self.latency = latency
        # episode -> step -> longest latency in it (simultaneous turns share a step)
        self.steps: dict[int, dict[Any, float]] = defaultdict(dict)
        self.model_seconds: dict[str, float] = defaultdict(float)
        self._n = 0

    def add(self, episode: int, probe: _Probe, turn: Turn, prompt: int, completion: int) -> None:
        u = self.uses[(probe.role, probe.model)]
        u.calls += 1
        u.prompt_tokens += prompt
        u.completion_tokens += completion
        u.longest_prompt = max(u.longest_prompt, prompt)
        u.longest_reply = max(u.longest_reply, completion)
        u.judges = u.judges or turn.kind in LETTER_KINDS
        seconds = self.latency[probe.model](prompt, completion)
        self.model_seconds[probe.model] += seconds
        self._n += 1
        step = (turn.phase, turn.round) if turn.simultaneous else self._n
        steps = self.steps[episode]
        steps[step] = max(steps.get(step, 0.0), seconds)


def make_plan(prep: Prepared) -> Plan:
    """The plan of a prepared run (see the module's docstring for what is estimated how)."""
    scenario = prep.scenario
    uses: dict[tuple[str, str], Use] = defaultdict(Use)
    settings: dict[str, ModelSettings] = {}
    seconds = 0.0
    cells = []
    upper = False
    for cell in prep.cells:
        for spec in cell.protocol.seats:
            name = cell.seat_configs[spec.id].model or ""
            settings.setdefault(name, with_defaults(name, cell.scenario.model_for(name)))
        tally, walked = _walk(cell, settings)
        scale = cell.total / walked if walked else 0
        for key, u in tally.uses.items():
            total = uses[key]
            total.calls += u.calls * scale
            total.prompt_tokens += u.prompt_tokens * scale
            total.completion_tokens += u.completion_tokens * scale
            total.longest_prompt = max(total.longest_prompt, u.longest_prompt)
            total.longest_reply = max(total.longest_reply, u.longest_reply)
            total.judges = total.judges or u.judges
        seconds += _seconds(cell, tally, walked, settings)
        structure, early = _structure(cell)
        upper = upper or early
        cells.append((cell.name, cell.total, structure))
    models = sorted({m for _, m in uses})
    prices = {m: _price(m, settings[m], uses) for m in models}
    checks = [_check(m, settings[m], uses) for m in models]
    d = scenario.dataset
    dataset = d.source + (f" (split {d.split})" if d.split else "") + (", both orders" if d.both_orders else "")
    b = scenario.budget
    budget = None
    if b is not None:
        limits = ([f"${b.max_cost:g}"] if b.max_cost else []) + ([f"{b.max_tokens:,} tokens"] if b.max_tokens else [])
        budget = f"no new episode once {' or '.join(limits)} are spent" if limits else None
    return Plan(
        scenario.name, dataset, len(prep.questions), prep.total, cells, upper, dict(uses), prices,
        seconds, scenario.concurrency, checks, budget, _forms(prep.cells),
    )  # fmt: skip


def _forms(cells: list[CellPlan]) -> list[str]:
    """Each declared form with the phases that take it: `offer_1, offer_2: matching /.../`."""
    by_form: dict[str, list[str]] = {}
    for cell in cells:
        for name, phase in cell.protocol.phases.items():
            if phase.form is not None and name not in (found := by_form.setdefault(phase.form.describe(), [])):
                found.append(name)
    return [f"{', '.join(names)}: {form}" for form, names in by_form.items()]


def _walk(cell: CellPlan, settings: dict[str, ModelSettings]) -> tuple[_Tally, int]:
    """Run the engine over a sample of the cell's episodes with probe seats."""
    sc = cell.scenario
    latency = {m: _latency(m, s) for m, s in settings.items()}
    tally = _Tally(latency)
    probes = {}
    for i, spec in enumerate(cell.protocol.seats):
        cfg = cell.seat_configs[spec.id]
        seat = ModelSeat(
            spec.id, spec.role, None,  # type: ignore[arg-type]  # a probe never calls it
            temperature=cfg.temperature or 0.0, max_tokens=cfg.max_tokens, seed=0,
            prompts=SeatPrompts(cfg.prompts.system, cfg.prompts.turn) if cfg.prompts else None,
        )  # fmt: skip
        remembers = getattr(cfg, "memory", None)  # seats that learn across episodes
        if remembers is not None:
            from moot.agents.memory import Memory

            seat.memory = Memory(remembers.kind, remembers.size)
        probes[spec.id] = _Probe(seat, cfg.model or "", tally, i)
    checks = sc.protocol.qualification if cell.protocol.name == "peer_review" else 0
    specs = list(episode_specs(cell.questions, sc.dataset.both_orders, checks, start=cell.offset))
    step = max(1, math.ceil(len(specs) / SAMPLE))
    sample = specs[::step]
    bus = Bus()
    engine = Engine(cell.protocol.compile(), probes, bus, concurrency=1)
    anyio.run(engine.run, sample)
    failed = bus.stats.failed
    if failed:
        raise ConfigError(f"plan: the {cell.protocol.name} protocol could not be walked")
    return tally, len(sample)


def _seconds(cell: CellPlan, tally: _Tally, walked: int, settings: dict[str, ModelSettings]) -> float:
    """Wall time of the cell: episodes at the run's concurrency, or a model's own limits
    (calls at once, requests and tokens per minute), whichever binds."""
    if not walked:
        return 0.0
    scale = cell.total / walked
    chain = sum(sum(s.values()) for s in tally.steps.values()) / walked
    bounds = [math.ceil(cell.total / cell.scenario.concurrency) * chain]
    for m, secs in tally.model_seconds.items():
        s = settings[m]
        bounds.append(secs * scale / (s.max_concurrency or math.inf))
        uses = [u for (_, model), u in tally.uses.items() if model == m]
        if s.rpm:
            bounds.append(60 * scale * sum(u.calls for u in uses) / s.rpm)
        if s.tpm:
            bounds.append(60 * scale * sum(u.prompt_tokens + u.completion_tokens for u in uses) / s.tpm)
    return max(bounds)


def _latency(model: str, s: ModelSettings) -> Any:
    if is_human(model):
        return lambda prompt, completion: HUMAN_TURN_S
    if is_scripted(model):
        return lambda prompt, completion: s.latency
    if model.startswith("local/"):
        return lambda prompt, completion: prompt / LOCAL_PROMPT_TOKENS_S + completion / LOCAL_TOKENS_S
    return lambda prompt, completion: API_CALL_S + completion / API_TOKENS_S


def _structure(cell: CellPlan) -> tuple[str, bool]:
    """The phases of the longest episode, repeats folded: `speeches x2 -> verdict`."""
    compiled = cell.protocol.compile()
    state = PhaseState(visits={}, terms=compiled.terms)
    name, path = compiled.start, list[str]()
    while name != END and len(path) < 10_000:
        state.visits[name] = state.visits.get(name, 0) + 1
        path.append(name)
        name = compiled.next_phase(name, state)
    early = any(d.get("when", "always") in EARLY for _, _, d in cell.protocol.graph.edges(data=True))
    return fold(path), early


def fold(path: list[str]) -> str:
    """Consecutive repeats of a block of up to 4 phases, folded: a x3, (a -> b) x2."""
    out, i = [], 0
    while i < len(path):
        best = (1, 1)  # (block size, repeats)
        for size in range(1, 5):
            block = path[i : i + size]
            if len(block) < size:
                break
            n = 1
            while path[i + n * size : i + (n + 1) * size] == block:
                n += 1
            if n > 1 and n * size > best[0] * best[1]:
                best = (size, n)
        size, n = best
        block = path[i : i + size]
        text = block[0] if size == 1 else "(" + " -> ".join(block) + ")"
        out.append(text + (f" x{n}" if n > 1 else ""))
        i += size * n
    return " -> ".join(out)


# -- prices and checks -------------------------------------------------------------------


def _litellm() -> Any:
    from moot.models.litellm_api import _import_litellm

    return _import_litellm()


def _routed(model: str) -> bool:
    """Reached through litellm (not the scripted or the embedded model, nor a person)."""
    return not is_scripted(model) and not model.startswith("local/") and not is_human(model)


def _price(model: str, s: ModelSettings, uses: dict[tuple[str, str], Use]) -> float | None:
    if not _routed(model):
        return 0.0
    if s.api_base:
        return None  # a server of one's own: litellm's table does not know what it costs
    p = sum(u.prompt_tokens for (_, m), u in uses.items() if m == model)
    c = sum(u.completion_tokens for (_, m), u in uses.items() if m == model)
    try:
        a, b = _litellm().cost_per_token(model=model, prompt_tokens=round(p), completion_tokens=round(c))
    except Exception:
        return None
    return float(a + b)


def _check(model: str, s: ModelSettings, uses: dict[tuple[str, str], Use]) -> Check:
    mine = {r: u for (r, m), u in uses.items() if m == model}
    check = Check(model, sorted(mine))
    longest = max(u.longest_prompt for u in mine.values())
    judges = any(u.judges for u in mine.values())
    if is_human(model):
        check.notes.append("a person: no model, no key")
        return check
    if is_scripted(model):
        check.notes.append("scripted: no key, no limit")
        if judges and not s.logprobs:
            check.warnings.append("no token probabilities: verdicts read from text")
        return check
    if model.startswith("local/"):
        from moot.models import local

        try:
            local.check_installed()
            local.model_path(model)
        except ConfigError as exc:
            check.problems.append(str(exc))
        need = longest + max(u.longest_reply for u in mine.values())
        if need > s.n_ctx:
            check.problems.append(f"context: the longest prompt needs ~{need:,} tokens, n_ctx is {s.n_ctx:,}")
        else:
            check.notes.append(f"context ~{need:,} of {s.n_ctx:,} tokens")
        check.notes.append("no key needed")
        return check
    litellm = _litellm()
    try:
        litellm.get_llm_provider(model, api_base=s.api_base)
    except Exception:
        raise ConfigError(
            f"unknown model {model!r}: use scripted, local/..., or a litellm name with its "
            "provider prefix, e.g. openai/gpt-4o-mini"
        ) from None
    # the key: named by the scenario, else what the provider reads (the run's own rule)
    env = missing_key(model, s)
    if env:
        check.problems.append(f"${env} is not set")
    elif s.api_key_env:
        check.notes.append(f"key in ${s.api_key_env}")
    elif s.api_base or s.endpoints:
        check.notes.append(f"server {s.api_base or 'pool'}: no key needed")
    else:
        check.notes.append("key found in the environment")
    try:
        info = litellm.get_model_info(model)
    except Exception:
        info = None
    window = (info or {}).get("max_input_tokens") or (info or {}).get("max_tokens")
    if window:
        if longest > window:
            check.problems.append(f"context: the longest prompt is ~{longest:,} tokens, the model takes {window:,}")
        else:
            check.notes.append(f"context ~{longest:,} of {window:,} tokens")
    else:
        check.warnings.append("context window unknown")
    if judges:
        from moot.models.litellm_api import SCRIPTED_PREFIX

        try:  # the scripted stand-in behind litellm returns text only
            logprobs = not model.startswith(SCRIPTED_PREFIX + "/") and "logprobs" in (
                litellm.get_supported_openai_params(model=model) or []
            )
        except Exception:
            logprobs = False
        if logprobs:
            check.notes.append("token probabilities available")
        else:
            check.warnings.append("no token probabilities: verdicts read from text")
    return check

