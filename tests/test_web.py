"""The web study (`moot serve`) over real HTTP on loopback: a two-person offline study with
its assignment rules and every response body inspected for what must not reach a browser,
the checks on every request (tokens, CSRF, origin, rate), a restart that loses nothing, a
crowd platform's participant, a live seat taken from a browser, and the commands."""

import json
import re
import sqlite3
import threading

import httpx
import pytest
from helpers import rows
from web_helpers import Person, Served, ServeProcess, csrf_of, take_live_turn

from moot.cli import main
from moot.scenario.load import parse
from moot.store.reader import RunReader
from moot.store.study import StudyTables
from moot.transcript import events
from moot.web.study import StudyConfig

STUDY = """
name: web-study
protocol: {rounds: 2, turns: sequential}
seats:
  debater: {model: scripted}
  consultant: {model: scripted}
  judge: {model: scripted}
dataset: {source: builtin:reading, limit: 3}
sweep:
  protocol.name: [consultancy, debate]
concurrency: 2
"""


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """Six finished episodes: three stories, each once per condition (consultancy, debate)."""
    from moot.workflows.run import run_scenario

    path = tmp_path_factory.mktemp("web") / "study.db"
    run_scenario(parse(STUDY), STUDY, out=path)
    conn = sqlite3.connect(path)  # every word its own, and a note the judge seat may not read
    conn.execute("UPDATE messages SET content = content || ' #' || episode || '.' || seq")
    conn.execute("INSERT INTO messages (episode, seq, round, phase, seat, role, side, content, audience, created_at)"
                 " SELECT id, 99, 1, 'scratch', 'judge', 'judge', NULL, 'SECRET-NOTE-' || id, '[\"nobody\"]', 0"
                 " FROM episodes")  # fmt: skip
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def study(stored, tmp_path):
    path = tmp_path / "study.db"
    path.write_bytes(stored.read_bytes())
    return path


def links(path, n, **kw):
    t = StudyTables(path)
    try:
        return [t.add_participant(**kw) for _ in range(n)]
    finally:
        t.close()


def judge_all(person: Person, answer=(70, 30)) -> list[int]:
    """Consent, then judge until nothing is left; the episodes in the order given."""
    page = person.get("/").text
    if "I agree" in page:
        person.post("/consent", page)
    order = []
    r = person.get("/judge")
    while "All done" not in r.text:
        assert r.status_code == 200, r.text
        ep = int(re.search(r"name=episode value=(\d+)", r.text).group(1))
        rnd = int(re.search(r"name=round value=(\d+)", r.text).group(1))
        if not order or order[-1] != ep:
            order.append(ep)
        r = person.post("/judge", r.text, episode=ep, round=rnd, p0=answer[0], p1=answer[1], reason="because")
        if "/feedback/" in str(r.url):
            assert "Feedback" in r.text and "Score (log rule)" in r.text
            r = person.get("/judge")
    return order


def test_two_people_judge_offline_under_the_assignment_rules(study):
    (p1, t1), (p2, t2) = links(study, 2)
    reader = RunReader(study)
    episodes = {ep.id: ep for ep in reader.episodes()}
    before = rows(study, "SELECT * FROM verdicts ORDER BY id")
    with Served(study, StudyConfig(k=2)) as s:
        ada, bo = Person(f"{s.url}/p/{t1}"), Person(f"{s.url}/p/{t2}")
        seen = {p1: judge_all(ada), p2: judge_all(bo, (20, 80))}
        admin = Person(s.admin)
        dash = admin.get("/").text
        csv = admin.get("/export/verdicts.csv").text
    for pid, order in seen.items():
        stories = [episodes[e].question_id for e in order]
        assert len(stories) == len(set(stories)) == 3  # no story twice; every story once
        cells = [episodes[e].cell for e in order]
        assert abs(cells.count(cells[0]) - (len(cells) - cells.count(cells[0]))) <= 1  # balanced
        stored_order = rows(study, "SELECT episode FROM study_assignments WHERE participant = ? ORDER BY position", pid)
        assert [e for (e,) in stored_order] == order
    per_episode = rows(study, "SELECT episode, count(*) FROM study_assignments GROUP BY episode")
    assert all(n <= 2 for _, n in per_episode)
    # verdicts as judge human:ID, each with its model_calls row, beside the models' verdicts
    got = rows(study, "SELECT v.judge, v.model, count(*), count(c.seq), min(c.latency_s >= 0)"
                      " FROM verdicts v JOIN model_calls c ON c.episode = v.episode AND c.seq = v.call_seq"
                      " WHERE v.judge LIKE 'human:%' GROUP BY v.judge ORDER BY v.judge")  # fmt: skip
    assert got == [("human:p1", "human", 6, 6, 1), ("human:p2", "human", 6, 6, 1)]
    params = rows(study, "SELECT params FROM model_calls WHERE seat = 'human:p1' LIMIT 1")[0][0]
    assert json.loads(params)["reason"] == "because"
    assert rows(study, "SELECT * FROM verdicts WHERE judge NOT LIKE 'human:%' ORDER BY id") == before  # untouched
    assert csv.count("human:p") == 12 and "p1" in dash and "p2" in dash and "accuracy" in dash
    # what the browsers received: never the passage (the judge is blind), never a message
    # hidden from the judge seat, never the original judge's ruling; the correct answer
    # only on feedback pages, after that episode's last verdict was committed
    bodies = ada.bodies + bo.bodies
    for ep in episodes.values():
        hidden = [m.content for m in reader.messages(ep.id) if not events.visible([m], "judge") or m.phase == "verdict"]
        assert hidden and any("SECRET-NOTE" in h for h in hidden)
        for body in bodies:
            assert ep.source[:80] not in body
            assert not any(h in body for h in hidden)
    shown = {m.content for ep in seen[p1] for m in reader.messages(ep) if m.phase != "verdict" and m.seq != 99}
    assert all(any(c in b for b in ada.bodies) for c in shown)  # the check can fail: the exchange was shown
    for body in bodies:
        if "<title>Feedback" not in body:
            assert "correct answer" not in body and "class=correct" not in body
    reader.close()


def test_a_wrong_or_missing_token_is_refused_alike(study):
    ((_, token),) = links(study, 1)
    with Served(study) as s:
        bodies = set()
        for path in ["/", "/p/x/", f"/p/{token[:-1]}x/", f"/p/{token[:-1]}x/judge", "/p//judge", "/admin/x/",
                     "/admin//", f"/admin/{token}/", "/crowd/x?PROLIFIC_PID=abc", "/p/x/app.js", "/nothing",
                     f"/p/{token}/../../admin/x/"]:  # fmt: skip
            r = httpx.get(s.url + path)
            assert r.status_code == 403, path
            bodies.add(r.text)
        r = httpx.post(f"{s.url}/p/bad/judge", data={"episode": 0})
        assert r.status_code == 403
        bodies.add(r.text)
        assert len(bodies) == 1 and "Forbidden" in bodies.pop()
        assert httpx.get(f"{s.url}/p/{token}/").status_code == 200


def test_posts_need_the_csrf_field_a_same_origin_and_a_modest_rate(study):
    ((_, token),) = links(study, 1)
    with Served(study, burst=5, rate=0.5) as s:
        base = f"{s.url}/p/{token}"
        page = httpx.get(base + "/").text
        assert httpx.post(base + "/consent", data={}).status_code == 403
        assert httpx.post(base + "/consent", data={"csrf": "0" * 32}).status_code == 403
        evil = {"Origin": "http://evil.example"}
        assert httpx.post(base + "/consent", data={"csrf": csrf_of(page)}, headers=evil).status_code == 403
        assert rows(study, "SELECT consented_at FROM study_participants") == [(None,)]
        assert httpx.post(base + "/consent", data={"csrf": csrf_of(page)}).status_code == 303
        assert rows(study, "SELECT consented_at IS NOT NULL FROM study_participants") == [(1,)]
        codes = [httpx.post(base + "/leaderboard", data={"csrf": csrf_of(page), "on": "1", "name": "Ada"}).status_code
                 for _ in range(6)]  # fmt: skip
        assert codes[0] == 303 and codes[-1] == 403  # the bucket ran dry


def test_the_leaderboard_shows_only_the_names_people_chose_escaped(study):
    """Three people judge; two join the leaderboard, one of them under a hostile name, which
    shows literally; the third (and every ID and admin label) never appears."""
    people = links(study, 3, label="Dr Secret Admin Note")
    with Served(study, StudyConfig(k=3, per_person=1)) as s:
        ada, bo, cy = (Person(f"{s.url}/p/{t}") for _, t in people)
        for p in (ada, bo, cy):
            judge_all(p)
        hostile = "  <script>alert(1)</script>  &lt;  "
        page = ada.get("/leaderboard").text
        assert "You are not on the leaderboard" in page and "<td class=name>" not in page  # nobody on it yet
        for bad, says in [("Ada\u202eevil", "invisible"), ("Ada\x07", "control"), ("x" * 33, "at most 32"),
                          ("   ", "type the name")]:  # fmt: skip
            r = ada.post("/leaderboard", page, on="1", name=bad.encode().decode("unicode_escape"))
            assert r.status_code == 422 and says in r.text, r.text
        assert rows(study, "SELECT count(*) FROM study_participants WHERE leaderboard OR display_name IS NOT NULL") == [
            (0,)]  # fmt: skip
        assert ada.post("/leaderboard", page, on="1", name="Ada").status_code == 200
        assert "You appear as <b id=my-name>Ada</b>" in ada.bodies[-1]
        r = bo.post("/leaderboard", page := bo.get("/leaderboard").text, on="1", name=" ada ")
        assert r.status_code == 422 and "already" in r.text  # nobody poses as another
        assert bo.post("/leaderboard", page, on="1", name=hostile).status_code == 200
        board = cy.get("/leaderboard").text
    assert rows(study, "SELECT id, display_name FROM study_participants WHERE leaderboard ORDER BY id") == [
        ("p1", "Ada"),
        ("p2", "<script>alert(1)</script> &lt;"),
    ]  # trimmed, spaces made one
    names = re.findall(r"<td class=name>(.*?)</td>", board)
    assert sorted(names) == ["&lt;script&gt;alert(1)&lt;/script&gt; &amp;lt;", "Ada"]
    assert "<script>alert" not in board and "class=you" not in board  # cy is not on it
    for body in ada.bodies + bo.bodies + cy.bodies:
        assert "Secret Admin" not in body and not re.search(
            r"[>\s]p[123][<\s]|Judge \d", body
        )  # (a token may hold "-p1-")
    # leaving takes the name off the board and out of the database
    with Served(study) as s:
        ada = Person(f"{s.url}/p/{people[0][1]}")
        ada.post("/leaderboard", ada.get("/leaderboard").text, on="0")
        assert "<td class=name>Ada</td>" not in ada.bodies[-1] and "You are not on the leaderboard" in ada.bodies[-1]
    assert rows(study, "SELECT leaderboard, display_name FROM study_participants WHERE id = 'p1'") == [(0, None)]


def test_a_restart_loses_no_verdict_and_resumes_the_same_episode(study):
    ((pid, token),) = links(study, 1)
    with Served(study) as s:
        p = Person(f"{s.url}/p/{token}")
        p.post("/consent", p.get("/").text)
        r = p.get("/judge")
        ep = int(re.search(r"name=episode value=(\d+)", r.text).group(1))
        r = p.post("/judge", r.text, episode=ep, round=1, p0=60, p1=40)
        assert "Round 2 of 2" in r.text
        stale = r.text
    assert rows(study, "SELECT episode, round FROM verdicts WHERE judge = ?", f"human:{pid}") == [(ep, 1)]
    with Served(study) as s:  # a new process over the same database
        p = Person(f"{s.url}/p/{token}")
        r = p.get("/judge")
        assert f"name=episode value={ep}" in r.text and "Round 2 of 2" in r.text
        p.post("/judge", stale, episode=ep, round=1, p0=10, p1=90)  # a repeat of the first: ignored
        r = p.post("/judge", r.text, episode=ep, round=2, p0=60, p1=40)
        assert "/feedback/" in str(r.url)
    assert rows(study, "SELECT round, probabilities FROM verdicts WHERE judge = ? ORDER BY id", f"human:{pid}") == [
        (1, "[0.6,0.4]"),
        (2, "[0.6,0.4]"),
    ]


def test_feedback_waits_for_the_last_verdict(study):
    ((_, token),) = links(study, 1)
    with Served(study) as s:
        p = Person(f"{s.url}/p/{token}")
        p.post("/consent", p.get("/").text)
        r = p.get("/judge")
        ep = int(re.search(r"name=episode value=(\d+)", r.text).group(1))
        assert p.get(f"/feedback/{ep}").status_code == 404
        p.post("/judge", r.text, episode=ep, round=1, p0=60, p1=40)
        assert p.get(f"/feedback/{ep}").status_code == 404  # one round to go
        assert p.get("/feedback/999").status_code == 404


def hostile_study(path, hostile: str, other_answer: str = "b") -> str:
    """One debate whose question, first answer and every message carry `hostile`, with one
    participant labelled by it: their link's token."""
    from moot.workflows.run import run_scenario

    text = STUDY.replace("sweep:\n  protocol.name: [consultancy, debate]\n", "").replace(
        "rounds: 2", "rounds: 1, name: debate").replace("  consultant: {model: scripted}\n", "")  # fmt: skip
    run_scenario(parse(text), text, out=path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE episodes SET question = ?, answers = json_array(?, ?)", (hostile, hostile, other_answer))
    conn.execute("UPDATE messages SET content = ? || ' ' || content", (hostile,))
    conn.commit()
    conn.close()
    ((_, token),) = links(path, 1, label=hostile)
    return token


def test_hostile_text_is_escaped(tmp_path):
    hostile = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'
    token = hostile_study(tmp_path / "h.db", hostile)
    with Served(tmp_path / "h.db") as s:
        p = Person(f"{s.url}/p/{token}")
        p.post("/consent", p.get("/").text)
        page = p.get("/judge").text
        dash = Person(s.admin).get("/").text
    for body in (page, dash):
        assert "<script>document" not in body and "<img src=x" not in body
    assert page.count("&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;") >= 3
    assert "&lt;img src=x onerror=alert(1)&gt;" in dash


def test_a_crowd_participant_comes_from_the_platform_and_leaves_with_a_code(study, capsys):
    assert main(["study", "crowd-link", str(study), "--completion-code", "C0DE42", "--url", "http://x"]) == 0
    link = capsys.readouterr().out.strip()
    token = re.search(r"/crowd/([^?]+)\?PROLIFIC_PID=", link).group(1)
    with Served(study, StudyConfig(k=2, per_person=1)) as s:
        p = Person(f"{s.url}/crowd/{token}?PROLIFIC_PID=5f3e9a1b2c")
        r = p.get("")
        assert r.status_code == 200 and "I agree" in r.text
        assert httpx.get(f"{s.url}/crowd/{token}?PROLIFIC_PID=<x>").status_code == 403
        assert httpx.get(f"{s.url}/crowd/wrong?PROLIFIC_PID=abc").status_code == 403
        person = Person(str(r.url).rsplit("/", 1)[0])
        judge_all(person)
        assert "C0DE42" in person.get("/judge").text and "C0DE42" in person.get("/").text
        again = Person(f"{s.url}/crowd/{token}?PROLIFIC_PID=5f3e9a1b2c").get("")
        assert "Your queue" in again.text  # the same participant, a fresh link
    assert rows(study, "SELECT id, completed_at IS NOT NULL FROM study_participants") == [("p1", 1)]
    assert b"5f3e9a1b2c" not in study.read_bytes()  # the platform's ID is kept only hashed


def test_the_commands(study, capsys, tmp_path):
    assert main(["study", "add-participants", str(study), "-n", "2", "--url", "http://h:1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in out] == ["p1", "p2"]
    token = out[0].split("/p/")[1].rstrip("/")
    assert token.encode() not in study.read_bytes() and len(token) >= 40  # stored hashed only
    assert main(["serve", str(tmp_path / "none.db")]) == 2
    assert main(["study", "add-participants", str(study), "-n", "0"]) == 2
    assert main(["serve", str(study), "--k", "0"]) == 2
    assert "no such database" in capsys.readouterr().err


LIVE = """
name: web-live
protocol: {name: debate, rounds: 2, turns: sequential, judge_questions: true, char_limit: 200, quote_limit: 60}
seats:
  debater_a: {model: human, join: true}
  debater_b: {model: scripted}
  judge: {model: human, join: true, time_limit: 300}
dataset: {source: builtin:reading, limit: 1}
concurrency: 1
"""


def test_live_seats_are_taken_from_the_browser(tmp_path):
    """`moot run` executes a debate whose debater_a and judge are people; they play from
    their browsers through `moot serve` on the same database."""
    import time

    from moot.workflows.run import LocalExecutor, plan

    prep, path, resume = plan(parse(LIVE), LIVE, out=tmp_path / "live.db")
    runner = threading.Thread(target=lambda: LocalExecutor().run(prep, path, resume, None), daemon=True)
    runner.start()
    for _ in range(400):  # the run has begun and asks debater_a
        if path.exists() and rows(path, "SELECT name FROM sqlite_master WHERE name = 'human_turns'"):
            if rows(path, "SELECT id FROM human_turns"):
                break
        time.sleep(0.05)
    ((_, deb),) = links(path, 1, seat="debater_a")
    ((_, jud),) = links(path, 1, seat="judge")
    with Served(path) as s:
        d, j = Person(f"{s.url}/p/{deb}"), Person(f"{s.url}/p/{jud}")
        for p in (d, j):
            p.post("/consent", p.get("/").text)
        turns = 0
        for _ in range(400):
            if not runner.is_alive():
                break
            r = d.get("/live")
            if "Your speech" in r.text:
                over = "x" * 250
                bad = d.post("/live", r.text, turn=re.search(r"name=turn value='(\d+)'", r.text).group(1), content=over)
                assert bad.status_code == 422 and "over the limit of 200" in bad.text
                quote = "The storm"
                r = d.post("/live", bad.text, turn=re.search(r"name=turn value='(\d+)'", bad.text).group(1),
                           content=f"As it says, <quote>{quote}</quote>.")  # fmt: skip
                turns += 1
                continue
            r = j.get("/live")
            if "Your question" in r.text:
                j.post("/live", r.text, turn=re.search(r"name=turn value='(\d+)'", r.text).group(1), content="Why?")
                turns += 1
            elif "Your verdict" in r.text:
                assert "Passage" not in r.text  # a blind judge
                j.post("/live", r.text, turn=re.search(r"name=turn value='(\d+)'", r.text).group(1), p0=80, p1=20)
                turns += 1
            else:
                with httpx.stream("GET", f"{s.url}/p/{jud}/events", timeout=5) as ev:
                    for line in ev.iter_lines():
                        if line.startswith("event: turn") or line.startswith(": waiting"):
                            break
        runner.join(30)
    assert not runner.is_alive() and turns >= 4
    taker = dict(rows(path, "SELECT DISTINCT seat, answer ->> 'by' FROM human_turns WHERE status = 'answered'"))
    assert taker == {"debater_a": "p1", "judge": "p2"}
    assert rows(path, "SELECT judge, model, probabilities FROM verdicts WHERE judge = 'judge'")[-1] == (
        "judge",
        "human/p2",  # the seat's ruling, taken by this participant
        "[0.8,0.2]",
    )
    speeches = rows(path, "SELECT content FROM messages WHERE seat = 'debater_a'")
    assert speeches and all("<quote>" in c for (c,) in speeches)
    assert rows(path, "SELECT count(*) FROM model_calls WHERE model LIKE 'human/p_'")[0][0] == turns
    assert rows(path, "SELECT count(*) FROM study_exposures")[0][0] == 2  # both read the story


def test_moot_serve_prints_the_admin_link_and_stops_on_ctrl_c(study):
    """The command as a person types it: its own process, loopback, Ctrl-C."""
    import signal
    import subprocess
    import sys
    import time

    from helpers import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from moot.cli import main; sys.exit(main(sys.argv[1:]))",
         "serve", str(study), "--port", str(port), "--k", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"admin: http://127.0.0.1:{port}/admin/"), line
        for _ in range(100):
            try:
                r = httpx.get(line.split(" ", 1)[1].strip())
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert r.status_code == 200 and "&quot;k&quot;: 3" in r.text
        assert httpx.get(f"http://127.0.0.1:{port}/admin/x/").status_code == 403
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "moot: stopped" in err and "Traceback" not in err
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/")


def test_a_restart_gives_back_the_live_turns_its_participants_held(tmp_path):
    """A live turn shown to a participant when the server stopped waits for them again."""
    from moot.workflows.run import run_scenario

    text = STUDY.replace("sweep:\n  protocol.name: [consultancy, debate]\n", "").replace(
        "rounds: 2", "rounds: 1, name: debate").replace("  consultant: {model: scripted}\n", "")  # fmt: skip
    run_scenario(parse(text), text, out=tmp_path / "r.db")
    links(tmp_path / "r.db", 1, seat="judge")
    conn = sqlite3.connect(tmp_path / "r.db")
    for seat in ("judge", "debater_a"):  # debater_a is nobody's seat here: left alone
        conn.execute("INSERT INTO human_turns (episode, seat, kind, round, request, asked_at, shown_at, status)"
                     " VALUES (0, ?, 'verdict', 1, '{}', 0, 1, 'shown')", (seat,))  # fmt: skip
    conn.commit()
    conn.close()
    with Served(tmp_path / "r.db"):
        pass
    assert rows(tmp_path / "r.db", "SELECT seat, status, shown_at FROM human_turns ORDER BY id") == [
        ("judge", "pending", None),
        ("debater_a", "shown", 1.0),
    ]


def test_an_offline_round_past_its_time_limit_expires_and_goes_to_someone_else(study):
    """A 1-second limit: a verdict sent after it is refused, told as such and recorded as a
    timeout (no choice); the episode goes back to the queue (with K = 1, the next person gets
    it); a round left open past the limit expires when its judge comes back."""
    import time

    (p1, t1), (_, t2) = links(study, 2)
    with Served(study, StudyConfig(k=1, time_limit=1)) as s:
        ada, bo = Person(f"{s.url}/p/{t1}"), Person(f"{s.url}/p/{t2}")
        for p in (ada, bo):
            p.post("/consent", p.get("/").text)
        page = ada.get("/judge").text
        first = int(re.search(r"name=episode value=(\d+)", page).group(1))
        assert "id=clock data-left='1'" in page and "id=time-up hidden" in page  # the clock, and what it says at 0
        time.sleep(1.6)  # past the limit and its grace (half the limit)
        late = ada.post("/judge", page, episode=first, round=1, p0=70, p1=30)
        assert late.status_code == 409 and "Time is up" in late.text and "not counted" in late.text
        assert rows(study, "SELECT episode, round, choice, parse_status FROM verdicts WHERE judge = ?", f"human:{p1}") == [
            (first, 1, None, "timeout")]  # fmt: skip
        assert judge_all(bo)[0] == first  # back in the queue: the next person judges it (K = 1 holds)
        page = ada.get("/judge").text
        second = int(re.search(r"name=episode value=(\d+)", page).group(1))
        time.sleep(1.6)  # away past the limit: the round expires when they come back
        third = int(re.search(r"name=episode value=(\d+)", ada.get("/judge").text).group(1))
        queue = ada.get("/").text
    reader = RunReader(study)
    stories = [reader.episode(e).question_id for e in (first, second, third)]
    reader.close()
    assert len(set(stories)) == 3  # never a story they have read again
    assert queue.count("time ran out") == 2
    assert rows(study, "SELECT episode FROM study_assignments WHERE participant = ? AND expired_at IS NOT NULL"
                       " ORDER BY position", p1) == [(first,), (second,)]  # fmt: skip
    per_episode = rows(
        study, "SELECT episode, count(*) FROM study_assignments WHERE expired_at IS NULL GROUP BY episode"
    )
    assert all(n <= 1 for _, n in per_episode)
    assert rows(study, "SELECT count(*) FROM verdicts WHERE judge = ? AND parse_status = 'timeout'", f"human:{p1}") == [
        (2,)]  # fmt: skip


def test_a_round_keeps_its_clock_across_a_restart_of_the_server(study):
    """The round's time runs from when it was first shown, on the store's clock: a person
    who reloads after the server restarts is not given the whole limit again, and an answer
    past it is refused as a timeout."""
    import time

    ((pid, token),) = links(study, 1)
    with Served(study, StudyConfig(k=1, time_limit=3)) as s:
        ada = Person(f"{s.url}/p/{token}")
        ada.post("/consent", ada.get("/").text)
        page = ada.get("/judge").text
        episode = int(re.search(r"name=episode value=(\d+)", page).group(1))
        assert "id=clock data-left='3'" in page
    ((shown,),) = rows(study, "SELECT shown_at FROM study_shown WHERE participant = ? AND episode = ? AND round = 1",
                       pid, episode)  # fmt: skip
    time.sleep(2.1)
    with Served(study, StudyConfig(k=1, time_limit=3)) as s:  # a new server over the same study
        ada = Person(f"{s.url}/p/{token}")
        page = ada.get("/judge").text
        assert int(re.search(r"name=episode value=(\d+)", page).group(1)) == episode
        left = int(re.search(r"id=clock data-left='(\d+)'", page).group(1))
        assert left <= 1  # not 3: the clock started before the restart
        time.sleep(2.6)  # past the limit and its grace (1.5 s) since it was first shown
        late = ada.post("/judge", page, episode=episode, round=1, p0=70, p1=30)
        assert late.status_code == 409 and "Time is up" in late.text
    assert rows(study, "SELECT shown_at FROM study_shown WHERE participant = ?", pid) == [(shown,)]
    assert rows(study, "SELECT round, choice, parse_status FROM verdicts WHERE judge = ?", f"human:{pid}") == [
        (1, None, "timeout")]  # fmt: skip


def test_a_time_limit_set_on_a_restart_runs_from_the_restart(study):
    """A round shown while the study had no limit is not expired the moment a restart adds
    one: its time runs from the restart (and its verdict keeps when it was first shown)."""
    import time

    ((pid, token),) = links(study, 1)
    with Served(study, StudyConfig(k=1)) as s:
        ada = Person(f"{s.url}/p/{token}")
        ada.post("/consent", ada.get("/").text)
        episode = int(re.search(r"name=episode value=(\d+)", ada.get("/judge").text).group(1))
    time.sleep(2.0)  # longer than the limit below and its grace (0.5 s)
    with Served(study, StudyConfig(k=1, time_limit=1)) as s:
        ada = Person(f"{s.url}/p/{token}")
        page = ada.get("/judge").text
        assert int(re.search(r"name=episode value=(\d+)", page).group(1)) == episode
        assert "id=clock data-left='1'" in page
        answer = ada.post("/judge", page, episode=episode, round=1, p0=70, p1=30)
        assert answer.status_code == 200
    assert rows(study, "SELECT parse_status FROM verdicts WHERE judge = ?", f"human:{pid}")[0] == ("ok",)


def open_fds() -> int:
    import os

    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("kept", [8, 1000])
def test_many_participants_do_not_grow_the_open_connections_without_bound(study, kept):
    """80 people open a debate each (a judging session each: SQLite connections of its own).
    With the server's bound (8 sessions here) the open file descriptors stay flat from the
    10th person to the 80th; without it (1000) they grow with every person."""
    people = links(study, 80)
    with Served(study, StudyConfig(k=100), sessions=kept) as s:
        counts = []
        for n, (_, token) in enumerate(people, 1):
            p = Person(f"{s.url}/p/{token}")
            p.post("/consent", p.get("/").text)
            assert "name=episode" in p.get("/judge").text
            p.close()
            if n in (10, 80):
                counts.append(open_fds())
        pool = s.study.sessions
        assert pool.opened == 80 and pool.open == min(kept, 80)
    grown = counts[1] - counts[0]
    if kept == 8:
        assert grown <= 4, counts
    else:
        assert grown >= 70, counts  # the measure can see it: a connection (and its files) a session


# -- `moot serve SCENARIO.yaml`: the run plays beside the server ------------------------------

JUDGE_STUDY = "scenarios/human/judge_study.yaml"  # shipped: a person judges two model debaters


def judge_until_done(person: Person, path, timeout: float = 120) -> list[str]:
    """The participant takes the judge seat's turns until the run is done: their kinds."""
    import time

    taken, deadline = [], time.monotonic() + timeout
    while rows(path, "SELECT status FROM runs") != [("done",)]:
        assert time.monotonic() < deadline, f"the run did not finish; taken {taken}"
        kind = take_live_turn(person)
        if kind is not None:
            taken.append(kind)
        else:
            time.sleep(0.05)
    return taken


def test_moot_serve_plays_a_scenario_whose_judge_is_a_participant(tmp_path, capsys):
    """`moot serve` over a shipped scenario: the run starts beside the server, a participant
    given the judge seat takes its turns over HTTP until the run is done, another judges the
    finished episode offline from the same server, and Ctrl-C stops the server (exit 0: the
    run had finished)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    db = tmp_path / "study.db"
    serve = ServeProcess(str(root / JUDGE_STUDY), "--limit", "1", "--model", "debater=scripted", "--out", str(db))
    try:
        assert serve.admin.startswith(f"{serve.url}/admin/")
        assert main(["study", "add-participants", str(db), "--seat", "judge", "--url", serve.url]) == 0
        assert main(["study", "add-participants", str(db), "--url", serve.url]) == 0
        (judge_link, reader_link) = [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()]
        judge = Person(judge_link)
        judge.post("/consent", judge.get("/").text)
        taken = judge_until_done(judge, db)
        assert taken.count("verdict") == 3 and "question" in taken  # three rounds; questions between
        reader = Person(reader_link)  # the finished episode, judged offline by someone else
        assert judge_all(reader) == [0]
        judge.get("/judge")
        assert "All done" in judge.bodies[-1]  # the live judge read that story: not theirs to judge again
        dash = Person(serve.admin).get("/").text
        assert "p1" in dash and "p2" in dash
    finally:
        rc, _, err = serve.interrupt()
    assert rc == 0 and "moot: stopped" in err and "Traceback" not in err, err
    assert "the run is done" in err and "moot study add-participants" in err
    # the live seat's rulings are the seat's (judge), model human/ID of the person who took them;
    # an offline judge's are judge human:ID
    assert rows(db, "SELECT round, judge, model, probabilities FROM verdicts WHERE model LIKE 'human%' ORDER BY id") == [
        (1, "judge", "human/p1", "[0.7,0.3]"), (2, "judge", "human/p1", "[0.7,0.3]"), (3, "judge", "human/p1", "[0.7,0.3]"),
        (1, "human:p2", "human", "[0.7,0.3]"), (2, "human:p2", "human", "[0.7,0.3]"), (3, "human:p2", "human", "[0.7,0.3]")]  # fmt: skip
    # every live turn was the judge seat's, and its rows name the participant who took it
    assert rows(db, "SELECT count(*) FROM model_calls WHERE model = 'human/p1' AND seat = 'judge'") == [(len(taken),)]
    assert rows(db, "SELECT DISTINCT seat, status, answer ->> 'by' FROM human_turns") == [("judge", "answered", "p1")]
    assert rows(db, "SELECT status FROM runs") == [("done",)]


def test_ctrl_c_mid_run_leaves_it_resumable(tmp_path):
    """Ctrl-C while the run waits for the judge: exit 130 with the resume line, the run stored
    as interrupted, and `moot run --resume` (here with the judge served again) finishes it."""
    import time
    from pathlib import Path

    from moot.workflows.run import resume_run

    root = Path(__file__).resolve().parents[1]
    db = tmp_path / "study.db"
    serve = ServeProcess(str(root / JUDGE_STUDY), "--limit", "1", "--model", "debater=scripted", "--out", str(db))
    try:
        ((_, token),) = links(db, 1, seat="judge")
        judge = Person(f"{serve.url}/p/{token}")
        judge.post("/consent", judge.get("/").text)
        for _ in range(600):
            if take_live_turn(judge) == "verdict":  # round 1 ruled: the run goes on, mid-episode
                break
            time.sleep(0.05)
        else:
            raise AssertionError("no turn for the judge")
    finally:
        rc, _, err = serve.interrupt()
    assert rc == 130 and "Traceback" not in err, err
    assert f"moot run --resume {db}" in err
    assert rows(db, "SELECT status FROM runs") == [("interrupted",)]
    assert rows(db, "SELECT status FROM episodes") in ([], [("running",)], [("interrupted",)])
    assert rows(db, "SELECT count(*) FROM human_turns WHERE status IN ('pending', 'shown')") == [(0,)]
    runner = threading.Thread(target=resume_run, args=(db,), daemon=True)
    runner.start()
    with Served(db) as s:
        taken = judge_until_done(Person(f"{s.url}/p/{token}"), db)
    runner.join(30)
    assert not runner.is_alive() and taken.count("verdict") == 3
    assert rows(db, "SELECT status FROM episodes") == [("done",)]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "no such file"),
        ("name: [unclosed\n", "invalid YAML"),
        ("name: x\nprotocol: {name: debate, rounds: -1}\nseats: {judge: {model: human}}\n", "rounds"),
    ],
)
def test_moot_serve_refuses_a_bad_scenario_in_one_line(tmp_path, capsys, text, says):
    path = tmp_path / "s.yaml"
    if text is not None:
        path.write_text(text)
    assert main(["serve", str(path), "--out", str(tmp_path / "x.db"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "s.yaml" in err and says in err, err
    assert not (tmp_path / "x.db").exists()


def test_moot_serve_refuses_a_port_in_use_before_the_run_starts(tmp_path, capsys):
    import socket
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", str(root / JUDGE_STUDY), "--limit", "1", "--model", "debater=scripted",
                     "--out", str(tmp_path / "x.db"), "--port", str(port)])  # fmt: skip
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()
