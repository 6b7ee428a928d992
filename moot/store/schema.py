"""The run database's schema, versioned with `PRAGMA user_version` and applied by migrations.

One database per run. JSON columns hold lists and maps (answers, audiences, probabilities,
prompts); SQLite's JSON functions query them (`answers ->> '$[0]'`).
"""

from __future__ import annotations

import sqlite3

from moot.errors import ConfigError

V1 = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scenario_yaml TEXT NOT NULL,     -- the file as given
    config TEXT NOT NULL,            -- JSON: the resolved scenario after overrides
    versions TEXT NOT NULL,          -- JSON: moot, python, sqlite and dependency versions
    models TEXT NOT NULL,            -- JSON: per model, provider facts and file hashes
    started_at REAL NOT NULL,
    ended_at REAL,
    status TEXT NOT NULL             -- running | done | failed | interrupted
);
CREATE TABLE episodes (
    id INTEGER PRIMARY KEY,
    question_id TEXT NOT NULL,
    question TEXT NOT NULL,
    answers TEXT NOT NULL,           -- JSON list, in the order shown
    correct INTEGER,                 -- index into answers
    source TEXT,
    protocol TEXT NOT NULL,
    assignments TEXT NOT NULL,       -- JSON: seat -> answer index it defends
    seats TEXT NOT NULL,             -- JSON: seat -> role, what it may see
    status TEXT NOT NULL,            -- running | done | failed
    stop_reason TEXT,
    outcome TEXT,                    -- JSON
    error TEXT,
    started_at REAL NOT NULL,
    ended_at REAL
);
CREATE TABLE messages (
    episode INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    round INTEGER NOT NULL,
    phase TEXT NOT NULL,
    seat TEXT NOT NULL,
    role TEXT NOT NULL,
    side INTEGER,
    content TEXT NOT NULL,
    audience TEXT,                   -- JSON list of seats; NULL: every seat
    created_at REAL NOT NULL,
    call_seq INTEGER,
    PRIMARY KEY (episode, seq)
);
CREATE TABLE model_calls (
    episode INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    seat TEXT NOT NULL,
    role TEXT NOT NULL,
    model TEXT NOT NULL,
    system TEXT,                     -- the prompt's system message, if any
    prompt TEXT NOT NULL,            -- the prompt's last message: what this turn asked
    messages TEXT,                   -- JSON: any messages between the two (multi-turn), else NULL
    params TEXT NOT NULL,            -- JSON: max_tokens, temperature, seed, answer labels, prefix
    response TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost REAL,
    latency_s REAL NOT NULL,
    attempts INTEGER NOT NULL,
    started_at REAL NOT NULL,
    error TEXT,
    PRIMARY KEY (episode, seq)
);
CREATE TABLE verdicts (
    id INTEGER PRIMARY KEY,
    episode INTEGER NOT NULL,
    judge TEXT NOT NULL,             -- which judge: a seat, or a label for re-judging
    model TEXT NOT NULL,
    round INTEGER NOT NULL,
    choice INTEGER,                  -- NULL when the output could not be read
    probabilities TEXT,              -- JSON list, one per answer
    correct INTEGER,
    method TEXT NOT NULL,            -- token_logprobs | text | none
    parse_status TEXT NOT NULL,      -- ok | invalid
    raw TEXT NOT NULL,
    call_seq INTEGER,
    created_at REAL NOT NULL
);
CREATE INDEX verdicts_episode ON verdicts (episode, judge);
"""

V2 = """
ALTER TABLE messages ADD COLUMN quotes TEXT;  -- JSON: each <quote>, verified or not, and where
"""

V3 = """
CREATE TABLE ratings (
    id INTEGER PRIMARY KEY,
    episode INTEGER NOT NULL,
    rater TEXT NOT NULL,
    target TEXT NOT NULL,            -- the submission rated (its author seat)
    other TEXT,                      -- pairwise: the submission it was compared with
    round INTEGER NOT NULL,
    score REAL,                      -- pointwise: expected 1-9 score; pairwise: P(target better)
    probabilities TEXT,              -- JSON: over the scale, or over (target, other) as shown
    method TEXT NOT NULL,            -- token_logprobs | text | none
    parse_status TEXT NOT NULL,
    raw TEXT NOT NULL,
    call_seq INTEGER,
    created_at REAL NOT NULL
);
CREATE INDEX ratings_episode ON ratings (episode, target);
"""

V4 = """
CREATE TABLE qualifications (
    id INTEGER PRIMARY KEY,
    episode INTEGER NOT NULL,
    rater TEXT NOT NULL,
    question_id TEXT NOT NULL,       -- a check question (not the episode's own)
    choice INTEGER,
    correct INTEGER,
    probabilities TEXT,
    method TEXT NOT NULL,
    call_seq INTEGER,
    created_at REAL NOT NULL
);
"""

V5 = """
ALTER TABLE model_calls ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;  -- 1: from the cache
"""

V6 = """
-- A sweep runs several conditions (cells) into one database, on the same questions.
ALTER TABLE episodes ADD COLUMN cell TEXT;        -- the cell's name; NULL outside a sweep
ALTER TABLE episodes ADD COLUMN attributes TEXT;  -- JSON: facts about the episode (imports)
CREATE TABLE cells (
    name TEXT PRIMARY KEY,           -- e.g. "protocol.name=debate seed=1"
    position INTEGER NOT NULL,       -- order in the grid
    params TEXT NOT NULL,            -- JSON: dotted scenario field -> value for this cell
    config TEXT NOT NULL             -- JSON: the cell's resolved scenario
);
CREATE INDEX episodes_cell ON episodes (cell, question_id);
"""

# Analysis reads these views, and so can sqlite3 or Datasette users: the same numbers either
# way. `{temp}` is empty in the migration; the analysis of an older, read-only database
# creates them as TEMP views instead.
VIEWS = """
-- One row per episode and judge: the judge's final verdict (its highest round, then its
-- latest row), with the probability it gave the correct answer and the one it chose.
CREATE {temp}VIEW episode_verdicts AS
SELECT
    v.episode,
    coalesce(e.cell, (SELECT name FROM runs ORDER BY started_at LIMIT 1)) AS condition,
    e.question_id, e.protocol, e.status, v.judge, v.model, v.round,
    v.choice, v.choice IS NOT NULL AS valid, v.correct,
    e.correct AS answer, json_array_length(e.answers) AS n_answers,
    CAST(v.probabilities ->> ('$[' || e.correct || ']') AS REAL) AS p_correct,
    CAST(v.probabilities ->> ('$[' || v.choice || ']') AS REAL) AS p_choice,
    v.method, v.parse_status, v.id AS verdict_id
FROM (
    SELECT *, row_number() OVER (PARTITION BY episode, judge ORDER BY round DESC, id DESC) AS k
    FROM verdicts
) AS v
JOIN episodes AS e ON e.id = v.episode
WHERE v.k = 1;

-- One row per episode: its ruling, where the truth was shown, which seats argued it, and the
-- answer chosen (by its text, so the two orders of one question can be compared). The ruling
-- is the episode's last verdict from the run's own judges; judges added afterwards carry a
-- label with a colon (rejudge:MODEL, human:NAME, offline:NAME) and rule only where the
-- episode has no other verdict (an imported dataset whose judges are all labelled so).
CREATE {temp}VIEW episode_results AS
SELECT
    e.id AS episode,
    coalesce(e.cell, (SELECT name FROM runs ORDER BY started_at LIMIT 1)) AS condition,
    e.cell, e.question_id, e.protocol, e.status, e.stop_reason,
    e.answers, json_array_length(e.answers) AS n_answers, e.correct AS answer,
    e.answers ->> '$[0]' AS first_answer,
    v.judge, v.choice, v.choice IS NOT NULL AS valid, v.correct,
    CAST(v.probabilities ->> ('$[' || e.correct || ']') AS REAL) AS p_correct,
    CAST(v.probabilities ->> ('$[' || v.choice || ']') AS REAL) AS p_choice,
    v.method, v.parse_status,
    e.answers ->> ('$[' || v.choice || ']') AS chosen_answer,
    e.assignments,
    (SELECT count(*) FROM json_each(e.assignments)) AS advocates,
    (SELECT group_concat(key, ',') FROM (
        SELECT key FROM json_each(e.assignments) WHERE value = e.correct ORDER BY key
    )) AS truth_argued_by
FROM episodes AS e
LEFT JOIN verdicts AS v ON v.id = coalesce(
    (SELECT max(id) FROM verdicts WHERE episode = e.id AND judge NOT LIKE '%:%'),
    (SELECT max(id) FROM verdicts WHERE episode = e.id)
);

-- One row per model call, with its episode's condition.
CREATE {temp}VIEW call_costs AS
SELECT
    coalesce(e.cell, (SELECT name FROM runs ORDER BY started_at LIMIT 1)) AS condition,
    c.episode, c.seat, c.role, c.model, c.prompt_tokens, c.completion_tokens, c.cost,
    c.latency_s, c.attempts, c.error IS NOT NULL AS failed, c.cached
FROM model_calls AS c
JOIN episodes AS e ON e.id = c.episode;
"""

V7 = VIEWS.format(temp="")

V8 = """
-- What seats remember across episodes (lessons they wrote, cases they argued), in the order
-- written; entries carried over from a saved memory have no episode and name their source.
CREATE TABLE memories (
    id INTEGER PRIMARY KEY,
    seat TEXT NOT NULL,
    episode INTEGER,                 -- the episode that wrote it; NULL: loaded at the start
    kind TEXT NOT NULL,              -- lesson | case
    content TEXT NOT NULL,
    won INTEGER,                     -- the episode's result for the seat, when it wrote it
    source TEXT,                     -- the database a loaded entry came from
    created_at REAL NOT NULL
);
CREATE INDEX memories_seat ON memories (seat, id);
"""

# The views as this moot defines them (V7's ruling also took re-judges' verdicts).
V9 = (
    "DROP VIEW IF EXISTS episode_results; DROP VIEW IF EXISTS episode_verdicts;"
    " DROP VIEW IF EXISTS call_costs;\n" + VIEWS.format(temp="")
)

# People's turns, for seats taken from another terminal (`moot join`, moot.agents.desk): the
# run's process asks, the joined one answers. IF NOT EXISTS: runs with people made before
# this version created the table themselves.
V10 = """
CREATE TABLE IF NOT EXISTS human_turns (
    id INTEGER PRIMARY KEY,
    episode INTEGER NOT NULL,
    seat TEXT NOT NULL,
    kind TEXT NOT NULL,
    round INTEGER NOT NULL,
    request TEXT NOT NULL,           -- JSON: the seat's view and the turn's limits
    time_limit REAL,
    asked_at REAL NOT NULL,
    shown_at REAL,                   -- when a person opened it (moot join)
    answer TEXT,                     -- JSON: what they gave back
    answered_at REAL,
    status TEXT NOT NULL             -- pending | shown | answered | timeout | cancelled
);
CREATE INDEX IF NOT EXISTS human_turns_seat ON human_turns (seat, status, episode);
"""

# Web studies (`moot serve`, moot.web): participants known only by an ID and the hash of their
# link's token (and of a crowd platform's ID, never the ID itself), the episodes each was given
# to judge offline, in the order shown, the stories each has read, and the study's settings.
V11 = """
CREATE TABLE IF NOT EXISTS study_participants (
    id TEXT PRIMARY KEY,             -- p1, p2, ...: their verdicts are judge human:ID
    token_hash TEXT NOT NULL UNIQUE, -- sha256 of the personal link's token
    label TEXT,                      -- what the admin typed, if anything
    external_hash TEXT UNIQUE,       -- sha256 of a crowd platform's participant ID
    seat TEXT,                       -- a live seat they take (moot serve over a live run)
    consented_at REAL,
    leaderboard INTEGER NOT NULL DEFAULT 0,
    completed_at REAL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS study_assignments (
    participant TEXT NOT NULL,
    episode INTEGER NOT NULL,
    position INTEGER NOT NULL,       -- the order this person saw them in
    assigned_at REAL NOT NULL,
    done_at REAL,
    PRIMARY KEY (participant, episode)
);
CREATE INDEX IF NOT EXISTS study_assignments_episode ON study_assignments (episode);
CREATE TABLE IF NOT EXISTS study_exposures (
    participant TEXT NOT NULL,
    story TEXT NOT NULL,             -- episodes.question_id: a story they debated or read
    PRIMARY KEY (participant, story)
);
CREATE TABLE IF NOT EXISTS study_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Images shown with a question (a meme, a figure): each distinct image once per run, by the
# hash of its bytes, and which images each episode showed, in order.
V12 = """
CREATE TABLE IF NOT EXISTS images (
    digest TEXT PRIMARY KEY,         -- sha256 of the bytes, hex
    media_type TEXT NOT NULL,        -- image/png, image/jpeg or image/gif (read from the bytes)
    size INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS episode_images (
    episode INTEGER NOT NULL,
    position INTEGER NOT NULL,       -- the order they are shown in
    name TEXT NOT NULL,              -- the file's name in the dataset (a label, never opened)
    digest TEXT NOT NULL REFERENCES images (digest),
    PRIMARY KEY (episode, position)
);
"""

# A web study: the name a participant chose to appear under on the leaderboard (typed by
# them, shown escaped; NULL: not on it), and an offline assignment whose time ran out (the
# episode went back to the queue for someone else; its timed-out verdict row stays).
V13 = """
ALTER TABLE study_participants ADD COLUMN display_name TEXT;
ALTER TABLE study_assignments ADD COLUMN expired_at REAL;
"""

# A web study: when each round of offline judging was first shown to its judge, by the
# server's clock. The round's time limit runs from here, across a restart of the server.
V14 = """
CREATE TABLE IF NOT EXISTS study_shown (
    participant TEXT NOT NULL,
    episode INTEGER NOT NULL,
    round INTEGER NOT NULL,
    shown_at REAL NOT NULL,
    PRIMARY KEY (participant, episode, round)
);
"""

MIGRATIONS: list[str] = [V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14]  # MIGRATIONS[i] takes a database from version i to i + 1
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, path: str) -> None:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: database schema version {version} is newer than this moot "
            f"understands ({SCHEMA_VERSION}); upgrade moot"
        )
    for target in range(version, SCHEMA_VERSION):
        # One transaction per step: a database is at one version or the next, never between.
        try:
            conn.executescript(
                f"BEGIN;\n{MIGRATIONS[target]}\nPRAGMA user_version = {target + 1};\nCOMMIT;"
            )
        except sqlite3.Error:
            conn.rollback()
            raise
