"""The web study in a real browser (Debian's headless chromium, driven by selenium) against a
real server on loopback: a two-person offline study from the admin's links to the feedback,
a live debate with a human judge against scripted debaters (the turn arrives without a
reload), a human debater quoting the passage by selecting it, hostile text shown literally,
and a wrong link refused. With MOOT_WEB_SCREENSHOTS=DIR the pages are saved there (the
README's screenshots: `MOOT_WEB_SCREENSHOTS=docs pytest tests/test_web_browser.py`)."""

import os
import re
import threading
import time
from pathlib import Path

from test_analysis_html import browser  # noqa: F401  (the chromium fixture)
from test_web import LIVE, links, rows, stored, study  # noqa: F401  (fixtures)
from web_helpers import Served

from moot.scenario.load import parse
from moot.web.study import StudyConfig

SHOTS = os.environ.get("MOOT_WEB_SCREENSHOTS")


def shot(driver, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SHOTS) / f"web-{name}.png"))


def by(driver, css):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def wait_for(driver, css, timeout=20.0):
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"{css} never appeared; the page says: {driver.find_element(By.TAG_NAME, 'body').text[:500]}")


def text(driver, css):
    """The element's text, or "" while the page is changing under us."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        return driver.find_element("css selector", css).text
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def wait_until(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def slide(driver, index, steps):
    from selenium.webdriver.common.keys import Keys

    key = Keys.ARROW_RIGHT if steps > 0 else Keys.ARROW_LEFT
    by(driver, f"#p{index}").send_keys(*([key] * abs(steps)))


def test_two_people_judge_a_study_offline_in_the_browser(study, browser):  # noqa: F811
    with Served(study, StudyConfig(k=2, per_person=2)) as s:
        browser.get(s.admin + "/")
        by(browser, "input[name=n]").clear()
        by(browser, "input[name=n]").send_keys("2")
        by(browser, "#add").click()
        wait_for(browser, "#new-links")
        people = [el.text for el in browser.find_elements("css selector", "#new-links code.link")]
        assert len(people) == 2
        for n, link in enumerate(people):
            browser.get(link)
            by(browser, "#consent").click()
            wait_for(browser, "#next").click()
            for episode in range(2):
                for rnd in (1, 2):
                    wait_for(browser, "#rule")
                    wait_until(lambda rnd=rnd: text(browser, ".meta") == f"Round {rnd} of 2")
                    assert by(browser, ".meta").text == f"Round {rnd} of 2"
                    slide(browser, 0, 20 if n == 0 else -30)
                    want = ["70%", "30%"] if n == 0 else ["20%", "80%"]
                    assert [by(browser, "#o0").text, by(browser, "#o1").text] == want  # always 100% in all
                    if n == 0 and episode == 0 and rnd == 2:
                        by(browser, "#reason").send_keys("The consultant never quoted the storm.")
                        shot(browser, "judge")
                    by(browser, "#rule").click()
                wait_for(browser, "#result")
                assert re.search(r"Your final verdict was (right|wrong)\. Score \(log rule\): [+-]\d\.\d\d",
                                 by(browser, "#result").text)  # fmt: skip
                shot(browser, "feedback") if n == 0 and episode == 0 else None
                by(browser, "#next").click()
            wait_for(browser, "#all-done")
            browser.get(link)
            assert len(browser.find_elements("css selector", "#history tr")) == 3  # the header and two
            if n == 0:  # the other stays off the leaderboard
                by(browser, "#board").click()
                wait_for(browser, "#display-name").send_keys("<b>Ada</b> & co")
                by(browser, "#board-join").click()
                wait_until(lambda: text(browser, "#my-name") == "<b>Ada</b> & co")
        browser.get(people[1] + "leaderboard")
        names = [el.text for el in browser.find_elements("css selector", "#leaderboard td.name")]
        assert names == ["<b>Ada</b> & co"]  # shown literally: nothing made bold
        assert browser.find_elements("css selector", "#leaderboard b") == []
        shot(browser, "leaderboard")
        browser.get(s.admin + "/")
        shot(browser, "dashboard")
        conditions = [r.text.split() for r in browser.find_elements("css selector", "#conditions tr")[1:]]
        assert [c[:4] for c in conditions] == [
            ["protocol.name=consultancy", "3", "2", "2"],
            ["protocol.name=debate", "3", "2", "2"],
        ]  # balanced: 2 and 2
        people = [r.text.split()[:3] for r in browser.find_elements("css selector", "#participants tr")[1:]]
        assert people == [["p1", "2", "2"], ["p2", "2", "2"]]
    got = rows(study, "SELECT judge, count(*), count(DISTINCT episode) FROM verdicts WHERE judge LIKE 'human:%'"
                      " GROUP BY judge ORDER BY judge")  # fmt: skip
    assert got == [("human:p1", 4, 2), ("human:p2", 4, 2)]
    assert rows(study, "SELECT DISTINCT probabilities FROM verdicts WHERE judge = 'human:p2'") == [("[0.2,0.8]",)]
    mine = rows(study, "SELECT participant, episode FROM study_assignments")
    stories = rows(
        study, "SELECT a.participant, e.question_id FROM study_assignments a JOIN episodes e ON e.id = a.episode"
    )
    assert len(set(stories)) == len(mine) == 4  # nobody read a story twice


def start_live(path_out, text):
    from moot.workflows.run import LocalExecutor, plan

    prep, path, resume = plan(parse(text), text, out=path_out)
    runner = threading.Thread(target=lambda: LocalExecutor().run(prep, path, resume, None), daemon=True)
    runner.start()
    for _ in range(400):
        if path.exists() and rows(path, "SELECT name FROM sqlite_master WHERE name = 'human_turns'"):
            if rows(path, "SELECT id FROM human_turns"):
                break
        time.sleep(0.05)
    return path, runner


JUDGED = """
name: web-judge
protocol: {name: debate, rounds: 3, turns: sequential, stop_threshold: 1.0}
seats:
  debater_a: {model: human, join: true}
  debater_b: {model: scripted}
  judge: {model: human, join: true, time_limit: 600}
dataset: {source: builtin:reading, limit: 1}
concurrency: 1
"""


def test_a_person_judges_a_live_debate_in_the_browser(tmp_path, browser):  # noqa: F811
    """`moot serve SCENARIO.yaml`: the judge waits on their page while the debaters speak
    (one of them a person over HTTP, the other scripted); their turn arrives by the event
    stream, with no reload; Ctrl-C once the run is done stops the server cleanly."""
    from web_helpers import Person, ServeProcess

    scenario, path = tmp_path / "judged.yaml", tmp_path / "live.db"
    scenario.write_text(JUDGED)
    s = ServeProcess(str(scenario), "--out", str(path))
    ((_, deb),) = links(path, 1, seat="debater_a")
    ((_, jud),) = links(path, 1, seat="judge")
    try:
        browser.get(f"{s.url}/p/{jud}/")
        by(browser, "#consent").click()
        wait_for(browser, "#live").click()
        wait_for(browser, "#waiting")
        browser.execute_script("window.notReloaded = true")
        debater = Person(f"{s.url}/p/{deb}")
        debater.post("/consent", debater.get("/").text)
        for rnd in (1, 2):
            wait_until(lambda: "name=turn" in debater.get("/live").text)
            page = debater.bodies[-1]
            turn = re.search(r"name=turn value='(\d+)'", page).group(1)
            debater.post("/live", page, turn=turn, content=f"Round {rnd}: the storm did it.")
            wait_until(lambda rnd=rnd: f"Round {rnd} of 3" in text(browser, "main"))
            assert browser.execute_script("return window.notReloaded === true")  # no reload
            assert by(browser, "#clock").text.startswith(("10:", "9:"))
            assert browser.find_elements("css selector", "#passage") == []  # a blind judge
            assert f"Round {rnd}: the storm did it." in by(browser, "#transcript").text
            if rnd == 1:
                slide(browser, 0, 10)
                by(browser, "#rule").click()  # go on
                wait_for(browser, "#waiting")
                browser.execute_script("window.notReloaded = true")
        shot(browser, "live-judge")
        slide(browser, 0, -40)
        by(browser, "#end").click()
        by(browser, "#rule").click()  # ends the debate after round 2 of 3
        wait_until(lambda: rows(path, "SELECT status FROM runs") == [("done",)])
    finally:
        rc, _, err = s.interrupt()
    assert rc == 0 and "Traceback" not in err, err
    got = rows(path, "SELECT round, probabilities FROM verdicts WHERE judge = 'judge' ORDER BY id")
    assert got == [(1, "[0.6,0.4]"), (2, "[0.1,0.9]")]
    # each seat's turns name the participant who took them (model human/ID)
    assert rows(path, "SELECT seat, model, count(*) FROM model_calls WHERE model LIKE 'human/%' GROUP BY seat") == [
        ("debater_a", "human/p1", 2),
        ("judge", "human/p2", 2),
    ]


DEBATER = """
name: web-debater
protocol: {name: debate, rounds: 1, turns: sequential, char_limit: 300, quote_limit: 80}
seats:
  debater_a: {model: human, join: true}
  debater_b: {model: scripted}
  judge: {model: scripted}
dataset: {source: builtin:reading, limit: 1}
concurrency: 1
"""


def test_a_person_debates_and_quotes_the_passage_by_selecting_it(tmp_path, browser):  # noqa: F811
    path, runner = start_live(tmp_path / "deb.db", DEBATER)
    ((_, token),) = links(path, 1, seat="debater_a")
    with Served(path) as s:
        browser.get(f"{s.url}/p/{token}/")
        by(browser, "#consent").click()
        wait_for(browser, "#live").click()
        wait_for(browser, "#quote")
        source = by(browser, "#source").text
        words = source.split(".")[0].strip()[:60]
        by(browser, "#content").send_keys("Read it: ")
        browser.execute_script(
            """const el = document.getElementById('source'); const t = el.firstChild;
               const i = t.textContent.indexOf(arguments[0]); const r = document.createRange();
               r.setStart(t, i); r.setEnd(t, i + arguments[0].length);
               const s = window.getSelection(); s.removeAllRanges(); s.addRange(r);""", words)  # fmt: skip
        by(browser, "#quote").click()
        text = by(browser, "#content").get_attribute("value")
        assert text == f"Read it: <quote>{words}</quote> "
        assert by(browser, "#count-quoted").text == str(len(words))
        assert by(browser, "#count-chars").text == str(len(f"Read it: {words} "))
        shot(browser, "debater")
        by(browser, "#content").send_keys("x" * 300)
        assert by(browser, "#count-chars").get_attribute("class") == "over"
        by(browser, "#send").click()  # over the limit: the server refuses, the draft stays
        assert "over the limit of 300" in wait_for(browser, "#error").text
        by(browser, "#content").clear()
        by(browser, "#content").send_keys(text)
        by(browser, "#send").click()
        runner.join(30)
        assert not runner.is_alive()
    ((content, quotes),) = rows(path, "SELECT content, quotes FROM messages WHERE seat = 'debater_a'")
    assert content == text.rstrip() or content == text
    assert '"verified": true' in quotes.replace('"verified":true', '"verified": true')


def test_hostile_text_shows_literally_and_runs_nothing(tmp_path, browser):  # noqa: F811
    from test_web import hostile_study

    hostile = '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'
    token = hostile_study(tmp_path / "h.db", hostile, "<b>bold</b>")
    with Served(tmp_path / "h.db") as s:
        browser.get(f"{s.url}/p/{token}/")
        by(browser, "#consent").click()
        wait_for(browser, "#next").click()
        wait_for(browser, "#rule")
        time.sleep(0.3)
        assert browser.title == "Your verdict"  # no script retitled it
        assert by(browser, "#question").text == hostile
        assert "<b>bold</b>" in by(browser, "ol.answers").text
        assert browser.find_elements("css selector", "main img, main b + b") == []
        assert hostile in by(browser, "#transcript").text
        browser.get(s.admin + "/")
        assert hostile in by(browser, "#participants").text and browser.title == "Dashboard"


def test_a_wrong_link_is_refused_in_the_browser(study, browser):  # noqa: F811
    ((_, token),) = links(study, 1)
    with Served(study) as s:
        for url in (f"{s.url}/p/{token[:-2]}xx/", f"{s.url}/admin/{token}/", f"{s.url}/"):
            browser.get(url)
            assert by(browser, "body").text == "Forbidden." and browser.title == "Forbidden"


def test_the_clock_counts_down_and_says_when_time_is_up(study, browser):  # noqa: F811
    """A 2-second limit: the clock counts down to 0:00, the page then says time is up, and the
    verdict sent anyway is refused and said to be."""
    ((_, token),) = links(study, 1)
    with Served(study, StudyConfig(time_limit=2)) as s:
        browser.get(f"{s.url}/p/{token}/")
        by(browser, "#consent").click()
        wait_for(browser, "#next").click()
        wait_for(browser, "#rule")
        assert by(browser, "#clock").text in ("0:02", "0:01") and not by(browser, "#time-up").is_displayed()
        wait_until(lambda: by(browser, "#clock").text == "0:00", timeout=5)
        wait_until(lambda: by(browser, "#time-up").is_displayed(), timeout=2)
        assert by(browser, "#time-up").text == "Time is up: an answer now is not counted."
        time.sleep(1.1)  # the grace the server gives the network is over too
        by(browser, "#rule").click()
        assert "this debate goes to someone else" in wait_for(browser, "#timed-out").text
    assert rows(study, "SELECT parse_status FROM verdicts WHERE judge = 'human:p1'") == [("timeout",)]
