"""Re-judging: new judges over stored transcripts, no debater called.

Each finished episode's final judge view is rebuilt from the stored messages (what the
judge seat could read when it ruled, with or without the source as it was), rendered with
the judge seat's own templates (or a `--prompt` file), and put to each new judge model
through the gateway. The verdicts go into the same database beside the original ones,
under a judge label (`rejudge:MODEL`, `:swapped` when the answers were shown in the other
order), with their model calls under the same label: judges compare per episode, paired.
Running the same judge again adds nothing (idempotent).
"""

from __future__ import annotations

import time
import zlib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from moot.agents.base import Turn, View
from moot.agents.model_seat import ModelSeat, SeatPrompts
from moot.analysis.agreement import cohen_kappa, fleiss_kappa
from moot.errors import ConfigError
from moot.models.gateway import Model, ModelCallFailed, is_scripted, make_api, takes_images, with_defaults
from moot.models.keys import require_key
from moot.scenario.model import Prompts, Scenario
from moot.store.reader import RunReader, StoredEpisode
from moot.store.transcripts import cell_scenarios, open_run
from moot.transcript.events import Message, ModelCall, Verdict, visible
from moot.workflows import aio

PREFIX = "rejudge:"
FLUSH = 64  # verdicts kept in memory before they are written


def label_for(model: str, *, swapped: bool = False, prompt: str | None = None) -> str:
    out = PREFIX + model
    if prompt:
        out += f":prompt={prompt}"
    return out + (":swapped" if swapped else "")


def load_prompt(path: str | Path) -> SeatPrompts:
    """A judge template file: YAML with `system:` and/or `turn:`, or plain text (the turn)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"--prompt {p}: cannot read it ({exc.strerror})") from None
    data: Any = None
    if p.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--prompt {p}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"--prompt {p}: expected a mapping with system: and/or turn:")
    try:
        prompts = Prompts.model_validate(data if data is not None else {"turn": text})
    except Exception as exc:
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            err = exc.errors(include_url=False)[0]
            msg = str(err.get("ctx", {}).get("error", err["msg"]))
            where = ".".join(str(x) for x in err["loc"])
            raise ConfigError(f"--prompt {p}: {where}: {msg}") from None
        raise
    if not prompts.system and not prompts.turn:
        raise ConfigError(f"--prompt {p}: give a system or a turn template")
    return SeatPrompts(prompts.system, prompts.turn)


@dataclass(slots=True)
class Case:
    """One episode as its judge last saw it."""

    episode: StoredEpisode
    seat: str  # the judge seat whose final ruling is re-done
    view: View
    turn: Turn
    original: int | None  # the original judge's choice
    scenario: Scenario


@dataclass(slots=True)
class JudgeStats:
    label: str
    judged: int = 0  # new verdicts this time
    skipped: int = 0  # already judged under this label
    failed: int = 0


@dataclass(slots=True)
class RejudgeSummary:
    path: Path
    episodes: int
    judges: list[JudgeStats]
    calls: int
    cost: float
    # label -> (verdicts, correct, valid, flips of the original, kappa with the original)
    table: dict[str, tuple[int, int, int, int, float | None]] = field(default_factory=dict)
    fleiss: float | None = None
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"run        {self.path}", f"episodes   {self.episodes} finished"]
        for j in self.judges:
            out.append(
                f"judge      {j.label}: {j.judged} new verdicts"
                + (f", {j.skipped} already there" if j.skipped else "")
                + (f", {j.failed} failed" if j.failed else "")
            )
        out.append(f"model      {self.calls} calls, cost ${self.cost:.4f}")
        for label, (n, correct, valid, flips, kappa) in self.table.items():
            acc = f"{correct / valid:6.1%}" if valid else "   n/a"
            k = "n/a" if kappa is None else f"{kappa:.2f}"
            out.append(
                f"accuracy   {acc} ({correct}/{valid})  flips {flips}/{n}  kappa {k}  {label}"
            )
        if self.fleiss is not None:
            out.append(f"agreement  Fleiss' kappa {self.fleiss:.2f} over the original and every judge")
        out += [f"failed     {e}" for e in self.errors[:3]]
        return out


def cases(reader: RunReader, scenario: Scenario) -> list[Case]:
    """Every finished episode's final judge view, rebuilt from the stored messages."""
    from moot.protocols import registry

    by_cell = cell_scenarios(scenario)
    rounds = {name: registry.build(sc).terms.rounds for name, sc in by_cell.items()}
    out = []
    for ep in reader.episodes():
        judges = [s for s, info in ep.seats.items() if info.get("role") == "judge"]
        if not judges:
            continue
        row = reader.final_ruling(ep.id, judges)
        if row is None:
            continue
        seat, round_, choice, call_seq = row
        msgs = reader.messages(ep.id)
        ruling = next((m for m in msgs if m.seat == seat and m.call_seq == call_seq), None)
        before = [m for m in msgs if ruling is None or m.seq < ruling.seq]
        sees = bool(ep.seats[seat].get("sees_source"))
        view = View(ep.id, seat, "judge", ep.question, ep.answers, None,
                    ep.source if sees else None, visible(before, seat),
                    images=reader.images(ep.id) if sees else ())  # fmt: skip
        phase = ruling.phase if ruling is not None else "verdict"
        turn = Turn("verdict", phase, round_, rounds.get(ep.cell, 1), False, 0)
        out.append(Case(ep, seat, view, turn, choice, by_cell.get(ep.cell, scenario)))
    return out


def swap_view(view: View) -> View:
    """The same transcript with the answers shown in reverse order (sides follow them)."""
    n = len(view.answers)

    def flip(m: Message) -> Message:
        return m if m.side is None else replace(m, side=n - 1 - m.side)

    return replace(view, answers=tuple(reversed(view.answers)),
                   messages=tuple(flip(m) for m in view.messages))  # fmt: skip


class _Calls:
    """The sink under the re-judging models: numbers calls after the episode's stored ones
    and keeps their records for the database."""

    def __init__(self, next_seq: dict[int, int]) -> None:
        self._next = next_seq
        self.events: list[Any] = []

    def next_call_seq(self, episode: int) -> int:
        seq = self._next[episode]
        self._next[episode] = seq + 1
        return seq

    async def publish(self, event: Any) -> None:
        self.events.append(event)


def rejudge(
    path: str | Path,
    judges: list[str],
    *,
    prompt: str | Path | None = None,
    swap: bool = False,
    concurrency: int | None = None,
) -> RejudgeSummary:
    """Re-judge every finished episode of a stored run with each model in `judges` (and,
    with `swap`, also with the answers in the other order); returns what was added."""
    if not judges:
        raise ConfigError("rejudge: give at least one --judge MODEL")
    if len(set(judges)) != len(judges):
        raise ConfigError("rejudge: a --judge is given twice")
    templates = load_prompt(prompt) if prompt else None
    p = Path(path)
    from moot import store

    reader, scenario, _ = open_run(p)
    conn = store.connect(p)  # the new calls and verdicts are added
    try:
        for m in judges:  # a missing key: one line now, not a failed call per episode
            require_key(m, scenario.model_for(m), ask_litellm=False)
        todo = cases(reader, scenario)
        if not todo and not reader.has_episodes():
            raise ConfigError(f"{p}: holds no episodes to re-judge")
        if any(c.view.images for c in todo):  # the judges see images: each must take them
            for m in judges:
                if not takes_images(m, scenario.model_for(m)):
                    raise ConfigError(f"rejudge: --judge {m} cannot take images, and the judges' episodes show them")
        if not todo:
            raise ConfigError(f"{p}: no finished episode has a judge seat to re-judge")
        tag = Path(prompt).stem if prompt else None
        variants = [(m, s) for m in judges for s in ((False, True) if swap else (False,))]
        labels = {(m, s): label_for(m, swapped=s, prompt=tag) for m, s in variants}
        seen: defaultdict[str, set[int]] = defaultdict(set, reader.judged_by(PREFIX))
        next_seq: defaultdict[int, int] = defaultdict(int, reader.next_call_seqs())
        sink = _Calls(next_seq)
        cache = _cache(scenario, judges)
        models = {m: _model(m, scenario, sink, cache) for m in judges}  # unknown model: fails here
        stats = {labels[v]: JudgeStats(labels[v]) for v in variants}
        errors: list[str] = []
        results: list[Any] = []
        calls: list[ModelCall] = []

        async def one(case: Case, model: str, swapped: bool) -> None:
            label = labels[(model, swapped)]
            seat = _seat(case, models[model], templates, label)
            view = swap_view(case.view) if swapped else case.view
            try:
                reply = await seat.act(view, case.turn)
            except ModelCallFailed as exc:
                stats[label].failed += 1
                errors.append(f"episode {case.episode.id} {label}: {exc}")
                return
            j = reply.judgement
            choice, probs = (j.choice, j.probabilities) if j else (None, None)
            if swapped:  # back to the stored order
                n = len(view.answers)
                choice = None if choice is None else n - 1 - choice
                probs = None if probs is None else tuple(reversed(probs))
            correct = case.episode.correct
            results.append(
                Verdict(
                    case.episode.id, label, model, case.turn.round, choice, probs,
                    None if choice is None or correct is None else choice == correct,
                    j.method if j else "none", j.parse_status if j else "invalid",
                    reply.content, reply.call_seqs[-1] if reply.call_seqs else None, time.time(),
                )
            )  # fmt: skip
            stats[label].judged += 1
            if len(results) >= FLUSH:  # a long panel keeps what it has if the process dies
                flush()

        def flush() -> None:
            # every call published so far has its verdict here (nothing awaits in between)
            _write(conn, sink.events, results)
            calls.extend(e for e in sink.events if isinstance(e, ModelCall))
            sink.events.clear()
            results.clear()

        async def main() -> None:
            limit = anyio.CapacityLimiter(concurrency or scenario.concurrency)

            async def guarded(*args: Any) -> None:
                async with limit:
                    await one(*args)

            async with anyio.create_task_group() as tg:
                for case in todo:
                    for model, swapped in variants:
                        if case.episode.id in seen[labels[(model, swapped)]]:
                            stats[labels[(model, swapped)]].skipped += 1
                            continue
                        tg.start_soon(guarded, case, model, swapped)

        try:
            aio.run(main)
        finally:  # what was judged is kept, even when interrupted
            flush()
        summary = RejudgeSummary(
            p, len(todo), list(stats.values()), len(calls), sum(c.cost or 0 for c in calls),
            errors=errors,
        )
        summary.table, summary.fleiss = compare(
            reader, list(stats), {c.episode.id: c.original for c in todo}
        )
        return summary
    finally:
        conn.close()
        reader.close()


def _cache(scenario: Scenario, judges: list[str]) -> Any:
    """The run's response cache, if it used one and a judge can use it (not scripted)."""
    if not scenario.cache or all(is_scripted(m) for m in judges):
        return None
    from moot.models.cache import ResponseCache, default_path

    where = Path(scenario.cache_path).expanduser() if scenario.cache_path else default_path()
    return ResponseCache(where)


def _model(name: str, scenario: Scenario, sink: _Calls, cache: Any) -> Model:
    settings = with_defaults(name, scenario.model_for(name))
    return Model(name, make_api(name, settings), settings, sink, None if is_scripted(name) else cache)


def _seat(case: Case, model: Model, templates: SeatPrompts | None, label: str) -> ModelSeat:
    """The judge seat as the run set it up (temperature, tokens, templates, seed), on a new
    model: the original model re-judging gives the original verdicts."""
    sc = case.scenario
    cfg = sc.seat(case.seat, "judge")
    if templates is None:
        templates = SeatPrompts(cfg.prompts.system, cfg.prompts.turn) if cfg.prompts else None
    seat = ModelSeat(
        case.seat, "judge", model,
        temperature=cfg.temperature or 0.0, max_tokens=cfg.max_tokens,
        seed=(sc.seed * 1_000_003 + zlib.crc32(case.seat.encode())) % 2**31,
        prompts=templates,
    )  # fmt: skip
    seat.label = label
    return seat


def _write(conn: Any, calls: list[Any], verdicts: list[Verdict]) -> None:
    """The new model calls and verdicts, in one transaction."""
    from moot.store.writer import StoreWriter

    StoreWriter(conn).write_now(calls + verdicts)


# -- comparing judges on the same transcripts ------------------------------------------


def compare(
    reader: RunReader, labels: list[str], original: dict[int, int | None]
) -> tuple[dict[str, tuple[int, int, int, int, float | None]], float | None]:
    """Per label: verdicts, correct, valid, how often it flips the original judge's choice,
    and Cohen's kappa with it; Fleiss' kappa over the original and all labels, on the
    episodes every one of them ruled validly."""
    table = {}
    choices: dict[str, dict[int, int | None]] = {}
    for label in labels:
        rows = reader.choices_of(label)
        got = {ep: c for ep, c, _ in rows}
        choices[label] = got
        valid = sum(c is not None for c in got.values())
        correct = sum(bool(k) for _, _, k in rows)
        paired = [(original[e], c) for e, c in got.items() if e in original]
        flips = sum(a is not None and b is not None and a != b for a, b in paired)
        table[label] = (len(rows), correct, valid, flips, cohen([a for a, _ in paired], [b for _, b in paired]))
    fleiss_value = None
    if labels:
        raters = [original] + [choices[lab] for lab in labels]
        common = [e for e in original if all(r.get(e) is not None for r in raters)]
        if common:
            fleiss_value = fleiss([[r[e] for r in raters] for e in common])  # type: ignore[misc]
    return table, fleiss_value


def cohen(a: list[int | None], b: list[int | None]) -> float | None:
    """Cohen's kappa of two raters over the items both rated (analysis.agreement's)."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    return cohen_kappa([x for x, _ in pairs], [y for _, y in pairs]) if pairs else None


def fleiss(items: list[list[int]]) -> float | None:
    """Fleiss' kappa: items x the category each rater chose (analysis.agreement's)."""
    return fleiss_kappa(items) if items and len(items[0]) > 1 else None
