from __future__ import annotations

import numpy as np
import pytest


def make_outputs(
    n: int = 400, n_classes: int = 5, *, seed: int = 0, gap: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Toy logits ``(n, C)``: members (first half) are more confident in their true label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    is_member = np.arange(n) < n // 2
    logits = rng.normal(size=(n, n_classes))
    logits[np.arange(n), labels] += np.where(is_member, 2.0 + gap, 2.0)
    return logits, labels, is_member


@pytest.fixture(name="make_outputs")
def _make_outputs_fixture():
    return make_outputs


@pytest.fixture
def shadow() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return make_outputs(seed=0)


@pytest.fixture
def target() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return make_outputs(seed=1)
