"""The analysis's formulas against values worked out by hand."""

import math

import numpy as np
import pytest

from moot.analysis import stats
from moot.analysis.agreement import category, cohen_kappa, fleiss_kappa
from moot.analysis.ratings import ELO, fit


def test_mcnemar_exact_is_a_two_sided_binomial_test_on_the_discordant_questions():
    assert stats.mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert stats.mcnemar_exact(8, 2) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert stats.mcnemar_exact(3, 3) == 1.0 and stats.mcnemar_exact(0, 0) == 1.0


def test_the_sign_flip_test_enumerates_every_sign_pattern():
    # sums of four +-1: 4 (1 way), 2 (4), 0 (6), -2 (4), -4 (1): |sum| >= 2 in 10 of 16
    assert stats.sign_flip_test(np.array([1.0, 1, 1, -1]), 0, None) == pytest.approx(10 / 16)
    assert stats.sign_flip_test(np.array([1.0, 1, 1, 1, 0, 0]), 0, None) == pytest.approx(2 / 16)
    assert stats.sign_flip_test(np.zeros(5), 0, None) == 1.0


def test_the_sign_flip_test_samples_when_there_are_many_differences():
    rng = np.random.default_rng(1)
    d = np.array([1.0] * 30 + [-1.0] * 10)  # sum 20 of 40: z = 20 / sqrt(40) = 3.16
    p = stats.sign_flip_test(d, 20_000, rng)
    assert 0.0005 < p < 0.005
    assert stats.sign_flip_test(np.array([1.0, -1.0] * 20), 2000, rng) == 1.0
    # many differences: the normal limit, |T| / sqrt(sum d^2) = 100 / 100 -> p = 0.3173
    big = np.array([1.0] * 5050 + [-1.0] * 4950)
    assert stats.sign_flip_test(big, 0, None) == pytest.approx(0.31731, abs=1e-5)


def test_brier_ece_and_reliability_bins():
    assert stats.brier(np.array([1.0, 0.5, 0.0])) == pytest.approx((0 + 0.25 + 1) / 3)
    conf = np.array([0.55, 0.55, 0.95, 1.0])
    right = np.array([1.0, 0.0, 1.0, 1.0])
    assert stats.reliability_bins(conf, right) == [
        (0.5, 0.6, 2, pytest.approx(0.55), 0.5),
        (0.9, 1.0, 2, pytest.approx(0.975), 1.0),  # 1.0 falls in the last bin
    ]
    assert stats.ece(conf, right) == pytest.approx(0.5 * 0.05 + 0.5 * 0.025)
    assert math.isnan(stats.brier(np.array([]))) and math.isnan(stats.ece(np.array([]), np.array([])))


def test_cluster_bootstrap_resamples_whole_questions():
    rng = np.random.default_rng(0)
    # two questions: one always right (3 of 3), one always wrong (0 of 1)
    num, den = np.array([[3.0], [0.0]]), np.array([[3.0], [1.0]])
    reps = stats.bootstrap_ratios(num, den, 4000, rng)[:, 0]
    # each replicate draws {right, right}, {right, wrong} twice as often, or {wrong, wrong}
    assert set(np.round(reps, 6)) == {1.0, 0.75, 0.0}
    assert np.mean(reps == 0.75) == pytest.approx(0.5, abs=0.03)
    lo, hi = stats.percentile_ci(reps[:, None])
    assert (lo[0], hi[0]) == (0.0, 1.0)


def test_kappas_by_hand():
    # observed agreement 3/4; chance (1/2)(1/4) + (1/2)(3/4) = 1/2 -> (3/4 - 1/2) / (1/2)
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert cohen_kappa(["a", "a"], ["a", "a"]) == 1.0
    # per-item agreement 1, 1/3, 1, 1/3 (mean 2/3); categories even (chance 1/2) -> 1/3
    items = [["a", "a", "a"], ["a", "a", "b"], ["b", "b", "b"], ["a", "b", "b"]]
    assert fleiss_kappa(items) == pytest.approx(1 / 3)
    assert category(0.5, pairwise=True) == "tie" and category(6.6, pairwise=False) == 7


def test_bradley_terry_with_a_truth_advantage_matches_the_closed_form():
    # a beats b 3 of 4 when a argued the truth, 2 of 4 when b did: with two parameters
    # the model fits both rates exactly, sigmoid(d + t) = 3/4 and sigmoid(d - t) = 1/2,
    # so d = t = ln(3) / 2 and, centred, s_a = -s_b = ln(3) / 4.
    a = np.zeros(8, dtype=int)
    b = np.ones(8, dtype=int)
    y = np.array([1, 1, 1, 0, 1, 1, 0, 0], dtype=float)
    z = np.array([1, 1, 1, 1, -1, -1, -1, -1], dtype=float)
    s_a, s_b, t = fit(2, a, b, y, z, np.ones(8))
    assert s_a == pytest.approx(math.log(3) / 4) and s_b == pytest.approx(-s_a)
    assert t == pytest.approx(math.log(3) / 2)
    assert 1500 + ELO * s_a == pytest.approx(1500 + 100 * math.log10(3))


def test_a_player_who_always_wins_is_held_at_the_limit():
    a, b = np.zeros(3, dtype=int), np.ones(3, dtype=int)
    s_a, s_b, t = fit(2, a, b, np.ones(3), np.zeros(3), np.ones(3))
    assert s_a - s_b == pytest.approx(10.0) and t == 0


def test_the_log_score_is_ln_p_floored():
    p = np.array([1.0, 0.5, 0.0])
    assert stats.log_score(p).tolist() == pytest.approx([0.0, math.log(0.5), math.log(0.01)])


def test_the_ece_bootstrap_reweights_whole_clusters():
    # cluster 0: two verdicts at .9, both right (gaps -.1, -.1); cluster 1: one at .6, wrong (+.6)
    conf, right = np.array([0.9, 0.9, 0.6]), np.array([1.0, 1.0, 0.0])
    cluster = np.array([0, 0, 1])
    assert stats.ece(conf, right) == pytest.approx((0.2 + 0.6) / 3)
    reps = stats.bootstrap_ece(cluster, conf, right, 2, 4000, np.random.default_rng(0))
    # a resample is {0, 0} (ECE .1), {1, 1} (.6) or {0, 1} (the full data, 0.8 / 3)
    assert set(np.round(reps, 6)) == {0.1, 0.6, round(0.8 / 3, 6)}
    assert np.mean(np.isclose(reps, 0.8 / 3)) == pytest.approx(0.5, abs=0.03)


def test_questions_on_one_passage_are_one_cluster():
    from moot.analysis.clusters import assign

    got = assign(["a", "a", "b", None], "auto")  # questions 0-3 and their passages
    assert got.by == "source" and got.count == 3 and got.shared == 1
    assert got.of_question[0] == got.of_question[1] != got.of_question[2] != got.of_question[3]
    assert assign(["a", "a", "b", None], "question").count == 4
    assert assign(["a", "b", "c", None], "auto").by == "question"
    assert assign(["a", "b", "c", None], "source").count == 4  # asked for, yet no passage is shared


def test_the_debate_platforms_scoring_rules():
    from moot.analysis.scoring import judge_score

    log2 = {"LogScoreWithLinearPenalty": {"baseCoefficient": 1.0, "constant": 0.0, "logBase": 2.0, "perTurnPenalty": 0.05}}
    assert judge_score(log2, [0.01, 0.99], 1, 4) == pytest.approx(math.log2(0.99) - 0.2)
    quadratic = {"QuadraticScoreWithLinearPenalty": {"baseCoefficient": 1.0, "perTurnPenalty": 0.1}}
    assert judge_score(quadratic, [0.8, 0.2], 0, 1) == pytest.approx(2 * 0.8 - (0.64 + 0.04) - 0.1)
    spherical = {"SphericalScoreWithLinearPenalty": {"baseCoefficient": 2.0, "perTurnPenalty": 0.0}}
    assert judge_score(spherical, [0.6, 0.8], 1, 3) == pytest.approx(2 * 0.8 / 1.0)
    assert math.isnan(judge_score(None, [0.5, 0.5], 0, 0)) and math.isnan(judge_score({"Other": {}}, [1.0, 0.0], 0, 0))
