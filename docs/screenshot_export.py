"""The README's screenshot of `moot export --format html`, taken in headless Chromium.

    python docs/screenshot_export.py     # writes docs/export-html.png

One episode of the shipped interactive debate (`scenarios/debate_interactive.yaml`: the
embedded SmolLM2 arguing over one of moot's own passages, a judge asking between rounds), run
into a temporary database, exported as the page a reader gets, and shot by Debian's
`chromium` (apt install chromium) with the flags that work in a container. (Published
transcripts stay where they are published: the screenshot shows none.)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from moot.analysis.export import export  # noqa: E402
from moot.scenario.load import load_file  # noqa: E402
from moot.workflows.run import apply_overrides, run_scenario  # noqa: E402

SCENARIO = HERE.parent / "scenarios" / "debate_interactive.yaml"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1100,1500"]  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "debate.db"
        scenario, text = load_file(SCENARIO)
        run_scenario(apply_overrides(scenario, limit=1), text, base=SCENARIO.parent, out=db)
        (page,) = export([db], Path(tmp) / "debate.html", "html")
        out = HERE / "export-html.png"
        subprocess.run(
            ["chromium", *FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}", f"--screenshot={out}", page.as_uri()],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        print(out)


if __name__ == "__main__":
    main()
