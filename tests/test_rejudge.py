"""Re-judging a stored run: new judges over identical transcripts, no debater called."""

import json
import subprocess
import sys

import pytest
from helpers import rows

from moot.errors import ConfigError
from moot.scenario.load import parse
from moot.workflows.rejudge import cohen, fleiss, rejudge
from moot.workflows.run import run_scenario

SCENARIO = """
name: rejudge-test
protocol: {name: debate, rounds: 2}
seats: {debater: {model: scripted}, judge: {model: scripted}}
dataset: {source: builtin:reading, limit: 6}
seed: 5
"""


@pytest.fixture
def run_db(tmp_path):
    db = tmp_path / "run.db"
    run_scenario(parse(SCENARIO), SCENARIO, out=db)
    return db


def test_the_original_model_re_judging_gives_the_original_verdicts(run_db):
    summary = rejudge(run_db, ["scripted"])
    assert summary.episodes == 6 and summary.calls == 6
    assert summary.table["rejudge:scripted"][3] == 0  # no flips
    old = rows(run_db, "SELECT episode, choice, probabilities FROM verdicts WHERE judge = 'judge' ORDER BY episode")
    new = rows(run_db, "SELECT episode, choice, probabilities FROM verdicts WHERE judge = 'rejudge:scripted' ORDER BY episode")
    assert new == old
    # the new judge read exactly the prompt the original judge read
    assert rows(run_db, "SELECT system, prompt, params FROM model_calls WHERE seat = 'judge' ORDER BY episode") == rows(
        run_db, "SELECT system, prompt, params FROM model_calls WHERE seat = 'rejudge:scripted' ORDER BY episode"
    )


def test_a_panel_with_swapped_order_is_stored_beside_the_original(run_db, monkeypatch):
    monkeypatch.setattr("moot.workflows.rejudge.FLUSH", 5)  # written in several batches
    before = rows(run_db, "SELECT count(*) FROM model_calls")[0][0]
    summary = rejudge(run_db, ["scripted", "scripted/other"], swap=True)
    labels = ["rejudge:scripted", "rejudge:scripted:swapped", "rejudge:scripted/other",
              "rejudge:scripted/other:swapped"]  # fmt: skip
    assert [j.label for j in summary.judges] == labels
    assert rows(run_db, "SELECT judge, count(*) FROM verdicts GROUP BY judge ORDER BY judge") == [
        ("judge", 6), *[(lab, 6) for lab in sorted(labels)]
    ]
    # only judge calls were made: 6 episodes x 4, numbered after each episode's own calls
    assert rows(run_db, "SELECT count(*) FROM model_calls")[0][0] == before + 24
    assert rows(run_db, "SELECT count(*) FROM model_calls WHERE seat NOT LIKE 'rejudge:%'")[0][0] == before
    assert rows(run_db, "SELECT min(seq) FROM model_calls WHERE seat LIKE 'rejudge:%' AND episode = 0")[0][0] == 5
    # swapped: the judge saw the answers in the other order; its verdict is stored in the
    # run's order (probabilities reversed back)
    (answers,) = rows(run_db, "SELECT answers FROM episodes WHERE id = 0")[0]
    a, b = json.loads(answers)
    (prompt,) = rows(run_db, "SELECT prompt FROM model_calls WHERE episode = 0 AND seat = 'rejudge:scripted:swapped'")[0]
    assert f"A: {b}\nB: {a}" in prompt and "(for answer B), round 1" in prompt
    for _, choice, probs, raw in rows(
        run_db, "SELECT episode, choice, probabilities, raw FROM verdicts WHERE judge = 'rejudge:scripted:swapped'"
    ):
        shown = json.loads(probs)[::-1]  # as the judge saw them
        assert choice == 1 - shown.index(max(shown))
        assert raw.startswith("Answer: " + "AB"[1 - choice])
    correct = dict(rows(run_db, "SELECT id, correct FROM episodes"))
    for ep, choice, ok in rows(run_db, "SELECT episode, choice, correct FROM verdicts"):
        assert ok == (choice == correct[ep])


def test_re_judging_again_adds_nothing(run_db):
    rejudge(run_db, ["scripted"], swap=True)
    again = rejudge(run_db, ["scripted"], swap=True)
    assert [(j.judged, j.skipped) for j in again.judges] == [(0, 6), (0, 6)]
    assert again.calls == 0
    assert rows(run_db, "SELECT count(*) FROM verdicts")[0][0] == 6 * 3


def test_a_prompt_file_replaces_the_judge_templates(run_db, tmp_path):
    tpl = tmp_path / "terse.txt"
    tpl.write_text("Q: {question}\n{answers}\n{transcript}\nLetter ({label_list})?")
    summary = rejudge(run_db, ["scripted"], prompt=tpl)
    assert summary.judges[0].label == "rejudge:scripted:prompt=terse"
    prompts = [p for (p,) in rows(run_db, "SELECT prompt FROM model_calls WHERE seat LIKE 'rejudge:%'")]
    assert len(prompts) == 6 and all(p.startswith("Q: ") and p.endswith("Letter (A or B)?") for p in prompts)
    bad = tmp_path / "bad.yaml"
    bad.write_text("turn: 'Which? {answer}'\n")
    with pytest.raises(ConfigError, match=r"unknown template field \{answer\}"):
        rejudge(run_db, ["scripted"], prompt=bad)


def test_a_protocol_without_a_judge_seat_is_refused(tmp_path):
    text = SCENARIO.replace("name: debate, rounds: 2", "name: multi_agent, rounds: 1").replace(
        "debater: {model: scripted}, judge: {model: scripted}", "agent: {model: scripted}"
    )
    db = tmp_path / "ma.db"
    run_scenario(parse(text), text, out=db)
    with pytest.raises(ConfigError, match="no finished episode has a judge seat"):
        rejudge(db, ["scripted"])


def test_bad_input_is_one_line_and_exit_2(run_db, tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "moot", "rejudge", *args],
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    for args, message in [
        ((str(tmp_path / "missing.db"), "--judge", "scripted"), "no such database"),
        ((str(run_db), "--judge", "nonsense-model"), "unknown model 'nonsense-model'"),
        ((str(run_db), "--judge", "scripted", "--judge", "scripted"), "a --judge is given twice"),
        ((str(run_db),), "give at least one --judge MODEL"),
        ((str(run_db), "--judge", "scripted", "--prompt", str(tmp_path / "none.txt")), "cannot read it"),
    ]:
        r = cli(*args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    ok = cli(str(run_db), "--judge", "moot-scripted/judge")  # through litellm's own path
    assert ok.returncode == 0, ok.stderr
    assert "rejudge:moot-scripted/judge: 6 new verdicts" in ok.stdout


def test_kappas():
    assert cohen([0, 1, 0, 1], [0, 1, 0, 1]) == 1.0
    assert cohen([0, 1, 0, 1], [1, 0, 1, 0]) == -1.0
    assert cohen([0, 0], [0, 0]) == 1.0  # one category, always agreed: moot counts it full agreement
    # Fleiss (1971)-style toy: 3 raters, 4 items
    assert fleiss([[0, 0, 0], [1, 1, 1], [0, 0, 1], [1, 1, 0]]) == pytest.approx(1 / 3)


@pytest.mark.parametrize("name", ["courtroom.yaml", "debate_interactive.yaml", "direct_qa_passage.yaml",
                                  "sweep.yaml", "debate_adaptive.yaml", "feedback.yaml"])  # fmt: skip
def test_every_judge_seat_is_re_judged_from_exactly_its_own_view(name, tmp_path):
    from pathlib import Path

    from moot.protocols import registry
    from moot.scenario.load import load_file
    from moot.workflows.run import apply_overrides

    root = Path(__file__).resolve().parents[1] / "scenarios"
    scenario, text = load_file(root / name)
    roles = set().union(*(registry.seat_names(c.scenario.protocol) for c in scenario.cells()))
    scenario = apply_overrides(scenario, limit=3, models={r: "scripted" for r in roles})
    db = tmp_path / "run.db"
    run = run_scenario(scenario, text, out=db, base=root)
    summary = rejudge(db, ["scripted"])
    assert summary.episodes == run.done and summary.table["rejudge:scripted"][3] == 0
    # each new call has the prompt of the original judge's final ruling, to the character
    same = rows(db, "SELECT count(*) FROM model_calls a JOIN verdicts v ON v.episode = a.episode"
                    " AND v.id = (SELECT max(id) FROM verdicts w WHERE w.episode = a.episode"
                    "  AND w.judge IN (SELECT seat FROM model_calls WHERE role = 'judge'))"
                    " JOIN model_calls b ON b.episode = v.episode AND b.seq = v.call_seq"
                    " WHERE a.seat = 'rejudge:scripted' AND a.system = b.system AND a.prompt = b.prompt")
    assert same == [(run.done,)]


def test_the_run_summary_still_reads_the_original_ruling(run_db):
    from moot.workflows.run import summarize

    def ruling():
        s = summarize(run_db, 0.0)
        return s.verdicts, s.correct, s.invalid

    before = ruling()
    rejudge(run_db, ["scripted/other"], swap=True)
    assert ruling() == before
