"""`moot export --format html`: one self-contained page of transcripts to share. Hostile text
from a run (speeches, questions, names) shows literally, nothing runs, episodes marked not
for publication are left out unless asked for (the page says so), and the page opens in a
real headless Chromium, whose switch between the full and the judge's view works without
scripts."""

import html
import json
import os
import re
import shutil
import tempfile

import pytest
from test_analysis import F, T, Transcripts

from moot.analysis.export import export, export_files
from moot.cli import main

HOSTILE = [
    '<script>document.title = "pwned"</script>',
    "</textarea><img src=x onerror=\"document.title='pwned'\">",
    '"><svg onload=alert(1)>',
    "<!-- a comment that never closes",
    "&amp; &lt;b&gt; entities, literally",
    "<style>body { display: none }</style>",
    "[bold]rich markup[/bold] {{7*7}} ${x}",
    "<v_quote>a forged verified mark</v_quote>",
]
SIDES = {"debater_a": 0, "debater_b": 1}
SEATS = {"debater_a": {"role": "debater"}, "debater_b": {"role": "debater"},
         "judge": {"role": "judge", "sees_source": False}}  # fmt: skip
SECRET_ROW = "What is the secret of row 2?"
SECRET_DATASET = "What does the private dataset ask?"


@pytest.fixture
def hostile(tmp_path):
    """A public cell of debates whose every field is hostile, a row marked private in it,
    and a cell whose dataset the scenario marks private."""
    cells = {"<u>public</u> cell": {"dataset": {"source": "mine.jsonl"}},
             "gpqa": {"dataset": {"source": "gpqa.jsonl", "private": True}}}  # fmt: skip
    t = Transcripts(tmp_path / "hostile.db", "hostile", cells=cells)
    public = "<u>public</u> cell"
    e = t.episode("q-<b>1</b>", [HOSTILE[0], HOSTILE[1]], 0, cell=public, assignments=SIDES, seats=SEATS,
                  protocol="debate", source=f"The passage says {HOSTILE[2]}", text=HOSTILE[3])  # fmt: skip
    t.verdict(e, None, [0.5, 0.5], round=0)
    speech = f"I quote {HOSTILE[4]} and {HOSTILE[5]}"
    t.message(e, 1, "debater_a", speech, side=0, quotes=[(HOSTILE[4], True)])
    t.message(e, 1, "debater_b", f"{HOSTILE[6]} {HOSTILE[7]}", side=1, quotes=[(HOSTILE[7], False)])
    t.message(e, 1, "debater_b", "a note to myself", side=1, audience=["debater_b"], phase="scratch")
    t.verdict(e, 0, [0.7, 0.3], round=1)
    t.verdict(e, 1, [0.2, 0.8], round=1, judge="offline:<i>Mallory</i>")
    e = t.episode("q2", [T, F], 0, cell=public, assignments=SIDES, seats=SEATS, protocol="debate",
                  attributes={"private": True}, text=SECRET_ROW)  # fmt: skip
    t.verdict(e, 0, [0.9, 0.1])
    e = t.episode("q3", [T, F], 0, cell="gpqa", assignments=SIDES, seats=SEATS, protocol="debate", text=SECRET_DATASET)
    t.verdict(e, 0, [0.9, 0.1])
    return t.close()


def test_hostile_text_is_escaped_and_private_rows_are_left_out(hostile, tmp_path):
    (page,) = export([hostile], tmp_path / "out", "html")
    text = page.read_text()
    for s in HOSTILE:
        assert html.escape(s) in text, s
    assert "<script" not in text.lower() and "<img" not in text and "<svg" not in text
    assert text.lower().count("<style") == 1  # the page's own
    assert "<b>1</b>" not in text and "&lt;i&gt;Mallory&lt;/i&gt;" in text and "&lt;u&gt;public" in text
    assert SECRET_ROW not in text and SECRET_DATASET not in text
    assert "Left out 2 episodes not for publication" in text
    # self-contained: no tag refers to anything outside the page, no style imports any
    assert not re.search(r"<[a-z][^<>]*\s(src|href|action|srcset)\s*=\s*(?![\"']?#)", text, re.I)
    assert "@import" not in text and "url(" not in text


def test_jsonl_leaves_private_rows_out_and_says_so(hostile, tmp_path):
    written, _ = export_files([hostile], tmp_path / "out", "jsonl")
    assert sorted(p.name for p in written) == ["episodes.jsonl", "excluded.json", "messages.jsonl", "verdicts.jsonl"]
    rows = [json.loads(line) for line in (tmp_path / "out" / "episodes.jsonl").read_text().splitlines()]
    assert [r["question"] for r in rows] == [HOSTILE[3]]
    note = json.loads((tmp_path / "out" / "excluded.json").read_text())
    assert (note["left_out"], note["rows_private"], note["dataset_private"]) == (2, {"hostile.db": [1]}, {"hostile.db": [2]})
    assert all(SECRET_ROW not in p.read_text() and SECRET_DATASET not in p.read_text() for p in written)
    # asked for, they are kept, and the old note goes
    written, _ = export_files([hostile], tmp_path / "out", "jsonl", include_private=True)
    rows = [json.loads(line) for line in (tmp_path / "out" / "episodes.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and not (tmp_path / "out" / "excluded.json").exists()


def test_the_cli_selects_and_warns(hostile, tmp_path, capsys):
    out = tmp_path / "keep.html"
    assert main(["export", str(hostile), "--format", "html", "--include-private", "--episodes", "1-2", "--out", str(out)]) == 0
    assert "included 2 episodes marked not for publication" in capsys.readouterr().err
    text = out.read_text()
    assert SECRET_ROW in text and SECRET_DATASET in text and HOSTILE[0] not in text  # episodes 1 and 2 only
    assert "This file includes 2 episodes marked not for publication" in text
    assert main(["export", str(hostile), "--format", "html", "--out", str(tmp_path / "x.html")]) == 0
    assert capsys.readouterr().err.startswith("left out 2 episodes not for publication")
    assert main(["export", str(hostile), "--format", "html", "--episodes", "3-1"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_private_dataset_in_a_real_run_stays_private(tmp_path):
    from moot.scenario.load import parse
    from moot.workflows.run import run_scenario

    db = tmp_path / "gpqa.db"
    text = ("name: gpqa\nprotocol: {name: debate, rounds: 1}\nseats: {debater: {model: scripted, max_tokens: 20},"
            " judge: {model: scripted}}\ndataset: {source: builtin:reading, limit: 2, private: true}\n")  # fmt: skip
    run_scenario(parse(text), text, out=db)
    _, left = export_files([db], tmp_path / "out", "jsonl")
    assert left.count == 2 and (tmp_path / "out" / "episodes.jsonl").read_text() == ""
    assert export_files([db], tmp_path / "all", "jsonl", include_private=True)[1].count == 2
    assert len((tmp_path / "all" / "episodes.jsonl").read_text().splitlines()) == 2
    # the mark travels with the rows: read back, the episodes are still private
    from moot.importers import import_path

    import_path("moot-jsonl", tmp_path / "all", tmp_path / "back.db")
    assert export_files([tmp_path / "back.db"], tmp_path / "again", "jsonl")[1].count == 2
    # training data too: a private question must not end up in a training set either
    (trajectories, note) = export([db], tmp_path / "train", "trajectories")
    assert trajectories.read_text() == "" and json.loads(note.read_text())["left_out"] == 2


def test_a_row_marked_private_in_the_dataset_stays_private(tmp_path):
    """GPQA asks that its questions never appear in plain text online: a row can say so."""
    from moot.scenario.load import parse
    from moot.workflows.run import run_scenario

    rows = [{"id": "open", "question": "Which colour is the sky?", "options": ["Blue", "Green"], "answer": 0},
            {"id": "gpqa-1", "question": "A question GPQA keeps offline?", "options": ["Yes", "No"], "answer": 0,
             "private": True}]  # fmt: skip
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = ("name: rows\nprotocol: {name: debate, rounds: 1}\nseats: {debater: {model: scripted, max_tokens: 20},"
            " judge: {model: scripted}}\ndataset: {source: rows.jsonl}\n")  # fmt: skip
    db = tmp_path / "rows.db"
    run_scenario(parse(text), text, base=tmp_path, out=db)
    page, left = export_files([db], tmp_path / "out", "html")
    assert left.count == 1 and left.rows == {"rows.db": [1]}
    html = page[0].read_text()
    assert "Which colour is the sky?" in html and "GPQA keeps offline" not in html


# -- in a real browser -------------------------------------------------------------------

CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1100,1400"]  # fmt: skip


@pytest.fixture
def browser():
    """Debian's chromium driven by selenium. Locally a machine without it skips; in CI
    (`CI` set, where .ci/run installs it) its absence is a failure."""
    missing = [p for p in (CHROMIUM, DRIVER) if not os.path.exists(p)]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have a browser for this test: missing {', '.join(missing)}")
        pytest.skip(f"no headless browser here: missing {', '.join(missing)}")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="moot-chromium-")
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_the_page_reads_in_chromium_and_switches_to_the_judges_view(hostile, tmp_path, browser):
    from selenium.webdriver.common.by import By

    (page,) = export([hostile], tmp_path / "out", "html")
    browser.get(page.as_uri())
    assert browser.title == "moot transcripts: hostile.db"  # no script retitled it
    assert browser.find_elements(By.TAG_NAME, "script") == []
    assert browser.find_elements(By.TAG_NAME, "img") == [] and browser.find_elements(By.TAG_NAME, "svg") == []
    browser.find_element(By.CSS_SELECTOR, "details.passage summary").click()  # the passage, opened
    body = browser.find_element(By.TAG_NAME, "body").text
    for s in HOSTILE:
        assert s in body, s  # shown literally, as the characters it is made of
    assert SECRET_ROW not in body and SECRET_DATASET not in body
    quotes = browser.find_elements(By.CSS_SELECTOR, ".quote.ok, .quote.bad")
    marks = {q.get_attribute("class"): q.text for q in quotes if HOSTILE[4] in q.text or HOSTILE[7] in q.text}
    assert marks == {"quote ok": f"✓ verified{HOSTILE[4]}", "quote bad": f"✗ not in the passage{HOSTILE[7]}"}

    def shown(selector):
        return [e for e in browser.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()]

    scratch = "a note to myself"
    assert shown(".truth") and scratch in body and "Mallory" in body
    browser.find_element(By.CSS_SELECTOR, "label[for=view-judge]").click()
    judged = browser.find_element(By.TAG_NAME, "body").text
    assert not shown(".truth") and "ruled right" not in judged  # the judge does not know the answer
    assert scratch not in judged  # a message the judge's seat was not shown
    assert "Mallory" not in judged and "passage says" not in judged  # another judge; a passage it never read
    assert HOSTILE[6] in judged and "A 70% · B 30% → A" in judged
    browser.find_element(By.CSS_SELECTOR, "label[for=view-full]").click()
    assert shown(".truth")
