"""Images on dataset rows (the meme-debate paper's setting): local files named by a JSONL
field or a CSV column, read once with the row and checked to be images. (Showing them to
seats, sending them to models and storing them per run are not built yet: see the README.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from moot.errors import ConfigError
from moot.scenario.datasets import load

PNG = Path(__file__).parent / "fixtures" / "task_formats" / "triangle.png"


def test_a_jsonl_row_and_a_csv_row_carry_their_images(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(PNG.read_bytes())
    (tmp_path / "rows.jsonl").write_text(
        '{"question": "Harmful?", "options": ["harmful", "harmless"], "answer": 1, "images": ["img/a.png"]}\n'
        '{"question": "Plain?", "options": ["yes", "no"], "answer": 0}\n'
    )
    with_image, plain = load(str(tmp_path / "rows.jsonl"))
    assert with_image.images == (("a.png", PNG.read_bytes()),) and plain.images == ()
    (tmp_path / "rows.csv").write_text("question,option_a,option_b,answer,images\nHarmful?,harmful,harmless,B,img/a.png;img/a.png\n")
    (row,) = load(str(tmp_path / "rows.csv"))
    assert [name for name, _ in row.images] == ["a.png", "a.png"]


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


def test_a_run_refuses_rows_with_images_rather_than_hide_them(tmp_path):
    from moot.scenario.load import parse
    from moot.workflows.run import run_scenario

    (tmp_path / "a.png").write_bytes(PNG.read_bytes())
    (tmp_path / "rows.jsonl").write_text('{"question": "q", "options": ["a", "b"], "answer": 0, "images": ["a.png"]}\n')
    text = f"name: m\nprotocol: {{name: debate}}\nseats: {{debater: {{model: scripted}}, judge: {{model: scripted}}}}\ndataset: {{source: {tmp_path / 'rows.jsonl'}}}\n"
    with pytest.raises(ConfigError, match="carry images, which a run cannot show to seats yet"):
        run_scenario(parse(text), out=tmp_path / "m.db")
