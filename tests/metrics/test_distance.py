from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from mistrust.metrics import emd


def test_emd() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(100), rng.random(50) ** 3
    assert emd(a, b) == pytest.approx(wasserstein_distance(a, b), rel=1e-15)
    assert emd(a, a) == 0.0
    assert emd(a, a + 0.25) == pytest.approx(0.25)
    assert isinstance(emd(a, b), float)
    for bad in (np.array([]), np.ones((2, 2)), np.array([np.nan])):
        with pytest.raises(ValueError):
            emd(bad, a)
