"""What a live view knows about a run, kept up to date by polling the database.

The run's process writes; this only reads what was appended since the last poll (rowids
only grow), so a poll costs the same on the millionth message as on the first. The totals
are counted once at attach (off the UI thread) and then carried forward by the polls."""

from __future__ import annotations

import time
from array import array
from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass, field

from moot.store.reader import RunReader
from moot.transcript.events import Totals, log_score


@dataclass(slots=True)
class Changes:
    """What one poll found."""

    new_episodes: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    messages: dict[int, int] = field(default_factory=dict)  # episode -> new messages
    verdicts: set[int] = field(default_factory=set)  # episodes with new verdicts

    def __bool__(self) -> bool:
        return bool(self.new_episodes or self.finished or self.messages or self.verdicts)


class LiveState:
    def __init__(self, reader: RunReader) -> None:
        self.reader = reader
        self.ids = array("q")  # every episode id, sorted
        self.running: set[int] = set()
        self.totals = Totals()
        self.last = {"messages": 0, "model_calls": 0, "verdicts": 0}
        self.max_episode = -1
        self.run_status = "?"
        self._rate: deque[tuple[float, int]] = deque(maxlen=50)

    def load(self) -> None:
        """Count what is there already (seconds on a huge run: call it from a worker thread)."""
        snap = self.reader.snapshot()
        self.ids = snap.ids
        self.max_episode = snap.ids[-1] if snap.ids else -1
        self.running = snap.running
        self.last = snap.last
        self.totals = snap.totals
        self.run_status = snap.status or "?"
        self._rate.append((time.monotonic(), snap.totals.model_calls))

    def _add_episode(self, eid: int, status: str, changes: Changes) -> None:
        i = bisect_left(self.ids, eid)
        if i < len(self.ids) and self.ids[i] == eid:
            return
        insort(self.ids, eid)
        self.max_episode = max(self.max_episode, eid)
        self._count(status, +1)
        if status == "running":
            self.running.add(eid)
        else:
            changes.finished.append(eid)
        changes.new_episodes.append(eid)

    def _count(self, status: str, n: int) -> None:
        t = self.totals
        if status == "running":
            t.episodes += n
        elif status == "done":
            t.done += n
            t.episodes += n
        elif status == "failed":
            t.failed += n
            t.episodes += n

    def known(self, eid: int) -> bool:
        i = bisect_left(self.ids, eid)
        return i < len(self.ids) and self.ids[i] == eid

    def poll(self) -> Changes:
        r = self.reader
        ch = Changes()
        t = self.totals
        for eid, status in r.new_episodes(self.max_episode):
            self._add_episode(eid, status, ch)
        rows = r.new_messages(self.last["messages"])
        if rows:
            self.last["messages"] = rows[-1][0]
            t.messages += len(rows)
            unknown = set()
            for _, eid, _ in rows:
                ch.messages[eid] = ch.messages.get(eid, 0) + 1
                if not self.known(eid):
                    unknown.add(eid)
            for eid, status in r.statuses(sorted(unknown)).items():  # re-run (smaller) ids
                self._add_episode(eid, status, ch)
        calls = r.new_calls(self.last["model_calls"])
        if calls:
            self.last["model_calls"] = calls[-1][0]
            t.model_calls += len(calls)
            t.tokens += sum(c[1] for c in calls)
            t.cost += sum(c[2] for c in calls)
        verdicts = r.new_verdicts(self.last["verdicts"])
        if verdicts:
            self.last["verdicts"] = verdicts[-1][0]
            ch.verdicts = {v[1] for v in verdicts}
        if self.running:
            for eid, status in r.statuses(sorted(self.running)).items():
                if status != "running":
                    self.running.discard(eid)
                    self._count("running", -1)
                    self._count(status, +1)
                    ch.finished.append(eid)
        if ch.finished:
            self._count_verdicts(ch.finished)
        self.run_status = r.status() or "?"
        self._rate.append((time.monotonic(), t.model_calls))
        return ch

    def _count_verdicts(self, episodes: list[int]) -> None:
        rows = self.reader.rulings(episodes)
        t = self.totals
        t.verdicts += len(rows)
        t.correct += sum(1 for c, _, _ in rows if c)
        t.invalid += sum(1 for _, status, _ in rows if status != "ok")
        scores = [log_score(p) for _, _, p in rows if p is not None]
        t.scored += len(scores)
        t.log_score += sum(s for s in scores if s is not None)

    def calls_per_s(self, window: float = 2.0) -> float:
        if len(self._rate) < 2:
            return 0.0
        now, calls = self._rate[-1]
        then, before = next((r for r in self._rate if now - r[0] <= window), self._rate[-1])
        dt = now - then
        return (calls - before) / dt if dt > 0 else 0.0
