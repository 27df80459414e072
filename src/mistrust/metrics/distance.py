"""Distances between score distributions."""

from __future__ import annotations

import numpy as np
from scipy.stats import wasserstein_distance

__all__ = ["emd"]


def _sample(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def emd(a: np.ndarray, b: np.ndarray) -> float:
    """Earth mover's (1-Wasserstein) distance between two 1-D samples ``(N,)`` and ``(M,)``.

    E.g. between the max-score distributions of members and of an OOD set; in the
    units of the values (for scores in [0, 1], also in [0, 1]).
    """
    return float(wasserstein_distance(_sample(a, "a"), _sample(b, "b")))
