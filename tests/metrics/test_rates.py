from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from mistrust.metrics import (
    aupr,
    auroc,
    fpr_at_tpr,
    oracle_threshold,
    roc_curve,
    roc_point,
    tpr_at_fpr,
)
from mistrust.metrics.rates import Ranked


def random_case(seed: int, n: int = 300, levels: int | None = None):
    rng = np.random.default_rng(seed)
    is_member = rng.random(n) < 0.4
    score = rng.normal(size=n) + 0.8 * is_member
    if levels:  # heavy ties
        score = np.round(score * levels) / levels
    return score, is_member


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("levels", [None, 2, 10])
def test_matches_sklearn(seed: int, levels: int | None) -> None:
    score, m = random_case(seed, levels=levels)
    fpr, tpr, thr = roc_curve(score, m)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(m, score, drop_intermediate=False)
    np.testing.assert_array_equal(fpr, sk_fpr)
    np.testing.assert_array_equal(tpr, sk_tpr)
    np.testing.assert_array_equal(thr, sk_thr)
    assert auroc(score, m) == pytest.approx(skm.roc_auc_score(m, score), abs=1e-12)
    assert aupr(score, m) == pytest.approx(skm.average_precision_score(m, score), abs=1e-12)


def brute_force(score, m):
    """Every achievable (fpr, tpr) of the rule score >= t."""
    ts = np.r_[np.inf, np.unique(score)]
    return np.array([[(score[~m] >= t).mean(), (score[m] >= t).mean()] for t in ts]), ts


@pytest.mark.parametrize("seed", range(3))
def test_low_fpr_and_high_tpr_operating_points(seed: int) -> None:
    score, m = random_case(seed, levels=5 if seed else None)
    pts, ts = brute_force(score, m)
    for target in (0.0, 0.001, 0.01, 0.1, 0.5):
        assert tpr_at_fpr(score, m, target) == pts[pts[:, 0] <= target, 1].max()
    for target in (0.5, 0.9, 0.95, 1.0):
        assert fpr_at_tpr(score, m, target) == pts[pts[:, 1] >= target, 0].min()
    t = oracle_threshold(score, m)
    best = (pts[:, 1] - pts[:, 0]).max()
    tpr, fpr = roc_point(score, m, t)
    assert tpr - fpr == pytest.approx(best, abs=1e-15)
    assert t == ts[np.argmax(pts[:, 1] - pts[:, 0])]  # the first maximum


def test_float_rounding_at_the_target() -> None:
    # 3 of 30 non-members = 0.1 exactly, though 0.1 * 30 != 3 in floating point
    m = np.r_[np.ones(10, bool), np.zeros(30, bool)]
    score = np.r_[np.linspace(5, 6, 10), np.linspace(4, 4.5, 3), np.zeros(27)]
    assert tpr_at_fpr(score, m, 0.1) == 1.0
    assert fpr_at_tpr(score, m, 1.0) == 0.0


def test_degenerate_inputs() -> None:
    m = np.array([True, False, True, False])
    assert auroc(np.ones(4), m) == 0.5  # all tied
    assert aupr(np.ones(4), m) == 0.5  # = prevalence
    assert oracle_threshold(np.ones(4), m) == np.inf  # first maximum: predict nothing
    assert auroc(np.array([1.0, 0.0, 1.0, 0.0]), m) == 1.0
    assert tpr_at_fpr(np.array([0.0, 1.0, 0.0, 1.0]), m, 0.0) == 0.0
    with pytest.raises(ValueError, match="0 non-members"):
        auroc(np.ones(3), np.ones(3, bool))
    with pytest.raises(ValueError, match="0 members"):
        roc_curve(np.ones(3), np.zeros(3, bool))
    with pytest.raises(ValueError, match="3 entries but is_member has 2"):
        auroc(np.ones(3), np.array([True, False]))
    with pytest.raises(ValueError, match="NaN"):
        auroc(np.array([np.nan, 1.0]), np.array([True, False]))
    with pytest.raises(ValueError, match="boolean"):
        auroc(np.ones(2), np.array([2, 0]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fpr_at_tpr(np.ones(2), np.array([True, False]), 1.5)


case = st.integers(2, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(-5, 5).map(float), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n).filter(lambda b: 0 < sum(b) < len(b)),
    )
)


@settings(max_examples=80, deadline=None)
@given(case=case, seed=st.integers(0, 2**16))
def test_properties(case, seed: int) -> None:
    score, m = np.array(case[0]), np.array(case[1])
    fpr, tpr, _ = roc_curve(score, m)
    assert np.all((fpr >= 0) & (fpr <= 1) & (tpr >= 0) & (tpr <= 1))
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    a = auroc(score, m)
    assert 0 <= a <= 1 and 0 <= aupr(score, m) <= 1
    assert auroc(-score, m) == pytest.approx(1 - a, abs=1e-12)
    perm = np.random.default_rng(seed).permutation(len(score))
    assert auroc(score[perm], m[perm]) == pytest.approx(a, abs=1e-12)
    assert aupr(score[perm], m[perm]) == pytest.approx(aupr(score, m), abs=1e-12)
    for target in (0.0, 0.01, 0.5):
        assert 0 <= tpr_at_fpr(score, m, target) <= 1
        assert tpr_at_fpr(score[perm], m[perm], target) == tpr_at_fpr(score, m, target)
    assert 0 <= fpr_at_tpr(score, m, 0.95) <= 1


def test_aupr_trapezoid_known_value() -> None:
    from mistrust.metrics.rates import aupr_trapezoid

    # thresholds 0.9 (P 1, R .5), 0.8 (P .5, R .5), 0.7 (P 2/3, R 1), plus (R 0, P 1):
    # area .5 * 1 + 0 + .5 * (.5 + 2/3) / 2 = 19/24 (average precision: 5/6)
    score = np.array([0.9, 0.8, 0.7, 0.6])
    member = np.array([True, False, True, False])
    assert aupr_trapezoid(score, member) == pytest.approx(19 / 24)
    assert aupr(score, member) == pytest.approx(5 / 6)


def test_aupr_trapezoid_is_sklearn_auc_of_pr_curve() -> None:
    from sklearn.metrics import auc, precision_recall_curve

    from mistrust.metrics.rates import aupr_trapezoid

    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(4, 60))
        member = rng.random(n) < 0.5
        member[:2] = [True, False]
        score = np.round(rng.normal(size=n) + member, 1)  # rounded: plenty of ties
        precision, recall, _ = precision_recall_curve(member, score)
        assert aupr_trapezoid(score, member) == pytest.approx(auc(recall, precision), abs=1e-12)


@pytest.mark.parametrize("levels", [None, 3])
def test_ranked_placements_and_subset_order_by_brute_force(levels: int | None) -> None:
    # DeLong's placements from the pairwise comparisons, ties counting one half
    s, m = random_case(7, n=120, levels=levels)
    r = Ranked(s, m)
    x, y = s[m], s[~m]
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    v10, v01 = r.placements()
    np.testing.assert_allclose(v10, psi.mean(1), rtol=0, atol=1e-15)
    np.testing.assert_allclose(v01, psi.mean(0), rtol=0, atol=1e-15)
    assert r.largest_tie() == np.unique(s, return_counts=True)[1].max()
    xs, ys = r.groups()
    assert np.array_equal(xs, np.sort(x)) and np.array_equal(ys, np.sort(y))
    order = r.order_of(~m)  # an ascending argsort of the non-members, without sorting
    assert sorted(order) == list(range(len(y))) and (np.diff(y[order]) >= 0).all()
    half = np.arange(len(y)) % 2 == 0
    for got, want in zip(
        Ranked(y, half, order=order).placements(), Ranked(y, half).placements(), strict=True
    ):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("levels", [None, 1, 3, 20])
@pytest.mark.parametrize("shift", [-3.0, 0.8])
def test_oracle_threshold_from_value_sorts_equals_full_roc(
    seed: int, levels: int | None, shift: float
) -> None:
    """The value-sort fast path picks the bit-identical threshold of the full ROC's first
    maximum (many ties, members mixed into tie blocks; shift -3: inf is often the best)."""
    rng = np.random.default_rng(seed)
    for n in (2, 7, 50, 400):
        is_member = rng.random(n) < 0.4
        is_member[:2] = True, False
        score = rng.normal(size=n) + shift * is_member
        if levels:
            score = np.round(score * levels) / levels
        roc = Ranked(score, is_member).roc_curve()
        fpr, tpr, thr = roc
        expected = float(thr[np.argmax(tpr - fpr)])
        got = oracle_threshold(score, is_member)
        assert got == expected and np.signbit(got) == np.signbit(expected)


@pytest.mark.parametrize("levels", [None, 1, 4])
def test_ranked_equals_straightforward_counts_bit_for_bit(levels: int | None) -> None:
    """ROC and placements read off the one sort equal the pairwise definitions computed
    with the same arithmetic, bit for bit (many ties, members and non-members mixed)."""
    s, m = random_case(11, n=150, levels=levels)
    s[:6] = 0.0  # a tie block that holds both groups
    r = Ranked(s, m)
    x, y = s[m], s[~m]
    thr = np.unique(s)[::-1]
    tps, fps = (x >= thr[:, None]).sum(1), (y >= thr[:, None]).sum(1)
    fpr, tpr, got_thr = r.roc_curve()
    assert fpr.tobytes() == (np.r_[0, fps] / len(y)).tobytes()
    assert tpr.tobytes() == (np.r_[0, tps] / len(x)).tobytes()
    # a block of -0.0 and 0.0 (np.round makes both) shows either sign: equal values
    assert np.array_equal(got_thr, np.r_[np.inf, thr])
    v10, v01 = r.placements()
    below, tied = (y < x[:, None]).sum(1), (y == x[:, None]).sum(1)
    assert v10.tobytes() == ((below + 0.5 * tied) / len(y)).tobytes()
    below, tied = (x < y[:, None]).sum(1), (x == y[:, None]).sum(1)
    assert v01.tobytes() == (1.0 - (below + 0.5 * tied) / len(x)).tobytes()
