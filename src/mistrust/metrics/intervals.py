"""Exact binomial confidence intervals for rates such as TPR and FPR."""

from __future__ import annotations

import numbers

from scipy.stats import beta

__all__ = ["clopper_pearson"]


def clopper_pearson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact (Clopper-Pearson) two-sided ``1 - alpha`` interval for a proportion ``k / n``.

    ``low = Beta(alpha/2; k, n-k+1)`` quantile (0 when ``k == 0``) and
    ``high = Beta(1-alpha/2; k+1, n-k)`` quantile (1 when ``k == n``). Conservative:
    coverage is at least ``1 - alpha`` for every true proportion. With few
    non-members a low FPR cannot be certified; e.g. ``k=0, n=1000`` still allows
    an FPR up to 0.0037 at 95 %.

    Args:
        k: successes (e.g. true positives), ``0 <= k <= n``.
        n: trials (e.g. members), ``n >= 1``.
        alpha: significance level in ``(0, 1)``.

    Returns:
        ``(low, high)`` python floats.
    """
    for arg, val in (("k", k), ("n", n)):
        if not isinstance(val, numbers.Integral) or isinstance(val, bool):
            raise ValueError(f"{arg} must be an integer, got {val!r}")
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need n >= 1 and 0 <= k <= n, got k={k}, n={n}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high
