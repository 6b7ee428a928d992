"""A Ray worker's side of a run: one chunk of episodes through the ordinary engine, its
finished episodes streamed back to the driver as shards (moot.executors.ray_exec).

The task is a generator: the engine runs on its own event loop in a thread, and each shard
(the ids of the episodes in it, and a serialized SQLite database of the run schema written by
the run's own StoreWriter) is yielded as soon as it is cut, so the driver merges it while the
rest of the chunk runs. Episodes are cut as they finish (while one shard is written, in a
thread, more finish and go into the next), so a worker that dies loses only the episodes it
was running. This module imports without Ray: the driver makes `run_chunk` a remote task.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

import anyio

from moot.engine import Engine, EpisodeSpec
from moot.engine.bus import Bus
from moot.models.gateway import Model
from moot.scenario.model import Scenario
from moot.store.merge import empty_shard
from moot.transcript.events import EpisodeFinished, Event
from moot.workflows import aio
from moot.workflows.run import CellPlan, _seats


@dataclass(slots=True)
class ChunkJob:
    """What one task needs: the cell's scenario and seats' settings, its episodes."""

    scenario: dict[str, Any]
    cell: str | None
    specs: list[EpisodeSpec]
    concurrency: int
    holder: str
    limits: dict[tuple[str, str], Any] = field(default_factory=dict)  # model key -> actor
    flush: float = 0.0


class ShardSink:
    """A bus sink that keeps each episode's events until it finishes, then hands the
    finished episodes over as shards: nothing half-done ever leaves the worker."""

    def __init__(self, out: queue.Queue, flush: float) -> None:
        self.out = out
        self.flush = flush
        self.open: dict[int, list[Event]] = {}
        self.finished: list[Event] = []
        self.ids: list[int] = []
        self._ready = anyio.Event()
        self._closed = False
        self._template = _template()

    def accept(self, e: Event) -> bool:
        episode = getattr(e, "episode", None)
        if episode is None:  # not an episode's record: nothing the store writes
            return False
        self.open.setdefault(episode, []).append(e)
        if type(e) is EpisodeFinished:
            self.finished += self.open.pop(episode)
            self.ids.append(episode)
            self._ready.set()
        return False

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready = anyio.Event()
            if self.ids:
                events, self.finished = self.finished, []
                ids, self.ids = self.ids, []
                # in a thread, as the local writer does: the loop keeps making calls meanwhile
                self.out.put((ids, await anyio.to_thread.run_sync(self._shard, events)))
            if self._closed and not self.ids:  # episodes may finish while a shard is cut
                return
            await anyio.sleep(self.flush)

    def _shard(self, events: list[Event]) -> bytes:
        from moot.store.merge import shard_of

        return shard_of(self._template, events)


_TEMPLATE: bytes | None = None


def _template() -> bytes:
    global _TEMPLATE
    if _TEMPLATE is None:
        conn = empty_shard()
        _TEMPLATE = conn.serialize()
        conn.close()
    return _TEMPLATE


_END = object()


def run_chunk(job: ChunkJob) -> Any:
    """The task: a generator of shards (episode ids, serialized database). The engine runs
    on its own event loop in a thread, so shards leave as soon as they are cut."""
    out: queue.Queue = queue.Queue()
    _size_llama_threads()

    def loop() -> None:
        try:
            aio.run(_chunk, job, out)
            out.put(_END)
        except BaseException as exc:  # raised in the task, where Ray reports it
            out.put(exc)

    thread = threading.Thread(target=loop, name="moot-chunk", daemon=True)
    thread.start()
    while (item := out.get()) is not _END:
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()


def _size_llama_threads() -> None:
    """Local models in this worker get as many llama.cpp threads as the CPUs Ray gave the
    task, not one per core of the node: copies in several workers would fight for them."""
    try:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # not in a Ray task: leave the default
        return
    if cpus:
        os.environ["MOOT_LLAMA_THREADS"] = str(max(1, round(cpus)))


async def _chunk(job: ChunkJob, out: queue.Queue) -> None:
    from moot.executors.ray_limits import SharedRate, SharedSlots
    from moot.protocols import registry

    scenario = Scenario.model_validate(job.scenario, context={"cell": True})
    protocol = registry.build(scenario)
    cell = CellPlan(
        job.cell, 0, {}, scenario, protocol, [],
        {s.id: scenario.seat(s.id, s.role) for s in protocol.seats}, 0,
    )  # fmt: skip
    bus = Bus()
    models: dict[tuple[str, str], Model] = {}
    seats = _seats(cell, models, bus, [])
    for key, model in models.items():
        actor = job.limits.get(key)
        if actor is not None:
            s = model.settings
            model.share_limits(
                SharedSlots(actor, job.holder) if s.max_concurrency else None,
                SharedRate(actor) if s.rpm or s.tpm else None,
            )
    sink = ShardSink(out, job.flush)
    bus.attach(sink)
    engine = Engine(
        protocol.compile(), seats, bus, concurrency=min(job.concurrency, len(job.specs)), cell=job.cell
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(sink.run)
        await engine.run(job.specs)
        await bus.close()
