"""A scenario file, as pydantic models: the paper's setup section, validated at the boundary."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from moot.models.gateway import DEFAULT_MODEL, ModelSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomSeat(_Strict):
    role: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    side: int | Literal["assigned", "open"] | None = None
    sees_source: bool = True


def _form(value: Any) -> Any:
    """A reply form as written ({labels: [...]}, {pattern: ...} or {schema: {...}}), checked
    here so a bad one is named with its field before anything runs."""
    if value is not None:
        from moot.models.forms import FormError, from_record

        try:
            from_record(value)
        except FormError as exc:
            raise ValueError(str(exc)) from None
    return value


class CustomPhase(_Strict):
    kind: Literal["speech", "question", "verdict", "choose", "review", "rate", "aggregate"]
    seats: list[str] = Field(min_length=1)
    simultaneous: bool = False
    audience: list[str] | None = None
    # the form of every reply in the phase (moot.models.forms): {labels: [...]},
    # {pattern: '...'} or {schema: {...}}
    form: dict[str, Any] | None = None
    # a rate phase: the phase whose latest messages are rated, and whether in pairs
    submissions: str | None = None
    pairwise: bool = False

    _check_form = field_validator("form")(_form)


class CustomEdge(_Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    when: str = "always"
    of: str | None = None
    threshold: float | None = Field(None, gt=0, le=1)


class JuryConfig(_Strict):
    """A panel in the judge's seat (LLMs-as-a-Jury): `seats.judge` configures every juror,
    `seats.juror_2` one of them."""

    size: int = Field(3, ge=2, le=25, description="jurors (seats juror_1 ... juror_k)")
    aggregate: Literal["majority", "mean", "foreperson"] = Field(
        "majority", description="plurality vote, mean probability, or juror 1 rules for the panel"
    )
    deliberation: int = Field(
        0, ge=0, le=5, description="rounds in which each juror reads the others' verdicts and rules again"
    )


class ProtocolConfig(_Strict):
    name: Literal[
        "debate", "consultancy", "direct_qa", "multi_agent", "feedback", "courtroom",
        "peer_review", "chain", "bargaining", "negotiation", "custom",
    ] = "debate"  # fmt: skip
    rounds: int = Field(2, ge=1, le=100)
    turns: Literal["simultaneous", "sequential"] = "simultaneous"
    open: bool = Field(False, description="seats choose the answer they defend")
    judge_questions: bool = Field(False, description="the judge asks a question between rounds")
    stop_threshold: float | None = Field(
        None, gt=0.5, le=1.0, description="judge rules every round; stop when this sure"
    )
    passage: bool = Field(False, description="direct_qa: the judge reads the passage")
    agents: int = Field(3, ge=2, le=50, description="multi_agent: how many agents")
    witness: bool = Field(True, description="courtroom: a witness is examined by each side")
    authors: int = Field(3, ge=2, le=20, description="peer_review: how many submissions")
    reviewers: int = Field(2, ge=1, le=20, description="peer_review: how many reviewers")
    pairwise: bool = Field(False, description="peer_review: compare pairs, both orders")
    qualification: int = Field(
        0, ge=0, le=20, description="peer_review: check questions weighting each reviewer"
    )
    until_agreed: bool = Field(False, description="multi_agent: stop once all agents agree")
    rubric: str | None = Field(None, description="feedback: what the reviewer checks")
    final: Literal["majority", "judge"] = Field(
        "majority", description="multi_agent: the answer is the last round's majority or a judge's"
    )
    best_of: int = Field(
        1, ge=1, le=8, description="speeches: N drafts, the selector seat picks one"
    )
    jury: JuryConfig | None = Field(None, description="a panel of jurors replaces the judge")
    quotes: bool = Field(True, description="verify <quote> tags against the source")
    char_limit: int | None = Field(
        None, ge=1, description="a person's speech: characters at most (quote tags not counted)"
    )
    quote_limit: int | None = Field(
        None, ge=0, description="a person's speech: quoted characters at most"
    )
    quote_fuzzy: float | None = Field(None, gt=0, le=1)
    # a custom protocol's graph
    seats: dict[str, CustomSeat] | None = None
    phases: dict[str, CustomPhase] | None = None
    edges: list[CustomEdge] | None = None
    start: str | None = None

    @model_validator(mode="after")
    def _jury_fits(self) -> ProtocolConfig:
        if self.jury is not None and self.name != "custom":
            from moot.protocols.registry import build_protocol

            build_protocol(self)  # raises "jury: ..." for a judge that cannot be a panel
        return self

    @model_validator(mode="after")
    def _graph(self) -> ProtocolConfig:
        graph_fields = ("seats", "phases", "edges", "start")
        given = [f for f in graph_fields if getattr(self, f) is not None]
        if self.name != "custom":
            if given:
                raise ValueError(f"{given[0]}: only a custom protocol declares its graph")
            return self
        missing = [f for f in graph_fields if getattr(self, f) is None]
        if missing:
            raise ValueError(f"{missing[0]}: a custom protocol needs seats, phases, edges and start")
        from moot.protocols.custom import build

        problems = build(self).problems()
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ValueError(f"invalid protocol graph: {problems[0]}{more}")
        return self


class Prompts(_Strict):
    """Overrides of a seat's prompt templates (Python format fields, see moot.agents.prompts)."""

    system: str | None = None
    turn: str | None = None
    # an argument style (moot.agents.prompts.STYLES, or your own words): `{style}` in the
    # templates is filled with it when the scenario is read, so a sweep can compare styles
    style: str | None = None
    _raw: dict[str, str] = PrivateAttr(default_factory=dict)  # the templates before {style}

    @field_serializer("system", "turn")
    def _as_written(self, value: str | None, info: Any) -> str | None:
        """Dumped as written, `{style}` and all (a sweep's cells set another style)."""
        return self._raw.get(info.field_name, value)

    @field_validator("system", "turn")
    @classmethod
    def _known_fields(cls, template: str | None) -> str | None:
        from moot.agents.prompts import FIELDS

        if template is None:
            return None
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError as exc:
            raise ValueError(f"not a valid template ({exc}); write literal braces as {{{{ }}}}") from None
        for name in names:
            if name not in FIELDS and name != "style":
                raise ValueError(f"unknown template field {{{name}}} (known: {', '.join(sorted(FIELDS | {'style'}))})")
        return template

    @model_validator(mode="after")
    def _fill_style(self) -> Prompts:
        from moot.agents.prompts import STYLES

        for key in ("system", "turn"):
            template = getattr(self, key)
            if template is None or "{style}" not in template:
                continue
            if self.style is None:
                raise ValueError(f"{key}: uses {{style}} but no style is given")
            text = STYLES.get(self.style, self.style).replace("{", "{{").replace("}", "}}")
            self._raw[key] = template
            setattr(self, key, template.replace("{style}", text))
        return self


class MemoryConfig(_Strict):
    """What a seat carries from one episode to the next (episodes then run one at a time)."""

    kind: Literal["lessons", "cases"] = Field(
        "lessons", description="lessons it writes after each result, or the past cases themselves"
    )
    size: int = Field(5, ge=1, le=50, description="entries shown in each turn")
    load: str | None = Field(None, description="a run database whose memory of this seat to start from")


class SeatConfig(_Strict):
    model: str | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1, le=32768)
    prompts: Prompts | None = None
    # A person's seat (`model: human`): seconds per turn, counted from when it is shown.
    time_limit: float | None = Field(None, gt=0)
    join: bool = Field(False, description="a person takes this seat with moot join, even under --tui")
    # Whether the seat may read the source text. Default by role: debaters see it, a
    # debate judge is blind (the information gap the protocol exists to bridge).
    sees_source: bool | None = None
    memory: MemoryConfig | None = None
    # the form of this seat's free replies where its phase declares none (moot.models.forms)
    form: dict[str, Any] | None = None

    _check_form = field_validator("form")(_form)


class BudgetConfig(_Strict):
    """Stop starting episodes once this run has spent this much (episodes under way finish)."""

    max_cost: float | None = Field(None, gt=0, description="US dollars, as litellm prices calls")
    max_tokens: int | None = Field(None, gt=0)


class DatasetConfig(_Strict):
    source: str = "builtin:reading"
    format: Literal["auto", "moot", "quality", "boolq", "mmlu", "gpqa", "truthfulqa", "prontoqa", "mmmu"] = Field(
        "auto", description="a task format as its authors distribute it (moot.scenario.formats), or moot's own"
    )
    reduce_seed: int = Field(0, description="draws the incorrect answer kept of a multiple-choice set's options")
    split: str | None = None
    limit: int | None = Field(None, ge=1)
    shuffle_seed: int | None = None
    both_orders: bool = Field(
        False, description="run every question twice, with the answers in both orders"
    )
    private: bool = Field(
        False, description="not for publication (e.g. GPQA): exports leave its episodes out unless --include-private"
    )


class Endpoint(_Strict):
    """One server of a model (e.g. one of several vLLM servers); calls are spread over them."""

    api_base: str
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    model: str | None = Field(None, description="the model's name at this server (default: its own)")
    weight: float = Field(1.0, gt=0, description="share of the calls, relative to the others")
    fallback: bool = Field(False, description="used only when every other endpoint fails")


class Routing(_Strict):
    """How calls are spread over a model's endpoints (litellm's Router)."""

    strategy: Literal["simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing-v2"] = (
        "simple-shuffle"
    )
    allowed_fails: int = Field(1, ge=0, description="failures before an endpoint cools down")
    cooldown: float = Field(30.0, ge=0, description="seconds a failing endpoint is left out")
    retries: int | None = Field(
        None, ge=0, description="tries on other endpoints within one attempt (default: enough"
        " to get past every other endpoint's allowed failures)"
    )


class ModelConfig(_Strict):
    max_concurrency: int | None = Field(None, ge=1)
    timeout: float | None = Field(None, gt=0)  # None: the provider's default
    retries: int = Field(4, ge=0, le=50)
    backoff: float = Field(1.0, ge=0)
    api_base: str | None = None
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    params: dict[str, Any] = Field(default_factory=dict)
    rpm: float | None = Field(None, gt=0, description="requests per minute, across the run")
    tpm: float | None = Field(None, gt=0, description="tokens per minute, across the run")
    latency: float = Field(0.0, ge=0)
    replies: list[str] | None = None
    verdict: str | None = None
    logprobs: bool = True
    forms: bool = Field(True, description="scripted only: replies in a declared form (false: ignores forms)")
    form_retries: int = Field(2, ge=0, le=10, description="a reply out of its declared form is asked for again this many times")
    n_ctx: int = Field(4096, ge=256)
    n_threads: int | None = Field(None, ge=1)
    batching: Literal["fast", "exact"] | None = Field(
        None,
        description="local models: fast (concurrent requests share passes, prompts reuse cached prefixes) or exact "
        "(one request at a time, the same numbers whatever runs beside it); default MOOT_LLAMA_BATCHING, else fast",
    )
    endpoints: list[Endpoint] | None = Field(
        None, min_length=1, description="several servers of this model, routed by litellm"
    )
    routing: Routing | None = None
    vision: bool | None = Field(
        None, description="the model takes images (default: as litellm's model map says; scripted yes, local no)"
    )

    @model_validator(mode="after")
    def _one_way_to_the_servers(self) -> ModelConfig:
        if self.endpoints and (self.api_base or self.api_key_env):
            raise ValueError("endpoints: give api_base and api_key_env per endpoint, not beside them")
        if self.endpoints and all(e.fallback for e in self.endpoints):
            raise ValueError("endpoints: at least one must not be a fallback")
        if self.routing and not self.endpoints:
            raise ValueError("routing: applies to a model with endpoints")
        return self

    @model_validator(mode="after")
    def _no_secrets(self) -> ModelConfig:
        for key in self.params:
            if "key" in key.lower() or ("token" in key.lower() and key != "max_tokens"):
                raise ValueError(
                    f"params.{key}: secrets do not belong in a scenario; "
                    "name the environment variable with api_key_env"
                )
        return self

    def settings(self) -> ModelSettings:
        return ModelSettings(**self.model_dump())


class Scenario(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)
    description: str = ""
    protocol: ProtocolConfig = Field(default_factory=ProtocolConfig)
    seats: dict[str, SeatConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    concurrency: int = Field(8, ge=1, le=1_000_000)
    seed: int = 0
    output: str = "runs"
    budget: BudgetConfig | None = None
    cache: bool = Field(True, description="reuse stored replies of identical calls")
    cache_path: str | None = Field(None, description="default: ~/.cache/moot/responses.db")
    sweep: dict[str, list[Any]] | None = Field(
        None, description="a grid of conditions: dotted field path -> values"
    )

    _cells: list[Cell] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _seats_exist(self, info: ValidationInfo) -> Scenario:
        from moot.protocols import registry

        if info.context and info.context.get("cell"):
            return self  # a sweep cell: its seats were checked against the whole grid
        if self.sweep:
            self._cells = self._expand(self.sweep)
            # a seat named in the file must exist in some cell (a consultant in a sweep
            # over direct QA, consultancy and debate)
            known = set().union(*(registry.seat_names(c.scenario.protocol) for c in self._cells))
        else:
            known = registry.seat_names(self.protocol)
        for key in self.seats:
            if key not in known:
                raise ValueError(
                    f"seats.{key}: the {self.protocol.name} protocol has no seat or role "
                    f"{key!r} (it has: {', '.join(sorted(known))})"
                )
        return self

    def _expand(self, grid: dict[str, list[Any]]) -> list[Cell]:
        from moot.scenario import sweep

        sweep.check_keys(grid)
        cells = []
        for spec in sweep.expand(self.model_dump(exclude={"sweep"}), grid):
            try:
                scenario = Scenario.model_validate(spec.data, context={"cell": True})
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                where = ".".join(str(p) for p in err["loc"])
                msg = {"extra_forbidden": "unknown field"}.get(err["type"], err["msg"])
                if err["type"] == "value_error" and "ctx" in err:
                    msg = str(err["ctx"]["error"])
                key = next((k for k in grid if where.startswith(k) or k.startswith(where)), None)
                field = f"sweep.{key}" if key else "sweep"
                raise ValueError(f"{field}: in cell {spec.name!r}: {where}: {msg}") from None
            cells.append(Cell(spec.name, spec.position, spec.params, scenario))
        return cells

    def cells(self) -> list[Cell]:
        """The conditions this scenario runs: its sweep's grid, or itself alone."""
        if not self.sweep:
            return [Cell(None, 0, {}, self)]
        if not self._cells:  # built by model_construct/copy rather than validation
            self._cells = self._expand(self.sweep)
        return self._cells

    def model_for(self, name: str) -> ModelSettings:
        cfg = self.models.get(name) or ModelConfig()
        return cfg.settings()

    def seat(self, seat_id: str, role: str) -> SeatConfig:
        """A seat's config: its own entry over its role's entry over the defaults."""
        merged: dict[str, Any] = {}
        for key in (role, seat_id):
            if key in self.seats:
                merged.update(self.seats[key].model_dump(exclude_none=True))
        merged.setdefault("model", DEFAULT_MODEL)
        return SeatConfig(**merged)


@dataclass(frozen=True, slots=True)
class Cell:
    """One condition of a sweep: its name, the values it sets, and the scenario it runs."""

    name: str | None  # None: the scenario has no sweep
    position: int
    params: dict[str, Any]
    scenario: Scenario
