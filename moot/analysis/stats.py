"""The statistics, on plain numpy arrays: bootstrap over questions, paired tests, calibration.

Every function here is a formula a reader can check by hand; tests/test_stats.py does.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import numpy as np

from moot.transcript.events import LOG_FLOOR  # one floor for every log score moot reports

NORMAL_FROM = 5000  # nonzero differences from which the sign-flip test uses its normal limit
CHUNK_CELLS = 10_000_000  # bootstrap weights held at once (replicates x questions)


def cluster_sums(cluster: np.ndarray, values: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per cluster (question), the sum of each column of `values` (rows x stats)."""
    out = np.zeros((n_clusters, values.shape[1]))
    for j in range(values.shape[1]):
        out[:, j] = np.bincount(cluster, weights=values[:, j], minlength=n_clusters)
    return out


def bootstrap_weights(n: int, reps: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Blocks of bootstrap replicates: how often each of `n` clusters was drawn, when `n`
    are drawn with replacement. One draw serves every statistic, so statistics computed on
    the same questions are paired."""
    if n == 0:
        return
    block = max(1, min(reps, CHUNK_CELLS // n))
    done = 0
    while done < reps:
        c = min(block, reps - done)
        # int32 draws are twice as fast as int64 ones; blocks stay under 2^31 cells
        idx = rng.integers(0, n, size=(c, n), dtype=np.int32)
        idx += (np.arange(c, dtype=np.int32) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=c * n).reshape(c, n).astype(np.float32)
        done += c


def bootstrap_ratios(
    num: np.ndarray, den: np.ndarray, reps: int, rng: np.random.Generator
) -> np.ndarray:
    """Replicates (reps x stats) of sum(num) / sum(den) per column, resampling the rows of
    `num` and `den` (clusters x stats) together. NaN where a replicate has no denominator."""
    n, k = num.shape
    both = np.hstack([num, den]).astype(np.float32)
    out = np.empty((0, k))
    for w in bootstrap_weights(n, reps, rng):
        s = (w @ both).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.vstack([out, s[:, :k] / s[:, k:]])
    return out


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of bootstrap replicates (per column), ignoring NaN replicates."""
    a = (1 - level) / 2
    if samples.shape[0] == 0:
        nan = np.full(samples.shape[1], np.nan)
        return nan, nan
    with warnings.catch_warnings():  # an all-NaN column (no data) gives NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanquantile(samples, a, axis=0)
        hi = np.nanquantile(samples, 1 - a, axis=0)
    return lo, hi


def sign_flip_test(d: np.ndarray, reps: int, rng: np.random.Generator) -> float:
    """Two-sided paired permutation test of mean(d) = 0: under the null, which of the two
    conditions got which score on a question is arbitrary, so each difference's sign is.
    Exact (every sign pattern) for up to 16 nonzero differences; else `reps` random flips,
    p = (1 + #{|T*| >= |T|}) / (1 + reps); beyond `NORMAL_FROM` differences, where the
    flipped sum is normal to within the Monte Carlo error, 2 (1 - Phi(|T| / sqrt(sum d^2)))."""
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return 1.0
    t = abs(d.sum())
    tol = 1e-9 * max(1.0, t)
    if n <= 16:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        return float(np.mean(np.abs(signs @ d) >= t - tol))
    if n >= NORMAL_FROM:
        return math.erfc(t / math.sqrt(2 * float(np.sum(d**2))))
    hits = 0
    block = max(1, min(reps, CHUNK_CELLS // n))
    done = 0
    while done < reps:
        c = min(block, reps - done)
        signs = rng.integers(0, 2, size=(c, n)) * 2 - 1
        hits += int(np.sum(np.abs(signs @ d) >= t - tol))
        done += c
    return (1 + hits) / (1 + reps)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar test: of the b + c questions the two conditions disagree on,
    is the split b:c further from even than chance? p = min(1, 2 P(X <= min(b, c))),
    X ~ Binomial(b + c, 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    log_half = n * math.log(0.5)
    total = 0.0
    for i in range(k + 1):
        total += math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half)
    return min(1.0, 2 * total)


def brier(p_correct: np.ndarray) -> float:
    """Mean squared error of the probability given to the correct answer: mean (1 - p)^2.
    0 is perfect; always answering 50% scores 0.25."""
    return float(np.mean((1 - p_correct) ** 2)) if len(p_correct) else math.nan


def reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> list[tuple[float, float, int, float, float]]:
    """Equal-width bins of the judge's probability for the answer it chose: (low, high, n,
    mean confidence, accuracy) for each non-empty bin. A bin holds [low, high); the last
    one includes 1."""
    k = np.minimum((confidence * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        m = k == b
        n = int(m.sum())
        if n:
            out.append((b / bins, (b + 1) / bins, n, float(confidence[m].mean()), float(correct[m].mean())))
    return out


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: sum over bins of (n_bin / n) |accuracy - mean confidence|."""
    n = len(confidence)
    if not n:
        return math.nan
    return float(sum(m / n * abs(acc - conf) for _, _, m, conf, acc in reliability_bins(confidence, correct, bins)))




def log_score(p_correct: np.ndarray, floor: float = LOG_FLOOR) -> np.ndarray:
    """Each verdict's logarithmic score, ln p(correct answer) (natural log; 0 is perfect,
    ln 0.5 = -0.693 always answering 50%), with p floored at `floor`. Proper: a judge
    maximises its expected score by reporting what it believes."""
    return np.log(np.maximum(p_correct, floor))


def ece_parts(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Per verdict, its bin of confidence and its gap (confidence - correct): the ECE is
    sum over bins of |sum of gaps in the bin| / n, which a bootstrap can reweight."""
    k = np.minimum((confidence * bins).astype(int), bins - 1)
    return k, confidence - correct


def bootstrap_ece(
    cluster: np.ndarray, confidence: np.ndarray, correct: np.ndarray, n_clusters: int,
    reps: int, rng: np.random.Generator, bins: int = 10,
) -> np.ndarray:  # fmt: skip
    """Replicates of the expected calibration error, resampling clusters (passages or
    questions) with every verdict in them; NaN where a replicate drew no verdict."""
    if not len(confidence):
        return np.full(reps, np.nan)
    k, gap = ece_parts(confidence, correct, bins)
    gaps = np.zeros((n_clusters, bins))
    np.add.at(gaps, (cluster, k), gap)
    counts = np.bincount(cluster, minlength=n_clusters).astype(float)
    both = np.column_stack([gaps, counts]).astype(np.float32)
    out = []
    for w in bootstrap_weights(n_clusters, reps, rng):
        s = (w @ both).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.abs(s[:, :bins]).sum(1) / s[:, bins])
    return np.concatenate(out) if out else np.full(reps, np.nan)
