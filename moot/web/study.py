"""A study over one run database: what the web pages ask and what they record, with no HTTP
in it (moot.web.app is the veneer). Blocking calls: the app runs them in worker threads.

- Offline judging: a participant's episodes come one at a time from the assignment rules
  (moot.store.study.StudyTables.assign_next); each round is judged through
  `moot.workflows.offline.OfflineJudging`, so their verdicts are judge `human:ID` rows beside
  the models' and every verdict has its `model_calls` row, exactly as `moot judge` writes them.
- Live seats: a participant given a seat (`--seat judge`) takes that seat's turns from the
  run's `human_turns` (moot.agents.web_desk), which `moot run` writes for seats marked
  `join: true` (or any person's seat of a run without `--tui`).

Writes go one at a time (`_write`): a verdict and its call take the episode's next call
number, which two judges of one episode must not both take.
"""

from __future__ import annotations

import json
import math
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moot.agents.human import SLACK_S, TurnAnswer, TurnRequest
from moot.errors import ConfigError
from moot.store.reader import RunReader, check_database
from moot.store.study import Participant, StudyTables, digest
from moot.web.sessions import SessionPool
from moot.workflows.offline import OfflineJudging, ruling_phases

__all__ = ["NAME_LIMIT", "Feedback", "Study", "StudyConfig", "display_name"]

SCORING = {
    # 1 + log2 p(correct): 1 for certainty on the truth, 0 for 50/50 (Michael et al. 2023's log score)
    "log": {"LogScoreWithLinearPenalty": {"logBase": 2, "constant": 1, "perTurnPenalty": 0}},
    "quadratic": {"QuadraticScoreWithLinearPenalty": {"perTurnPenalty": 0}},
}


@dataclass(slots=True)
class StudyConfig:
    k: int = 2  # distinct people per episode
    per_person: int | None = None  # episodes each person judges (None: as many as they can)
    scoring: str = "log"
    time_limit: float | None = None  # seconds per offline verdict


@dataclass(slots=True)
class Feedback:
    episode: int
    question: str
    answers: list[str]
    correct: int | None
    probabilities: tuple[float, ...] | None
    score: float | None
    right: bool | None


@dataclass(slots=True)
class OpenTurn:
    """An offline turn in front of a person: the request and when it was first shown."""

    request: TurnRequest
    shown_at: float
    clock_from: float  # when its time limit started: when it was shown, or the limit set later


class Study:
    def __init__(self, path: str | Path, config: StudyConfig | None = None,
                 overrides: dict[str, Any] | None = None, *, sessions: int = 64) -> None:  # fmt: skip
        """`config` replaces the study's stored settings; `overrides` changes those given
        (not None) and keeps the rest (a restart with `--k 3` keeps the stored scoring)."""
        self.path = check_database(path)
        self.tables = StudyTables(self.path)
        self.reader = RunReader(self.path)
        stored = self._stored_config()
        before = stored.time_limit
        self.config = config or stored
        for key, value in (overrides or {}).items():
            if value is not None:
                setattr(self.config, key, value)
        if self.config.scoring not in SCORING:
            raise ConfigError(f"--scoring {self.config.scoring}: one of {', '.join(SCORING)}")
        self._save_config()
        # A limit set or changed now runs from now for rounds shown before it: nobody's round
        # expires on the spot because a restart shortened the time they had been given.
        since = self.tables.setting("time_limit_since")
        if since is None or self.config.time_limit != before:
            since = repr(time.time())
            self.tables.set_setting("time_limit_since", since)
        self.limit_since = float(since)
        self.rulings = ruling_phases(self.path)
        self._write = threading.Lock()
        # at most `sessions` participants' judging sessions (their connections) open at once
        self.sessions = SessionPool(self._new_session, self._end_session, sessions)
        self._shown: dict[tuple[str, int, int], float] = {}
        self._exposed: set[tuple[str, int]] = set()
        self._lock = threading.RLock()
        self._episodes: dict[int, tuple[str, str]] | None = None
        self._episodes_of: str | None = None  # the run's status when they were read
        self.secret = self.tables.secret()
        run = self.reader.run() or {}
        self.title = str(run.get("name") or self.path.stem)

    def close(self) -> None:
        self.sessions.close()
        self.reader.close()
        self.tables.close()

    def _stored_config(self) -> StudyConfig:
        raw = self.tables.setting("config")
        if raw is None:
            return StudyConfig()
        data = json.loads(raw)
        return StudyConfig(**{k: v for k, v in data.items() if k in StudyConfig.__dataclass_fields__})

    def _save_config(self) -> None:
        c = self.config
        self.tables.set_setting("config", json.dumps(
            {"k": c.k, "per_person": c.per_person, "scoring": c.scoring, "time_limit": c.time_limit}))  # fmt: skip

    # -- who ---------------------------------------------------------------------------
    def participant(self, token: str) -> Participant | None:
        return self.tables.by_token(token) if token else None

    def episodes(self) -> dict[int, tuple[str, str]]:
        """The finished episodes to judge: id -> (story, condition). A story is its passage
        (several questions may share one), else its question."""
        # A run still playing (moot serve SCENARIO, or moot run beside) finishes more of
        # them: counted again while it runs; a stopped run's are read once.
        status = self.reader.status()
        if self._episodes is not None and status == self._episodes_of != "running":
            return self._episodes
        self._episodes_of = status
        if self._episodes is None or len(self._episodes) != self.reader.status_counts().get("done", 0):
            out = {}
            pictured = self.reader.with_images()
            for ep in self.reader.episodes():
                if ep.id in pictured and any(i.get("role") == "judge" and i.get("sees_source") for i in ep.seats.values()):
                    continue  # its judge saw images, which a person's page cannot show yet
                story = digest(ep.source) if ep.source else "q:" + ep.question_id
                out[ep.id] = (story, ep.cell or self.title)
            self._episodes = out
        return self._episodes

    def story(self, episode: int) -> str | None:
        known = self.episodes().get(episode)
        if known is not None:
            return known[0]
        ep = self.reader.episode(episode)
        if ep is None:
            return None
        return digest(ep.source) if ep.source else "q:" + ep.question_id

    # -- offline judging -----------------------------------------------------------------
    def _new_session(self, pid: str, episode: int) -> OfflineJudging:
        session = OfflineJudging(self.path, pid, episodes=[episode], time_limit=self.config.time_limit,
                                 rulings=self.rulings)  # fmt: skip
        # Its own reader would open a connection in every worker thread that reads through it
        # (8 a session under load): the server's reader, one per thread, serves them all.
        session.reader.close()
        session.reader = self.reader
        return session

    @staticmethod
    def _end_session(session: OfflineJudging) -> None:
        session.conn.close()  # its own; the reader is the server's (above)

    def current(self, who: Participant) -> OpenTurn | None:
        """The round the person judges next (assigning them an episode if they have none
        open), or None when they have judged all they can. A round whose time ran out while
        they were away expires first (`expire`): they get their next episode."""
        for _ in range(len(self.episodes()) + 2):
            turn = self.open_turn(who)
            if turn is None or not self.late(turn.clock_from):
                return turn
            with self._write:  # expired once, whichever of their requests sees it first
                again = self.open_turn(who)
                if again is not None and self._key(who, again) == self._key(who, turn):
                    self._expire(who, again)
        return None

    def open_turn(self, who: Participant) -> OpenTurn | None:
        """As `current`, but a round past its time is returned, not expired."""
        for _ in range(len(self.episodes()) + 1):
            episode = self.tables.open_assignment(who.id)
            if episode is None:
                episode = self.tables.assign_next(who.id, self.episodes(), self.config.k, self.config.per_person)
                if episode is None:
                    return None
            with self.sessions.use(who.id, episode) as session:
                request = session.next()
            if request is None:  # every round judged (a restart between verdict and bookkeeping)
                self.tables.finish(who.id, episode)
                continue
            key = (who.id, request.episode, request.round)
            with self._lock:
                shown = self._shown.get(key)
            if shown is None:  # the store's clock, kept across a restart; then this memory's
                shown = self.tables.first_shown(who.id, request.episode, request.round, time.time())
                with self._lock:
                    shown = self._shown.setdefault(key, shown)
            if (who.id, episode) not in self._exposed:
                story = self.story(episode)
                if story is not None:
                    self.tables.expose(who.id, story)
                self._exposed.add((who.id, episode))
            return OpenTurn(request, shown, max(shown, self.limit_since))
        return None

    @staticmethod
    def _key(who: Participant, turn: OpenTurn) -> tuple[str, int, int]:
        return who.id, turn.request.episode, turn.request.round

    def late(self, clock_from: float, now: float | None = None) -> bool:
        """Past the time limit (the server's clock, from when the round was first shown),
        with a little grace for the network: 2 s, or half the limit if that is less."""
        limit = self.config.time_limit
        if limit is None:
            return False
        return (time.time() if now is None else now) - clock_from > limit + min(SLACK_S, limit / 2)

    def _expire(self, who: Participant, turn: OpenTurn) -> None:
        """The round's time ran out: recorded as a timeout (a verdicts row with no choice,
        parse_status `timeout`, and its call row), and the episode goes back to the queue
        for someone else; the person does not get it again (they have read it)."""
        with self.sessions.use(who.id, turn.request.episode) as session:
            session.record(TurnAnswer(timed_out=True, shown_at=turn.shown_at, answered_at=time.time()))
        self.tables.expire(who.id, turn.request.episode)
        with self._lock:
            self._shown.pop(self._key(who, turn), None)

    def judge(self, who: Participant, episode: int, round_: int, probabilities: list[float], reason: str = "") -> str:
        """Commit the person's verdict on (episode, round). Returns what happened: "stored",
        "episode done" (it was the episode's last round: feedback may be shown), "timed out"
        (past the time limit: refused, recorded as a timeout, the episode given back), or
        "stale" (not the round in front of them, e.g. a second click: nothing is stored)."""
        with self._write:
            turn = self.open_turn(who)
            if turn is None or (turn.request.episode, turn.request.round) != (episode, round_):
                return "stale"
            if self.late(turn.clock_from):  # the limit holds on the server, whatever the page did
                self._expire(who, turn)
                return "timed out"
            with self.sessions.use(who.id, episode) as session:
                session.record(TurnAnswer(content=reason.strip()[:2000], probabilities=tuple(probabilities),
                                          shown_at=turn.shown_at, answered_at=time.time()))  # fmt: skip
                finished = session.next() is None
            with self._lock:
                self._shown.pop(self._key(who, turn), None)
            if finished:
                self.tables.finish(who.id, episode)
                return "episode done"
            return "stored"

    def feedback(self, who: Participant, episode: int) -> Feedback | None:
        """The correct answer and the person's score, only once their episode is done."""
        if not any(e == episode and done for _, e, done, _ in self.tables.assignments(who.id)):
            return None
        ep = self.reader.episode(episode)
        if ep is None:
            return None
        mine = [v for v in self.reader.verdicts(episode) if v.judge == who.judge]
        if not mine:
            return None
        final = max(mine, key=lambda v: v.round)
        return Feedback(episode, ep.question, list(ep.answers), ep.correct, final.probabilities,
                        self.score(final.probabilities, ep.correct), final.correct)  # fmt: skip

    def score(self, probabilities: tuple[float, ...] | None, correct: int | None) -> float | None:
        from moot.analysis.scoring import judge_score

        if probabilities is None or correct is None:
            return None
        s = judge_score(SCORING[self.config.scoring], probabilities, correct, 0)
        return None if math.isnan(s) else s

    def history(self, who: Participant) -> list[tuple[int, int, bool | None, Feedback | None]]:
        """(position, episode, done: True, False while open, None if its time ran out,
        feedback) in the person's order."""
        return [(pos, ep, None if expired else done, self.feedback(who, ep) if done else None)
                for pos, ep, done, expired in self.tables.assignments(who.id)]  # fmt: skip

    def leaderboard(self, viewer: Participant) -> list[tuple[str, int, float, bool]]:
        """Participants who chose to appear, under the name they chose, by mean score:
        (name, episodes, mean score, is the viewer). Nobody else's ID or the admin's labels."""
        out = []
        for p in self.tables.participants():
            if not p.leaderboard or not p.display_name:  # opted in before V13: no name, not shown
                continue
            scores = [f.score for _, _, done, f in self.history(p) if done and f is not None and f.score is not None]
            if scores:
                out.append((p.display_name, len(scores), sum(scores) / len(scores), p.id == viewer.id))
        return sorted(out, key=lambda r: -r[2])


NAME_LIMIT = 32  # characters of a display name
_REFUSED = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}  # controls, bidi overrides, zero-widths, unassigned


def display_name(text: str) -> str:
    """The name a participant typed, made fit to show others: NFC, runs of spaces made one,
    trimmed, 1 to NAME_LIMIT characters. ValueError (its message for the person) for control
    or invisible formatting characters (a bidi override would let a name pose as another).
    It is still untrusted text: pages escape it like any other."""
    text = unicodedata.normalize("NFC", text)
    if any(unicodedata.category(c) in _REFUSED for c in text):
        raise ValueError("a name cannot hold control or invisible characters")
    name = " ".join(text.split())
    if not name:
        raise ValueError("type the name you want to appear under")
    if len(name) > NAME_LIMIT:
        raise ValueError(f"a name has at most {NAME_LIMIT} characters")
    return name
