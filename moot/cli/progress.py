"""Console progress: polls the bus's running totals, so it never slows the engine down."""

from __future__ import annotations

import sys
import time
from typing import TextIO

import anyio

from moot.transcript.events import Totals


class ConsoleProgress:
    def __init__(self, stream: TextIO | None = None, interval: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.tty = self.stream.isatty()
        self._done = False
        self._last_decile = -1
        self._cell = ""

    def stop(self) -> None:
        self._done = True

    def cell(self, name: str, position: int, count: int, episodes: int) -> None:
        """A sweep's next cell begins: the line says which; the bar stays the whole run's."""
        if self._cell and self.tty:
            self.stream.write("\n")  # keep the finished cell's last line on screen
        self._cell = f"cell {position + 1}/{count} {name} | "
        if not self.tty:
            self.stream.write(f"{self._cell}{episodes} episodes\n")

    async def run(self, stats: Totals, total: int) -> None:
        t0 = time.perf_counter()
        while True:
            finished = self._done
            self._draw(stats, total, time.perf_counter() - t0, final=finished)
            if finished:
                return
            await anyio.sleep(self.interval)

    def _draw(self, s: Totals, total: int, elapsed: float, final: bool) -> None:
        done = s.done + s.failed
        frac = done / total if total else 1.0
        width = 24
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        failed = f" ({s.failed} failed)" if s.failed else ""
        line = (
            f"{self._cell}[{bar}] {done}/{total} episodes{failed} | {s.model_calls} calls | "
            f"{s.tokens:,} tokens | {elapsed:.1f}s"
        )
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
            self.stream.flush()
        else:  # a log, not a terminal: one line per tenth of the run
            decile = int(frac * 10)
            if decile != self._last_decile or final:
                if decile != self._last_decile:
                    self.stream.write(line + "\n")
                self._last_decile = decile
