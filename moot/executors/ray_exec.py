"""Running one study on a Ray cluster, into one run database.

The driver (where `moot run --executor ray` is typed) owns the run database, as in a local
run: it creates it (or reopens it to resume, keeping finished episodes), splits the episodes
still to run into chunks, and keeps one Ray task per CPU of the cluster busy. Each task
(moot.executors.ray_worker) runs the ordinary Engine over its chunk on its own Bus and
streams its finished episodes back as shards: small in-memory SQLite databases of the run
schema, written by the run's own StoreWriter. The driver merges each shard in one
transaction (moot.store.merge).

Why shards rather than events streamed to one writer: a worker turns its events into rows
itself (the costly part of writing, in Python), in parallel with the other workers, and the
driver only runs a few INSERT ... SELECT statements per shard, in C; a shard holds only
finished episodes, so what reaches the run is always whole, and the same merge is `moot
merge` for shard files. Shards travel as task results through Ray's object store: workers
need no shared file system, and no dataset files (the episodes are sent to them).

A worker flushes whenever an episode finishes (while it builds one shard, more episodes
finish and go into the next one), so a worker that dies loses only the episodes it was
running: the driver sends the rest of its chunk to another worker, up to `attempts` times.

Model limits are cluster-wide: a limited model's concurrency and rpm/tpm live in one actor
(moot.executors.ray_limits). A local (llama.cpp) model keeps its limit per process: each
worker has its own context.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from moot.agents.model_seat import ModelSeat
from moot.engine import EpisodeSpec
from moot.engine.bus import Bus
from moot.errors import ConfigError
from moot.executors.ray_worker import ChunkJob, run_chunk
from moot.models.gateway import Model
from moot.scenario.model import Scenario
from moot.store.merge import merge_shard
from moot.workflows import aio
from moot.workflows.run import (
    CellPlan,
    Interrupted,
    Prepared,
    RunSummary,
    _seats,
    budget_check,
    episode_specs,
    open_run,
    plan,
    plan_resume,
    summarize,
)

log = logging.getLogger("moot.ray")


@dataclass(slots=True)
class RayOptions:
    address: str | None = None  # None: the cluster this process is connected to, else a new local one
    chunk: int | None = None  # episodes per task; None: about four chunks per CPU
    workers: int | None = None  # tasks at once; None: the cluster's CPUs
    attempts: int = 3  # tries per chunk when workers die under it
    flush: float = 0.0  # least seconds between a worker's shards (0: as episodes finish)


def run_scenario_ray(
    scenario: Scenario,
    scenario_text: str = "",
    *,
    base: Path | None = None,
    out: str | Path | None = None,
    progress: Any = None,
    options: RayOptions | None = None,
) -> RunSummary:
    """`run_scenario` on a Ray cluster: the same database, resumable by either executor."""
    return RayExecutor(options).run(*plan(scenario, scenario_text, base=base, out=out), progress)


def resume_run_ray(
    path: str | Path, *, progress: Any = None, options: RayOptions | None = None
) -> RunSummary:
    """Continue a run (made by either executor) on a Ray cluster."""
    return RayExecutor(options).run(*plan_resume(path), progress)


class RayExecutor:
    """A prepared run's episodes on a Ray cluster (`moot.workflows.run.Executor`)."""

    def __init__(self, options: RayOptions | None = None) -> None:
        self.options = options or RayOptions()

    def run(self, prep: Prepared, path: Path, resume: bool, progress: Any = None) -> RunSummary:
        return _run(prep, path, progress, resume, self.options)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'moot[ray]'") from None
    return ray


def _run(prep: Prepared, path: Path, progress: Any, resume: bool, options: RayOptions) -> RunSummary:
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        if options.address is None:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token file for a private cluster
        ray.init(address=options.address, log_to_driver=False, include_dashboard=False)
        started = True
    try:
        return aio.run(lambda: execute_ray(prep, path, progress=progress, resume=resume, options=options))
    except KeyboardInterrupt:
        raise Interrupted(path) from None
    finally:
        if started:
            ray.shutdown()


def _shared(key: tuple[str, str], model: Model) -> bool:
    """Limits held cluster-wide: a local model's stay with each process's own context."""
    s = model.settings
    return not key[0].startswith("local/") and bool(s.max_concurrency or s.rpm or s.tpm)


def _first(group: BaseExceptionGroup) -> BaseException:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


async def execute_ray(
    prep: Prepared, path: Path, *, progress: Any = None, resume: bool = False, options: RayOptions
) -> RunSummary:
    from moot import store
    from moot.executors.ray_limits import Limits

    ray = _import_ray()
    scenario = prep.scenario
    bus = Bus()  # the driver's models are built to check them (and describe them); no calls
    models: dict[tuple[str, str], Model] = {}
    cell_seats = [_seats(cell, models, bus, []) for cell in prep.cells]
    for seats in cell_seats:
        for seat_id, seat in seats.items():
            if getattr(seat, "memory", None) is not None:
                raise ConfigError(
                    f"seats.{seat_id}.memory: episodes that share a memory run one at a time, "
                    "in order; run them with the local executor"
                )
            if not isinstance(seat, ModelSeat):
                raise ConfigError(f"seats.{seat_id}: a person's seat needs the local executor (moot run --tui)")
    conn, run_id, done = open_run(prep, path, resume, models, cell_seats)

    stats = bus.stats
    actors = {
        key: ray.remote(Limits)
        .options(name=f"moot-{run_id[:12]}-{i}", num_cpus=0, max_concurrency=100_000)
        .remote(m.settings.max_concurrency, m.settings.rpm, m.settings.tpm)
        for i, (key, m) in enumerate(models.items())
        if _shared(key, m)
    }
    workers = options.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    chunks: list[tuple[CellPlan, list[EpisodeSpec]]] = []
    todo_total = 0
    for cell in prep.cells:
        checks = cell.scenario.protocol.qualification if cell.protocol.name == "peer_review" else 0
        specs = [
            s for s in episode_specs(cell.questions, cell.scenario.dataset.both_orders, checks, start=cell.offset)
            if s.index not in done
        ]
        todo_total += len(specs)
        chunks.append((cell, specs))
    # A task runs its share of the run's concurrency, so a chunk holds at least that many
    # episodes (fewer would leave calls unmade while waiting on a model); beyond that about
    # four chunks per worker, so a slow worker holds back little at the end.
    share = max(1, math.ceil(scenario.concurrency / workers))
    size = options.chunk or max(share, min(500, math.ceil(todo_total / (workers * 4))))
    pieces = [(cell, specs[i : i + size]) for cell, specs in chunks for i in range(0, len(specs), size)]

    remote_chunk = ray.remote(run_chunk).options(max_retries=0, name="moot-chunk")
    slots = anyio.Semaphore(workers)
    stop = budget_check(scenario, bus)
    running: set[Any] = set()
    status = "failed"

    async def run_piece(cell: CellPlan, specs: list[EpisodeSpec]) -> None:
        left = {s.index: s for s in specs}
        attempt = 0
        async with slots:
            while left and not (stop is not None and stop()):
                attempt += 1
                holder = uuid.uuid4().hex
                job = ChunkJob(
                    cell.scenario.model_dump(mode="json"), cell.name, list(left.values()),
                    max(1, math.ceil(cell.scenario.concurrency / workers)), holder,
                    dict(actors), options.flush,
                )  # fmt: skip
                gen = remote_chunk.remote(job)
                running.add(gen)
                try:
                    async for ref in gen:
                        ids, shard = await ref
                        stats.add(merge_shard(conn, shard))  # on this loop: one at a time
                        for i in ids:
                            left.pop(i, None)
                    if left:  # cannot happen (every episode ends, done or failed): never lose one
                        log.warning("a chunk ended with %d episodes unreported; they run again", len(left))
                    if attempt >= options.attempts:
                        break
                except ray.exceptions.RayTaskError as exc:
                    # the code failed, not the worker: another try would fail the same way
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, ConfigError):  # e.g. a key the worker's machine lacks
                        raise ConfigError(f"on a Ray worker: {cause}") from None
                    raise RuntimeError(f"a worker failed: {exc}") from None
                except ray.exceptions.RayError as exc:
                    if attempt >= options.attempts:
                        raise RuntimeError(
                            f"{len(left)} episodes lost {attempt} workers in a row: {exc}"
                        ) from None
                    log.warning(
                        "a worker died (%s); %d of its episodes run again elsewhere",
                        type(exc).__name__, len(left),
                    )
                finally:
                    running.discard(gen)
                    for actor in actors.values():
                        actor.release_all.remote(holder)

    t0 = time.perf_counter()
    try:
        async with anyio.create_task_group() as outer:
            if progress is not None:
                outer.start_soon(progress.run, stats, todo_total)
            async with anyio.create_task_group() as tg:
                for cell, specs in pieces:
                    tg.start_soon(run_piece, cell, specs)
            if progress is not None:
                progress.stop()
        status = "budget_spent" if stop is not None and stop() else "done"
    except anyio.get_cancelled_exc_class():
        status = "interrupted"
        raise
    except BaseExceptionGroup as group:  # one chunk's failure ends the run: say which
        raise _first(group) from None
    finally:
        for gen in list(running):
            try:
                ray.cancel(gen, force=True)
            except Exception:
                pass
        for actor in actors.values():
            ray.kill(actor)
        with anyio.CancelScope(shield=True):
            store.finish_run(conn, run_id, status, time.time())
    summary = summarize(path, time.perf_counter() - t0)
    conn.close()
    return summary
