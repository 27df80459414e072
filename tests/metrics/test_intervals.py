from __future__ import annotations

import numpy as np
import pytest

from mistrust.metrics import clopper_pearson


def test_edge_cases_have_closed_forms() -> None:
    assert clopper_pearson(0, 10) == (0.0, pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-12))
    assert clopper_pearson(10, 10) == (pytest.approx(0.025 ** (1 / 10), rel=1e-12), 1.0)
    low, high = clopper_pearson(0, 1000)
    assert low == 0.0 and high == pytest.approx(0.0036821, abs=1e-7)


def test_known_values_and_symmetry() -> None:
    low, high = clopper_pearson(5, 10)  # standard table value
    assert low == pytest.approx(0.187086, abs=1e-6) and high == pytest.approx(0.812914, abs=1e-6)
    low, high = clopper_pearson(3, 20, alpha=0.1)
    flip = clopper_pearson(17, 20, alpha=0.1)
    assert low == pytest.approx(1 - flip[1], rel=1e-12) and high == pytest.approx(
        1 - flip[0], rel=1e-12
    )
    assert clopper_pearson(np.int64(3), np.int64(20)) == clopper_pearson(3, 20)
    assert isinstance(low, float)


def test_coverage_is_at_least_nominal() -> None:
    rng = np.random.default_rng(0)
    n, p = 40, 0.1
    ks = rng.binomial(n, p, size=400)
    covered = [lo <= p <= hi for lo, hi in (clopper_pearson(int(k), n) for k in ks)]
    assert np.mean(covered) >= 0.93


@pytest.mark.parametrize(
    ("k", "n", "alpha"),
    [(-1, 10, 0.05), (11, 10, 0.05), (0, 0, 0.05), (1, 10, 0.0), (1.5, 10, 0.05), (True, 2, 0.05)],
)
def test_bad_arguments(k, n, alpha) -> None:
    with pytest.raises(ValueError):
        clopper_pearson(k, n, alpha)
