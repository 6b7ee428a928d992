"""A run: scenario -> engine + bus -> store. Everything a user can get wrong is checked before
the database is created, so bad input never leaves a half-written run behind."""

from __future__ import annotations

import gc
import platform
import sqlite3
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from typing import Protocol as Interface

import anyio

from moot.agents.memory import Memory
from moot.agents.model_seat import ModelSeat, SeatPrompts
from moot.engine import Engine, EpisodeSpec
from moot.engine.bus import Bus
from moot.errors import ConfigError
from moot.models.gateway import Model, is_scripted, make_api, with_defaults
from moot.protocols import registry
from moot.protocols.graph import Protocol
from moot.scenario import datasets
from moot.scenario.model import Scenario, SeatConfig
from moot.store.reader import RunReader
from moot.store.transcripts import stored_scenario
from moot.transcript.events import MemoryEntry, Totals
from moot.workflows import aio
from moot.workflows.hooks import Hooks, resume_hooks


@dataclass(slots=True)
class RunSummary(Totals):
    """A finished (or stopped) run, as the command prints it."""

    path: Path = Path()
    wall_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    # a sweep's cells: name, episodes done, correct and valid final verdicts
    cells: list[tuple[str, int, int, int]] = field(default_factory=list)

    def lines(self) -> list[str]:
        acc = "n/a" if self.accuracy is None else f"{self.accuracy:.1%}"
        valid = self.verdicts - self.invalid
        out = [
            f"run        {self.path}",
            f"episodes   {self.episodes} ({self.done} done, {self.failed} failed)",
            f"judge      accuracy {acc} ({self.correct}/{valid} valid verdicts), "
            f"{self.invalid} invalid"
            + ("" if self.mean_log_score is None else f", log score {self.mean_log_score:.3f}"),
            f"model      {self.model_calls} calls"
            + (f" ({self.cached} from the cache)" if self.cached else "")
            + f", {self.tokens:,} tokens, cost ${self.cost:.4f}",
            f"wall time  {self.wall_s:.1f} s",
        ]
        for name, done, correct, valid in self.cells:
            acc = f"{correct / valid:6.1%}" if valid else "   n/a"
            out.append(f"cell       {acc} ({correct}/{valid}) of {done} done  {name}")
        out += [f"failed     {e}" for e in self.errors[:3]]
        return out


def apply_overrides(
    scenario: Scenario,
    *,
    limit: int | None = None,
    models: dict[str, str] | None = None,
    cache: bool | None = None,
) -> Scenario:
    data = scenario.model_dump()
    if cache is not None:
        data["cache"] = cache
    if limit is not None:
        if limit < 1:
            raise ConfigError("--limit: must be at least 1")
        data["dataset"]["limit"] = limit
    known = set().union(*(registry.seat_names(c.scenario.protocol) for c in scenario.cells()))
    for key, model in (models or {}).items():
        if key not in known:
            raise ConfigError(
                f"--model {key}={model}: no seat or role {key!r} "
                f"(the {scenario.protocol.name} protocol has: {', '.join(sorted(known))})"
            )
        if not model:
            raise ConfigError(f"--model {key}=: give a model name")
        data["seats"].setdefault(key, {})["model"] = model
    return Scenario.model_validate(data)


def episode_specs(
    questions: list[datasets.Question], both_orders: bool, checks: int = 0, start: int = 0
) -> Iterator[EpisodeSpec]:
    """Alternate the shown order of the answers so each debater argues the correct one
    equally often (or show every question in both orders). With `checks`, each episode
    also carries that many other questions with known answers (the next ones in the
    dataset, cyclically), for peer review's qualification of its reviewers. Episodes are
    numbered from `start` (a sweep's cells own consecutive blocks)."""
    index = start
    n = len(questions)
    for i, q in enumerate(questions):
        if not q.options:  # an open task or a game: no options to order
            yield EpisodeSpec(
                index, q.id, q.question, (), None, q.passage, target=q.target, game=q.game, images=q.images
            )
            index += 1
            continue
        # the correct answer is shown first in even episodes, second in odd ones
        orders = (False, True) if both_orders else (q.answer != i % 2,)
        others = tuple(
            EpisodeSpec(-1, o.id, o.question, o.options, o.answer, o.passage)
            for o in (questions[(i + k) % n] for k in range(1, min(checks, n - 1) + 1))
        )
        for swapped in orders:
            answers = (q.options[1], q.options[0]) if swapped else q.options
            correct = 1 - q.answer if swapped else q.answer  # type: ignore[operator]  # options: an answer
            yield EpisodeSpec(
                index, q.id, q.question, answers, correct, q.passage, others,
                private=q.private, reduced=q.reduced, images=q.images,
            )  # fmt: skip
            index += 1


@dataclass(slots=True)
class CellPlan:
    """One condition of the run, ready to go: its protocol, questions and seats, and the
    block of episode numbers it owns (so a resumed run finds each episode where it was)."""

    name: str | None
    position: int
    params: dict[str, Any]
    scenario: Scenario
    protocol: Protocol
    questions: list[datasets.Question]
    seat_configs: dict[str, SeatConfig]
    offset: int

    @property
    def total(self) -> int:
        both = self.scenario.dataset.both_orders
        return sum(2 if both and q.options else 1 for q in self.questions)


@dataclass(slots=True)
class Prepared:
    scenario: Scenario
    scenario_text: str
    cells: list[CellPlan]
    base: Path | None = None  # where relative dataset paths are resolved

    # A run without a sweep is one cell; these read it.
    @property
    def protocol(self) -> Protocol:
        return self.cells[0].protocol

    @property
    def questions(self) -> list[datasets.Question]:
        return self.cells[0].questions

    @property
    def seat_configs(self) -> dict[str, SeatConfig]:
        return self.cells[0].seat_configs

    @property
    def total(self) -> int:
        return sum(c.total for c in self.cells)


def prepare(scenario: Scenario, scenario_text: str, base: Path | None) -> Prepared:
    d = scenario.dataset
    questions = datasets.load(d.source, fmt=d.format, split=d.split, base=base, seed=d.reduce_seed)
    questions = datasets.sample(questions, limit=d.limit, shuffle_seed=d.shuffle_seed)
    pictured = any(q.images for q in questions)
    plans = []
    offset = 0
    for cell in scenario.cells():
        sc = cell.scenario
        protocol = registry.build(sc)
        seat_configs = {s.id: sc.seat(s.id, s.role) for s in protocol.seats}
        plan = CellPlan(cell.name, cell.position, cell.params, sc, protocol, questions, seat_configs, offset)
        if pictured:
            _check_vision(plan, d.source)
        plans.append(plan)
        offset += plan.total
    return Prepared(scenario, scenario_text, plans, base)


def _check_vision(plan: CellPlan, source: str) -> None:
    """Refuse, before anything runs, a seat that would be shown images it cannot take."""
    from moot.agents.human import is_human
    from moot.models.gateway import takes_images

    for spec in plan.protocol.seats:
        if not spec.sees_source:
            continue  # a blind seat is shown neither the source nor its images
        model = plan.seat_configs[spec.id].model or ""
        if is_human(model):
            raise ConfigError(
                f"seat {spec.id}: {source} has images, and a person's seat cannot be shown images yet"
                " (make the seat blind, or fill it with a vision model)"
            )
        if not takes_images(model, plan.scenario.model_for(model)):
            raise ConfigError(
                f"seat {spec.id}: {source} has images, and its model {model} cannot take them"
                f" (fill it with a vision model, or say `vision: true` under models: {model})"
            )


def check_keys(prep: Prepared) -> None:
    """Refuse a run whose models lack their API keys: one line, before anything slow starts
    or anything is stored (litellm is not imported for the common providers)."""
    from moot.models.keys import require_key

    for cell in prep.cells:
        for name in sorted({cfg.model or "" for cfg in cell.seat_configs.values()}):
            require_key(name, cell.scenario.model_for(name), ask_litellm=False)


def output_path(scenario: Scenario, out: str | Path | None, allow_existing: bool = False) -> Path:
    if out is not None:
        path = Path(out)
    elif scenario.output.endswith(".db"):
        path = Path(scenario.output)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(scenario.output) / f"{scenario.name}-{stamp}.db"
        n = 2
        while path.exists():
            path = Path(scenario.output) / f"{scenario.name}-{stamp}-{n}.db"
            n += 1
    if path.exists() and not allow_existing:
        raise ConfigError(f"{path}: already exists; choose another --out")
    return path


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for dist in ("moot", "litellm", "llama-cpp-python", "pydantic", "anyio", "networkx", "sqlite-utils"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


class Interrupted(Exception):
    """The run was stopped (Ctrl-C): what finished is stored and the run can be resumed."""

    def __init__(self, path: Path):
        super().__init__(f"interrupted: resume with  moot run --resume {path}")
        self.path = path


GC_OBJECTS_PER_EPISODE = 150
SWITCH_INTERVAL = 0.001  # seconds (see execute)


class _SwitchInterval:
    """The GIL switch interval while any run plays, for the whole process (a `moot serve`
    server's threads too): set by the first run to start, restored by the last to end, so
    that overlapping runs in one process cannot leave it changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs = 0
        self._saved = 0.0

    def start(self) -> None:
        with self._lock:
            if self._runs == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, SWITCH_INTERVAL))
            self._runs += 1

    def end(self) -> None:
        with self._lock:
            self._runs -= 1
            if self._runs == 0:
                sys.setswitchinterval(self._saved)


switch_interval = _SwitchInterval()


async def execute(
    prep: Prepared,
    path: Path,
    *,
    progress: Any = None,
    resume: bool = False,
    hooks: Hooks | None = None,
) -> RunSummary:
    from moot import store
    from moot.store.writer import StoreWriter

    scenario = prep.scenario
    bus = Bus()
    # Models first: an unknown model or a missing extra or key fails before the DB exists.
    # One Model per name and settings, shared by every cell: its concurrency and rate
    # limits hold across the whole run.
    models: dict[tuple[str, str], Model] = {}
    cache_box: list[Any] = []
    if hooks is None and resume:
        hooks = resume_hooks(path)  # a fork or a replay goes on as one
    hooks = hooks or Hooks()
    cell_seats = [_seats(cell, models, bus, cache_box, hooks.make_api) for cell in prep.cells]
    only = hooks.episodes
    total = prep.total if only is None else len(only)

    conn, run_id, done = open_run(prep, path, resume, models, cell_seats, hooks.config)
    total -= len(done)
    carried = _load_memories(prep.cells, cell_seats, path, resume, prep.base)
    writer = StoreWriter(conn)
    bus.attach(writer)
    open_desks(cell_seats, path)  # people without a terminal of this run's take turns via the DB
    status = "failed"
    # Thousands of live episodes make the cyclic collector rescan the same long-lived
    # objects over and over (~12% of a 10k-episode run, bench/): move what exists now out
    # of its sight, and size the young generation to hold the episodes in flight (about
    # 115 tracked objects each, bench/), so that it is collected when garbage grows beyond them,
    # not while they start (which scanned all of them, 7% of a 10k x 500 ms run). The
    # happy path makes no cycles (bench/: 90 objects after 20,000 episodes).
    threshold = gc.get_threshold()
    gc.freeze()
    in_flight = max((min(c.scenario.concurrency, c.total) for c in prep.cells), default=0)
    gc.set_threshold(max(threshold[0], 50_000, GC_OBJECTS_PER_EPISODE * in_flight), *threshold[1:])
    # The store's writer thread shares the GIL with the event loop: when a timer fires while
    # the thread holds it, the loop waits up to the switch interval (5 ms by default) before
    # the next turn starts. 1 ms bounds that wait (bench/: 10,000 x 500 ms at 1.103-1.107 of
    # ideal against 1.108-1.111, alternated).
    switch_interval.start()
    t0 = time.perf_counter()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer.run)
            for entry in carried:  # the saved memory this run starts from, recorded with it
                await bus.publish(entry)
            if progress is not None:
                tg.start_soon(progress.run, bus.stats, total)
            stop = budget_check(scenario, bus)
            # Cells run one after another, each with the run's concurrency: per-cell
            # progress reads naturally, and a budget stops the grid where it is.
            for cell, seats in zip(prep.cells, cell_seats, strict=True):
                if stop is not None and stop():
                    break
                checks = cell.scenario.protocol.qualification if cell.protocol.name == "peer_review" else 0
                specs = episode_specs(
                    cell.questions, cell.scenario.dataset.both_orders, checks, start=cell.offset
                )
                todo = (s for s in specs if s.index not in done) if done else specs
                left = cell.total - sum(cell.offset <= i < cell.offset + cell.total for i in done)
                if only is not None:
                    todo = (s for s in todo if s.index in only)
                    left = sum(cell.offset <= i < cell.offset + cell.total for i in only - done)
                if hooks.spec is not None:
                    todo = map(hooks.spec, todo)
                if not left:
                    continue
                if hooks.wrap is not None:
                    seats = hooks.wrap(cell, seats, bus)
                if progress is not None and cell.name is not None:
                    progress.cell(cell.name, cell.position, len(prep.cells), left)
                engine = Engine(
                    cell.protocol.compile(), seats, bus,
                    concurrency=min(cell.scenario.concurrency, left), cell=cell.name,
                )  # fmt: skip
                await engine.run(todo, stop=stop)
            await bus.close()
            if progress is not None:
                progress.stop()
        status = "budget_spent" if stopped(scenario, bus) else "done"
    except anyio.get_cancelled_exc_class():
        status = "interrupted"  # Ctrl-C: the writer committed what it had (shielded)
        raise
    finally:
        switch_interval.end()
        gc.set_threshold(*threshold)
        gc.unfreeze()
        with anyio.CancelScope(shield=True):
            store.finish_run(conn, run_id, status, time.time())
    wall = time.perf_counter() - t0  # first episode started -> last row committed
    summary = summarize(path, wall)
    conn.close()
    return summary


def open_run(
    prep: Prepared,
    path: Path,
    resume: bool,
    models: dict[tuple[str, str], Model],
    cell_seats: list[dict[str, Any]],
    config: dict[str, Any] | None = None,
) -> tuple[sqlite3.Connection, str, set[int]]:
    """The run's database, for any executor: reopened to resume (finished episodes kept,
    the rest cleared), or made with the run's record (and a sweep's cells)."""
    from moot import store

    if resume:
        conn = store.connect(path)
        run_id, done = store.reopen_run(conn)
        return conn, run_id, done
    scenario = prep.scenario
    conn = store.connect(path, create=True)
    run_id = uuid.uuid4().hex
    store.create_run(
        conn,
        {
            "id": run_id,
            "name": scenario.name,
            "scenario_yaml": prep.scenario_text,
            "config": config_record(prep, cell_seats[0]) | (config or {}),
            "versions": versions(),
            "models": {m.name: m.api.describe() for m in models.values()},
            "started_at": time.time(),
        },
    )
    if scenario.sweep:
        store.create_cells(
            conn,
            [
                (c.name, c.position, c.params, c.scenario.model_dump(mode="json", exclude={"sweep"})
                 | {"prompts": prompts_used(c, seats)})
                for c, seats in zip(prep.cells, cell_seats, strict=True)
            ],
        )  # fmt: skip
    return conn, run_id, set()


def _seats(
    cell: CellPlan,
    models: dict[tuple[str, str], Model],
    bus: Bus,
    cache_box: list[Any],
    api: Callable[[str, Any], Any] | None = None,
) -> dict[str, ModelSeat]:
    """The cell's seats, each on its model; models are made once per name and settings."""
    from moot.agents.human import is_human

    scenario = cell.scenario
    seats = {}
    for spec in cell.protocol.seats:
        cfg = cell.seat_configs[spec.id]
        name = cfg.model or ""
        if is_human(name):  # a person: no model to make
            seats[spec.id] = human_seat(cell, spec, cfg, bus)
            continue
        settings = with_defaults(name, scenario.model_for(name))
        key = (name, repr(settings))
        if key not in models:
            # scripted: nothing to save; a replay calls nothing
            use_cache = scenario.cache and not is_scripted(name) and api is None
            if use_cache and not cache_box:
                from moot.models.cache import ResponseCache, default_path

                where = Path(scenario.cache_path).expanduser() if scenario.cache_path else default_path()
                cache_box.append(ResponseCache(where))
            models[key] = Model(name, (api or make_api)(name, settings), settings, bus, cache_box[0] if use_cache else None)
        seats[spec.id] = ModelSeat(
            spec.id,
            spec.role,
            models[key],
            temperature=cfg.temperature or 0.0,
            max_tokens=cfg.max_tokens,
            seed=(scenario.seed * 1_000_003 + zlib.crc32(spec.id.encode())) % 2**31,
            prompts=SeatPrompts(cfg.prompts.system, cfg.prompts.turn) if cfg.prompts else None,
            memory=Memory(cfg.memory.kind, cfg.memory.size) if cfg.memory else None,
        )
    return seats


def _load_memories(
    cells: list[CellPlan], cell_seats: list[dict[str, ModelSeat]], path: Path,
    resume: bool, base: Path | None,
) -> list[MemoryEntry]:
    """Fill the memories seats start with: on resume, what the run itself holds (entries
    of unfinished episodes were cleared with them); else a saved memory named by `load`,
    returned to be recorded in this run too."""
    loaded: list[MemoryEntry] = []
    for cell, seats in zip(cells, cell_seats, strict=True):
        for seat_id, seat in seats.items():
            cfg = cell.seat_configs[seat_id].memory
            if seat.memory is None or cfg is None:
                continue
            if resume:  # what this cell's finished episodes wrote (and what it started from)
                with RunReader(path) as reader:
                    rows = reader.memories(seat_id, (cell.offset, cell.offset + cell.total - 1))
                seat.memory.entries = [(q, c) for _, q, c, _ in rows]
            elif cfg.load:
                source = Path(cfg.load).expanduser()
                if not source.is_absolute() and base is not None:
                    source = base / source
                for kind, question, content, won in _saved_memory(source, seat_id):
                    seat.memory.add(question, content)
                    loaded.append(MemoryEntry(seat_id, None, kind, content, won, time.time(), str(source)))
    return loaded


def _saved_memory(path: Path, seat_id: str) -> list[tuple[str, str, str, bool | None]]:
    from moot import store

    store.upgrade(path)
    with RunReader(path) as reader:
        return reader.memories(seat_id)


def budget_check(scenario: Scenario, bus: Bus) -> Any:
    return (lambda: stopped(scenario, bus)) if scenario.budget else None


def stopped(scenario: Scenario, bus: Bus) -> bool:
    """This invocation's spending has reached the scenario's budget."""
    b = scenario.budget
    if b is None:
        return False
    s = bus.stats
    return bool(
        (b.max_cost is not None and s.cost >= b.max_cost)
        or (b.max_tokens is not None and s.tokens >= b.max_tokens)
    )


def config_record(prep: Prepared, seats: dict[str, ModelSeat]) -> dict[str, Any]:
    """The resolved scenario as stored: enough to resume the run, and the prompts used (a
    sweep's cells keep theirs in the cells table)."""
    return prep.scenario.model_dump(mode="json") | {
        "prompts": {} if prep.scenario.sweep else prompts_used(prep.cells[0], seats),
        "base": str(prep.base) if prep.base else None,
    }


def prompts_used(prep: CellPlan, seats: dict[str, ModelSeat]) -> dict[str, dict[str, dict]]:
    """The templates each seat speaks with, per phase: defaults and overrides alike, so the
    run records exactly what its models were asked (the filled prompts are in model_calls)."""
    out: dict[str, dict[str, dict]] = {}
    acts: list[tuple[str, str, str]] = [(p.name, p.kind, seat) for p in prep.protocol.compile().phases.values() for seat in p.seats]
    if any(p.best_of > 1 for p in prep.protocol.phases.values()):
        acts.append(("best_of", "select", "selector"))
    for phase, kind, seat in acts:
        if kind in ("aggregate", "score", "referee"):  # the engine's own phases: no prompt
            continue
        kind = "verdict" if kind == "qualify" else kind  # check questions are answered as a judge
        t = seats[seat].prompts.resolve(seats[seat].role, kind, phase)
        out.setdefault(seat, {})[phase] = {"system": t.system, "turn": t.turn}
    return out


def summarize(path: Path, wall_s: float) -> RunSummary:
    """The stored run's totals (a resumed run's earlier episodes too: the bus counted only
    this process's), its first failures and a sweep's cells."""
    with RunReader(path) as reader:
        t = reader.totals()
        errors = [
            f"episode {i}: {(e or '').splitlines()[0] if e else stop}" for i, stop, e in reader.failures(3)
        ]
        return RunSummary(**asdict(t), path=path, wall_s=wall_s, errors=errors, cells=reader.cell_results())


def run_scenario(
    scenario: Scenario,
    scenario_text: str = "",
    *,
    base: Path | None = None,
    out: str | Path | None = None,
    progress: Any = None,
) -> RunSummary:
    """Run a validated scenario to completion; the synchronous entry point of the library.

    Into an existing database made by the same scenario, the run resumes: finished episodes
    are kept, the rest run again."""
    return LocalExecutor().run(*plan(scenario, scenario_text, base=base, out=out), progress)


def plan(
    scenario: Scenario,
    scenario_text: str = "",
    *,
    base: Path | None = None,
    out: str | Path | None = None,
) -> tuple[Prepared, Path, bool]:
    """What `run_scenario` will run, where, and whether it resumes: for callers that drive
    `execute` themselves (the TUI runs it in its own event loop)."""
    prep = prepare(scenario, scenario_text, base)
    return (prep, *locate(prep, out))


def locate(prep: Prepared, out: str | Path | None = None) -> tuple[Path, bool]:
    """Where a prepared run is stored, and whether it resumes there: a database made by the
    same scenario is gone on with; one made by another is refused."""
    path = output_path(prep.scenario, out, allow_existing=True)
    resume = path.exists()
    if resume and stored_scenario(path)[0].model_dump() != prep.scenario.model_dump():
        raise ConfigError(
            f"{path}: made by a different scenario; resume it with --resume or choose another --out"
        )
    return path, resume


class Executor(Interface):
    """Where a prepared run's episodes are played: this process, or a Ray cluster
    (`moot.executors.ray_exec.RayExecutor`). Both write the same database, and either
    resumes what the other began."""

    def run(self, prep: Prepared, path: Path, resume: bool, progress: Any = None) -> RunSummary: ...


class LocalExecutor:
    """The episodes in this process, on one event loop."""

    def run(self, prep: Prepared, path: Path, resume: bool, progress: Any = None) -> RunSummary:
        return _run(prep, path, resume, progress)


def resume_run(path: str | Path, *, progress: Any = None) -> RunSummary:
    """Continue a run that was interrupted or killed, from its database alone."""
    return LocalExecutor().run(*plan_resume(path), progress)


def plan_resume(path: str | Path) -> tuple[Prepared, Path, bool]:
    p = Path(path)
    scenario, text, base = stored_scenario(p)
    return prepare(scenario, text, base), p, True


def _run(prep: Prepared, path: Path, resume: bool, progress: Any) -> RunSummary:
    try:
        return aio.run(lambda: execute(prep, path, progress=progress, resume=resume))
    except KeyboardInterrupt:
        raise Interrupted(path) from None


def human_seat(cell: CellPlan, spec: Any, cfg: SeatConfig, bus: Bus) -> Any:
    """A person's seat, with the scenario's limits for their turns."""
    from moot.agents.human import HumanSeat, TurnRules

    p = cell.scenario.protocol
    rules = TurnRules(
        cfg.time_limit, p.char_limit, p.quote_limit,
        may_end=spec.role == "judge" and cell.protocol.terms.stop_threshold is not None,
    )  # fmt: skip
    return HumanSeat(spec.id, spec.role, bus, rules, name=cfg.model or "human", title=cell.scenario.name,
                     join=cfg.join)  # fmt: skip


def open_desks(cell_seats: list[dict[str, Any]], path: Path) -> None:
    from moot.agents.desk import attach_store

    attach_store([s for seats in cell_seats for s in seats.values()], path)
