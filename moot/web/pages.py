"""The study's pages, as HTML strings. Every piece of model or human text goes through `e()`
(html.escape) and nothing else: a speech, a question or an admin's label shows literally and
runs nothing. The pages have no inline script or style (the Content-Security-Policy forbids
them): behaviour is `app.js`, looks are `app.css`, both served under the visitor's own link.
"""

from __future__ import annotations

import html
import json
import math
import time
from typing import Any

from moot.agents.judging import labels_for
from moot.web.study import NAME_LIMIT, Feedback

__all__ = ["e", "page"]


def e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def page(title: str, body: str, base: str, *, wide: bool = False) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{e(title)}</title><link rel=stylesheet href='{e(base)}/app.css'>"
        f"<script src='{e(base)}/app.js' defer></script></head>"
        f"<body data-base='{e(base)}'><main class='{'wide' if wide else ''}'>{body}</main></body></html>"
    )


def csrf_field(csrf: str) -> str:
    return f"<input type=hidden name=csrf value='{e(csrf)}'>"


def nav(base: str, *, admin: bool = False) -> str:
    if admin:
        return f"<nav><a href='{e(base)}/'>dashboard</a></nav>"
    return (f"<nav><a href='{e(base)}/'>your queue</a> · <a href='{e(base)}/judge'>judge</a>"
            f" · <a href='{e(base)}/leaderboard'>leaderboard</a></nav>")  # fmt: skip


# -- the participant's pages ------------------------------------------------------------


def consent(base: str, csrf: str, title: str) -> str:
    body = (
        f"<h1>{e(title)}</h1><section class=card><h2>Before you start</h2>"
        "<p>You will read debates between AI systems about questions that each have one right answer and "
        "say how likely you think each answer is. We record your answers and how long each took, "
        "under a participant number; nothing we store names you. You can stop at any time and "
        "come back to the same link to go on.</p>"
        f"<form method=post action='{e(base)}/consent'>{csrf_field(csrf)}"
        "<button id=consent type=submit>I agree, start</button></form></section>"
    )
    return page("Consent", body, base)


def queue(base: str, csrf: str, who: Any, history: list[tuple[int, int, bool | None, Feedback | None]],
          live_seat: str | None, completion: str | None) -> str:  # fmt: skip
    rows = []
    for pos, ep, done, fb in history:
        if done and fb is not None:
            mark = "right" if fb.right else "wrong" if fb.right is not None else "—"
            score = "—" if fb.score is None else f"{fb.score:+.2f}"
            rows.append(f"<tr><td>{pos}</td><td>{e(fb.question)}</td><td>{mark}</td><td>{score}</td>"
                        f"<td><a href='{e(base)}/feedback/{ep}'>feedback</a></td></tr>")  # fmt: skip
        elif done is None:
            rows.append(f"<tr><td>{pos}</td><td>time ran out (it went to someone else)</td><td>—</td><td>—</td>"
                        "<td></td></tr>")  # fmt: skip
        else:
            rows.append(f"<tr><td>{pos}</td><td>episode in progress</td><td>—</td><td>—</td>"
                        f"<td><a href='{e(base)}/judge'>go on</a></td></tr>")  # fmt: skip
    table = ("<table id=history><tr><th>#</th><th>question</th><th>your verdict</th><th>score</th><th></th></tr>"
             + "".join(rows) + "</table>") if rows else "<p>Nothing judged yet.</p>"  # fmt: skip
    live = (f"<p><a class=button id=live href='{e(base)}/live'>Take your seat ({e(live_seat)}) in the live debate</a></p>"
            if live_seat else "")  # fmt: skip
    code = f"<p class=done id=completion>Completion code: <b>{e(completion)}</b></p>" if completion else ""
    board = (f"<p><a id=board href='{e(base)}/leaderboard'>The leaderboard</a>: "
             + ("you appear on it." if who.leaderboard and who.display_name else "you are not on it; join it there if"
                " you like, under a name you choose.") + "</p>")  # fmt: skip
    body = (f"{nav(base)}<h1>Your queue</h1>{code}{live}"
            f"<p><a class=button id=next href='{e(base)}/judge'>Judge the next debate</a></p>"
            f"<h2>Your history</h2>{table}{board}")  # fmt: skip
    return page("Your queue", body, base)


def transcript(messages: list[dict[str, Any]], labels: tuple[str, ...]) -> str:
    out = []
    for m in messages:
        side = m.get("side")
        who = e(m["seat"]) + (f" (for {labels[side]})" if side is not None and side < len(labels) else "")
        out.append(f"<div class='msg side{'' if side is None else int(side)}'><div class=who>{who} · round "
                   f"{int(m['round'])}</div><div class=text>{marked(m['content'], m.get('quotes') or [])}</div></div>")  # fmt: skip
    return "<section id=transcript>" + ("".join(out) or "<p>(nothing said yet)</p>") + "</section>"


def marked(text: str, quotes: list[dict[str, Any]]) -> str:
    """A speech with its quotes marked verified (found in the passage) or not."""
    out, at = [], 0
    for q in sorted(quotes, key=lambda q: int(q["start"])):
        a, b = int(q["start"]), int(q["end"])
        if a < at or b > len(text):
            continue
        ok = bool(q.get("verified"))
        out.append(e(text[at:a]))
        out.append(f"<span class='{'vq' if ok else 'uq'}' title='{'verified in the passage' if ok else 'not found in the passage'}'>"
                   f"{e(text[a:b])}</span>")  # fmt: skip
        at = b
    out.append(e(text[at:]))
    return "".join(out)


def header(r: Any, shown_at: float) -> str:
    labels = labels_for(len(r.answers))
    answers = "".join(f"<li><b>{lab}</b> {e(a)}</li>" for lab, a in zip(labels, r.answers))
    you = (
        f"<p class=side>You argue for <b>{labels[r.side]}</b>.</p>"
        if r.side is not None and r.side < len(labels)
        else ""
    )
    clock = ""
    if r.time_limit:
        left = max(0, math.ceil(r.time_limit - (time.time() - shown_at)))
        clock = (f"<p class=clock>Time left: <span id=clock data-left='{left}'>{left // 60}:{left % 60:02d}</span></p>"
                 "<p class=error id=time-up hidden>Time is up: an answer now is not counted.</p>")  # fmt: skip
    blind = ("" if r.source is not None else
             "<p class=legend>You do not see the passage: quotes are marked <span class=vq>verified</span> "
             "or <span class=uq>not found</span>.</p>")  # fmt: skip
    return (f"<p class=meta>Round {int(r.round)} of {int(r.rounds)}</p>{clock}<h1 id=question>{e(r.question)}</h1>"
            f"<ol class=answers>{answers}</ol>{you}{blind}")  # fmt: skip


def probability_control(n: int) -> str:
    labels = labels_for(n)
    even = [100 // n + (1 if i < 100 % n else 0) for i in range(n)]
    rows = "".join(
        f"<label class=prob><b>{lab}</b> <input type=range min=0 max=100 step=1 name=p{i} id=p{i} value={v}>"
        f" <output id=o{i}>{v}%</output></label>"
        for i, (lab, v) in enumerate(zip(labels, even))
    )
    return f"<fieldset id=probs data-n={n}><legend>How likely is each answer? (always 100% in all)</legend>{rows}</fieldset>"


def judge_turn(base: str, csrf: str, r: Any, shown_at: float, *, action: str, turn_id: str = "",
               error: str = "") -> str:  # fmt: skip
    labels = labels_for(len(r.answers))
    passage = f"<section id=passage><h2>Passage</h2><pre>{e(r.source)}</pre></section>" if r.source is not None else ""
    end = ("<label class=end><input type=checkbox name=end value=1 id=end> End the debate with this verdict</label>"
           if r.may_end else "")  # fmt: skip
    err = f"<p class=error id=error>{e(error)}</p>" if error else ""
    body = (
        f"{nav(base)}{header(r, shown_at)}{passage}{transcript(r.messages, labels)}{err}"
        f"<form method=post id=verdict action='{e(action)}'>{csrf_field(csrf)}"
        f"<input type=hidden name=episode value={int(r.episode)}><input type=hidden name=round value={int(r.round)}>"
        f"<input type=hidden name=turn value='{e(turn_id)}'>"
        f"{probability_control(len(r.answers))}"
        "<label>Your reason (optional)<textarea name=reason id=reason rows=3 maxlength=2000></textarea></label>"
        f"{end}<button type=submit id=rule>Rule</button></form>"
    )
    return page("Your verdict", body, base, wide=True)


def text_turn(base: str, csrf: str, r: Any, shown_at: float, *, action: str, turn_id: str, error: str = "",
              draft: str = "") -> str:  # fmt: skip
    labels = labels_for(len(r.answers))
    speech = r.kind == "speech"
    passage = ""
    if r.source is not None:
        tip = " Select a passage of it and press “Quote the selection”." if speech else ""
        passage = (
            f"<section id=passage><h2>Passage</h2><p class=legend>{tip}</p><pre id=source>{e(r.source)}</pre></section>"
        )
    limits = ""
    if speech:
        limits = (f"<p id=limits data-chars='{r.char_limit or ''}' data-quotes='{r.quote_limit or ''}'>"
                  f"<span id=count-chars>0</span>{'/' + str(int(r.char_limit)) if r.char_limit else ''} characters · "
                  f"<span id=count-quoted>0</span>{'/' + str(int(r.quote_limit)) if r.quote_limit else ''} quoted</p>")  # fmt: skip
    quote = "<button type=button id=quote>Quote the selection</button>" if speech and r.source is not None else ""
    what = {"speech": "Your speech", "question": "Your question to the debaters"}.get(r.kind, "Your answer")
    err = f"<p class=error id=error>{e(error)}</p>" if error else ""
    body = (
        f"{nav(base)}{header(r, shown_at)}{passage}{transcript(r.messages, labels)}{err}"
        f"<form method=post id=speech action='{e(action)}'>{csrf_field(csrf)}"
        f"<input type=hidden name=turn value='{e(turn_id)}'>"
        f"<label>{what}<textarea name=content id=content rows=8>{e(draft)}</textarea></label>{limits}{quote}"
        "<button type=submit id=send>Send</button></form>"
    )
    return page(what, body, base, wide=True)


def waiting(base: str, seat: str, status: str) -> str:
    body = (f"{nav(base)}<h1>Waiting for your turn</h1><p id=waiting data-events='{e(base)}/events'>"
            f"Seat {e(seat)}. The run is {e(status)}. Your turn will appear here when it comes; "
            "no need to reload.</p><div id=turn-slot></div>")  # fmt: skip
    return page("Waiting", body, base, wide=True)


def feedback(base: str, fb: Feedback, scoring: str) -> str:
    labels = labels_for(len(fb.answers))
    probs = fb.probabilities or ()
    rows = "".join(
        f"<li{' class=correct' if i == fb.correct else ''}><b>{lab}</b> {e(a)} — you gave "
        f"{round(100 * probs[i]) if i < len(probs) else 0}%{' ✓ correct answer' if i == fb.correct else ''}</li>"
        for i, (lab, a) in enumerate(zip(labels, fb.answers))
    )
    verdict = "right" if fb.right else "wrong" if fb.right is not None else "not readable"
    score = "—" if fb.score is None else f"{fb.score:+.2f}"
    body = (f"{nav(base)}<h1>Feedback</h1><p id=question>{e(fb.question)}</p><ol class=answers>{rows}</ol>"
            f"<p id=result>Your final verdict was <b>{verdict}</b>. Score ({e(scoring)} rule): <b id=score>{score}</b></p>"
            f"<p><a class=button id=next href='{e(base)}/judge'>Next debate</a></p>")  # fmt: skip
    return page("Feedback", body, base)


def finished(base: str, completion: str | None) -> str:
    code = (f"<p class=done id=completion>Your completion code: <b>{e(completion)}</b></p>"
            if completion else "")  # fmt: skip
    body = f"{nav(base)}<h1>All done</h1><p id=all-done>There is nothing left for you to judge. Thank you!</p>{code}"
    return page("All done", body, base)


def time_up(base: str) -> str:
    body = (f"{nav(base)}<h1>Time is up</h1><p class=error id=timed-out>Your answer came after the time limit, so it"
            " was not counted: the round is recorded as timed out and this debate goes to someone else.</p>"
            f"<p><a class=button id=next href='{e(base)}/judge'>Judge the next debate</a></p>")  # fmt: skip
    return page("Time is up", body, base)


def leaderboard(base: str, csrf: str, rows: list[tuple[str, int, float, bool]], mine: str | None, *,
                error: str = "", typed: str = "") -> str:  # fmt: skip
    """The board: the names people chose (escaped like any text), the viewer's row marked;
    and the viewer's choice: join under a name, or leave."""
    trs = "".join(f"<tr{' class=you' if you else ''}><td>{i + 1}</td><td class=name>{e(name)}</td><td>{n}</td>"
                  f"<td>{score:+.2f}</td></tr>" for i, (name, n, score, you) in enumerate(rows))  # fmt: skip
    if mine is not None:
        choice = (f"<form method=post action='{e(base)}/leaderboard'>{csrf_field(csrf)}"
                  f"<p>You appear as <b id=my-name>{e(mine)}</b>. <input type=hidden name=on value=0>"
                  "<button type=submit id=board-leave>Leave the leaderboard</button></p></form>")  # fmt: skip
    else:
        choice = (f"<form method=post action='{e(base)}/leaderboard'>{csrf_field(csrf)}"
                  "<p>You are not on the leaderboard. To appear on it (once you have judged a debate), choose a name"
                  " others will see; it need not be yours.</p><input type=hidden name=on value=1>"
                  f"<label>Name <input type=text name=name id=display-name maxlength={NAME_LIMIT} required"
                  f" value='{e(typed)}'></label> <button type=submit id=board-join>Join the leaderboard</button></form>")  # fmt: skip
    problem = f"<p class=error id=error>{e(error)}</p>" if error else ""
    body = (f"{nav(base)}<h1>Leaderboard</h1><p>Mean score per debate judged, for those who chose to appear.</p>"
            f"<table id=leaderboard><tr><th>#</th><th>judge</th><th>debates</th><th>mean score</th></tr>{trs}</table>"
            f"{problem}{choice}")  # fmt: skip
    return page("Leaderboard", body, base)


# -- the admin's pages ----------------------------------------------------------------


def dashboard(base: str, csrf: str, title: str, conditions: list[tuple[str, int, int, int, int | None]],
              people: list[tuple[str, int, int, int | None, float | None]], labels: dict[str, str | None],
              config: dict[str, Any], new_links: list[tuple[str, str]], live: list[tuple[str, str]]) -> str:  # fmt: skip
    def pct(a: int | None, b: int) -> str:
        return "—" if a is None or b == 0 else f"{100 * a / b:.0f}%"

    cond = "".join(f"<tr><td>{e(c)}</td><td>{n}</td><td>{a}</td><td>{d}</td><td>{pct(r, d)}</td></tr>"
                   for c, n, a, d, r in conditions)  # fmt: skip
    ppl = "".join(
        f"<tr><td>{e(pid)}</td><td>{e(labels.get(pid) or '')}</td><td>{a}</td><td>{d}</td><td>{pct(r, d)}</td>"
        f"<td>{'—' if t is None else f'{t:.1f} s'}</td></tr>"
        for pid, a, d, r, t in people
    )
    links = "".join(f"<li>{e(pid)}: <code class=link>{e(url)}</code></li>" for pid, url in new_links)
    links = f"<section id=new-links><h2>New links (shown once)</h2><ul>{links}</ul></section>" if links else ""
    seats = "".join(f"<li>{e(pid)}: {e(seat)}</li>" for pid, seat in live)
    body = (
        f"{nav(base, admin=True)}<h1>{e(title)}: study dashboard</h1>"
        f"<p id=config>{e(json.dumps(config))}</p>{links}"
        "<h2>Progress per condition</h2><table id=conditions><tr><th>condition</th><th>episodes</th>"
        f"<th>assigned</th><th>judged</th><th>accuracy</th></tr>{cond}</table>"
        "<h2>Participants</h2><table id=participants><tr><th>id</th><th>label</th><th>assigned</th><th>judged</th>"
        f"<th>accuracy</th><th>time per verdict</th></tr>{ppl}</table>"
        + (f"<h2>Live seats</h2><ul>{seats}</ul>" if seats else "")
        + f"<h2>Add participants</h2><form method=post action='{e(base)}/participants'>{csrf_field(csrf)}"
        "<label>How many <input type=number name=n min=1 max=500 value=1></label> "
        "<label>Label (optional, admin's own) <input name=label maxlength=80></label> "
        "<label>Live seat (optional) <input name=seat maxlength=80></label> <button type=submit id=add>Add</button></form>"
        f"<h2>Exports</h2><ul><li><a id=export href='{e(base)}/export/verdicts.csv'>people's verdicts (CSV)</a></li>"
        "<li>everything else: <code>moot export RUN.db</code>, <code>moot analyze RUN.db</code></li></ul>"
    )
    return page("Dashboard", body, base, wide=True)


def refused() -> str:
    return "<!doctype html><title>Forbidden</title><p>Forbidden.</p>"
