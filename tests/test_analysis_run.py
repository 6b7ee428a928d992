"""End to end: direct QA, consultancy and debate run on the scripted model, then
`moot analyze` and `moot export` on the three databases."""

import json

import pytest

from moot.cli import main
from moot.scenario.load import parse
from moot.workflows.run import run_scenario

SCENARIOS = {
    "direct-qa": "protocol: {name: direct_qa}\nseats: {judge: {model: scripted}}",
    "consultancy": "protocol: {name: consultancy, rounds: 2}\n"
    "seats: {consultant: {model: scripted, max_tokens: 40}, judge: {model: scripted}}",
    "debate": "protocol: {name: debate, rounds: 2}\n"
    "seats: {debater: {model: scripted, max_tokens: 40}, judge: {model: scripted}}",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    out = {}
    for name, body in SCENARIOS.items():
        text = f"name: {name}\n{body}\ndataset: {{source: builtin:reading, limit: 6, both_orders: true}}\n"
        summary = run_scenario(parse(text), text, out=d / f"{name}.db")
        out[name] = (d / f"{name}.db", summary)
    return out


def test_analyze_writes_the_table_the_plots_and_agrees_with_the_run_summary(runs, tmp_path, capsys):
    paths = [str(p) for p, _ in runs.values()]
    assert main(["analyze", *paths, "--out", str(tmp_path / "report"), "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    tables = json.loads((tmp_path / "report" / "tables.json").read_text())
    assert printed == tables
    acc = {r["condition"]: r for r in tables["accuracy"]}
    assert list(acc) == ["direct-qa", "consultancy", "debate"]
    for name, (_, summary) in runs.items():
        assert acc[name]["episodes"] == 12 and acc[name]["questions"] == 6
        assert acc[name]["accuracy"] == pytest.approx(summary.accuracy)
    assert len(tables["comparisons"]) == 3 and all(c["questions"] == 6 for c in tables["comparisons"])
    # both orders of every question: each condition has six swapped pairs
    assert [r["swapped_pairs"] for r in tables["position"]] == [6, 6, 6]
    assert {r["split"] for r in tables["sides"] if r["condition"] == "consultancy"} >= {
        "consultant honest", "consultant dishonest"}  # fmt: skip
    assert {r["player"] for r in tables["debaters"]} == {"debater_a", "debater_b"}
    for png in ("accuracy.png", "position.png", "reliability.png", "elo.png"):
        data = (tmp_path / "report" / png).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000


def test_markdown_and_csv(runs, tmp_path, capsys):
    paths = [str(p) for p, _ in runs.values()]
    assert main(["analyze", *paths, "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "## Judge accuracy by condition" in out and "| debate |" in out
    assert main(["analyze", paths[0], "--format", "csv", "--out", str(tmp_path), "--no-plots"]) == 0
    assert (tmp_path / "accuracy.csv").read_text().startswith("condition,questions,episodes,")
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_exports_are_readable_by_pandas(runs, tmp_path, fmt, capsys):
    pd = pytest.importorskip("pandas")
    debate, _ = runs["debate"]
    assert main(["export", str(debate), "--format", fmt, "--out", str(tmp_path)]) == 0
    read = {"jsonl": lambda p: pd.read_json(p, lines=True), "csv": pd.read_csv, "parquet": pd.read_parquet}[fmt]
    episodes = read(tmp_path / f"episodes.{fmt}")
    messages = read(tmp_path / f"messages.{fmt}")
    verdicts = read(tmp_path / f"verdicts.{fmt}")
    assert len(episodes) == 12 and set(episodes["condition"]) == {"debate"}
    assert len(messages) == 12 * 5  # 2 debaters x 2 rounds + the judge
    assert len(verdicts) == 12 and verdicts["final"].all()
    assert episodes["correct"].mean() == pytest.approx(runs["debate"][1].accuracy)


def test_the_dataframe_api(runs):
    pytest.importorskip("pandas")
    import moot

    f = moot.frames(*(p for p, _ in runs.values()))  # also moot.analysis.frames
    assert set(f) == {"episodes", "messages", "verdicts"}
    ep = f["episodes"]
    assert len(ep) == 36 and list(ep["run"].unique()) == ["direct-qa.db", "consultancy.db", "debate.db"]
    by_condition = ep.groupby("condition")["correct"].mean()
    assert by_condition["debate"] == pytest.approx(runs["debate"][1].accuracy)


def test_peer_review_ranking_and_reviewer_agreement(tmp_path):
    text = (
        "name: pr\nprotocol: {name: peer_review, authors: 3, reviewers: 2, pairwise: true}\n"
        "seats: {author: {model: scripted, max_tokens: 30}, reviewer: {model: scripted}}\n"
        "dataset: {source: builtin:reading, limit: 3}\n"
    )
    run_scenario(parse(text), text, out=tmp_path / "pr.db")
    from moot.analysis import analyze

    report = analyze([tmp_path / "pr.db"], bootstrap=100)
    authors = report.table("authors").records()
    assert {r["author"] for r in authors} == {"author_1", "author_2", "author_3"}
    assert sum(r["ranked_first"] for r in authors) == pytest.approx(1.0)
    (agree,) = report.table("agreement").records()
    assert agree["pair"] == "reviewer_1 / reviewer_2" and agree["items"] == 3 * 6
    assert -1 <= agree["cohen_kappa"] <= 1 and agree["fleiss_kappa"] is not None
