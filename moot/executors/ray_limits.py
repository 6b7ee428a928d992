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
from collections import Counter
from typing import Any

from moot.models.gateway import RateLimiter


class Limits:
    """The actor's class (made remote by the executor, so this module imports without Ray)."""

    def __init__(self, max_concurrency: int | None, rpm: float | None, tpm: float | None) -> None:
        self.capacity = max_concurrency
        self.in_use = 0
        self.peak = 0
        self.held: Counter[str] = Counter()
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
                await cond.wait()
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
        await self.release(holder, self.held.get(holder, 0))

    async def rate_acquire(self) -> None:
        if self.rate is not None:
            await self.rate.acquire()

    async def spend(self, tokens: int) -> None:
        if self.rate is not None:
            self.rate.spend(tokens)

    async def stats(self) -> dict[str, Any]:
        return {"in_use": self.in_use, "peak": self.peak, "holders": len(self.held)}


class SharedSlots:
    """A worker's side of the concurrency limit: `async with` takes a slot from the actor."""

    def __init__(self, actor: Any, holder: str) -> None:
        self.actor = actor
        self.holder = holder

    async def __aenter__(self) -> None:
        await self.actor.acquire.remote(self.holder)

    async def __aexit__(self, *exc: object) -> None:
        self.actor.release.remote(self.holder)  # no need to wait for the answer


class SharedRate:
    """A worker's side of the rate limits (the gateway's RateLimiter interface)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def acquire(self) -> None:
        await self.actor.rate_acquire.remote()

    def spend(self, tokens: int) -> None:
        self.actor.spend.remote(tokens)
