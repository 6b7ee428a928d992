"""The README's screenshots of a person's turn, taken from the app itself (headless).

    python docs/screenshots_human.py    # writes docs/human-judge.png and docs/human-debater.png

A blind judge in round 2 of a debate (quotes marked verified or not found, a probability set
with the keys, the clock of a time limit), and a debater writing a speech with a quote taken
from the passage. Textual saves SVG; docs/svg2png.py renders it with the system's librsvg.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import anyio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from svg2png import svg_to_png  # noqa: E402
from textual.app import App  # noqa: E402

from moot import datasets  # noqa: E402
from moot import quotes as quoting  # noqa: E402
from moot.agents.human import TurnRequest  # noqa: E402
from moot.tui.human import HumanTurnScreen  # noqa: E402

SIZE = (120, 36)
SPEECHES = [
    (1, "debater_a", 0, "The passage is plain: <quote>a storm knocked down a power line near the bridge, and "
     "the electric oven in her kitchen stopped working</quote>. No oven, no bread: she closed at ten."),
    (1, "debater_b", 1, "She had apples on her mind all week: <quote>she ran out of apples by nine</quote>. "
     "The next day she made <quote>twice as many apple tarts</quote>, which shows what was missing."),
    (1, "judge", None, "B: where does the passage say she ran out of apples?"),
    (2, "debater_a", 0, "Nowhere. B's first quote is marked as not found because it is invented. The "
     "passage says she <quote>sold the loaves she had already baked</quote> and closed: the oven was the cause."),
    (2, "debater_b", 1, "Making twice as many tarts on Wednesday only makes sense if Tuesday's tarts "
     "were short. The power line is a detail; the tarts are the story."),
]


def request(kind: str) -> TurnRequest:
    q = datasets.load("builtin:reading")[0]
    messages = []
    for seq, (rnd, seat, side, text) in enumerate(SPEECHES):
        found = quoting.verify(text, q.passage) if seat != "judge" else []
        messages.append({
            "episode": 3, "seq": seq, "round": rnd, "phase": "question" if seat == "judge" else "speeches",
            "seat": seat, "role": "judge" if seat == "judge" else "debater", "side": side,
            "content": text, "audience": None, "created_at": 0.0, "call_seq": None,
            "quotes": [{"text": f.text, "start": f.start, "end": f.end, "verified": f.verified,
                        "source_span": f.source_span, "score": f.score} for f in found],
        })  # fmt: skip
    if kind == "verdict":
        return TurnRequest("judge", "judge", 3, "verdict", "verdict", 2, 3, q.question, list(q.options),
                           None, None, messages, may_end=True, time_limit=600, title="human-judge-study")  # fmt: skip
    return TurnRequest("debater_a", "debater", 3, "speech", "speeches", 2, 3, q.question, list(q.options),
                       0, q.passage, messages[:3], char_limit=750, quote_limit=250, title="human-debate")  # fmt: skip


async def shoot(name: str, req: TurnRequest, keys: list[str], insert: str = "") -> None:
    class One(App):
        TITLE = "moot run --tui"

        def on_mount(self) -> None:
            self.push_screen(HumanTurnScreen(req, shown_at=time.time() - 83))

    app = One()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        if insert:
            app.screen.query_one("#editor").insert(insert)
        for key in keys:
            await pilot.press(key)
        await pilot.pause(0.3)
        svg = HERE / f"human-{name}.svg"
        app.save_screenshot(str(svg))
    svg_to_png(str(svg), str(HERE / f"human-{name}.png"))
    svg.unlink()
    print(f"docs/human-{name}.png")


async def main() -> None:
    await shoot("judge", request("verdict"), ["left", "left", "left", "left"])
    await shoot("debater", request("speech"), [],
                insert="B asks for apples; the passage gives a power cut: <quote>the electric oven in her "
                       "kitchen stopped working just after nine</quote>.")  # fmt: skip


if __name__ == "__main__":
    anyio.run(main)
