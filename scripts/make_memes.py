"""Draw the images of moot's meme set (`builtin:memes`, moot/data/memes/), made for moot.

Standard library only (zlib for PNG), so the images are reproducible from this file:
`python scripts/make_memes.py` rewrites them byte for byte (tests/test_images.py checks it).
Each is a simple picture; the meme's words are its row's passage, as in the harmful-meme
datasets, where the text is given beside the image.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

SIZE = 128
Colour = tuple[int, int, int]


class Canvas:
    def __init__(self, background: Colour) -> None:
        self.px = [[background] * SIZE for _ in range(SIZE)]

    def rect(self, x0: int, y0: int, x1: int, y1: int, c: Colour) -> None:
        for y in range(max(0, y0), min(SIZE, y1)):
            for x in range(max(0, x0), min(SIZE, x1)):
                self.px[y][x] = c

    def disc(self, cx: int, cy: int, r: int, c: Colour, ring: int = 0) -> None:
        """A filled disc, or with `ring` only its outline that many pixels thick."""
        for y in range(max(0, cy - r), min(SIZE, cy + r + 1)):
            for x in range(max(0, cx - r), min(SIZE, cx + r + 1)):
                d = (x - cx) ** 2 + (y - cy) ** 2
                if d <= r * r and (not ring or d >= (r - ring) ** 2):
                    self.px[y][x] = c

    def line(self, x0: int, y0: int, x1: int, y1: int, c: Colour, width: int = 2) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(steps + 1):
            x, y = x0 + (x1 - x0) * i // steps, y0 + (y1 - y0) * i // steps
            self.rect(x - width // 2, y - width // 2, x + width - width // 2, y + width - width // 2, c)

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(v for p in row for v in p) for row in self.px)

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 2, 0, 0, 0)  # 8-bit RGB
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


INK, RED, WHITE = (30, 30, 40), (200, 40, 40), (255, 255, 255)


def sun() -> Canvas:
    c = Canvas((150, 200, 240))
    c.disc(64, 64, 36, (250, 210, 60))
    c.disc(51, 55, 4, INK)
    c.disc(77, 55, 4, INK)
    for x in range(46, 83):  # the smile
        c.rect(x, 82 - (x - 64) ** 2 // 60, x + 1, 85 - (x - 64) ** 2 // 60, INK)
    return c


def bottle() -> Canvas:
    c = Canvas(WHITE)
    c.rect(48, 50, 80, 110, (60, 120, 200))
    c.rect(58, 30, 70, 50, (60, 120, 200))
    c.rect(56, 22, 72, 30, INK)
    c.rect(52, 66, 76, 90, WHITE)
    c.line(56, 70, 72, 86, RED, 3)
    c.line(72, 70, 56, 86, RED, 3)
    return c


def chart() -> Canvas:
    c = Canvas(WHITE)
    c.line(20, 108, 112, 108, INK)
    c.line(20, 108, 20, 16, INK)
    for i, h in enumerate((20, 34, 52, 74)):
        c.rect(30 + 20 * i, 106 - h, 44 + 20 * i, 106, (70, 160, 90))
    return c


def crowd() -> Canvas:
    c = Canvas((235, 235, 225))
    for i in range(5):
        x = 16 + 24 * i
        c.disc(x, 50, 8, INK)
        c.line(x, 58, x, 86, INK, 3)
        c.line(x, 66, x - 8, 76, INK)
        c.line(x, 66, x + 8, 76, INK)
        c.line(x, 86, x - 6, 102, INK)
        c.line(x, 86, x + 6, 102, INK)
    c.disc(112, 72, 22, RED, ring=4)  # the last one circled and struck through
    c.line(96, 56, 128, 88, RED, 4)
    return c


IMAGES = {"sun.png": sun, "bottle.png": bottle, "chart.png": chart, "crowd.png": crowd}


def write(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, draw in IMAGES.items():
        (folder / name).write_bytes(draw().png())


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "moot" / "data" / "memes")
