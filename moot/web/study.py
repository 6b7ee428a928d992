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
from dataclasses import dataclass
from pathlib import Path

from moot.agents.human import SLACK_S, TurnAnswer, TurnRequest
from moot.errors import ConfigError
from moot.store.reader import RunReader, check_database
from moot.store.study import Participant, StudyTables, digest
from moot.workflows.offline import OfflineJudging, ruling_phases

__all__ = ["Feedback", "Study", "StudyConfig"]

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


class Study:
    def __init__(self, path: str | Path, config: StudyConfig | None = None) -> None:
        self.path = check_database(path)
        self.tables = StudyTables(self.path)
        self.reader = RunReader(self.path)
        self.config = config or self._stored_config()
        if self.config.scoring not in SCORING:
            raise ConfigError(f"--scoring {self.config.scoring}: one of {', '.join(SCORING)}")
        self._save_config()
        self.rulings = ruling_phases(self.path)
        self._write = threading.Lock()
        self._sessions: dict[str, OfflineJudging] = {}
        self._shown: dict[tuple[str, int, int], float] = {}
        self._exposed: set[tuple[str, int]] = set()
        self._lock = threading.RLock()
        self._episodes: dict[int, tuple[str, str]] | None = None
        self.secret = self.tables.secret()
        run = self.reader.run() or {}
        self.title = str(run.get("name") or self.path.stem)

    def close(self) -> None:
        with self._lock:
            for s in self._sessions.values():
                s.close()
            self._sessions.clear()
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
        if self._episodes is None:
            out = {}
            for ep in self.reader.episodes():
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
    def _session(self, who: Participant, episode: int) -> OfflineJudging:
        with self._lock:
            s = self._sessions.get(who.id)
            if s is not None and s.episodes == [episode]:
                return s
            if s is not None:
                s.close()
            s = OfflineJudging(self.path, who.id, episodes=[episode], time_limit=self.config.time_limit,
                               rulings=self.rulings)  # fmt: skip
            self._sessions[who.id] = s
            return s

    def current(self, who: Participant) -> OpenTurn | None:
        """The round the person judges next (assigning them an episode if they have none
        open), or None when they have judged all they can."""
        for _ in range(len(self.episodes()) + 1):
            episode = self.tables.open_assignment(who.id)
            if episode is None:
                episode = self.tables.assign_next(who.id, self.episodes(), self.config.k, self.config.per_person)
                if episode is None:
                    return None
            request = self._session(who, episode).next()
            if request is None:  # every round judged (a restart between verdict and bookkeeping)
                self.tables.finish(who.id, episode)
                continue
            key = (who.id, request.episode, request.round)
            with self._lock:
                shown = self._shown.setdefault(key, time.time())
            if (who.id, episode) not in self._exposed:
                story = self.story(episode)
                if story is not None:
                    self.tables.expose(who.id, story)
                self._exposed.add((who.id, episode))
            return OpenTurn(request, shown)
        return None

    def judge(self, who: Participant, episode: int, round_: int, probabilities: list[float], reason: str = "") -> str:
        """Commit the person's verdict on (episode, round). Returns what happened: "stored",
        "episode done" (it was the episode's last round: feedback may be shown), or "stale"
        (not the round in front of them, e.g. a second click: nothing is stored)."""
        with self._write:
            turn = self.current(who)
            if turn is None or (turn.request.episode, turn.request.round) != (episode, round_):
                return "stale"
            session = self._session(who, episode)
            now, limit = time.time(), self.config.time_limit
            late = limit is not None and now - turn.shown_at > limit + SLACK_S  # the limit holds on the server
            session.record(TurnAnswer(content=reason.strip()[:2000], probabilities=tuple(probabilities),
                                      timed_out=late, shown_at=turn.shown_at, answered_at=now))  # fmt: skip
            with self._lock:
                self._shown.pop((who.id, episode, round_), None)
            if session.next() is None:
                self.tables.finish(who.id, episode)
                return "episode done"
            return "stored"

    def feedback(self, who: Participant, episode: int) -> Feedback | None:
        """The correct answer and the person's score, only once their episode is done."""
        if not any(e == episode and done for _, e, done in self.tables.assignments(who.id)):
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

    def history(self, who: Participant) -> list[tuple[int, int, bool, Feedback | None]]:
        """(position, episode, done, feedback) in the person's order."""
        return [(pos, ep, done, self.feedback(who, ep) if done else None)
                for pos, ep, done in self.tables.assignments(who.id)]  # fmt: skip

    def leaderboard(self) -> list[tuple[str, int, float, bool]]:
        """Opted-in participants by mean score: (name, episodes, mean score, is_opted_in)."""
        out = []
        for p in self.tables.participants():
            if not p.leaderboard:
                continue
            scores = [f.score for _, _, done, f in self.history(p) if done and f is not None and f.score is not None]
            if scores:
                out.append((p.label or f"Judge {p.id[1:]}", len(scores), sum(scores) / len(scores), True))
        return sorted(out, key=lambda r: -r[2])
