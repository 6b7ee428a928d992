"""The README's screenshots, taken from the apps themselves (headless) on a synthetic run.

    python docs/screenshots.py          # writes docs/tui-*.png (and the .svg they come from)

Textual saves SVG; docs/svg2png.py renders it with the system's librsvg.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import anyio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from svg2png import svg_to_png  # noqa: E402

from moot.tui.replay import ReplayApp  # noqa: E402
from moot.tui.synthetic import build  # noqa: E402
from moot.tui.watch import LiveApp  # noqa: E402

SIZE = (120, 36)


async def shoot(app, name: str, keys: list[str], size=SIZE, settle: float = 0.2) -> None:
    async with app.run_test(size=size) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause(settle)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.1)
        await app.workers.wait_for_complete()
        await pilot.pause(settle)
        svg = HERE / f"tui-{name}.svg"
        app.save_screenshot(str(svg))
    svg_to_png(str(svg), str(HERE / f"tui-{name}.png"))
    svg.unlink()
    print(f"docs/tui-{name}.png")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = build(Path(tmp) / "study.db", 200, hostile=True)
        live = build(Path(tmp) / "live.db", 30, running=3)
        await shoot(ReplayApp(run), "replay", ["down", "down", "down"])
        await shoot(ReplayApp(run), "filters", ["F"])
        await shoot(ReplayApp(run), "episode", ["down", "down", "enter", "home", "n", "n"])
        await shoot(ReplayApp(run), "judge-view", ["enter", "v", "s"])
        await shoot(ReplayApp(run), "call", ["enter", "c"])
        await shoot(LiveApp(live, poll=10), "watch", [])
        await shoot(ReplayApp(run), "help", ["question_mark"])
        await shoot(ReplayApp(run), "replay-80x24", ["down"], size=(80, 24))


if __name__ == "__main__":
    anyio.run(main)
