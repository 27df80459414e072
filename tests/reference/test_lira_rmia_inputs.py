"""LiRA and RMIA at their edges: every input check with its message, the fallbacks for
missing statistics written out by hand, float64 arithmetic, no floating-point warnings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from mistrust.attacks.reference.lira import fit_gaussian, lira_offline, lira_online
from mistrust.attacks.reference.rmia import rmia_prior, rmia_ratio, rmia_scores, rmia_scores_dense

# --- LiRA -------------------------------------------------------------------------------------


def _lira_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    mask = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0]], bool)
    return rng.normal(size=3), rng.normal(size=(3, 4)), mask


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("target-3d", r"target_phi must be \(N,\) or \(N, Q\), got shape \(3, 1, 1\)$"),
        (
            "n-mismatch",
            r"ref_phi must be \(N, M\) or \(N, M, Q\) matching target_phi \(3, 1\), "
            r"got shape \(2, 4\)$",
        ),
        (
            "n-mismatch-3d",
            r"ref_phi must be \(N, M\) or \(N, M, Q\) matching target_phi \(3, 2\), "
            r"got shape \(2, 4, 2\)$",
        ),
        ("mask-shape", r"out_mask must have shape \(3, 4\) \(N, M\), got \(3, 5\)$"),
        ("mask-dtype", r"out_mask must be boolean, got dtype int64$"),
        ("nan", r"target_phi and ref_phi must be finite$"),
        ("no-out", r"offline LiRA needs OUT reference values; out_mask is all False$"),
    ],
)
def test_lira_offline_input_checks(case: str, message: str) -> None:
    t, ref, mask = _lira_inputs()
    args = {
        "target-3d": (t[:, None, None], ref, mask),
        "n-mismatch": (t, ref[:2], mask),
        "n-mismatch-3d": (np.c_[t, t], np.stack([ref[:2], ref[:2]], -1), mask),
        "mask-shape": (t, ref[..., None], np.ones((3, 5), bool)),
        "mask-dtype": (t, ref, mask.astype(np.int64)),
        "nan": (np.r_[t[:2], np.nan], ref, mask),
        "no-out": (t, ref, np.zeros_like(mask)),
    }[case]
    with pytest.raises(ValueError, match=message):
        lira_offline(*args)


def test_lira_online_needs_in_and_out_values() -> None:
    t, ref, _ = _lira_inputs()
    for mask in (np.ones((3, 4), bool), np.zeros((3, 4), bool)):
        with pytest.raises(
            ValueError,
            match=r"online LiRA needs IN and OUT reference values; in_mask is all True or all "
            r"False$",
        ):
            lira_online(t, ref, mask)


def test_lira_accepts_one_query_as_a_third_axis() -> None:
    t, ref, mask = _lira_inputs()
    np.testing.assert_array_equal(lira_online(t, ref[..., None], mask), lira_online(t, ref, mask))
    np.testing.assert_array_equal(
        lira_offline(t, ref[..., None], ~mask), lira_offline(t, ref, ~mask)
    )


def test_lira_computes_in_float64_whatever_it_is_given() -> None:
    t, ref, mask = _lira_inputs()
    t32, ref32 = t.astype(np.float32), ref.astype(np.float32)
    want = lira_online(t32.astype(np.float64), ref32.astype(np.float64), mask)
    got = lira_online(t32, ref32, mask)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)
    want = lira_offline(t32.astype(np.float64), ref32.astype(np.float64), ~mask)
    np.testing.assert_array_equal(lira_offline(t32, ref32, ~mask), want)


def test_fit_gaussian_defaults_and_the_empty_mask() -> None:
    values = np.array([[1.0, 3.0, 8.0], [2.0, 2.0, 5.0]])
    mask = np.array([[True, True, False], [True, False, True]])
    mean, var, count = fit_gaussian(values, mask)  # per-example variance by default
    assert mean.tolist() == [2.0, 3.5] and var.tolist() == [1.0, 2.25] and count.tolist() == [2, 2]
    with np.errstate(all="raise"):  # no 0 / 0 warning for an example without values
        mean, var, count = fit_gaussian(values, np.zeros((2, 3), bool))
    assert np.isnan(mean).all() and var.tolist() == [1.0, 1.0] and count.tolist() == [0, 0]


def test_online_shift_from_examples_with_one_in_or_out_value() -> None:
    """Examples 0 and 1 have IN and OUT values (one IN value for example 0, one OUT value
    for example 1): their mean IN - OUT gaps, 2 and 4, give the shift (median 3). Example 2
    has no IN value: mu_in = mu_out + 3. Variances are pooled (fixed_variance)."""
    ref = np.array([[3.0, 1.0, 1.0], [6.0, 6.0, 2.0], [0.0, 1.0, 2.0]])
    mask = np.array([[True, False, False], [True, True, False], [False, False, False]])
    t = np.array([2.0, 5.0, 4.0])
    # pooled within-example variances: IN: example 1 only (values 6, 6): 0 -> floor;
    # OUT: examples 0 (1, 1) and 2 (0, 1, 2): (0 + 2) / 5
    var_in, var_out = 1e-8, 2.0 / 5.0
    mu_in = np.array([3.0, 6.0, 1.0 + 3.0])
    mu_out = np.array([1.0, 2.0, 1.0])
    want = norm.logpdf(t, mu_in, np.sqrt(var_in)) - norm.logpdf(t, mu_out, np.sqrt(var_out))
    np.testing.assert_allclose(lira_online(t, ref, mask, fixed_variance=True), want, rtol=1e-9)


def test_online_shift_when_no_example_has_both_sides() -> None:
    """Example 0 only IN (mean 4), example 1 only OUT (mean 1): shift = 4 - 1 = 3, so
    mu_out(0) = 4 - 3 = 1 and mu_in(1) = 1 + 3 = 4."""
    ref = np.array([[3.0, 5.0], [0.0, 2.0]])
    mask = np.array([[True, True], [False, False]])
    t = np.array([2.0, 3.0])
    var = 1.0  # pooled: IN (3, 5) and OUT (0, 2) both give (1 + 1) / 2
    want = norm.logpdf(t, [4.0, 4.0], var) - norm.logpdf(t, [1.0, 1.0], var)
    np.testing.assert_allclose(lira_online(t, ref, mask), want, rtol=1e-9)


def test_offline_uses_a_single_out_value_as_the_mean() -> None:
    """Example 0 has one OUT value (2): its mean is 2, not the mean of all OUT values (3)."""
    ref = np.array([[9.0, 2.0], [0.0, 7.0]])
    out = np.array([[False, True], [True, True]])
    t = np.array([3.0, 1.0])
    var = 12.25  # pooled over example 1 (0, 7); example 0 has one value
    want = -norm.logsf(t, [2.0, 3.5], np.sqrt(var))
    np.testing.assert_allclose(lira_offline(t, ref, out), want, rtol=1e-9)


# --- RMIA -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: rmia_prior(np.ones(3)), r"ref_probs must be 2-D \(N, M\), got shape \(3,\)$"),
        (
            lambda: rmia_prior(np.full((2, 2), -0.1)),
            r"ref_probs must be probabilities in \[0, 1\]$",
        ),
        (lambda: rmia_prior(np.full((2, 2), 1.5)), r"ref_probs must be probabilities in \[0, 1\]$"),
        (
            lambda: rmia_prior(np.ones((3, 2)), np.ones((3, 3), bool)),
            r"mask must be boolean of shape \(3, 2\), got bool \(3, 3\)$",
        ),
        (
            lambda: rmia_prior(np.ones((3, 2)), np.ones((3, 2), np.int64)),
            r"mask must be boolean of shape \(3, 2\), got int64 \(3, 2\)$",
        ),
        (
            lambda: rmia_prior(np.ones((2, 2)), np.zeros((2, 2), bool)),
            r"mask selects no reference model for any example$",
        ),
        (lambda: rmia_prior(np.ones((0, 2))), r"mask selects no reference model for any example$"),
        (lambda: rmia_prior(np.ones((2, 2)), a=1.5), r"a must lie in \[0, 1\], got 1.5$"),
        (
            lambda: rmia_prior(np.ones((2, 2)), np.ones((2, 2), bool), fallback=1.5),
            r"fallback must be a probability in \[0, 1\], got 1.5$",
        ),
        (lambda: rmia_prior(np.ones((2, 2)), a=-0.5), r"a must lie in \[0, 1\], got -0.5$"),
        (
            lambda: rmia_ratio(np.ones(3), np.ones(2)),
            r"target_prob and prior must be 1-D of equal length, got \(3,\), \(2,\)$",
        ),
        (
            lambda: rmia_ratio(np.ones((2, 1)), np.ones(2)),
            r"target_prob and prior must be 1-D of equal length, got \(2, 1\), \(2,\)$",
        ),
        (
            lambda: rmia_ratio(np.ones((2, 2)), np.ones((2, 2))),
            r"target_prob and prior must be 1-D of equal length, got \(2, 2\), \(2, 2\)$",
        ),
        (
            lambda: rmia_scores(np.ones((2, 2)), np.ones(2)),
            r"ratio_x and ratio_z must be 1-D, got shapes \(2, 2\) and \(2,\)$",
        ),
        (
            lambda: rmia_scores(np.ones(2), np.ones((2, 2))),
            r"ratio_x and ratio_z must be 1-D, got shapes \(2,\) and \(2, 2\)$",
        ),
        (
            lambda: rmia_scores(np.ones(2), np.ones(0)),
            r"ratio_z is empty: RMIA needs population samples$",
        ),
        (
            lambda: rmia_scores(-np.ones(2), np.ones(2)),
            r"ratio_x must be non-negative and not NaN$",
        ),
        (
            lambda: rmia_scores(np.ones(2), np.r_[1.0, np.nan]),
            r"ratio_z must be non-negative and not NaN$",
        ),
        (
            lambda: rmia_scores(np.ones(2), np.ones(2), gamma=0.0),
            r"gamma must be positive, got 0.0$",
        ),
        (
            lambda: rmia_scores_dense(np.ones(2), np.ones(2), gamma=-1.0),
            r"gamma must be positive, got -1.0$",
        ),
    ],
)
def test_rmia_input_checks(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_rmia_prior_edges() -> None:
    p = np.array([[0.0, 1.0], [1.0, 1.0]])  # 0 and 1 are probabilities
    np.testing.assert_array_equal(rmia_prior(p), [0.5, 1.0])
    np.testing.assert_array_equal(rmia_prior(p, a=0.0), [0.75, 1.0])  # (mean + 1) / 2
    np.testing.assert_array_equal(rmia_prior(p, a=1.0), [0.5, 1.0])  # the OUT mean alone
    p32 = np.array([[0.1, 0.7, 0.3]], np.float32)
    want = (0.1 + 0.7 + 0.3) / 3  # summed in float64 from the float32 values
    got = rmia_prior(p32)
    assert got.dtype == np.float64
    assert got[0] == (np.float64(p32[0, 0]) + np.float64(p32[0, 1]) + np.float64(p32[0, 2])) / 3
    assert got[0] == pytest.approx(want, rel=1e-6)


def test_rmia_ratio_and_scores_in_float64() -> None:
    # 1.1 in float32 is 1.10000002...: above gamma = 1.1 in float64, equal to it in float32
    x = np.array([1.1], np.float32)
    assert rmia_scores(x, np.ones(1), gamma=1.1).tolist() == [1.0]
    assert rmia_scores_dense(x, np.ones(1), gamma=1.1).tolist() == [1.0]
    ratio = rmia_ratio(np.array([0.3], np.float32), np.array([0.7], np.float32))
    assert ratio.dtype == np.float64 and ratio[0] == np.float64(np.float32(0.3)) / np.float64(
        np.float32(0.7)
    )


def test_rmia_zero_ratios_raise_no_floating_point_error() -> None:
    x, z = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0])
    with np.errstate(all="raise"):
        dense = rmia_scores_dense(x, z)
        fast = rmia_scores(x, z)
    # 0 / 0 is NaN (never counted), x / 0 is inf (> 1): [0, 1/2, 1] ... written out
    assert dense.tolist() == [0.0, 0.5, 1.0] and fast.tolist() == [0.0, 0.5, 1.0]
    assert rmia_scores(np.ones(0), z).shape == (0,)
    assert rmia_scores_dense(np.ones(0), z).shape == (0,)
