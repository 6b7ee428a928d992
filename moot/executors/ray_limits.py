"""A model's concurrency and rate limits, held once for a whole Ray cluster.

One actor per limited model (named after the run and the model), on no CPU of its own: every
worker's calls to that model take a slot from it, and wait on its token buckets, so
`max_concurrency: 16` means 16 calls in flight across the cluster, not 16 per worker, and
`rpm`/`tpm` are the whole run's. The buckets are the gateway's own `RateLimiter`.

A slot costs one round trip to the actor before the call (about 1 ms on one machine); it is
given back without waiting. Slots are counted per holder (one chunk of episodes): when a
worker dies holding some, the driver gives them all back with `release_all`.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from contextvars import ContextVar
from typing import Any

from moot.models.gateway import RateLimiter


class Limits:
    """The actor's class (made remote by the executor, so this module imports without Ray)."""

    def __init__(self, max_concurrency: int | None, rpm: float | None, tpm: float | None) -> None:
        self.capacity = max_concurrency
        self.in_use = 0
        self.peak = 0
        self.held: Counter[str] = Counter()
        self.retired: set[str] = set()  # holders whose worker is gone: nothing more for them
        self.rate = RateLimiter(rpm, tpm) if rpm or tpm else None
        self._freed: asyncio.Condition | None = None

    def _cond(self) -> asyncio.Condition:
        if self._freed is None:  # made on the actor's event loop
            self._freed = asyncio.Condition()
        return self._freed

    async def acquire(self, holder: str) -> None:
        cond = self._cond()
        async with cond:
            while self.capacity is not None and self.in_use >= self.capacity:
                if holder in self.retired:
                    return
                await cond.wait()
            if holder in self.retired:  # a dead worker's request, granted too late
                cond.notify()
                return
            self.in_use += 1
            self.peak = max(self.peak, self.in_use)
            self.held[holder] += 1

    async def release(self, holder: str, n: int = 1) -> None:
        n = min(n, self.held[holder])
        if not n:
            return
        cond = self._cond()
        async with cond:
            self.held[holder] -= n
            if not self.held[holder]:
                del self.held[holder]
            self.in_use -= n
            cond.notify(n)

    async def release_all(self, holder: str) -> None:
        """The holder is done (or its worker died): its slots are free, and its requests
        still waiting here will get none."""
        self.retired.add(holder)
        await self.release(holder, self.held.get(holder, 0))
        cond = self._cond()
        async with cond:
            cond.notify_all()

    async def rate_acquire(self) -> None:
        if self.rate is not None:
            await self.rate.acquire()

    async def spend(self, tokens: int) -> None:
        if self.rate is not None:
            self.rate.spend(tokens)

    async def stats(self) -> dict[str, Any]:
        return {"in_use": self.in_use, "peak": self.peak, "holders": len(self.held)}


class SharedSlots:
    """A worker's side of the concurrency limit: `async with` takes a slot from the actor.

    Round trips are saved under load: a finished call hands its slot straight to a call
    waiting in the same worker (up to `reuse` times, then the slot goes back to the actor,
    where the other workers wait their turn), and the worker asks the actor only for slots
    beyond those it will get that way, a few at a time. A call that finds no one waiting
    returns its slot at once, so an idle worker holds nothing."""

    def __init__(self, actor: Any, holder: str, reuse: int = 16, asks: int = 4) -> None:
        self.actor = actor
        self.holder = holder
        self.reuse = reuse
        self.asks = asks  # requests in flight at once: a burst of calls is not a burst of asks
        self.held = 0  # slots in use by this worker's calls
        self.asked = 0  # requests the actor has not granted yet
        self._asking: set[asyncio.Future[None]] = set()  # requests under way
        self.round_trips = 0
        self._waiting: deque[asyncio.Future[int]] = deque()
        self._uses: ContextVar[int] = ContextVar("slot_uses", default=0)

    async def __aenter__(self) -> None:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append(fut)
        self._ask_if_short()
        try:
            uses = await fut
        except BaseException:
            if fut.done() and not fut.cancelled():  # granted as we were cancelled: pass it on
                self._give(fut.result())
            elif fut in self._waiting:
                self._waiting.remove(fut)
            raise
        self._uses.set(uses)

    def _ask_if_short(self) -> None:
        """Ask the actor for a slot when the waiting calls outnumber the slots that will
        reach them here (those in use, and those already asked for)."""
        if len(self._waiting) > self.held + self.asked and self.asked < self.asks:
            self.asked += 1
            self.round_trips += 1
            task = asyncio.ensure_future(self._ask())
            self._asking.add(task)  # held: the loop keeps only a weak reference to a task
            task.add_done_callback(self._asking.discard)

    async def _ask(self) -> None:
        try:
            await self.actor.acquire.remote(self.holder)
        finally:
            self.asked -= 1
        self.held += 1
        self._give(0)
        self._ask_if_short()

    def _give(self, uses: int) -> None:
        """A slot is free in this worker: to the next waiting call, or back to the actor."""
        while self._waiting and uses < self.reuse:
            fut = self._waiting.popleft()
            if not fut.done():
                fut.set_result(uses + 1)
                return
        self.held -= 1
        self.round_trips += 1
        self.actor.release.remote(self.holder)  # no need to wait for the answer
        self._ask_if_short()  # its `reuse` was spent while calls still wait: queue again

    async def __aexit__(self, *exc: object) -> None:
        self._give(self._uses.get())


class SharedRate:
    """A worker's side of the rate limits (the gateway's RateLimiter interface)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def acquire(self) -> None:
        await self.actor.rate_acquire.remote()

    def spend(self, tokens: int) -> None:
        self.actor.spend.remote(tokens)
