"""Read run databases for analysis: read-only, through the store's SQL views, into arrays.

Each database's episodes belong to conditions: the sweep cell when there is one, else the
run's name. Given several databases, a condition name found in more than one of them is
qualified with the file's name ("a.db:debate") so the conditions stay distinct; question ids
are kept as they are, so the same question in two databases pairs up.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from moot.analysis import clusters
from moot.analysis.privacy import PRIVATE
from moot.errors import ConfigError
from moot.store.schema import SCHEMA_VERSION, VIEWS


@dataclass(frozen=True)
class Scope:
    """Which part of each database an analysis reads: episodes whose attributes match
    (`where`: key -> value, e.g. an imported dataset's `included_in_paper` -> True), and
    only one judge's verdicts (`judge`, e.g. a room's own judge beside offline ones); for
    exports, only some episodes (`episodes`: ids) and only those fit to publish (`public`:
    see moot.analysis.privacy)."""

    where: tuple[tuple[str, Any], ...] = ()
    judge: str | None = None
    episodes: tuple[int, ...] = ()
    public: bool = False

    def views(self) -> str:
        """TEMP views named like the tables they narrow: the temp schema is searched first,
        so every query and every analysis view reads only what is in scope."""
        out = []
        conds = [f"json_extract(attributes, {_literal('$.' + k)}) = {_literal(v)}" for k, v in self.where]
        if self.episodes:
            conds.append(f"id IN ({', '.join(str(int(e)) for e in self.episodes)})")
        if self.public:
            conds.append(f"NOT {PRIVATE}")
        if conds:
            out.append(f"CREATE TEMP VIEW episodes AS SELECT * FROM main.episodes WHERE {' AND '.join(conds)};")
        if self.judge is not None:
            out.append(f"CREATE TEMP VIEW verdicts AS SELECT * FROM main.verdicts WHERE judge = {_literal(self.judge)};")
        return "\n".join(out)


_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _literal(value: Any) -> str:
    """A SQL literal for a value given on the command line: views cannot take parameters."""
    if value is True or value is False:
        return "1" if value else "0"
    if isinstance(value, (int, float)) and math.isfinite(value):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def parse_where(items: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    """`KEY=VALUE` filters; VALUE is read as JSON (true, 3, "x") where it is JSON, else as text."""
    out = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not _KEY.match(key):
            raise ConfigError(f"--where {item}: expected KEY=VALUE with KEY an attribute name (e.g. included_in_paper=true)")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if not isinstance(value, (str, int, float, bool)):
            raise ConfigError(f"--where {item}: VALUE must be text, a number, true or false")
        out.append((key, value))
    return tuple(out)


_IDS = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_episodes(text: str | None) -> tuple[int, ...]:
    """`3,5,10-20`: episode ids and inclusive ranges."""
    if not text:
        return ()
    out: list[int] = []
    for part in text.split(","):
        m = _IDS.match(part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise ConfigError(f"--episodes {text}: expected episode ids and ranges, e.g. 3,5,10-20 (got {part.strip()!r})")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        out.extend(range(a, b + 1))
    return tuple(dict.fromkeys(out))


_scope: ContextVar[Scope] = ContextVar("moot_analysis_scope", default=Scope())  # noqa: B039  (frozen)


@contextmanager
def scoped(scope: Scope) -> Iterator[None]:
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)


def open_db(path: str | Path) -> sqlite3.Connection:
    """A read-only connection with the analysis views (narrowed to the current scope)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such database")
    try:
        try:
            conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
            (version,) = conn.execute("PRAGMA user_version").fetchone()
        except sqlite3.OperationalError:
            # a WAL database in a directory we may not write to (no -shm file can be made):
            # read the file as it is, which is right for a finished run
            conn = sqlite3.connect(f"{p.resolve().as_uri()}?immutable=1", uri=True)
            (version,) = conn.execute("PRAGMA user_version").fetchone()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{p}: not a usable moot database ({exc})") from None
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"{p}: database schema version {version} is newer than this moot understands"
            f" ({SCHEMA_VERSION}); upgrade moot"
        )
    if not {"runs", "episodes", "verdicts"} <= tables:
        raise ConfigError(f"{p}: not a moot run database (no runs, episodes or verdicts table)")
    if version < 6:
        raise ConfigError(
            f"{p}: schema version {version} is too old to analyse; open it once with"
            " this moot (e.g. `moot run --resume`) to upgrade it"
        )
    # This moot's definitions of the views, as TEMP views (they take precedence over the
    # database's own): a database made before the views, or while they were being changed,
    # is read exactly as a new one. Nothing is written to the file.
    conn.executescript(VIEWS.format(temp="TEMP "))
    narrowed = _scope.get().views()
    if narrowed:
        conn.executescript(narrowed)
    return conn


def run_name(conn: sqlite3.Connection, path: str | Path) -> str:
    row = conn.execute("SELECT name FROM runs ORDER BY started_at LIMIT 1").fetchone()
    if row is None:
        raise ConfigError(f"{path}: holds no run")
    return row[0]


RESULT_COLUMNS = (
    "episode", "condition", "question_id", "protocol", "choice", "valid", "correct",
    "p_correct", "p_choice", "answer", "n_answers", "answers", "assignments",
)  # fmt: skip
# Beside the view's columns, per finished episode: the ruling's probabilities
# (is it a tie?); how many beliefs the ruling judge reported (a scoring rule's turns); the
# highest round of a speech (the judge's own messages and unchosen drafts are not speeches);
# and the scoring rule the episode records (an imported room's, e.g. Michael et al.'s).
RESULTS_SQL = f"""
SELECT {', '.join('r.' + c for c in RESULT_COLUMNS)},
    (SELECT v.probabilities FROM verdicts AS v WHERE v.episode = r.episode AND v.judge = r.judge
     ORDER BY v.id DESC LIMIT 1),
    (SELECT count(*) FROM verdicts AS v WHERE v.episode = r.episode AND v.judge = r.judge),
    (SELECT max(m.round) FROM messages AS m WHERE m.episode = r.episode AND m.role != 'judge'
     AND m.phase NOT LIKE '%:draft'),
    e.attributes ->> '$.rules.scoringFunction'
FROM episode_results AS r JOIN episodes AS e ON e.id = r.episode
WHERE r.status = 'done' ORDER BY r.episode"""
# each question's passage, from its first episode that has one: one text per question (a
# story can be tens of kilobytes, and a large run has many episodes per question)
PASSAGES_SQL = """
SELECT question_id, source FROM episodes WHERE id IN (
    SELECT min(id) FROM episodes WHERE source IS NOT NULL AND source != '' AND status = 'done'
    GROUP BY question_id)"""
TIES = ("invalid", "wrong")


@dataclass
class Results:
    """One row per finished episode (its ruling), as parallel arrays.

    `condition` and `question` are integer codes into `conditions` and `questions`;
    `correct`, `p_correct` and `p_choice` are NaN where unknown (invalid verdict, no gold,
    no probabilities); `choice` and `answer` are -1 where unknown."""

    conditions: list[str]
    questions: list[str]
    condition: np.ndarray
    source: np.ndarray  # index into Study.sources: the stored condition (cell) of each episode
    question: np.ndarray
    db: np.ndarray
    episode: np.ndarray
    protocol: np.ndarray
    valid: np.ndarray
    correct: np.ndarray
    p_correct: np.ndarray
    p_choice: np.ndarray
    choice: np.ndarray
    answer: np.ndarray
    n_answers: np.ndarray
    answers: np.ndarray  # the answers in the order shown (JSON text, parsed where needed)
    assignments: np.ndarray  # the episode's assignments, as stored (JSON text)
    advocates: np.ndarray  # how many seats were assigned an answer
    advocate_seats: np.ndarray  # those seats, comma-separated
    truth_argued_by: np.ndarray  # the seats that argued the correct answer, or None
    clusters: clusters.Clusters  # what the bootstrap resamples (passages or questions)
    cluster: np.ndarray  # each episode's cluster code
    tie: np.ndarray  # the ruling's top probability is shared: it chose nothing
    top: np.ndarray  # the ruling's top probability (NaN without probabilities)
    rounds: np.ndarray  # the highest round of a speech (0: none)
    reports: np.ndarray  # how many verdicts the ruling judge gave (its beliefs reported)
    scoring: np.ndarray  # the scoring rule the episode records (JSON text), or None
    probabilities: np.ndarray  # the ruling's probabilities (JSON text), or None
    ties: str = "invalid"  # the convention applied: "invalid" or "wrong"
    failed: dict[str, int] = field(default_factory=dict)  # episodes that failed, per condition

    def __len__(self) -> int:
        return len(self.episode)


def condition_names(paths: Sequence[str | Path], per_db: list[list[str]]) -> list[dict[str, str]]:
    """Per database, stored condition -> the name used in the report."""
    seen: dict[str, int] = {}
    for names in per_db:
        for name in set(names):
            seen[name] = seen.get(name, 0) + 1
    return [
        {n: (f"{Path(p).name}:{n}" if seen[n] > 1 else n) for n in names}
        for p, names in zip(paths, per_db)
    ]


def _label(path, cell: str | None, run: str, grid: dict, by: Sequence[str]) -> str:
    if cell is None or not by:
        return run if cell is None else cell
    params = grid.get(cell, (0, {}))[1]
    missing = [k for k in by if k not in params]
    if missing:
        raise ConfigError(
            f"--by {missing[0]}: not a parameter of the sweep in {path}"
            f" (it has: {', '.join(params) or 'none'})"
        )
    return " ".join(f"{k}={params[k]}" for k in by)


def _floats(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _ints(values: list) -> np.ndarray:
    return np.array([-1 if v is None else v for v in values], dtype=np.int64)


@dataclass
class Study:
    """The databases analysed together and the report's name for each stored condition."""

    paths: list[Path]
    names: list[dict[str, str]]  # per database: stored condition -> report name
    conditions: list[str]  # report names, in order (databases, then grid or first episode)
    # every stored condition: its database, its cell (None outside a sweep) and its name as
    # stored (the cell's, or the run's outside a sweep)
    sources: list[tuple[int, str | None, str]]
    source_condition: list[int]  # for each source, its condition in `conditions`

    @classmethod
    def open(cls, paths: Sequence[str | Path], by: Sequence[str] = ()) -> Study:
        """With `by` (sweep parameters, e.g. ["protocol.name"]), a sweep's cells that agree on
        those parameters are one condition (e.g. the seeds of each protocol pooled)."""
        if not paths:
            raise ConfigError("give at least one run database")
        seen = set()
        for path in paths:
            if (key := Path(path).resolve()) in seen:
                raise ConfigError(f"{path}: given twice")
            seen.add(key)
        labels, stored_of = [], []
        for path in paths:
            conn = open_db(path)
            try:
                name = run_name(conn, path)
                cells = [c for (c,) in conn.execute("SELECT cell FROM episodes GROUP BY cell ORDER BY min(id)")]
                grid = {
                    n: (pos, json.loads(params))
                    for n, pos, params in conn.execute("SELECT name, position, params FROM cells")
                } if _has(conn, "cells") else {}  # fmt: skip
            finally:
                conn.close()
            cells.sort(key=lambda c: grid.get(c, (-1,))[0])  # a sweep's cells in grid order
            stored = [(name if c is None else c, c) for c in cells]
            labels.append({st: _label(path, c, name, grid, by) for st, c in stored})
            stored_of.append(stored)
        distinct = [list(dict.fromkeys(lab.values())) for lab in labels]
        qualified = condition_names(paths, distinct)
        names = [{stored: q[lab] for stored, lab in per.items()} for per, q in zip(labels, qualified)]
        conditions = list(dict.fromkeys(q[lab] for d, q in zip(distinct, qualified) for lab in d))
        code = {c: i for i, c in enumerate(conditions)}
        sources = [(i, c, st) for i, stored in enumerate(stored_of) for st, c in stored]
        source_condition = [code[names[i][st]] for i, stored in enumerate(stored_of) for st, _ in stored]
        return cls([Path(p) for p in paths], names, conditions, sources, source_condition)

    def seat_models(self, k: int) -> dict[str, str]:
        """Source k's seat -> model, from the scenario the run (or its cell) recorded;
        from its model calls where that says nothing."""
        db, cell, _ = self.sources[k]
        conn = open_db(self.paths[db])
        try:
            if cell is None:
                row = conn.execute("SELECT config FROM runs ORDER BY started_at LIMIT 1").fetchone()
            else:
                row = conn.execute("SELECT config FROM cells WHERE name = ?", (cell,)).fetchone()
            seats = conn.execute(
                "SELECT seats FROM episodes WHERE cell IS ? LIMIT 1", (cell,)
            ).fetchone()
            config = json.loads(row[0]).get("seats", {}) if row else {}
            out = {}
            for seat, info in json.loads(seats[0] if seats else "{}").items():
                own, role = config.get(seat) or {}, config.get(info.get("role", "")) or {}
                model = own.get("model") or role.get("model")
                if model is None:
                    found = conn.execute(
                        "SELECT model FROM model_calls WHERE seat = ? AND episode IN"
                        " (SELECT id FROM episodes WHERE cell IS ?) LIMIT 1", (seat, cell)
                    ).fetchone()  # fmt: skip
                    model = found[0] if found else seat
                out[seat] = model
            return out
        finally:
            conn.close()

    def query(self, sql: str, params: tuple = ()) -> list[tuple[str, tuple]]:
        """One read-only query on every database; each row's first column (the stored
        condition) is replaced by the report's name for it."""
        out = []
        for path, names in zip(self.paths, self.names):
            conn = open_db(path)
            try:
                rows = conn.execute(sql, params).fetchall()
            finally:
                conn.close()
            out += [(names.get(r[0], r[0]), r[1:]) for r in rows]
        return out

    def rows(self, sql: str, params: tuple = (), db: int | None = None) -> list:
        """One read-only query on every database, the rows kept per database; or, with
        `db`, on that one database only (its rows)."""
        if db is not None:
            return _fetch(self.paths[db], sql, params)
        return [_fetch(path, sql, params) for path in self.paths]


def _fetch(path: Path, sql: str, params: tuple) -> list[tuple]:
    conn = open_db(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def load_results(study: Study, ties: str = "invalid", cluster: str = "auto") -> Results:
    """The finished episodes of every database, with their rulings.

    `ties`: a ruling whose top probability is shared (a 50/50) chose nothing; "invalid"
    leaves it out of accuracy and calibration like an unreadable verdict, "wrong" counts it
    as a wrong verdict (Michael et al. 2023's convention), its confidence the top
    probability. `cluster`: what the bootstrap resamples (see moot.analysis.clusters)."""
    if ties not in TIES:
        raise ConfigError(f"--ties {ties}: choose invalid or wrong")
    per_db_rows = study.rows(RESULTS_SQL)
    source_code = {(d, st): j for j, (d, _, st) in enumerate(study.sources)}
    cols: list[list] = [[] for _ in range(len(RESULT_COLUMNS) + 4)]
    dbs: list[int] = []
    for i, rows in enumerate(per_db_rows):
        for j, col in enumerate(zip(*rows)):
            cols[j].extend(col)
        dbs.extend([i] * len(rows))
    (episode, condition, question_id, protocol, choice, valid, correct, p_correct,
     p_choice, answer, n_answers, answers, assignments, ruling, reports, rounds,
     scoring) = cols  # fmt: skip
    advocates, advocate_seats, truth_by = advocacy(assignments, answer)
    source = np.array([source_code[(d, c)] for d, c in zip(dbs, condition)], dtype=np.int64)
    questions, qcode = np.unique(np.array(question_id, dtype=object), return_inverse=True)
    qcode = qcode.astype(np.int64).reshape(-1)
    passage: dict[str, str | None] = {}
    for rows in study.rows(PASSAGES_SQL):  # the first database's passage, where several have one
        for qid, text in rows:
            passage.setdefault(qid, clusters.source_key(text))
    groups = clusters.assign([passage.get(str(q)) for q in questions], cluster)
    top, tie = _ties(ruling, choice)
    valid_ = np.array(valid, dtype=bool)
    correct_, p_choice_ = _floats(correct), _floats(p_choice)
    if ties == "wrong":  # a tie is a verdict, and a wrong one
        valid_ |= tie
        known = tie & (_ints(answer) >= 0)
        correct_[known] = 0.0
        p_choice_[tie] = top[tie]
    failed: dict[str, int] = {}
    for c, (n,) in study.query(
        "SELECT condition, count(*) FROM episode_results WHERE status != 'done' GROUP BY condition"
    ):
        failed[c] = failed.get(c, 0) + n
    return Results(
        conditions=study.conditions,
        questions=[str(q) for q in questions],
        condition=np.array(study.source_condition, dtype=np.int64)[source] if len(source) else source,
        source=source,
        question=qcode,
        db=np.array(dbs, dtype=np.int64),
        episode=np.array(episode, dtype=np.int64),
        protocol=np.array(protocol, dtype=object),
        valid=valid_,
        correct=correct_,
        p_correct=_floats(p_correct),
        p_choice=p_choice_,
        choice=_ints(choice),
        answer=_ints(answer),
        n_answers=_ints(n_answers),
        answers=np.array(answers, dtype=object),
        assignments=np.array(assignments, dtype=object),
        advocates=np.array(advocates, dtype=np.int64),
        advocate_seats=np.array(advocate_seats, dtype=object),
        truth_argued_by=np.array(truth_by, dtype=object),
        clusters=groups,
        cluster=groups.of_question[qcode],
        tie=tie,
        top=top,
        rounds=_ints(rounds).clip(min=0),
        reports=np.array(reports, dtype=np.int64),
        scoring=np.array(scoring, dtype=object),
        probabilities=np.array(ruling, dtype=object),
        ties=ties,
        failed=failed,
    )


def _ties(ruling: list[str | None], choice: list[int | None]) -> tuple[np.ndarray, np.ndarray]:
    """Per ruling: its top probability, and whether it chose nothing because that top is
    shared by two answers or more."""
    top = np.full(len(ruling), np.nan)
    tie = np.zeros(len(ruling), dtype=bool)
    for i, (text, c) in enumerate(zip(ruling, choice)):
        if not text:
            continue
        try:
            probs = [float(p) for p in json.loads(text)]
        except (TypeError, ValueError):
            continue  # unreadable probabilities: no confidence, not a tie
        if probs:
            top[i] = max(probs)
            tie[i] = c is None and sum(1 for p in probs if p == top[i]) > 1
    return top, tie


def advocacy(assignments: list[str], answers: list[int | None]) -> tuple[list, list, list]:
    """Per episode: how many seats argued an assigned answer, which, and which argued the
    correct one (as the `episode_results` view computes them; parsed once per distinct
    assignment, since a run has only a handful)."""
    memo: dict[tuple[str, int | None], tuple[int, str, str | None]] = {}
    out = []
    for text, answer in zip(assignments, answers):
        key = (text, answer)
        if key not in memo:
            seats = json.loads(text) if text else {}
            truth = sorted(s for s, v in seats.items() if answer is not None and v == answer)
            memo[key] = (len(seats), ",".join(sorted(seats)), ",".join(truth) or None)
        out.append(memo[key])
    if not out:
        return [], [], []
    a, b, c = zip(*out)
    return list(a), list(b), list(c)


def _has(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone() is not None
