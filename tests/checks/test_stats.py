"""The statistics of the trust checks against hand-computed values and brute force."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from scipy.stats import beta, norm

from mistrust.checks.stats import (
    _bootstrap_tprs,
    auroc_difference_interval,
    auroc_difference_p_value,
    auroc_interval,
    auroc_p_value,
    constant_decisions,
    epsilon_lower_bound,
    min_resolvable_fpr,
    null_test,
    tie_fraction,
    tpr_at_fpr_fast,
    tpr_at_fpr_interval,
    tpr_at_fpr_intervals,
)
from mistrust.metrics import tpr_at_fpr
from mistrust.metrics.rates import Ranked

Z = norm.ppf(0.975)


def _brute_delong(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> tuple[float, float]:
    """AUROC difference and its variance from the O(n_in * n_out) kernel matrices."""

    def parts(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = s[m], s[~m]
        psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
        return psi.mean(1), psi.mean(0)

    a10, a01 = parts(a)
    b10, b01 = parts(b)
    n_in, n_out = len(a10), len(a01)
    s10 = np.cov(np.stack([a10, b10]))  # ddof 1
    s01 = np.cov(np.stack([a01, b01]))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / n_in + (
        s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]
    ) / n_out
    return a10.mean() - b10.mean(), var


def test_delong_interval_by_hand() -> None:
    # members 3, 2; non-members 1, 2.5: pairs (3,1) (3,2.5) (2,1) win, (2,2.5) loses
    # v10 = [1, 1/2], v01 = [1, 1/2]: AUROC 3/4, var = 0.125/2 + 0.125/2 = 0.125
    auc, low, high = auroc_interval([3.0, 2.0, 1.0, 2.5], [True, True, False, False])
    assert auc == 0.75
    assert low == pytest.approx(0.75 - Z * math.sqrt(0.125))
    assert high == 1.0  # clipped


@pytest.mark.parametrize("seed", range(4))
def test_delong_matches_brute_force_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = rng.random(60) < 0.4
    a = rng.integers(0, 6, 60) + m  # many ties
    b = rng.normal(size=60)
    zero = np.zeros(60)
    d, var = _brute_delong(a, zero, m)
    auc, low, high = auroc_interval(a, m)
    assert auc == pytest.approx(d + 0.5)
    assert (low, high) == pytest.approx((auc - Z * math.sqrt(var), auc + Z * math.sqrt(var)))
    d, var = _brute_delong(a, b, m)
    got = auroc_difference_interval(a, b, m)
    assert got == pytest.approx((d, d - Z * math.sqrt(var), d + Z * math.sqrt(var)))
    assert auroc_difference_interval(a, a, m) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("seed", range(6))
def test_fast_tpr_at_fpr_equals_the_roc_version(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = rng.random(300) < 0.5
    s = np.round(rng.normal(size=300) + m, 1)  # ties
    for fpr in (0.0, 0.001, 0.01, 0.05, 0.3, 1.0):
        assert tpr_at_fpr_fast(s[m], s[~m], fpr) == tpr_at_fpr(s, m, fpr), fpr


def test_low_fpr_resolution_and_bootstrap_interval() -> None:
    assert min_resolvable_fpr(500) == 0.01  # 5 false positives at 1 %
    assert min_resolvable_fpr(5000) == 0.001
    rng = np.random.default_rng(0)
    m = np.arange(1000) < 500
    s = rng.normal(size=1000) + 1.5 * m
    assert math.isnan(tpr_at_fpr_interval(s, m, 0.001, seed=0)[0])  # 500 non-members: 0.5 FP
    low, high = tpr_at_fpr_interval(s, m, 0.01, seed=0)
    assert low < tpr_at_fpr(s, m, 0.01) < high
    assert 0.0 < high - low < 0.3
    assert tpr_at_fpr_interval(s, m, 0.01, seed=0) == (low, high)  # seeded
    sep = np.r_[np.ones(500), np.zeros(500)]
    assert tpr_at_fpr_interval(sep, m, 0.01, seed=1) == (1.0, 1.0)


def test_intervals_at_several_fprs_equal_one_at_a_time() -> None:
    # one set of resamples serves every FPR: the same numbers as separate seeded calls,
    # and an unresolvable FPR is nan wherever it sits in the list
    rng = np.random.default_rng(3)
    m = np.arange(1200) < 400
    s = rng.normal(size=1200) + m
    fprs = [0.0001, 0.01, 0.05, 1.0]
    got = tpr_at_fpr_intervals(s, m, fprs, seed=7)
    for fpr, interval in zip(fprs[1:], got[1:], strict=True):
        assert interval == tpr_at_fpr_interval(s, m, fpr, seed=7)
    assert math.isnan(got[0][0]) and got[-1] == (1.0, 1.0)
    assert got[1][1] < got[2][0]  # 5 % admits more members than 1 %, well outside the noise


def _elementwise_bootstrap_tprs(
    s: np.ndarray, m: np.ndarray, k: int, rng: np.random.Generator, n_boot: int
) -> np.ndarray:
    """TPRs of resamples drawn element by element: each resample's non-members and
    members drawn with replacement, the (k+1)-th highest non-member as its threshold."""
    x, y = s[m], s[~m]
    ys = rng.choice(y, size=(n_boot, len(y)))
    xs = rng.choice(x, size=(n_boot, len(x)))
    bars = -np.sort(-ys, axis=1)[:, k]
    return (xs > bars[:, None]).mean(axis=1)


def test_bootstrap_tprs_have_the_elementwise_resamples_distribution() -> None:
    # tied scores on purpose (rounded), k = 2 false positives of 40 non-members
    rng = np.random.default_rng(11)
    m = np.arange(70) < 30
    s = np.round(rng.normal(size=70) + m, 1)
    k, n_boot = 2, 40_000
    want = _elementwise_bootstrap_tprs(s, m, k, np.random.default_rng(0), n_boot)
    got = _bootstrap_tprs(np.sort(s[m]), np.sort(s[~m]), k, np.random.default_rng(1), n_boot)
    values = np.union1d(want, got)
    p_want = np.array([(want == v).mean() for v in values])
    p_got = np.array([(got == v).mean() for v in values])
    assert 0.5 * np.abs(p_want - p_got).sum() < 0.02  # total variation, Monte Carlo ~0.01
    assert np.quantile(got, [0.025, 0.975]) == pytest.approx(
        np.quantile(want, [0.025, 0.975]), abs=1 / 30 + 1e-9
    )


def test_tpr_at_fpr_interval_covers_the_true_rate() -> None:
    # members N(1, 1), non-members N(0, 1): the true TPR at FPR f is sf(isf(f) - 1);
    # 800 seeded data sets, 5 and 50 false positives allowed (0.1 % and 1 % of 5,000)
    rng = np.random.default_rng(5)
    fprs = [0.001, 0.01]
    truth = [norm.sf(norm.isf(f) - 1.0) for f in fprs]
    m = np.arange(6000) < 1000
    hits = np.zeros(2)
    reps = 800
    for r in range(reps):
        s = rng.normal(size=6000) + m
        for i, (low, high) in enumerate(tpr_at_fpr_intervals(s, m, fprs, seed=r)):
            hits[i] += low <= truth[i] <= high
    assert (hits / reps >= 0.94).all(), hits / reps


def test_tpr_at_fpr_intervals_memory_does_not_grow_with_resamples_times_rows() -> None:
    # 1,000 resamples of 20,000 scores: element by element that is 2e7 draws (>= 160 MB);
    # sorted once and drawn by order statistics it is a few copies of the scores
    rng = np.random.default_rng(2)
    m = np.arange(20_000) < 10_000
    s = rng.normal(size=20_000) + m
    tracemalloc.start()
    try:
        tpr_at_fpr_intervals(s, m, [0.001, 0.01], seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * s.nbytes


def test_epsilon_lower_bound_by_hand() -> None:
    # every member found, no false positive, 100 of each: Clopper-Pearson gives
    # TPR_low = 0.025 ** (1/100) and FPR_high = 1 - 0.025 ** (1/100) in closed form
    r = 0.025 ** (1 / 100)
    want = math.log((1 - 1e-5 - (1 - r)) / (1 - r))
    assert epsilon_lower_bound(100, 100, 0, 100) == pytest.approx(want, rel=1e-9)
    assert want == pytest.approx(3.2813, abs=1e-4)
    # TPR 0.9, FPR 0.1 on 100 / 100, with scipy's beta quantiles
    tpr_low = beta.ppf(0.025, 90, 11)
    fpr_high = beta.ppf(0.975, 11, 90)
    want = max(
        math.log((1 - 1e-5 - fpr_high) / (1 - tpr_low)),
        math.log((1 - 1e-5 - (1 - tpr_low)) / fpr_high),
    )
    assert epsilon_lower_bound(90, 100, 10, 100) == pytest.approx(want, rel=1e-9)
    assert 1.0 < want < 2.0
    # a coin flip certifies nothing; nor does "everyone is a member"
    assert epsilon_lower_bound(50, 100, 50, 100) == 0.0
    assert epsilon_lower_bound(100, 100, 100, 100) == 0.0
    # more samples, tighter intervals, a larger certified epsilon
    assert epsilon_lower_bound(1000, 1000, 0, 1000) > epsilon_lower_bound(100, 100, 0, 100)
    with pytest.raises(ValueError, match="delta"):
        epsilon_lower_bound(1, 2, 1, 2, delta=1.0)


def test_null_test_on_exchangeable_scores_fails_about_one_run_in_a_hundred() -> None:
    fails = 0
    for seed in range(300):
        y = np.random.default_rng(seed).normal(size=200)
        auc, low, high = null_test(y, seed=seed)
        assert low <= auc <= high
        fails += not low <= 0.5 <= high
    assert fails <= 9  # 99 % intervals: about 3 expected
    with pytest.raises(ValueError, match="at least 4"):
        null_test(np.zeros(3), seed=0)


def test_null_test_splits_into_two_disjoint_halves() -> None:
    # scores 0..99, all distinct: the AUROC is the share of won pairs (first half > rest)
    y = np.arange(100.0)
    auc, _, _ = null_test(y, seed=3)
    half = np.zeros(100, bool)
    half[np.random.default_rng(3).permutation(100)[:50]] = True
    assert auc == pytest.approx(sum(int((y[~half] < x).sum()) for x in y[half]) / 2500)
    assert auc != 0.5  # a different split (another seed) gives a different value
    assert null_test(y, seed=4)[0] != auc


def test_ties_and_constant_decisions() -> None:
    assert tie_fraction(np.r_[np.ones(6), np.arange(4)]) == 0.7  # six 1.0s plus the 1 in 0..3
    assert tie_fraction(np.arange(5.0)) == 0.2
    assert constant_decisions(np.ones(4, bool)) and constant_decisions(np.zeros(4, bool))
    assert not constant_decisions(np.array([True, False]))


def test_checks_on_a_given_sort_equal_the_checks_that_sort() -> None:
    rng = np.random.default_rng(4)
    m = np.arange(300) < 120
    a = np.round(rng.normal(size=300) + m, 1)  # ties
    b = rng.normal(size=300) + 0.3 * m
    ra, rb = Ranked(a, m), Ranked(b, m)
    assert auroc_interval(a, m, ranked=ra) == auroc_interval(a, m)
    assert auroc_p_value(a, m, ranked=ra) == auroc_p_value(a, m)
    pair = (ra, rb)
    assert auroc_difference_interval(a, b, m, ranked=pair) == auroc_difference_interval(a, b, m)
    assert auroc_difference_p_value(a, b, m, ranked=pair) == auroc_difference_p_value(a, b, m)
    got = tpr_at_fpr_intervals(a, m, [0.01, 0.05], seed=3, ranked=ra)
    assert got == tpr_at_fpr_intervals(a, m, [0.01, 0.05], seed=3)
    with pytest.raises(ValueError, match="different members"):
        auroc_difference_interval(a, b, m, ranked=(ra, Ranked(b, ~m)))
    with pytest.raises(ValueError, match="ranked holds"):
        auroc_interval(a[:-1], m[:-1], ranked=ra)
