"""Model text as plain text: the one place untrusted strings are made safe to draw.

Widgets render `rich.text.Text` / `textual.content.Content`, never markup, so `[bold]` or
`[@click=app.quit]` in a reply is shown as typed. What a terminal itself would interpret is
made visible here: escape sequences and other control characters become their Unicode
"control pictures" (ESC -> ␛), so `\\x1b[31m` reads as `␛[31m` and colours nothing, and
a bell rings nothing. Newlines and tabs are kept; a lone carriage return (which would let
a line overwrite itself) is shown as ␍. Bidirectional overrides, which can make text read
in another order than it is stored, are shown as <U+202E>.
"""

from __future__ import annotations

import re

from rich.text import Text

__all__ = ["one_line", "plain", "plain_text"]

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def _table() -> dict[int, str]:
    table = {c: chr(0x2400 + c) for c in range(0x20) if c not in (0x09, 0x0A)}
    table[0x7F] = "\u2421"  # ␡
    table.update({c: f"<U+{c:04X}>" for c in range(0x80, 0xA0)})  # C1 controls (0x9b is CSI)
    table.update({ord(c): f"<U+{ord(c):04X}>" for c in _BIDI})
    return table


_TABLE = _table()
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f" + _BIDI + "]")


def plain(s: str | None) -> str:
    """`s` with every control character but newline and tab made visible (never obeyed)."""
    if not s:
        return ""
    if _UNSAFE.search(s) is None:  # the common case: nothing to do
        return s
    return s.replace("\r\n", "\n").translate(_TABLE)


def plain_text(s: str | None, style: str = "") -> Text:
    """A `Text` of `plain(s)`: literal characters, no markup, no emoji codes."""
    return Text(plain(s), style=style, no_wrap=False, end="")


def one_line(s: str | None, width: int) -> str:
    """`plain(s)` on one line (newlines and tabs as spaces), cut to `width` with an ellipsis."""
    flat = " ".join(plain(s).split())
    return flat if len(flat) <= width else flat[: max(0, width - 1)] + "…"
