"""LiRA's Gaussian scores against a slow, direct scipy.stats.norm implementation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from mistrust.attacks.reference.lira import (
    VAR_FLOOR,
    Pooled,
    fit_gaussian,
    lira_offline,
    lira_online,
    pool,
)
from mistrust.metrics import auroc


def _data(n: int = 12, m: int = 8, q: int | None = None, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (n, m) if q is None else (n, m, q)
    in_mask = np.zeros((n, m), bool)
    for i in range(n):  # every example IN for at least 2 and OUT for at least 2 models
        in_mask[i, rng.permutation(m)[: rng.integers(2, m - 1)]] = True
    ref = rng.normal(size=shape) + 3.0 * (in_mask if q is None else in_mask[..., None])
    target = rng.normal(size=(n,) if q is None else (n, q)) + 1.5
    return target, ref, in_mask


def _slow_stats(values, sel, fixed):
    """Per-example mean and std of the selected values; pooled within-example std if fixed."""
    means = [float(np.mean(v[s])) for v, s in zip(values, sel, strict=True)]
    if fixed:
        dev = sum(
            float(np.sum((v[s] - mu) ** 2)) for v, s, mu in zip(values, sel, means, strict=True)
        )
        stds = [np.sqrt(dev / sel.sum())] * len(values)
    else:
        stds = [float(np.std(v[s])) for v, s in zip(values, sel, strict=True)]
    return means, stds


def _slow_online(target, ref, in_mask, fixed):
    mi, si = _slow_stats(ref, in_mask, fixed)
    mo, so = _slow_stats(ref, ~in_mask, fixed)
    return np.array(
        [norm.logpdf(t, mi[i], si[i]) - norm.logpdf(t, mo[i], so[i]) for i, t in enumerate(target)]
    )


def _slow_offline(target, ref, in_mask, fixed):
    mo, so = _slow_stats(ref, ~in_mask, fixed)
    return np.array([-np.log(norm.sf(t, mo[i], so[i])) for i, t in enumerate(target)])


@pytest.mark.parametrize("fixed", [False, True])
def test_online_matches_scipy(fixed: bool) -> None:
    target, ref, in_mask = _data()
    got = lira_online(target, ref, in_mask, fixed_variance=fixed)
    np.testing.assert_allclose(got, _slow_online(target, ref, in_mask, fixed), rtol=1e-10)


@pytest.mark.parametrize("fixed", [False, True])
def test_offline_matches_scipy(fixed: bool) -> None:
    target, ref, in_mask = _data(seed=1)
    got = lira_offline(target, ref, ~in_mask, fixed_variance=fixed)
    np.testing.assert_allclose(got, _slow_offline(target, ref, in_mask, fixed), rtol=1e-10)


def test_offline_far_tail_stays_finite() -> None:
    # 40 standard deviations above OUT: sf underflows in a naive log(1 - cdf)
    ref = np.array([[-1.0, 1.0, -1.0, 1.0]])
    got = lira_offline(np.array([40.0]), ref, np.ones((1, 4), bool))
    assert np.isfinite(got).all() and got[0] > 800


def test_augmented_queries_average_per_query_scores() -> None:
    target, ref, in_mask = _data(q=2, seed=2)
    both = lira_online(target, ref, in_mask)
    each = [lira_online(target[:, k], ref[:, :, k], in_mask) for k in range(2)]
    np.testing.assert_allclose(both, (each[0] + each[1]) / 2)
    off = lira_offline(target, ref, ~in_mask, fixed_variance=True)
    each = [
        lira_offline(target[:, k], ref[:, :, k], ~in_mask, fixed_variance=True) for k in range(2)
    ]
    np.testing.assert_allclose(off, (each[0] + each[1]) / 2)


@pytest.mark.parametrize("online", [True, False])
def test_higher_confidence_scores_higher(online: bool) -> None:
    # sign: members (target phi near the IN mean, above OUT) score higher than non-members
    _, ref, in_mask = _data(n=200, m=32, seed=3)
    rng = np.random.default_rng(4)
    member = rng.random(200) < 0.5
    target = rng.normal(size=200) + np.where(member, 3.0, 0.0)
    score = lira_online(target, ref, in_mask) if online else lira_offline(target, ref, ~in_mask)
    assert score[member].mean() > score[~member].mean()
    assert auroc(score, member) > 0.9
    if not online:  # the offline score is increasing in phi
        assert (lira_offline(target + 0.5, ref, ~in_mask) > score).all()


def test_missing_in_or_out_statistics_use_the_shift() -> None:
    ref = np.array(
        [
            [0.0, 1.0, 4.0, 5.0],  # IN {4, 5}, OUT {0, 1}
            [0.0, 1.0, 2.0, 3.0],  # all OUT
            [6.0, 7.0, 8.0, 9.0],
        ]
    )  # all IN
    in_mask = np.array([[False, False, True, True], [False] * 4, [True] * 4])
    target = np.array([4.5, 5.5, 3.5])
    got = lira_online(target, ref, in_mask)
    # shift = 4.0 (row 0: 4.5 - 0.5); a side with no value takes the pooled variance
    # (0.5 + 5.0) / 6 of the rows that have >= 2 values on that side
    pooled = np.sqrt(5.5 / 6)
    expected_row1 = norm.logpdf(5.5, 5.5, pooled) - norm.logpdf(5.5, 1.5, np.sqrt(1.25))
    expected_row2 = norm.logpdf(3.5, 7.5, np.sqrt(1.25)) - norm.logpdf(3.5, 3.5, pooled)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[1], expected_row1)
    np.testing.assert_allclose(got[2], expected_row2)


def test_fit_gaussian_floor_and_pooled_fallback() -> None:
    mean, var, count = fit_gaussian(
        np.array([[1.0, 1.0], [2.0, 9.0]]), np.array([[True, True], [True, False]])
    )
    assert count.tolist() == [2, 1] and mean.tolist() == [1.0, 2.0]
    assert var[0] == VAR_FLOOR and var[1] == VAR_FLOOR  # pooled over row 0, which is constant


@pytest.mark.parametrize("bad", ["shape", "dtype", "nan", "empty"])
def test_bad_inputs_raise(bad: str) -> None:
    target, ref, in_mask = _data()
    if bad == "shape":
        with pytest.raises(ValueError, match="in_mask must have shape"):
            lira_online(target, ref, in_mask[:, :3])
    elif bad == "dtype":
        with pytest.raises(ValueError, match="boolean"):
            lira_online(target, ref, in_mask.astype(int))
    elif bad == "nan":
        ref[0, 0] = np.nan
        with pytest.raises(ValueError, match="finite"):
            lira_online(target, ref, in_mask)
    else:
        with pytest.raises(ValueError, match="IN and OUT"):
            lira_online(target, ref, np.ones_like(in_mask))


def test_pool_by_hand() -> None:
    """IN values: example 0 {4, 6}, example 1 {5}; OUT: example 0 {0, 2}, example 1 {1, 3},
    example 2 {7, 8, 9}."""
    ref = np.array([[4.0, 6.0, 0.0, 2.0], [5.0, 1.0, 3.0, 0.0], [7.0, 8.0, 9.0, 0.0]])
    in_mask = np.array([[1, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 1]], bool)
    ref[1, 3], ref[2, 3] = 7.0, 2.0  # IN values of examples 1 and 2 are 5, 7 and 2
    got = pool(ref, in_mask)
    # IN: example 0 (5 +- 1: 2), example 1 (6 +- 1: 2); example 2 has one value
    assert got.var_in.tolist() == [4.0 / 4]
    # OUT: example 0 (1 +- 1: 2), example 1 (2 +- 1: 2), example 2 (8: 1 + 0 + 1)
    assert got.var_out.tolist() == [6.0 / 7]
    # per-example IN - OUT gaps of the examples with both: 5 - 1, 6 - 2, 2 - 8
    assert got.shift.tolist() == [4.0]
    assert got.out_mean.tolist() == [(0 + 2 + 1 + 3 + 7 + 8 + 9) / 7]
    # two queries: one value per query
    two = pool(np.stack([ref, ref + 1.0], -1), in_mask)
    assert two.var_out.tolist() == [6.0 / 7] * 2 and two.out_mean[1] == got.out_mean[0] + 1
    empty = pool(ref, np.zeros_like(in_mask))  # nothing IN: no shift
    assert np.isnan(empty.shift).all() and empty.var_in.tolist() == [1.0]


def test_pooled_statistics_replace_those_of_the_scored_rows() -> None:
    """Given ``pooled``, every pooled value comes from it: the fixed variances, the shift of
    an example without IN values and the mean of an example without OUT values."""
    ref = np.array([[0.0, 2.0, 5.0, 7.0], [1.0, 3.0, 2.0, 2.0], [9.0, 9.0, 9.0, 9.0]])
    in_mask = np.array([[0, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]], bool)
    t = np.array([3.0, 4.0, 8.0])
    p = Pooled(np.array([4.0]), np.array([9.0]), np.array([10.0]), np.array([-1.0]))
    got = lira_online(t, ref, in_mask, fixed_variance=True, pooled=p)
    mu_out = np.array([1.0, 2.0, 9.0 - 10.0])  # example 2: no OUT value, mu_in - shift
    mu_in = np.array([6.0, 2.0 + 10.0, 9.0])  # example 1: no IN value, mu_out + shift
    want = norm.logpdf(t, mu_in, 2.0) - norm.logpdf(t, mu_out, 3.0)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    got = lira_offline(t, ref, ~in_mask, fixed_variance=True, pooled=p)
    want = -norm.logsf(t, [1.0, 2.0, -1.0], 3.0)  # example 2: the pooled OUT mean
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # per-example variances where an example has two values, the pooled one elsewhere
    got = lira_offline(t, ref, ~in_mask, pooled=p)
    sd = [1.0, np.sqrt(0.5), 3.0]  # OUT {0, 2}, {1, 3, 2, 2}, none
    np.testing.assert_allclose(got, -norm.logsf(t, [1.0, 2.0, -1.0], sd), rtol=1e-12)
    # without pooled: the same numbers as the statistics pooled over these rows
    np.testing.assert_array_equal(
        lira_online(t, ref, in_mask, fixed_variance=True),
        lira_online(t, ref, in_mask, fixed_variance=True, pooled=pool(ref, in_mask)),
    )


def test_pooled_statistics_are_checked() -> None:
    target, ref, in_mask = _data()
    two = pool(np.stack([ref, ref], -1), in_mask)
    with pytest.raises(ValueError, match=r"pooled.var_in must have one value per query \(1,\)"):
        lira_online(target, ref, in_mask, pooled=two)
    nothing_out = Pooled(*(np.array([v]) for v in (1.0, 1.0, np.nan, np.nan)))
    with pytest.raises(ValueError, match="offline LiRA needs OUT reference values"):
        lira_offline(target, ref, np.zeros_like(in_mask), pooled=nothing_out)
    with pytest.raises(ValueError, match="online LiRA needs IN and OUT reference values"):
        lira_online(target, ref, np.ones_like(in_mask), pooled=nothing_out)
    np.testing.assert_array_equal(  # every example has both sides: no shift needed
        lira_online(target, ref, in_mask, pooled=nothing_out)[:1],
        lira_online(target[:1], ref[:1], in_mask[:1], pooled=nothing_out),
    )
    with pytest.raises(ValueError, match="pool needs ref_phi"):
        pool(ref, in_mask[:3])
