"""The one-run privacy audit of Steinke, Nasr & Jagielski, "Privacy Auditing with One (1)
Training Run" (NeurIPS 2023), on canaries (docs/DP.md). Pure: arrays and numbers in.

``m`` canaries each enter the training data by an independent fair coin. The auditor
ranks them by a score (higher = member), guesses the top ``k`` IN and the bottom ``k``
OUT and abstains on the rest: ``r = 2k`` guesses, ``v`` of them correct. Under
``(eps, delta)``-DP the number of correct guesses is at most a binomial tail away
from chance (their Theorem 5.2 with Proposition 5.7 for ``delta > 0``):

    P[W >= v] <= P[Bin(r, p) >= v] + 2 m delta max_{1<=i<=v} P[v - i <= Bin(r, p) < v] / i,
    p = e^eps / (1 + e^eps).

The right-hand side is the p-value of "the training was ``(eps, delta)``-DP"; the
lower bound is the largest ``eps`` rejected at level ``alpha`` (bisection; the p-value
grows with ``eps``). ``k`` is taken from a fixed grid (:data:`K_FRACTIONS` of ``m``)
and every ``k`` is tested at ``alpha / len(grid)`` (Bonferroni), so the largest bound
over the grid still holds with confidence ``1 - alpha``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

__all__ = ["K_FRACTIONS", "CanaryAudit", "canary_audit", "epsilon_from_guesses", "p_value"]

#: guesses per side, as fractions of the canary count: ``k = ceil(f m / 2)`` IN and as
#: many OUT (each k at most m / 2); fixed before the scores are seen
K_FRACTIONS: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
#: bisection steps: eps to about 2^-40 of its bracket
_STEPS = 40


def p_value(m: int, r: int, v: int, eps: float, delta: float = 0.0) -> float:
    """The probability of at least ``v`` correct of ``r`` guesses on ``m`` canaries when
    the training is ``(eps, delta)``-DP (the bound above, capped at 1)."""
    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 <= v <= r <= m, got v={v}, r={r}, m={m}")
    if eps < 0 or not 0 <= delta <= 1:
        raise ValueError(f"need eps >= 0 and delta in [0, 1], got {eps}, {delta}")
    p = 1.0 / (1.0 + math.exp(-eps))
    tail = float(binom.sf(v - 1, r, p))  # P[Bin(r, p) >= v]
    if delta == 0 or v == 0:
        return min(tail, 1.0)
    below = np.cumsum(binom.pmf(np.arange(v - 1, -1, -1), r, p))  # P[v-i <= Bin < v], i=1..v
    slack = float(np.max(below / np.arange(1, v + 1)))
    return min(tail + 2 * m * delta * slack, 1.0)


def epsilon_from_guesses(
    m: int, r: int, v: int, *, delta: float = 0.0, alpha: float = 0.05
) -> float:
    """The largest ``eps`` that ``v`` correct of ``r`` guesses reject at level ``alpha``
    (0 when not even ``eps = 0`` is rejected)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if r == 0 or p_value(m, r, v, 0.0, delta) >= alpha:
        return 0.0
    low, high = 0.0, 1.0
    while p_value(m, r, v, high, delta) < alpha:  # all correct: p-value -> p^r as eps grows
        low, high = high, 2 * high
        if high > 1e4:
            return low
    for _ in range(_STEPS):
        mid = (low + high) / 2
        if p_value(m, r, v, mid, delta) < alpha:
            low = mid
        else:
            high = mid
    return low


@dataclass(frozen=True)
class CanaryAudit:
    epsilon: float  # the lower bound, the largest over the grid
    guesses: int  # r of the k that gave it (of the smallest k where none certifies)
    correct: int  # v of that k


def canary_audit(
    score: np.ndarray,
    included: np.ndarray,
    *,
    delta: float = 0.0,
    alpha: float = 0.05,
    fractions: tuple[float, ...] = K_FRACTIONS,
) -> CanaryAudit:
    """The epsilon lower bound of canaries scored ``score (m,)`` (higher = IN), whose
    coins were ``included (m,)``; every ``k`` of the grid at ``alpha / len(grid)``.

    Ties in the scores are broken by the canaries' order, fixed before training.
    """
    s = np.asarray(score, dtype=np.float64)
    inc = np.asarray(included, dtype=bool)
    if s.ndim != 1 or s.shape != inc.shape:
        raise ValueError(
            f"score and included must be 1-D of one length, got {s.shape}, {inc.shape}"
        )
    if not np.isfinite(s).all():
        raise ValueError("canary scores must be finite")
    m = len(s)
    order = np.argsort(-s, kind="stable")  # highest first
    ks = sorted({min(math.ceil(f * m / 2), m // 2) for f in fractions} - {0})
    level = alpha / max(len(ks), 1)
    best = CanaryAudit(0.0, 0, 0)
    for k in ks:
        v = int(inc[order[:k]].sum() + (~inc[order[m - k :]]).sum())
        eps = epsilon_from_guesses(m, 2 * k, v, delta=delta, alpha=level)
        if eps > best.epsilon or best.guesses == 0:
            best = CanaryAudit(eps, 2 * k, v)
    return best
