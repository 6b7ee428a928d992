"""Seats that learn across episodes: lessons written after each result (or past cases),
shown in later turns, stored with the episode that wrote them, carried into a later run."""

import itertools
import sqlite3

from moot.agents.memory import Memory
from moot.scenario.load import parse
from moot.workflows.run import resume_run, run_scenario

COURT = """
name: learning
protocol: {{name: courtroom}}
seats:
  lawyer: {{model: scripted/lawyer, memory: {{kind: {kind}, size: 2{load}}}}}
  witness: {{model: scripted}}
  judge: {{model: scripted}}
models:
  scripted/lawyer: {{replies: ["Objection.", "Cite the contract.", "Quote the contract early."]}}
dataset: {{source: builtin:cases, limit: 5}}
concurrency: 8
"""


def court(tmp_path, name="m.db", kind="lessons", load=""):
    db = tmp_path / name
    run_scenario(parse(COURT.format(kind=kind, load=f", load: {load}" if load else "")), out=db)
    return sqlite3.connect(db)


def system_prompts(conn, seat):
    return [s for (s,) in conn.execute(
        "SELECT system FROM model_calls WHERE seat = ? AND prompt NOT LIKE 'The case is over.%' ORDER BY episode, seq",
        (seat,))]  # fmt: skip


def test_each_lawyer_writes_a_lesson_after_every_case_and_reads_the_last_ones(tmp_path):
    conn = court(tmp_path)
    lessons = conn.execute("SELECT episode, content FROM memories WHERE seat = 'plaintiff_lawyer' ORDER BY id").fetchall()
    assert [e for e, _ in lessons] == [0, 1, 2, 3, 4]
    # the lesson is the seat's own reply to being told the result (a stored model call)
    (told,) = conn.execute(
        "SELECT prompt FROM model_calls WHERE episode = 0 AND seat = 'plaintiff_lawyer' AND prompt LIKE 'The case is over.%'"
    ).fetchone()
    assert "The judge ruled" in told
    # episode 3's turns show the lessons of episodes 1 and 2 (size 2), not 0's
    (ep3,) = {s for (s,) in conn.execute(
        "SELECT system FROM model_calls WHERE episode = 3 AND seat = 'plaintiff_lawyer' AND prompt NOT LIKE 'The case is over.%'")}  # fmt: skip
    assert ep3.endswith("Lessons from your earlier cases:\n- " + lessons[1][1] + "\n- " + lessons[2][1])
    # the first case starts with nothing learned
    (ep0,) = {s for (s,) in conn.execute(
        "SELECT system FROM model_calls WHERE episode = 0 AND seat = 'plaintiff_lawyer' AND prompt NOT LIKE 'The case is over.%'")}  # fmt: skip
    assert "Lessons" not in ep0
    # whether the seat won is kept beside each entry: the judge's ruling against its side
    for episode, won in conn.execute("SELECT episode, won FROM memories WHERE seat = 'defence_lawyer'"):
        (choice,) = conn.execute("SELECT choice FROM verdicts WHERE episode = ? ORDER BY id DESC LIMIT 1", (episode,)).fetchone()
        (side,) = conn.execute("SELECT assignments ->> '$.defence_lawyer' FROM episodes WHERE id = ?", (episode,)).fetchone()
        assert won == (choice == side)


def test_episodes_that_share_a_memory_run_one_at_a_time_in_order(tmp_path):
    conn = court(tmp_path)
    spans = conn.execute(
        "SELECT episode, min(started_at), max(started_at + latency_s) FROM model_calls GROUP BY episode ORDER BY episode"
    ).fetchall()
    for (_, _, end), (_, start, _) in itertools.pairwise(spans):
        assert start >= end


def test_past_cases_are_recalled_by_likeness_to_the_new_question():
    m = Memory("cases", size=1)
    m.add("Who owns the orchard after the storm?", "orchard case: lost")
    m.add("Was the bakery lease broken by the landlord?", "lease case: won")
    m.add("Did the contractor finish the roof on time?", "roof case: won")
    assert m.recall("Is the tenant's lease of the bakery still valid?") == ["lease case: won"]
    assert Memory("lessons", size=2, entries=[("", "a"), ("", "b"), ("", "c")]).recall("x") == ["b", "c"]


def test_a_later_run_starts_from_a_saved_memory(tmp_path):
    first = court(tmp_path, "first.db")
    saved = [c for (c,) in first.execute("SELECT content FROM memories WHERE seat = 'plaintiff_lawyer' ORDER BY id")]
    second = court(tmp_path, "second.db", load=tmp_path / "first.db")
    carried = second.execute(
        "SELECT content, source FROM memories WHERE seat = 'plaintiff_lawyer' AND episode IS NULL ORDER BY id"
    ).fetchall()
    assert [c for c, _ in carried] == saved and all(s.endswith("first.db") for _, s in carried)
    # its first case already reads the last lessons of the first run
    assert system_prompts(second, "plaintiff_lawyer")[0].endswith("- " + saved[-2] + "\n- " + saved[-1])


def test_a_stopped_run_resumes_with_the_memory_its_finished_episodes_wrote(tmp_path):
    conn = court(tmp_path, "whole.db")
    whole = conn.execute("SELECT seat, episode, content FROM memories ORDER BY id").fetchall()
    broken = tmp_path / "broken.db"
    court(tmp_path, "broken.db")
    with sqlite3.connect(broken) as c:  # as if the process died during episode 3
        c.execute("UPDATE episodes SET status = 'running' WHERE id >= 3")
    resume_run(broken)
    assert sqlite3.connect(broken).execute("SELECT seat, episode, content FROM memories ORDER BY episode, seat").fetchall() == sorted(
        whole, key=lambda r: (r[1], r[0]))
    assert system_prompts(sqlite3.connect(broken), "plaintiff_lawyer") == system_prompts(conn, "plaintiff_lawyer")
