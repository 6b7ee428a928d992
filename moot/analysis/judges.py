"""Agreement between judges ruling on the same transcripts: a jury's jurors, re-judging
panels, a person beside a model.

For each condition with more than one judge, over the episodes both (or all) ruled validly:
Cohen's kappa for each pair of judges, Fleiss' kappa for all of them, and for each judge its
kappa against the gold answer and how often its final verdict differs from the episode's
ruling (the verdict a run's summary counts: for a re-judged run, the original judge's).
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

from moot.analysis.agreement import cohen_kappa, fleiss_kappa
from moot.analysis.load import Study
from moot.analysis.table import Table

SQL = """
SELECT v.condition, v.episode, v.judge, v.choice, v.answer, r.choice
FROM episode_verdicts AS v JOIN episode_results AS r ON r.episode = v.episode
WHERE v.status = 'done' AND v.valid
ORDER BY v.episode, v.judge
"""


def judge_agreement_table(study: Study) -> Table | None:
    rulings: dict[str, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    gold: dict[str, dict[int, int | None]] = defaultdict(dict)
    ruling: dict[str, dict[int, int | None]] = defaultdict(dict)
    for cond, (ep, judge, choice, answer, ruled) in study.query(SQL):
        rulings[cond][ep][judge] = choice
        gold[cond][ep] = answer
        ruling[cond][ep] = ruled
    t = Table(
        "judge_agreement",
        "Agreement between judges",
        ["condition", "judge", "other", "episodes", "cohen_kappa", "fleiss_kappa", "kappa_gold", "flips"],
        note="Final verdicts on episodes both judges (a row with `other`) or all judges (fleiss) "
        "ruled validly. kappa_gold: the judge's choices against the correct answers; flips: "
        "share of its verdicts that differ from the episode's ruling.",
        formats={"cohen_kappa": "num", "fleiss_kappa": "num", "kappa_gold": "num", "flips": "pct"},
    )
    for cond, episodes in rulings.items():
        judges = sorted({j for by in episodes.values() for j in by})
        if len(judges) < 2:
            continue
        full = [by for by in episodes.values() if len(by) == len(judges)]
        fleiss = fleiss_kappa([[by[j] for j in judges] for by in full]) if full else float("nan")
        for j in judges:
            mine = [(ep, by[j]) for ep, by in episodes.items() if j in by]
            known = [(c, gold[cond][ep]) for ep, c in mine if gold[cond][ep] is not None]
            ruled = [(c, ruling[cond][ep]) for ep, c in mine if ruling[cond][ep] is not None]
            t.rows.append([
                cond, j, None, len(mine), None, fleiss,
                cohen_kappa([c for c, _ in known], [g for _, g in known]) if known else None,
                sum(c != r for c, r in ruled) / len(ruled) if ruled else None,
            ])  # fmt: skip
        for a, b in combinations(judges, 2):
            both = [(by[a], by[b]) for by in episodes.values() if a in by and b in by]
            t.rows.append([cond, a, b, len(both), cohen_kappa([x for x, _ in both], [y for _, y in both]), None, None, None])
    return t if t.rows else None
