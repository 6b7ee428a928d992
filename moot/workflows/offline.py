"""Offline judging: a person judges stored transcripts, round by round, as a new judge.

`moot judge RUN.db --as NAME` puts each finished episode of a run (or of an imported
published dataset) in front of a person, in the judge seat's view: only the messages that
seat could read (their audience), the passage only if the seat saw it, and not the original
judge's verdicts (nor the messages of the protocol's verdict phases, which state them; an
imported judge's feedback is part of the exchange and stays). After each round the person
gives a probability per answer.

Their verdicts are stored in the run's own `verdicts` table under the judge label
`human:NAME` (model `human`, method `human`), beside the original judge's, so an analysis
compares judges on the same transcripts; each verdict's time is a `model_calls` row (model
`human`, latency_s the time the person took). This is the one command that opens a run
database for writing after the run: it only adds rows. It is resumable: rounds already
judged under the label are skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from moot.agents.human import HumanCallRecord, TurnAnswer, TurnRequest, judgement_of, message_record, verdict_text
from moot.errors import ConfigError
from moot.store.reader import RunReader
from moot.store.writer import StoreWriter
from moot.transcript import events
from moot.transcript.events import ModelCall, Verdict

__all__ = ["OfflineJudging"]

def ruling_phases(path: Path) -> set[str]:
    """The run's verdict phases (their messages are rulings, not part of the exchange), from
    its stored scenario; none for a database without one (an import: its judges' rulings
    are verdict rows only, and their feedback is part of the exchange)."""
    from moot.protocols import registry
    from moot.store.transcripts import stored_scenario

    try:
        cells = stored_scenario(path)[0].cells()
    except Exception:
        return set()
    return {
        name for cell in cells
        for name, phase in registry.build(cell.scenario).compile().phases.items()
        if phase.kind == "verdict"
    }  # fmt: skip


@dataclass(slots=True)
class OfflineTurn:
    request: TurnRequest
    correct: int | None


class OfflineJudging:
    """One person judging one run database, episode after episode, round after round."""

    def __init__(self, path: str | Path, name: str, *, seat: str | None = None,
                 time_limit: float | None = None, episodes: list[int] | None = None,
                 rulings: set[str] | None = None) -> None:  # fmt: skip
        from moot import store

        if not name or any(c.isspace() for c in name):
            raise ConfigError(f"--as {name!r}: give a name without spaces")
        self.path = Path(path)
        self.label = f"human:{name}"
        self.seat = seat
        self.time_limit = time_limit
        self.conn = store.connect(self.path)  # migrated; read-write: verdicts are added
        self.reader = RunReader(self.path)
        self.rulings = ruling_phases(self.path) if rulings is None else rulings
        done = self.reader.done_ids()
        # `episodes`: only these, in this order (a web study's assignment, moot.web)
        self.episodes = done if episodes is None else [e for e in episodes if e in set(done)]
        if not self.episodes:
            raise ConfigError(f"{self.path}: no finished episodes to judge")
        for e in sorted(self.reader.with_images() & set(self.episodes)):
            ep = self.reader.episode(e)
            if ep is not None and ep.seats.get(self._judge_seat(ep.seats), {}).get("sees_source"):
                self.close()
                raise ConfigError(
                    f"{self.path}: episode {e} shows its judge images, which a person's view cannot show yet"
                )
        self.judged = 0  # verdicts given in this session
        self._queue: list[OfflineTurn] = []
        self._position = 0

    def close(self) -> None:
        self.reader.close()
        self.conn.close()

    def _judge_seat(self, seats: dict[str, Any]) -> str:
        if self.seat is not None:
            if self.seat not in seats:
                raise ConfigError(f"--seat {self.seat}: no such seat (the run has: {', '.join(sorted(seats))})")
            return self.seat
        judges = [s for s, info in seats.items() if info.get("role") == "judge"]
        if not judges:
            raise ConfigError(f"no judge seat in this run; name one with --seat ({', '.join(sorted(seats))})")
        return judges[0]

    def remaining(self) -> int:
        """Episodes not fully judged yet (this one included)."""
        return len(self.episodes) - self._position

    def _turns(self, episode: int) -> list[OfflineTurn]:
        ep = self.reader.episode(episode)
        assert ep is not None  # one of the run's finished episodes
        seat = self._judge_seat(ep.seats)
        info = ep.seats.get(seat, {})
        visible = [
            message_record(replace(m, call_seq=None))
            for m in events.visible(self.reader.messages(episode), seat) if m.phase not in self.rulings
        ]  # fmt: skip
        # A round is judged once its last word from another seat is in: the judge seat's
        # own words after that (a question between rounds) open the next step.
        cutoff: dict[int, int] = {}
        for m in visible:
            if m["seat"] != seat:
                cutoff[m["round"]] = max(cutoff.get(m["round"], -1), m["seq"])
        rounds = sorted(cutoff) or [1]
        done = self.reader.rounds_judged(episode, self.label)
        out = []
        for rnd in rounds:
            if rnd in done:
                continue
            request = TurnRequest(
                seat=self.label, role="judge", episode=episode, kind="verdict", phase="offline",
                round=rnd, rounds=rounds[-1], question=ep.question, answers=list(ep.answers), side=None,
                source=ep.source if info.get("sees_source") else None,
                messages=[m for m in visible if m["seq"] <= cutoff.get(rnd, -1)], time_limit=self.time_limit,
                title=f"offline judging as {self.label}",
            )  # fmt: skip
            out.append(OfflineTurn(request, ep.correct))
        return out

    def next(self) -> TurnRequest | None:
        """The next round to judge, or None when every episode is judged."""
        while not self._queue:
            if self._position >= len(self.episodes):
                return None
            self._queue = self._turns(self.episodes[self._position])
            if not self._queue:
                self._position += 1
        return self._queue[0].request

    def record(self, answer: TurnAnswer) -> None:
        """Store the person's verdict on the current round (and its time), then move on."""
        turn = self._queue.pop(0)
        r = turn.request
        j = judgement_of(answer, len(r.answers))
        now = time.time()
        shown = answer.shown_at or now
        answered = answer.answered_at or now
        text = verdict_text(j.probabilities, tuple("ABCDEFGH"[: len(r.answers)]))
        seq = self.reader.next_call_seq(r.episode)
        StoreWriter(self.conn).write_now([
            ModelCall(
                r.episode, seq, self.label, "judge", "human",
                HumanCallRecord(  # type: ignore[arg-type]
                    [{"role": "system", "content": f"{self.label}: offline judging"},
                     {"role": "user", "content": r.describe()}],
                    {"kind": "verdict", "time_limit": r.time_limit, "timed_out": answer.timed_out, "offline": True,
                     **({"reason": answer.content} if answer.content else {})},
                ),
                text, 0, 0, 0.0, max(0.0, answered - shown), 1, shown,
                "time limit reached" if answer.timed_out else None,
            ),
            Verdict(
                r.episode, self.label, "human", r.round, j.choice, j.probabilities,
                None if j.choice is None or turn.correct is None else j.choice == turn.correct,
                j.method, j.parse_status, text, seq, answered,
            ),
        ])  # fmt: skip
        self.judged += 1
        if not self._queue:
            self._position += 1

