"""Transcripts you can share: one self-contained HTML file of a run or a selection of it.

Each episode shows its question and answers, every message labelled by seat and side, each
quote marked verified or not, and the judge's probabilities round by round. A switch at the
top (two radio buttons and CSS `:checked` rules: no script anywhere) changes between the full
view and the judge's view: only what the judge's seat was shown (the messages addressed to
it; the passage only if it reads it), without the correct answer or other judges' rulings.

Every string from a run (questions, speeches, seat and judge names, conditions) goes through
`html.escape`: a speech that says `<script>` shows those characters. The file links nothing
outside itself, so it reads the same offline, in a mail attachment, or years later.
"""

from __future__ import annotations

import html
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moot.analysis.load import Study, open_db
from moot.analysis.privacy import LeftOut
from moot.analysis.trajectory import FIRST_SPEECH, belief_round, first_speeches
from moot.transcript.images import MEDIA_TYPES, data_url
from moot.transcript.images import label as image_label

EPISODES = """
SELECT e.id, r.condition, e.question_id, e.question, e.answers, e.correct, e.source, e.protocol,
    e.assignments, e.seats, e.status, e.stop_reason, r.judge
FROM episodes AS e JOIN episode_results AS r ON r.episode = e.id ORDER BY e.id
"""
MESSAGES = """
SELECT episode, round, phase, seat, role, side, content, audience, quotes FROM messages
WHERE episode IN (SELECT id FROM episodes) ORDER BY episode, seq
"""
VERDICTS = """
SELECT episode, judge, round, choice, probabilities, call_seq, created_at, parse_status FROM verdicts
WHERE episode IN (SELECT id FROM episodes) ORDER BY episode, id
"""
IMAGES = """
SELECT s.episode, s.name, i.media_type, i.data FROM episode_images AS s JOIN images AS i ON i.digest = s.digest
WHERE s.episode IN (SELECT id FROM episodes) ORDER BY s.episode, s.position
"""
# the tags around a quote's text in a stored speech: the marks below replace them
_OPEN_BEFORE = re.compile(r"<\s*quote\s*>\s*$", re.I)
_CLOSE_AFTER = re.compile(r"\s*<\s*/\s*quote\s*>", re.I)
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

CSS = """
:root { --ink: #1d2330; --muted: #5b6478; --line: #d9dde6; --a: #1f5fa8; --b: #a8431f; --ok: #1d7a3a; --bad: #b3261e; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); margin: 0; background: #f6f7f9; }
header, main { max-width: 60rem; margin: 0 auto; padding: 0 1rem; }
header { padding-top: 1.2rem; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; }
.sub, .muted { color: var(--muted); }
.notice { border-left: 4px solid var(--bad); background: #fff4f2; padding: .5rem .8rem; margin: .6rem 0; }
.view-input { position: absolute; opacity: 0; width: 1px; height: 1px; }
.switch { display: inline-flex; border: 1px solid var(--line); border-radius: 6px; overflow: hidden; margin: .6rem 0; }
.switch label { padding: .35rem .9rem; cursor: pointer; background: #fff; }
#view-full:checked ~ header label[for=view-full], #view-judge:checked ~ header label[for=view-judge] { background: var(--ink); color: #fff; }
.view-input:focus-visible ~ header .switch { outline: 2px solid var(--a); }
#view-judge:checked ~ main .full-only, #view-judge:checked ~ header .full-only { display: none !important; }
#view-full:checked ~ main .judge-only, #view-full:checked ~ header .judge-only { display: none !important; }
nav.toc ol { columns: 2; font-size: .9rem; }
section.episode { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: .8rem 1.1rem; margin: 1.2rem 0; }
section.episode h2 { font-size: 1.1rem; margin: .2rem 0 .5rem; }
.tag { display: inline-block; font-size: .75rem; font-weight: normal; border: 1px solid var(--line); border-radius: 4px; padding: 0 .4rem; margin-left: .3rem; color: var(--muted); }
.right { color: var(--ok); } .wrong { color: var(--bad); }
ol.answers { margin: .3rem 0 .6rem; }
.truth { color: var(--ok); font-weight: 600; }
figure.image { margin: .4rem 0; } figure.image img { max-width: 100%; max-height: 24rem; border: 1px solid var(--line); }
figure.image figcaption { color: var(--muted); font-size: .85rem; }
details.passage { margin: .4rem 0; } details.passage div { white-space: pre-wrap; max-height: 24rem; overflow: auto; background: #fafafa; border: 1px solid var(--line); padding: .5rem; font-size: .9rem; }
h3.round { font-size: .95rem; color: var(--muted); border-bottom: 1px solid var(--line); margin: 1rem 0 .4rem; }
article.msg { border-left: 4px solid var(--line); padding: .3rem .7rem; margin: .5rem 0; background: #fcfcfd; }
article.side-0 { border-color: var(--a); } article.side-1 { border-color: var(--b); } article.role-judge { border-color: var(--ink); background: #f3f4f7; }
article.msg > .who { font-size: .85rem; color: var(--muted); }
article.msg > .who b { color: var(--ink); }
.text { white-space: pre-wrap; overflow-wrap: anywhere; }
.quote { border-radius: 3px; padding: 0 .15rem; }
.quote.ok { background: #e3f3e7; } .quote.bad { background: #fbe3e1; text-decoration: underline wavy var(--bad); }
.qmark { font-size: .7rem; font-weight: 600; margin-right: .25rem; }
.quote.ok .qmark { color: var(--ok); } .quote.bad .qmark { color: var(--bad); }
p.belief { font-size: .9rem; margin: .3rem 0 .3rem .2rem; }
table.beliefs { border-collapse: collapse; font-size: .85rem; margin: .6rem 0; }
table.beliefs th, table.beliefs td { border: 1px solid var(--line); padding: .15rem .5rem; text-align: right; }
table.beliefs th:first-child, table.beliefs td:first-child { text-align: left; }
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def speech(content: str, quotes: list[dict[str, Any]]) -> str:
    """A speech as HTML: its text escaped, each quote marked verified or not in place of
    the tags around it (a quote's `start`/`end` locate it in the stored text)."""
    out: list[str] = []
    pos = 0
    spans = sorted((int(q["start"]), int(q["end"]), bool(q.get("verified"))) for q in quotes)
    for start, end, ok in spans:
        if start < pos or end > len(content) or end < start:
            continue  # overlapping or out of range: the text stays as it is
        out.append(esc(_OPEN_BEFORE.sub("", content[pos:start])))
        mark = "✓ verified" if ok else "✗ not in the passage"
        out.append(f'<span class="quote {"ok" if ok else "bad"}"><span class="qmark">{mark}</span>{esc(content[start:end])}</span>')
        pos = end
        if m := _CLOSE_AFTER.match(content, pos):
            pos = m.end()
    out.append(esc(content[pos:]))
    return "".join(out)


def _pct(p: Any) -> str:
    return f"{float(p):.0%}" if isinstance(p, (int, float)) else "–"


def _figures(images: list[tuple], judge_sees: bool) -> str:
    """The episode's images inline (the file stands alone), each captioned with its name."""
    hidden = "" if judge_sees else " full-only"
    out = []
    for name, kind, data in images:
        label = esc(image_label(name, len(data)))
        if kind in MEDIA_TYPES:  # what moot stores; a database's other claims are not inlined
            url = data_url(kind, bytes(data))
            out.append(f'<figure class="image{hidden}"><img src="{url}" alt="{esc(name)}"><figcaption>{label}'
                       f'{"" if judge_sees else " · not shown to the judge"}</figcaption></figure>')  # fmt: skip
        else:
            out.append(f'<p class="image{hidden}">{label}</p>')
    return "".join(out)


def _episode(
    d: int, row: tuple, messages: list[tuple], verdicts: list[tuple], first: Any, images: list[tuple] | None = None
) -> str:
    (ep, condition, question_id, question, answers_json, correct, source, protocol,
     assignments_json, seats_json, status, stop_reason, ruling_judge) = row  # fmt: skip
    answers = json.loads(answers_json)
    assignments = json.loads(assignments_json or "{}")
    seats = json.loads(seats_json or "{}")
    judges = {s for s, info in seats.items() if info.get("role") == "judge"}
    judge_reads = any(seats[s].get("sees_source") for s in judges)
    argued: dict[int, list[str]] = defaultdict(list)
    for seat, a in assignments.items():
        argued[int(a)].append(seat)

    def side_label(side: int | None) -> str:
        if side is None or not 0 <= side < len(answers):
            return ""
        truth = "" if correct is None else (' <span class="full-only">(correct)</span>' if side == correct else ' <span class="full-only">(incorrect)</span>')
        return f" · argues {LETTERS[side % 26]}{truth}"

    beliefs = []  # (round, judge, choice, probabilities, status) with the prior as round 0
    for judge, rnd, choice, probs, call_seq, created_at, parse_status in verdicts:
        beliefs.append((belief_round(rnd, call_seq, created_at, first), judge, choice,
                        json.loads(probs) if probs else None, parse_status))  # fmt: skip
    final = next((b for b in reversed(beliefs) if b[1] == ruling_judge), None)
    verdict_tag = ""
    if final is not None and final[2] is None:
        verdict_tag = '<span class="tag">no answer chosen</span>'
    elif final is not None and correct is not None:
        right = final[2] == correct
        verdict_tag = f'<span class="tag full-only {"right" if right else "wrong"}">ruled {"right" if right else "wrong"}</span>'
    h = [f'<section class="episode" id="e{d}-{int(ep)}">',
         f"<h2>Episode {int(ep)}<span class=\"tag\">{esc(condition)}</span><span class=\"tag\">{esc(protocol)}</span>"
         f"<span class=\"tag\">{esc(status)}{' · ' + esc(stop_reason) if stop_reason else ''}</span>{verdict_tag}</h2>",
         f'<p class="question"><b>Question</b> <span class="muted">({esc(question_id)})</span><br><span class="text">{esc(question)}</span></p>',
         '<ol class="answers" type="A">']  # fmt: skip
    for i, a in enumerate(answers):
        by = f' <span class="muted">argued by {esc(", ".join(argued[i]))}</span>' if argued.get(i) else ""
        truth = ' <span class="truth full-only">✔ correct</span>' if i == correct else ""
        h.append(f'<li><span class="text">{esc(a)}</span>{truth}{by}</li>')
    h.append("</ol>")
    if source:
        hidden = "" if judge_reads else " full-only"
        h.append(f'<details class="passage{hidden}"><summary>Passage ({len(source):,} characters'
                 f'{"" if judge_reads else ", not shown to the judge"})</summary><div>{esc(source)}</div></details>')  # fmt: skip
    if images:
        h.append(_figures(images, judge_reads))

    def belief_lines(rnd: int) -> None:
        # the judging seats' beliefs, in the course of the episode; other judges (offline,
        # re-judges) read the whole transcript afterwards and are in the table below
        for b_rnd, judge, choice, probs, parse_status in beliefs:
            if b_rnd != rnd or judge not in judges | {ruling_judge}:
                continue
            hidden = "" if judge in judges else " full-only"
            ps: list[float] = probs or []
            shown = " · ".join(f"{LETTERS[i % 26]} {_pct(p)}" for i, p in enumerate(ps))
            tie = bool(ps) and ps.count(max(ps)) > 1
            chose = f" → {LETTERS[choice % 26]}" if choice is not None else (" → a tie" if tie else f" → unreadable ({esc(parse_status)})")
            h.append(f'<p class="belief{hidden}"><b>{esc(judge)}</b> believes: {shown or "no probabilities"}{chose}</p>')

    h.append('<div class="transcript">')
    rounds = sorted({m[0] for m in messages} | {b[0] for b in beliefs if b[1] in judges | {ruling_judge}})
    for rnd in rounds:
        h.append(f'<h3 class="round">{"Before any speech (round 0)" if rnd == 0 else f"Round {int(rnd)}"}</h3>')
        for m_rnd, phase, seat, role, side, content, audience, quotes in messages:
            if m_rnd != rnd:
                continue
            heard = audience is None or bool(judges & set(json.loads(audience))) or seat in judges
            cls = f"msg side-{int(side)}" if side is not None else "msg"
            cls += " role-judge" if role == "judge" else ""
            cls += "" if heard else " full-only"
            who = f"<b>{esc(seat)}</b>" + ("" if role == seat else f" · {esc(role)}")
            h.append(f'<article class="{cls}"><div class="who">{who}{side_label(side)}'
                     f' · <span class="muted">{esc(phase)}</span>{"" if heard else " · not shown to the judge"}</div>'
                     f'<div class="text">{speech(content, json.loads(quotes) if quotes else [])}</div></article>')  # fmt: skip
        belief_lines(rnd)
    h.append("</div>")
    if beliefs:
        head = "".join(f"<th>p({LETTERS[i % 26]})</th>" for i in range(len(answers)))
        h.append(f'<table class="beliefs"><caption class="muted">The judges\' probabilities, round by round</caption>'
                 f"<tr><th>judge</th><th>round</th>{head}<th>choice</th></tr>")  # fmt: skip
        for b_rnd, judge, choice, probs, _ in beliefs:
            hidden = "" if judge in judges else ' class="full-only"'
            cells = "".join(f"<td>{_pct(p)}</td>" for p in (probs or [None] * len(answers)))
            h.append(f"<tr{hidden}><td>{esc(judge)}</td><td>{int(b_rnd)}</td>{cells}"
                     f"<td>{LETTERS[choice % 26] if choice is not None else '–'}</td></tr>")  # fmt: skip
        h.append("</table>")
    h.append("</section>")
    return "\n".join(h)


def _episodes(study: Study) -> Iterator[tuple[int, tuple, str]]:
    """(database, episode row, its HTML), database after database."""
    for d, (path, names) in enumerate(zip(study.paths, study.names)):
        conn = open_db(path)
        try:
            messages: dict[int, list[tuple]] = defaultdict(list)
            for ep, *rest in conn.execute(MESSAGES):
                messages[ep].append(tuple(rest))
            verdicts: dict[int, list[tuple]] = defaultdict(list)
            for ep, *rest in conn.execute(VERDICTS):
                verdicts[ep].append(tuple(rest))
            first = first_speeches(conn.execute(FIRST_SPEECH).fetchall())
            images: dict[int, list[tuple]] = defaultdict(list)
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'episode_images'").fetchone():
                for ep, *rest in conn.execute(IMAGES):
                    images[ep].append(tuple(rest))
            for row in conn.execute(EPISODES):
                row = (row[0], names.get(row[1], row[1]), *row[2:])
                yield d, row, _episode(d, row, messages.get(row[0], []), verdicts.get(row[0], []),
                                       first.get(row[0]), images.get(row[0], []))  # fmt: skip
        finally:
            conn.close()


def write(study: Study, target: Path, left: LeftOut, include_private: bool) -> Path:
    """The HTML file at `target` (written beside it first, then moved into place)."""
    runs = ", ".join(p.name for p in study.paths)
    parts: list[str] = []
    toc: list[str] = []
    for d, row, body in _episodes(study):
        parts.append(body)
        toc.append(f'<li><a href="#e{d}-{int(row[0])}">{esc(row[1])} · {int(row[0])}</a> '
                   f'<span class="muted">{esc(_short(row[3]))}</span></li>')  # fmt: skip
    if include_private and left.count:
        notice = (f'<p class="notice">This file includes {left.count} episode{"s" * (left.count != 1)} marked '
                  "not for publication (--include-private): do not post it.</p>")  # fmt: skip
    elif left.count:
        notice = f'<p class="notice">{esc(left.sentence()[0].upper() + left.sentence()[1:])}.</p>'
    else:
        notice = ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="moot export --format html"><title>moot transcripts: {esc(runs)}</title>
<style>{CSS}</style></head>
<body>
<input class="view-input" type="radio" name="view" id="view-full" checked>
<input class="view-input" type="radio" name="view" id="view-judge">
<header>
<h1>Transcripts of {esc(runs)}</h1>
<p class="sub">{len(parts):,} episode{"s" * (len(parts) != 1)} · conditions: {esc(", ".join(study.conditions)) or "none"}</p>
{notice}
<div class="switch" role="group" aria-label="view"><label for="view-full">Full view</label><label for="view-judge">Judge's view</label></div>
<p class="muted judge-only">The judge's view: the messages the judge's seat was shown, the passage only if it
reads it, no correct answer and no other judge's ruling.</p>
<p class="muted full-only">The full view: every message, the correct answer (✔) and every judge. Quotes are marked
<span class="quote ok"><span class="qmark">✓ verified</span>found in the passage</span> or
<span class="quote bad"><span class="qmark">✗ not in the passage</span>not found</span>.</p>
<nav class="toc"><ol>{"".join(toc)}</ol></nav>
</header>
<main>
{chr(10).join(parts)}
</main>
</body></html>
"""
    tmp = target.with_name(target.name + ".part")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)
    return target


def _short(text: str, n: int = 90) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"
