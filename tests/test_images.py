"""Images on dataset rows (the meme-debate paper's setting): local files named by a JSONL
field or a CSV column, read once with the row and checked to be images by their bytes; shown
to the seats that see the source and sent through litellm as image parts; refused, by seat,
for a model that cannot take them; stored once per run by content hash, so that replay,
re-judging, the HTML export and the TUI show the same bytes."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

from moot.errors import ConfigError
from moot.scenario.datasets import load
from tests.fault_server import FaultServer, Request
from tests.helpers import rows
from tests.test_cli_paths import ROOT, moot

PNG = Path(__file__).parent / "fixtures" / "task_formats" / "triangle.png"


def test_a_jsonl_row_and_a_csv_row_carry_their_images(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(PNG.read_bytes())
    (tmp_path / "rows.jsonl").write_text(
        '{"question": "Harmful?", "options": ["harmful", "harmless"], "answer": 1, "images": ["img/a.png"]}\n'
        '{"question": "Plain?", "options": ["yes", "no"], "answer": 0}\n'
    )
    with_image, plain = load(str(tmp_path / "rows.jsonl"))
    assert [(i.name, i.data) for i in with_image.images] == [("a.png", PNG.read_bytes())] and plain.images == ()
    (tmp_path / "rows.csv").write_text("question,option_a,option_b,answer,images\nHarmful?,harmful,harmless,B,img/a.png;img/a.png\n")
    (row,) = load(str(tmp_path / "rows.csv"))
    assert [i.name for i in row.images] == ["a.png", "a.png"] and row.images[0].digest == row.images[1].digest


@pytest.mark.parametrize(
    ("images", "message"),
    [('["missing.png"]', "images: no such file"), ('["rows.jsonl"]', "is not a PNG, JPEG or GIF"), ("3", "a list of file paths")],
)
def test_a_bad_image_is_one_line_naming_file_and_line(tmp_path, images, message):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"question": "q", "options": ["a", "b"], "answer": 0}\n'
                    f'{{"question": "q", "options": ["a", "b"], "answer": 0, "images": {images}}}\n')  # fmt: skip
    with pytest.raises(ConfigError) as info:
        load(str(path))
    assert str(info.value).startswith(f"{path}:2: ") and message in str(info.value) and "\n" not in str(info.value)


MEMES = ROOT / "moot" / "data" / "memes"
HARMFUL = {hashlib.sha256((MEMES / n).read_bytes()).hexdigest() for n in ("bottle.png", "crowd.png")}


def _scripted_run(tmp_path, *swaps: str) -> tuple[object, Path]:
    db = tmp_path / "memes.db"
    models = " ".join(f"--model {s}" for s in swaps) or "--model debater=scripted --model judge=scripted"
    return moot(f"moot run scenarios/meme_debate.yaml {models} --out {db} --quiet", ROOT), db


def test_each_image_is_stored_once_by_hash_and_shown_only_to_seats_that_see_the_source(tmp_path):
    text = (
        "name: m\nprotocol: {name: debate, rounds: 1}\n"
        "seats: {debater: {model: scripted}, judge: {model: scripted}}\n"
        f"dataset: {{source: {tmp_path / 'rows.jsonl'}}}\n"
    )
    (tmp_path / "a.png").write_bytes(PNG.read_bytes())
    (tmp_path / "rows.jsonl").write_text(
        '{"question": "q1", "options": ["a", "b"], "answer": 0, "images": ["a.png", "a.png"]}\n'
        '{"question": "q2", "options": ["a", "b"], "answer": 1, "images": ["a.png"]}\n'
    )
    (tmp_path / "m.yaml").write_text(text)
    result = moot(f"moot run {tmp_path / 'm.yaml'} --out {tmp_path / 'm.db'} --quiet", tmp_path)
    assert result.returncode == 0, result.stderr
    db = tmp_path / "m.db"
    digest = hashlib.sha256(PNG.read_bytes()).hexdigest()
    assert rows(db, "SELECT digest, media_type, size, data FROM images") == [
        (digest, "image/png", len(PNG.read_bytes()), PNG.read_bytes())
    ]
    assert rows(db, "SELECT episode, position, name FROM episode_images ORDER BY 1, 2") == [
        (0, 0, "a.png"), (0, 1, "a.png"), (1, 0, "a.png"),
    ]  # fmt: skip
    # the debaters' calls name what they were shown; the blind judge's show nothing
    shown = {role: {json.dumps(json.loads(p).get("images")) for (p,) in rows(db, "SELECT params FROM model_calls WHERE role = ?", role)}
             for role in ("debater", "judge")}  # fmt: skip
    assert shown["judge"] == {"null"}
    assert shown["debater"] == {json.dumps([{"name": "a.png", "digest": digest}] * n) for n in (1, 2)}


@pytest.mark.parametrize(
    ("swap", "message"),
    [
        ("debater=local/smollm2-135m", "seat debater_a: builtin:memes has images, and its model local/smollm2-135m cannot take them"),
        ("judge=openai/gpt-3.5-turbo", "seat judge: builtin:memes has images, and its model openai/gpt-3.5-turbo cannot take them"),
        ("judge=human", "seat judge: builtin:memes has images, and a person's seat cannot be shown images yet"),
    ],
)
def test_a_seat_whose_model_cannot_take_images_is_refused_before_the_run_by_name(tmp_path, swap, message):
    other = "judge=scripted" if swap.startswith("debater") else "debater=scripted"
    result, db = _scripted_run(tmp_path, swap, other)
    assert result.returncode == 2 and result.stderr == f"moot: error: {message}" + result.stderr.split(message, 1)[1]
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert not db.exists()  # refused before anything was stored


def _images_of(request: Request) -> tuple[str, list[bytes]]:
    """A chat request's first user message: its text, and the images it carries, decoded."""
    user = next(m for m in request.body["messages"] if m["role"] == "user")
    assert isinstance(user["content"], list), "the images were not sent as content parts"
    text = "".join(p["text"] for p in user["content"] if p["type"] == "text")
    images = []
    for part in user["content"]:
        if part["type"] == "image_url":
            head, _, data = part["image_url"]["url"].partition(",")
            assert head == "data:image/png;base64"
            images.append(base64.b64decode(data))
    return text, images


def _judge_by_the_picture(request: Request) -> str:
    """A vision judge that rules by what the image shows: the letter of "harmful" for the
    bottle and the crowd, of "harmless" otherwise. Right only if the image arrived."""
    text, images = _images_of(request)
    harmful = any(hashlib.sha256(i).hexdigest() in HARMFUL for i in images)
    labels = dict((answer, letter) for letter, answer in re.findall(r"^([AB]): (harmful|harmless)$", text, re.M))
    return labels["harmful" if harmful else "harmless"]


def test_a_vision_debate_goes_through_litellm_to_a_loopback_server_and_its_images_survive_replay_and_export(tmp_path):
    rows_by_text = {
        json.loads(line)["passage"]: (MEMES.parent / json.loads(line)["images"][0]).read_bytes()
        for line in (MEMES.parent / "memes.jsonl").read_text().splitlines()
    }
    with FaultServer(letter=_judge_by_the_picture, p_letter=0.9, max_requests=100) as server:
        scenario = yaml.safe_load((ROOT / "scenarios" / "meme_debate.yaml").read_text())
        scenario["models"] = {"openai/vision-test": {"api_base": server.api_base, "vision": True, "retries": 0}}
        scenario["seats"]["debater"]["model"] = scenario["seats"]["judge"]["model"] = "openai/vision-test"
        scenario["cache"] = False
        (tmp_path / "memes.yaml").write_text(yaml.safe_dump(scenario))
        result = moot("moot run memes.yaml --out run.db --quiet", tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        db = tmp_path / "run.db"
        # every call, the debaters' and the judge's (who sees the meme), carried its episode's image
        assert len(server.requests) == 4 * (2 * 2 + 1)
        assert rows(db, "SELECT count(*), sum(correct) FROM verdicts") == [(4, 4)]  # it saw each picture
        stored = rows(db, "SELECT digest, data FROM images ORDER BY digest")
        shown = rows(db, "SELECT episode, name, digest FROM episode_images ORDER BY episode")

        # a replay calls nothing; a fork plays round 2 anew, a re-judge rules again: both are shown the memes
        replayed = moot(f"moot run --replay {db} --out replay.db --quiet", tmp_path)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert len(server.requests) == 20
        forked = moot(f"moot fork {db} --from-round 1 --out fork.db --quiet", tmp_path)
        assert forked.returncode == 0, forked.stdout + forked.stderr
        assert len(server.requests) == 20 + 4 * (2 + 1)
        judged = moot(f"moot rejudge {db} --judge openai/vision-test", tmp_path)
        assert judged.returncode == 0, judged.stdout + judged.stderr
        assert len(server.requests) == 32 + 4
        requests = list(server.requests)
    for request in requests:
        text, images = _images_of(request)
        (passage,) = [p for p in rows_by_text if p in text]
        assert images == [rows_by_text[passage]]
    assert rows(db, "SELECT count(*), sum(correct) FROM verdicts WHERE judge LIKE 'rejudge:%'") == [(4, 4)]

    assert sorted(hashlib.sha256(b).hexdigest() for b in rows_by_text.values()) == [d for d, _ in stored]
    assert all(hashlib.sha256(data).hexdigest() == d for d, data in stored)
    for copy in ("replay.db", "fork.db"):
        assert rows(tmp_path / copy, "SELECT digest, data FROM images ORDER BY digest") == stored
        assert rows(tmp_path / copy, "SELECT episode, name, digest FROM episode_images ORDER BY episode") == shown

    for source in ("run.db", "replay.db", "fork.db"):
        exported = moot(f"moot export {source} --format html --out {source}.html", tmp_path)
        assert exported.returncode == 0, exported.stderr
        page = (tmp_path / f"{source}.html").read_text()
        inline = [base64.b64decode(b) for b in re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]
        assert sorted(inline) == sorted(rows_by_text.values())  # byte for byte, one per episode


@pytest.mark.anyio
async def test_the_tui_shows_a_labelled_placeholder_in_an_images_place(tmp_path):
    from moot.store.reader import RunReader
    from moot.tui.replay import ReplayApp

    result, db = _scripted_run(tmp_path)
    assert result.returncode == 0, result.stderr
    with RunReader(db) as reader:
        assert reader.image_labels(1) == [f"[image: bottle.png, {(MEMES / 'bottle.png').stat().st_size} B]"]
    app = ReplayApp(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")  # the first episode
        await pilot.pause()
        await pilot.press("s")  # its source: the picture's label, then the meme's words
        source = str(app.screen.query_one("#source-text").content)
        assert source.startswith(f"[image: sun.png, {(MEMES / 'sun.png').stat().st_size} B]\nMeme text:")
        await pilot.press("q")


def test_the_shipped_memes_are_the_ones_the_script_draws(tmp_path):
    import runpy

    runpy.run_path(str(ROOT / "scripts" / "make_memes.py"))["write"](tmp_path)
    for made in tmp_path.iterdir():
        assert made.read_bytes() == (MEMES / made.name).read_bytes()
    assert {p.name for p in tmp_path.iterdir()} == {p.name for p in MEMES.iterdir()}


def test_offline_judging_refuses_episodes_whose_judge_would_see_images(tmp_path):
    """A person judging offline reads text: an episode whose judge saw the meme is refused
    in one line, rather than judged without the picture."""
    from moot.workflows.offline import OfflineJudging

    result, db = _scripted_run(tmp_path)
    assert result.returncode == 0, result.stderr
    with pytest.raises(ConfigError, match=r"episode 0 shows its judge images, which a person's view cannot show yet"):
        OfflineJudging(db, "ada")
    judged = moot(f"moot judge {db} --as ada", ROOT)
    assert judged.returncode == 2 and "shows its judge images" in judged.stderr and "Traceback" not in judged.stderr


def test_a_web_study_leaves_out_the_episodes_whose_judge_saw_images(tmp_path):
    from moot.web.study import Study

    result, db = _scripted_run(tmp_path)
    assert result.returncode == 0, result.stderr
    study = Study(db)
    try:
        assert study.episodes() == {}  # every meme debate's judge saw the meme
    finally:
        study.close()
