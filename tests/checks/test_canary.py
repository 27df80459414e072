"""The one-run canary audit (Steinke, Nasr & Jagielski 2023): its bound against exact
binomial arithmetic, a closed form, brute force over a grid, and known extremes."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from mistrust.checks.canary import K_FRACTIONS, canary_audit, epsilon_from_guesses, p_value


def _tail(r: int, v: int, eps: float) -> float:
    """P[Binomial(r, e^eps / (1 + e^eps)) >= v], summed exactly in rationals."""
    p = Fraction(1) / (1 + Fraction(math.exp(-eps)))
    return float(sum(math.comb(r, i) * p**i * (1 - p) ** (r - i) for i in range(v, r + 1)))


def _p_value(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """The paper's p-value with delta, every term summed exactly (independent of scipy)."""
    p = Fraction(1) / (1 + Fraction(math.exp(-eps)))

    def pmf(i: int) -> Fraction:
        return math.comb(r, i) * p**i * (1 - p) ** (r - i)

    slack = max(sum(pmf(j) for j in range(v - i, v)) / i for i in range(1, v + 1))
    return min(float(_tail_exact(r, v, p) + 2 * m * Fraction(delta) * slack), 1.0)


def _tail_exact(r: int, v: int, p: Fraction) -> Fraction:
    return sum(math.comb(r, i) * p**i * (1 - p) ** (r - i) for i in range(v, r + 1))


@pytest.mark.parametrize(("r", "v", "eps"), [(10, 10, 1.0), (40, 30, 0.5), (100, 60, 0.2)])
def test_p_value_is_the_exact_binomial_tail(r: int, v: int, eps: float) -> None:
    assert p_value(200, r, v, eps) == pytest.approx(_tail(r, v, eps), rel=1e-9)


@pytest.mark.parametrize(("r", "v", "eps", "delta"), [(20, 18, 1.0, 1e-3), (60, 45, 0.7, 1e-4)])
def test_p_value_with_delta_adds_the_papers_term(r: int, v: int, eps: float, delta: float) -> None:
    assert p_value(100, r, v, eps, delta) == pytest.approx(
        _p_value(100, r, v, eps, delta), rel=1e-9
    )
    assert p_value(100, r, v, eps, delta) > p_value(100, r, v, eps)


@pytest.mark.parametrize("r", [10, 100, 1000])
def test_all_guesses_correct_certify_the_closed_form(r: int) -> None:
    # P[Bin(r, p) >= r] = p^r = 0.05  <=>  p = 0.05^(1/r), eps = log(p / (1 - p))
    p = 0.05 ** (1 / r)
    assert epsilon_from_guesses(r, r, r) == pytest.approx(math.log(p / (1 - p)), abs=1e-6)


def _tails_on_grid(r: int, v: int, grid: np.ndarray) -> np.ndarray:
    """P[Bin(r, p_eps) >= v] for every eps of ``grid``, from log-factorials (no scipy)."""
    i = np.arange(v, r + 1)
    log_comb = np.array(
        [math.lgamma(r + 1) - math.lgamma(k + 1) - math.lgamma(r - k + 1) for k in i]
    )
    log_p = -np.logaddexp(0, -grid)[:, None]  # log(e^eps / (1 + e^eps))
    log_q = -np.logaddexp(0, grid)[:, None]
    return np.exp(log_comb + i * log_p + (r - i) * log_q).sum(axis=1)


def test_bound_matches_brute_force_over_a_grid() -> None:
    grid = np.arange(0, 8, 0.0005)
    for r, v in [(50, 40), (100, 70), (200, 200), (30, 16), (1000, 620)]:
        rejected = grid[_tails_on_grid(r, v, grid) < 0.05]
        brute = rejected.max() if len(rejected) else 0.0
        assert epsilon_from_guesses(1000, r, v) == pytest.approx(brute, abs=1e-3)


def test_chance_level_guesses_certify_nothing() -> None:
    assert epsilon_from_guesses(1000, 100, 50) == 0.0
    assert epsilon_from_guesses(1000, 0, 0) == 0.0


def test_random_scores_give_about_zero() -> None:
    bounds = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        bounds.append(canary_audit(rng.random(1000), rng.random(1000) < 0.5).epsilon)
    # each k is tested at 5 % / 7: a bound above 0 is rare, and small when it happens
    assert sum(b > 0 for b in bounds) <= 2 and max(bounds) < 1.0


def test_a_model_that_memorised_every_canary_gives_a_large_bound() -> None:
    rng = np.random.default_rng(0)
    included = rng.random(1000) < 0.5
    score = np.where(included, 0.0, -5.0) + rng.normal(0, 0.1, 1000)  # members: low loss
    audit = canary_audit(score, included)
    # 500 correct guesses of 500 at 5 % / 7: the closed form above
    p = (0.05 / len(K_FRACTIONS)) ** (1 / 500)
    assert audit.guesses == 500 and audit.correct == 500
    assert audit.epsilon == pytest.approx(math.log(p / (1 - p)), abs=1e-6)
    assert audit.epsilon > 4


def test_higher_score_means_member() -> None:
    included = np.array([True] * 50 + [False] * 50)
    good = canary_audit(np.where(included, 1.0, 0.0) + np.arange(100) * 1e-4, included)
    flipped = canary_audit(np.where(included, 0.0, 1.0) + np.arange(100) * 1e-4, included)
    assert good.epsilon > 1 and flipped.epsilon == 0.0


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="v <= r <= m"):
        p_value(10, 20, 5, 1.0)
    with pytest.raises(ValueError, match="one length"):
        canary_audit(np.zeros(3), np.zeros(4, bool))
    with pytest.raises(ValueError, match="finite"):
        canary_audit(np.array([0.0, np.nan]), np.array([True, False]))
