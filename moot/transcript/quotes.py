"""Quote verification: the judge's only evidence about the passage it is not shown.

In information-asymmetric debate (Michael et al. 2023; Khan et al. 2024) the debaters read a
passage the judge cannot. Debaters cite it with `<quote>...</quote>`, and the judge is told
which citations really occur in the passage (`<v_quote>`) and which do not (`<u_quote>`). The
verified mark is the one channel through which ground truth reaches the judge, so two
properties matter more than anything else here:

- a verified mark must mean "this text is in the passage" — matching forgives only differences
  a reader would not count as misquoting (case, Unicode forms, curly quotes, whitespace, the
  punctuation at the quote's edges), and always reports where in the original passage it is;
- a debater must not be able to write the mark themselves, so every tag that looks like one of
  the engine's marks is defused before the real marks are inserted.

Standard library only, so that the check is cheap to audit and identical wherever it runs.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher
from heapq import nlargest
from itertools import accumulate

__all__ = ["Quote", "find_quotes", "from_record", "render_for_judge", "summary", "verify"]

_TAG = re.compile(r"<\s*(/?)\s*quote\s*>", re.IGNORECASE)
# The engine's own marks, and anything a judge might read as one: any case, spaces or
# attributes inside, full-width brackets, or a bracket that is never closed.
_FORGED = re.compile(r"[<＜﹤](\s*/?\s*[uv]_quote\b[^<>＜＞﹤﹥]*)([>＞﹥]?)", re.I)
_CANDIDATES = 32  # windows per quote given the full (slow) ratio
_ASCII = str.maketrans("‘’‚‛′“”„‟″‐‑‒–—―−", "'''''\"\"\"\"\"-------")


@dataclass(frozen=True, slots=True)
class Quote:
    """One citation: `start`/`end` locate its content in the speech, `source_span` the
    matched text in the original (un-normalised) passage, so both can be shown or audited."""

    text: str
    start: int
    end: int
    verified: bool
    source_span: tuple[int, int] | None
    score: float


def from_record(q: dict) -> Quote:
    """A quote as the store keeps it (`messages.quotes`, written by the store writer)."""
    span = q.get("source_span")
    return Quote(q["text"], int(q["start"]), int(q["end"]), bool(q["verified"]),
                 (int(span[0]), int(span[1])) if span else None, float(q.get("score", 1.0)))  # fmt: skip


def _tag_spans(speech: str) -> list[tuple[int, int, int, int]]:
    """(open start, content start, content end, close end) of each outermost quote.

    Tags are paired like brackets, so an unclosed `<quote>` simply stays text and cannot
    swallow the rest of the speech; a pair inside another pair is part of the outer content.
    """
    stack: list[re.Match[str]] = []
    pairs: list[tuple[re.Match[str], re.Match[str]]] = []
    for m in _TAG.finditer(speech):
        if not m.group(1):
            stack.append(m)
        elif stack:
            pairs.append((stack.pop(), m))
    spans: list[tuple[int, int, int, int]] = []
    reach = -1
    for o, c in sorted(pairs, key=lambda p: p[0].start()):
        if o.start() >= reach:
            spans.append((o.start(), o.end(), c.start(), c.end()))
            reach = c.end()
    return spans


def find_quotes(speech: str) -> list[tuple[int, int, str]]:
    """Content spans `(start, end, text)` of the speech's quotes, in order."""
    return [(s, e, speech[s:e]) for _, s, e, _ in _tag_spans(speech)]


def _normalise(text: str) -> tuple[str, list[int], list[int]]:
    """Normalised text plus, per output character, the original span it came from.

    Normalising a base character together with its combining marks lets composed and
    decomposed accents agree; keeping the spans lets a match be reported in the passage as
    written, which is what a reader (or an audit) needs, not in our normal form.
    """
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        while j < n and unicodedata.combining(text[j]):
            j += 1
        for c in unicodedata.normalize("NFKC", text[i:j]).translate(_ASCII).casefold():
            if c.isspace():
                if out and out[-1] == " ":
                    ends[-1] = j
                    continue
                c = " "
            out.append(c)
            starts.append(i)
            ends.append(j)
        i = j
    return "".join(out), starts, ends


def _edge(c: str) -> bool:
    return c.isspace() or unicodedata.category(c).startswith("P")


def _trim(q: str) -> str:
    """Drop edge punctuation: debaters re-punctuate the ends of what they cite."""
    a, b = 0, len(q)
    while a < b and _edge(q[a]):
        a += 1
    while b > a and _edge(q[b - 1]):
        b -= 1
    return q[a:b]


class _Passage:
    """The source normalised once per speech, with word bounds for the fuzzy search."""

    def __init__(self, source: str) -> None:
        self.text, self.starts, self.ends = _normalise(source)
        words = [m.span() for m in re.finditer(r"\S+", self.text)]
        self.word_starts = [a for a, _ in words]
        self.word_ends = [b for _, b in words]

    def span(self, a: int, b: int) -> tuple[int, int]:
        return self.starts[a], self.ends[b - 1]

    def exact(self, q: str) -> int | None:
        """First occurrence on word boundaries, so that "he" is not verified by "the"."""
        t, i = self.text, self.text.find(q)
        while i >= 0:
            j = i + len(q)
            if (not q[0].isalnum() or i == 0 or not t[i - 1].isalnum()) and (
                not q[-1].isalnum() or j == len(t) or not t[j].isalnum()
            ):
                return i
            i = t.find(q, i + 1)
        return None

    def closest(self, q: str) -> tuple[float, int, int]:
        """Best `SequenceMatcher` ratio over word-aligned windows about as long as `q`.

        Windows start at each word and end at the word ends either side of `len(q)`.
        `ratio()` on every one is too slow for a long passage, so windows are first ranked by
        how many of the quote's character trigrams they contain (a prefix sum, linear in the
        passage) and only the best few are scored. A real but garbled quote shares most of its
        trigrams with its true window, so that window survives the cut; the score of an
        invented quote is then the best ratio among the candidates, a lower bound.
        """
        t, n = self.text, min(3, len(q))
        grams = {q[i : i + n] for i in range(len(q) - n + 1)}
        hits = [0, *accumulate(t[i : i + n] in grams for i in range(len(t)))]
        ends, windows = self.word_ends, list[tuple[int, int, int]]()
        for s in self.word_starts:
            k = bisect_left(ends, s + len(q))
            for e in {ends[k - 1] if k > 0 else s, ends[k] if k < len(ends) else s}:
                if e > s:  # score by shared trigrams; -s so that ties favour earlier windows
                    windows.append((hits[max(s, e - n + 1)] - hits[s], -s, e))
        sm = SequenceMatcher(None, autojunk=False)
        sm.set_seq2(q)
        best, where = 0.0, (0, 0)
        for _, neg_s, e in nlargest(_CANDIDATES, windows):
            sm.set_seq1(t[-neg_s:e])
            if sm.real_quick_ratio() >= best and sm.quick_ratio() >= best:
                r = sm.ratio()
                if r > best or (r == best and -neg_s < where[0]):
                    best, where = r, (-neg_s, e)
        return best, *where


def verify(speech: str, source: str | None, *, fuzzy: float | None = None) -> list[Quote]:
    """Check every quote in `speech` against `source`.

    An exact match (after normalisation) scores 1.0. Otherwise the score is the best fuzzy
    ratio, kept even when it falls short so that near-misses can be studied; it verifies only
    if `fuzzy` is set and reached. Fuzzy matching is opt-in because it trades the guarantee
    "this is in the passage" for tolerance of typos, which is a protocol choice, not ours.
    """
    if fuzzy is not None and not 0.0 < fuzzy <= 1.0:
        raise ValueError(f"fuzzy must be in (0, 1], got {fuzzy!r}")
    passage = _Passage(source) if source is not None else None
    quotes: list[Quote] = []
    for start, end, text in find_quotes(speech):
        q = _trim(_normalise(text)[0])
        if passage is None or not q or not passage.text:
            quotes.append(Quote(text, start, end, False, None, 0.0))
            continue
        at = passage.exact(q)
        if at is not None:
            quotes.append(Quote(text, start, end, True, passage.span(at, at + len(q)), 1.0))
            continue
        score, a, b = passage.closest(q)
        ok = fuzzy is not None and score >= fuzzy
        quotes.append(Quote(text, start, end, ok, passage.span(a, b) if ok else None, score))
    return quotes


def _neutralise(text: str) -> str:
    return _FORGED.sub(lambda m: "‹" + m.group(1) + ("›" if m.group(2) else ""), text)


def render_for_judge(speech: str, quotes: list[Quote]) -> str:
    """The speech as the judge sees it, with the engine's verification marks.

    Debater text is defused before the marks are inserted, never after, so the only
    `<v_quote>` left in the result is one the engine wrote. A quote tag with no entry in
    `quotes` is marked unverified: failing closed is the only safe default for a judge.
    """
    by_span = {(q.start, q.end): q for q in quotes}
    parts: list[str] = []
    pos = 0
    for open_at, start, end, close_end in _tag_spans(speech):
        q = by_span.pop((start, end), None)
        mark = "v_quote" if q is not None and q.verified else "u_quote"
        parts += [_neutralise(speech[pos:open_at]), f"<{mark}>"]
        parts += [_neutralise(speech[start:end]), f"</{mark}>"]
        pos = close_end
    if by_span:
        raise ValueError(f"quotes not found in this speech: {sorted(by_span)}")
    parts.append(_neutralise(speech[pos:]))
    return "".join(parts)


def summary(quotes: Iterable[Quote]) -> dict[str, int]:
    """Counts for the store: per-speech verification rates are a standard debate metric."""
    qs = list(quotes)
    verified = sum(q.verified for q in qs)
    return {"total": len(qs), "verified": verified, "unverified": len(qs) - verified}
