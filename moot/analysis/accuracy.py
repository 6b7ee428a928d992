"""Judge accuracy per condition, paired comparisons, accuracy by where the truth was, and
position bias: the study's Table 1.

Accuracy counts the valid rulings of finished episodes with a known answer (an invalid
verdict is reported as a rate of its own, as in the run summary; a tie is invalid or wrong
by the `--ties` convention). Intervals are percentile intervals of a cluster bootstrap:
every passage's (or question's) episodes are drawn together (moot.analysis.clusters), and
one draw serves every number, so conditions on the same questions are compared paired.
"""

from __future__ import annotations

import json
from itertools import combinations

import numpy as np

from moot.analysis import stats
from moot.analysis.load import Results
from moot.analysis.table import Table


class Ratios:
    """Ratio statistics sum(num) / sum(den) over episodes, bootstrapped together."""

    def __init__(self, res: Results) -> None:
        self.res = res
        self.nums: list[np.ndarray] = []
        self.dens: list[np.ndarray] = []

    def add(self, num: np.ndarray, den: np.ndarray) -> int:
        self.nums.append(np.asarray(num, dtype=float))
        self.dens.append(np.asarray(den, dtype=float))
        return len(self.nums) - 1

    def solve(self, reps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Point estimates (per statistic) and bootstrap replicates (reps x statistics)."""
        if not self.nums:  # no condition: a database without episodes
            return np.empty(0), np.empty((0, 0))
        q = self.res.clusters.count
        num = stats.cluster_sums(self.res.cluster, np.column_stack(self.nums), q)
        den = stats.cluster_sums(self.res.cluster, np.column_stack(self.dens), q)
        with np.errstate(invalid="ignore", divide="ignore"):
            est = num.sum(0) / den.sum(0)
        return est, stats.bootstrap_ratios(num, den, reps, rng)


def scored(res: Results) -> np.ndarray:
    """Episodes whose ruling counts towards accuracy: valid, with a known answer."""
    return res.valid & ~np.isnan(res.correct)


def accuracy_tables(res: Results, reps: int, rng: np.random.Generator) -> list[Table]:
    ok = scored(res)
    right = np.where(ok, res.correct, 0.0)
    ratios = Ratios(res)
    k_cond = len(res.conditions)
    in_cond = [res.condition == k for k in range(k_cond)]
    acc_ids = [ratios.add(right * m, ok * m) for m in in_cond]

    # comparisons: on the questions both conditions answered validly
    pairs = list(combinations(range(k_cond), 2))
    q = len(res.questions)
    answered = np.zeros((k_cond, q), dtype=bool)
    per_q_right = np.zeros((k_cond, q))
    per_q_n = np.zeros((k_cond, q))
    for k in range(k_cond):
        m = in_cond[k] & ok
        per_q_n[k] = np.bincount(res.question[m], minlength=q)
        per_q_right[k] = np.bincount(res.question[m], weights=res.correct[m], minlength=q)
        answered[k] = per_q_n[k] > 0
    pair_ids = []
    for a, b in pairs:
        shared = (answered[a] & answered[b])[res.question]
        pair_ids.append(
            (ratios.add(right * in_cond[a] * shared, ok * in_cond[a] * shared),
             ratios.add(right * in_cond[b] * shared, ok * in_cond[b] * shared))
        )  # fmt: skip

    side_ids = [
        (c, label, ratios.add(right * m, ok * m), int((m & ok).sum()))
        for c, label, m in side_splits(res, ok)
    ]
    chose = res.valid & (res.choice >= 0)  # a tie counted wrong chose no position
    first_ids = [ratios.add((chose & (res.choice == 0)) * m, chose * m) for m in in_cond]

    est, boot = ratios.solve(reps, rng)
    lo, hi = stats.percentile_ci(boot)
    diffs = []
    for (a, b), (ia, ib) in zip(pairs, pair_ids):
        d = boot[:, ia] - boot[:, ib]  # a difference's interval: the same draws, differenced
        shared = answered[a] & answered[b]
        with np.errstate(invalid="ignore", divide="ignore"):
            qa = per_q_right[a][shared] / per_q_n[a][shared]
            qb = per_q_right[b][shared] / per_q_n[b][shared]
        dl, dh = stats.percentile_ci(d[:, None])
        one_each = bool(shared.any()) and bool(np.all(per_q_n[a][shared] == 1) and np.all(per_q_n[b][shared] == 1))
        mc = None
        if one_each:
            n_b = int(np.sum((qa == 1) & (qb == 0)))
            n_c = int(np.sum((qa == 0) & (qb == 1)))
            mc = stats.mcnemar_exact(n_b, n_c)
        # the permutation test flips whole clusters: a passage's questions are not independent
        per_cluster = np.bincount(res.clusters.of_question[shared], weights=qa - qb, minlength=res.clusters.count)
        diffs.append([
            res.conditions[a], res.conditions[b], int(shared.sum()), est[ia], est[ib],
            est[ia] - est[ib], dl[0], dh[0],
            stats.sign_flip_test(per_cluster, 10_000, rng) if shared.any() else None, mc,
        ])  # fmt: skip

    acc = Table(
        "accuracy",
        "Judge accuracy by condition",
        ["condition", "questions", "episodes", "invalid", "failed", "accuracy", "ci_low", "ci_high"],
        formats={"accuracy": "pct", "ci_low": "pct", "ci_high": "pct", "invalid": "pct"},
        note=(
            f"Accuracy over valid verdicts; 95% intervals from {reps:,} bootstrap resamples of "
            f"{res.clusters.describe(len(res.questions))}. invalid: share of finished episodes whose "
            f"verdict could not be read{' or tied (--ties invalid)' if res.ties == 'invalid' else ' (a tie counts wrong: --ties wrong)'}; "
            "failed: episodes that did not finish (not counted)."
        ),
    )
    for k, c in enumerate(res.conditions):
        m = in_cond[k]
        n = int(m.sum())
        acc.rows.append([
            c, int(answered[k].sum()), n, (n - int((res.valid & m).sum())) / n if n else np.nan,
            res.failed.get(c, 0), est[acc_ids[k]], lo[acc_ids[k]], hi[acc_ids[k]],
        ])  # fmt: skip
    comp = Table(
        "comparisons",
        "Paired comparisons",
        ["a", "b", "questions", "accuracy_a", "accuracy_b", "difference", "ci_low", "ci_high", "p_permutation", "p_mcnemar"],
        diffs,
        note=(
            "On the questions both conditions answered validly. p_permutation: paired sign-flip "
            f"test of the per-{'passage' if res.clusters.by == 'source' else 'question'} differences "
            "(exact up to 16 nonzero ones, its normal limit from 5,000); "
            "p_mcnemar: exact McNemar test, when each question has one verdict per condition "
            "(it takes questions as independent)."
        ),
        formats={"accuracy_a": "pct", "accuracy_b": "pct", "difference": "pct", "ci_low": "pct", "ci_high": "pct", "p_permutation": "p", "p_mcnemar": "p"},
    )  # fmt: skip
    side = Table(
        "sides",
        "Accuracy by where the truth was",
        ["condition", "split", "episodes", "accuracy", "ci_low", "ci_high"],
        [[res.conditions[c], label, n, est[i], lo[i], hi[i]] for c, label, i, n in side_ids],
        note="truth shown first/second: the correct answer's place in the order shown; "
        "honest/dishonest: whether the one assigned advocate (a consultant) argued the truth; "
        "truth argued by: which of two advocates (debaters) had the correct answer.",
        formats={"accuracy": "pct", "ci_low": "pct", "ci_high": "pct"},
    )
    pos = position_table(res, est, lo, hi, first_ids)
    return [acc, comp, side, pos]


def side_splits(res: Results, ok: np.ndarray) -> list[tuple[int, str, np.ndarray]]:
    """(condition, label, episodes) for each split of a condition by where the truth was."""
    out = []
    for k in range(len(res.conditions)):
        m = res.condition == k
        if not (m & ok).any():
            continue
        for pos in np.unique(res.answer[m & ok]):
            if pos >= 0:
                label = {0: "first", 1: "second"}.get(int(pos), f"#{pos + 1}")
                out.append((k, f"truth shown {label}", m & (res.answer == pos)))
        one = m & (res.advocates == 1)
        for seat in sorted({s for s in res.advocate_seats[one & ok]}):
            s = one & (res.advocate_seats == seat)
            honest = s & (res.truth_argued_by == seat)
            out.append((k, f"{seat} honest", honest))
            out.append((k, f"{seat} dishonest", s & ~honest))
        two = m & (res.advocates == 2)
        if (two & ok).any():
            for by in sorted({str(b) for b in res.truth_argued_by[two & ok]}):
                label = "neither" if by == "None" else ("both" if "," in by else by)
                sel = two & (res.truth_argued_by.astype(str) == by)
                out.append((k, f"truth argued by {label}", sel))
    return out


def position_table(res, est, lo, hi, first_ids) -> Table:
    """How often the judge picks the answer shown first, and, for questions judged in both
    orders, how often swapping the order changed the answer chosen (compared by its text)."""
    nq = len(res.questions)
    pairs = np.zeros(len(res.conditions), dtype=int)
    changed = np.zeros(len(res.conditions), dtype=int)
    # only questions judged more than once in a condition can have been shown both ways
    chose = res.valid & (res.choice >= 0)  # a tie (counted wrong or not) chose no answer
    v = np.flatnonzero(chose)
    key = res.condition[v] * nq + res.question[v]
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    v, key = v[counts[inverse] > 1], key[counts[inverse] > 1]
    # two answers and a known truth: the order is where the truth was shown, and the same
    # answer was chosen in both orders when both verdicts were right or both wrong
    two = (res.n_answers[v] == 2) & (res.answer[v] >= 0)
    first_of_order, at = np.unique(key[two] * 2 + res.answer[v][two], return_index=True)
    chosen = res.correct[v][two][at]
    both = np.flatnonzero(first_of_order[1:] - first_of_order[:-1] == 1)
    both = both[first_of_order[both] % 2 == 0]  # (question, order 0) followed by (question, order 1)
    np.add.at(pairs, first_of_order[both] // 2 // nq, 1)
    np.add.at(changed, first_of_order[both] // 2 // nq, chosen[both] != chosen[both + 1])
    orders: dict[int, dict[str, str]] = {}  # otherwise compare the answers' texts
    for i, k in zip(v[~two], key[~two]):
        shown = json.loads(res.answers[i])
        orders.setdefault(int(k), {}).setdefault(shown[0], shown[res.choice[i]])
    for k, seen in orders.items():
        if len(seen) == 2:
            a, b = seen.values()
            pairs[k // nq] += 1
            changed[k // nq] += a != b
    t = Table(
        "position",
        "Position bias",
        ["condition", "valid", "picks_first", "ci_low", "ci_high", "swapped_pairs", "changed", "changed_rate"],
        note="picks_first: share of valid verdicts choosing the answer shown first (0.5 = no "
        "bias when the truth is shown first half the time). swapped_pairs: questions judged in "
        "both orders in one condition; changed: how many got a different answer when swapped.",
        formats={"picks_first": "pct", "ci_low": "pct", "ci_high": "pct", "changed_rate": "pct"},
    )
    for k, c in enumerate(res.conditions):
        i = first_ids[k]
        t.rows.append([
            c, int((chose & (res.condition == k)).sum()), est[i], lo[i], hi[i], int(pairs[k]),
            int(changed[k]), changed[k] / pairs[k] if pairs[k] else np.nan,
        ])  # fmt: skip
    return t
