"""RMIA: streaming equals dense (ties included), the offline prior by hand, the sign."""

from __future__ import annotations

import numpy as np
import pytest

from mistrust.attacks.reference.rmia import rmia_prior, rmia_ratio, rmia_scores, rmia_scores_dense
from mistrust.metrics import auroc


@pytest.mark.parametrize("gamma", [1.0, 2.0, 0.5, 1.1, 1e-3])
@pytest.mark.parametrize("seed", range(4))
def test_streaming_equals_dense_with_ties(gamma: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    # few distinct values: many ties among z, among x, and between x / z and gamma
    grid = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 0.1, 0.3, 3.0])
    x = np.concatenate([rng.choice(grid, 300), rng.lognormal(size=300)])
    z = np.concatenate([rng.choice(grid, 200), rng.lognormal(size=100), x[:50] * gamma])
    np.testing.assert_array_equal(
        rmia_scores(x, z, gamma=gamma), rmia_scores_dense(x, z, gamma=gamma, chunk=64)
    )


def test_streaming_matches_the_division_in_the_last_bit() -> None:
    # x / z rounds to exactly gamma although z < x / gamma in exact arithmetic (or vice versa);
    # a plain searchsorted on x / gamma gets some of these wrong
    rng = np.random.default_rng(7)
    z = rng.uniform(0.5, 2.0, 2000)
    gamma = 1.1
    x = np.concatenate([z * gamma, np.nextafter(z * gamma, 0), np.nextafter(z * gamma, 9)])
    np.testing.assert_array_equal(
        rmia_scores(x, z, gamma=gamma), rmia_scores_dense(x, z, gamma=gamma)
    )


def test_known_values() -> None:
    z = np.array([1.0, 2.0, 2.0, 4.0])
    # gamma 1: count z strictly below x
    np.testing.assert_array_equal(
        rmia_scores(np.array([0.5, 1.0, 2.0, 3.0, 5.0]), z), [0.0, 0.0, 0.25, 0.75, 1.0]
    )
    np.testing.assert_array_equal(rmia_scores(np.array([4.0, 8.0]), z, gamma=2.0), [0.25, 0.75])


def test_offline_prior_by_hand() -> None:
    probs = np.array([[0.2, 0.9, 0.4], [0.6, 0.8, 0.1]])
    out = np.array([[True, False, True], [False, False, True]])
    # row 0: OUT mean 0.3 -> ((1 + 0.3) * 0.3 + 0.7) / 2 = 0.545
    # row 1: OUT mean 0.1 -> (1.3 * 0.1 + 0.7) / 2 = 0.415
    np.testing.assert_allclose(rmia_prior(probs, out, a=0.3), [0.545, 0.415])
    np.testing.assert_allclose(rmia_prior(probs, out, a=1.0), [0.3, 0.1])  # a = 1: OUT mean
    np.testing.assert_allclose(rmia_prior(probs), [0.5, 0.5])  # online: all models
    # a row without OUT model falls back to the mean of all selected values
    none = np.array([[True, False, True], [False, False, False]])
    np.testing.assert_allclose(rmia_prior(probs, none), [0.3, 0.3])
    # ... or to the given one (the reference population's mean OUT value), corrected by a
    np.testing.assert_allclose(rmia_prior(probs, none, fallback=0.7), [0.3, 0.7])
    np.testing.assert_allclose(rmia_prior(probs, none, a=0.3, fallback=0.7), [0.545, 0.805])
    nothing = np.zeros((2, 3), bool)  # allowed with a fallback: every row takes it
    np.testing.assert_allclose(rmia_prior(probs, nothing, fallback=0.25), [0.25, 0.25])


def test_ratio_floors_zero_probabilities() -> None:
    r = rmia_ratio(np.array([0.0, 0.5, 0.0]), np.array([0.5, 0.0, 0.0]))
    assert np.isfinite(r).all()
    assert 0 < r[0] < 1e-300 and r[1] > 1e300 and r[2] == 1.0


def test_members_score_higher() -> None:
    rng = np.random.default_rng(0)
    n, m = 400, 8
    member = rng.random(n) < 0.5
    ref = rng.uniform(0.2, 0.6, (n, m))  # reference models: typical p(y|x)
    target = np.clip(ref.mean(1) + np.where(member, 0.3, 0.0) + rng.normal(0, 0.05, n), 0, 1)
    z_ref = rng.uniform(0.2, 0.6, (300, m))
    z_t = np.clip(z_ref.mean(1) + rng.normal(0, 0.05, 300), 0, 1)
    rx = rmia_ratio(target, rmia_prior(ref))
    rz = rmia_ratio(z_t, rmia_prior(z_ref))
    score = rmia_scores(rx, rz)
    assert ((0 <= score) & (score <= 1)).all()
    assert auroc(score, member) > 0.9


@pytest.mark.parametrize("bad", ["neg", "nan", "gamma", "empty", "shape"])
def test_bad_inputs(bad: str) -> None:
    x, z = np.ones(3), np.ones(4)
    with pytest.raises(ValueError):
        if bad == "neg":
            rmia_scores(-x, z)
        elif bad == "nan":
            rmia_scores(x, np.r_[z, np.nan])
        elif bad == "gamma":
            rmia_scores(x, z, gamma=0.0)
        elif bad == "empty":
            rmia_scores(x, np.ones(0))
        else:
            rmia_prior(np.ones((3, 2)), np.ones((3, 3), bool))
