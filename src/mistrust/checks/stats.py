"""The statistics behind the trust checks: arrays in, python floats out.

Every function takes ``score (N,)`` (higher = more likely member) and ``is_member (N,)``
bool with both members and non-members, as :mod:`mistrust.metrics.rates` does.

* :func:`auroc_interval`, :func:`auroc_difference_interval`: DeLong's variance of the
  AUROC (DeLong, DeLong & Clarke-Pearson 1988), alone and for two scores of the same
  samples (paired), with a normal interval. Deterministic: no resampling.
* :func:`tpr_at_fpr_interval`: a stratified bootstrap interval for TPR at a low FPR,
  whose threshold is chosen on the same data (so no exact binomial interval applies);
  each resample is drawn by its two order statistics, not element by element.
* :func:`min_resolvable_fpr`: the lowest FPR a set of non-members can resolve.
* :func:`epsilon_lower_bound`: the differential-privacy epsilon an attack's fixed
  operating point certifies (Kairouz et al. 2015's hypothesis-testing bound, with
  Clopper-Pearson counts as in Jagielski et al. 2020 and Nasr et al. 2021).
* :func:`auroc_p_value`, :func:`auroc_difference_p_value`: the one-sided p-values of the
  same normal approximations (AUROC above 0.5, and above another score's AUROC), and
  :func:`holm`: Holm's step-down adjustment of a family of p-values.
* :func:`null_test`, :func:`tie_fraction`, :func:`constant_decisions`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import norm

from mistrust.metrics.intervals import clopper_pearson
from mistrust.metrics.rates import MIN_FALSE_POSITIVES, Ranked, check_scores, ranked_for

__all__ = [
    "MIN_FALSE_POSITIVES",
    "auroc_difference_interval",
    "auroc_difference_p_value",
    "auroc_interval",
    "auroc_p_value",
    "constant_decisions",
    "epsilon_lower_bound",
    "holm",
    "min_resolvable_fpr",
    "null_test",
    "tie_fraction",
    "tpr_at_fpr_fast",
    "tpr_at_fpr_interval",
]


def _interval(centre: float, var: float, alpha: float, lo: float, hi: float) -> tuple[float, float]:
    half = float(norm.ppf(1 - alpha / 2)) * math.sqrt(max(var, 0.0))
    return max(lo, centre - half), min(hi, centre + half)


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")


def auroc_interval(
    score: np.ndarray, is_member: np.ndarray, *, alpha: float = 0.05, ranked: Ranked | None = None
) -> tuple[float, float, float]:
    """``(auroc, low, high)``: the AUROC and DeLong's normal ``1 - alpha`` interval, in [0, 1].

    ``var = var(v10) / n_in + var(v01) / n_out`` (sample variances). A single member or
    non-member gives no variance estimate: the interval is then ``[0, 1]``. ``ranked``:
    ``Ranked(score, is_member)`` where the caller has it (saves the sort).
    """
    _check_alpha(alpha)
    v10, v01 = ranked_for(score, is_member, ranked).placements()
    auc = float(v10.mean())
    if len(v10) < 2 or len(v01) < 2:
        return auc, 0.0, 1.0
    var = v10.var(ddof=1) / len(v10) + v01.var(ddof=1) / len(v01)
    return (auc, *_interval(auc, var, alpha, 0.0, 1.0))


def _paired(
    score_a: np.ndarray,
    score_b: np.ndarray,
    is_member: np.ndarray,
    ranked: tuple[Ranked, Ranked] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """DeLong's placements ``a10, a01, b10, b01`` of two scores of the same samples."""
    if ranked is None:
        sa, m = check_scores(score_a, is_member)
        sb, _ = check_scores(score_b, m)
        ranked = Ranked(sa, m), Ranked(sb, m)
    ra, rb = ranked_for(score_a, is_member, ranked[0]), ranked_for(score_b, is_member, ranked[1])
    if not np.array_equal(ra.is_member, rb.is_member):
        raise ValueError("the two scores' Ranked hold different members")
    return *ra.placements(), *rb.placements()


def auroc_difference_interval(
    score_a: np.ndarray,
    score_b: np.ndarray,
    is_member: np.ndarray,
    *,
    alpha: float = 0.05,
    ranked: tuple[Ranked, Ranked] | None = None,
) -> tuple[float, float, float]:
    """``(d, low, high)``: ``d = AUROC(a) - AUROC(b)`` on the same samples, DeLong's paired
    interval. ``var = (S10_aa + S10_bb - 2 S10_ab) / n_in + (S01 ...) / n_out``.
    ``ranked``: ``(Ranked(score_a, is_member), Ranked(score_b, is_member))`` where the
    caller has them (saves the sorts)."""
    _check_alpha(alpha)
    a10, a01, b10, b01 = _paired(score_a, score_b, is_member, ranked)
    d = float(a10.mean() - b10.mean())
    if len(a10) < 2 or len(a01) < 2:
        return d, -1.0, 1.0
    var = np.var(a10 - b10, ddof=1) / len(a10) + np.var(a01 - b01, ddof=1) / len(a01)
    return (d, *_interval(d, float(var), alpha, -1.0, 1.0))


def _upper_p(centre: float, var: float) -> float:
    """One-sided p-value of ``centre > 0`` under a normal ``N(0, var)``. Zero variance
    (e.g. perfect separation, where the interval is a point too): 0 above 0, else 1."""
    if not var > 0.0:
        return 0.0 if centre > 0.0 else 1.0
    return float(norm.sf(centre / math.sqrt(var)))


def auroc_p_value(
    score: np.ndarray, is_member: np.ndarray, *, ranked: Ranked | None = None
) -> float:
    """One-sided p-value of "AUROC > 0.5" from DeLong's variance (the variance of
    :func:`auroc_interval`): ``P(Z >= (AUROC - 0.5) / se)``. 1 with a single member or
    non-member (no variance estimate). ``ranked`` as for :func:`auroc_interval`."""
    v10, v01 = ranked_for(score, is_member, ranked).placements()
    if len(v10) < 2 or len(v01) < 2:
        return 1.0
    var = v10.var(ddof=1) / len(v10) + v01.var(ddof=1) / len(v01)
    return _upper_p(float(v10.mean()) - 0.5, float(var))


def auroc_difference_p_value(
    score_a: np.ndarray,
    score_b: np.ndarray,
    is_member: np.ndarray,
    *,
    ranked: tuple[Ranked, Ranked] | None = None,
) -> float:
    """One-sided p-value of "AUROC(a) > AUROC(b)" on the same samples, from the paired
    variance of :func:`auroc_difference_interval` (``ranked`` as there). 1 with a single
    member or non-member."""
    a10, a01, b10, b01 = _paired(score_a, score_b, is_member, ranked)
    if len(a10) < 2 or len(a01) < 2:
        return 1.0
    var = np.var(a10 - b10, ddof=1) / len(a10) + np.var(a01 - b01, ddof=1) / len(a01)
    return _upper_p(float(a10.mean() - b10.mean()), float(var))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's adjusted p-values, in the order given (Holm 1979).

    With the ``m`` p-values sorted ascending, ``p~_(i) = max_{j <= i} min(1, (m - j + 1)
    p_(j))``; rejecting every hypothesis with ``p~ <= alpha`` keeps the chance of any
    false rejection in the family at most ``alpha``, whatever the dependence between the
    tests. A nan p-value (a test that was not run) stays nan and does not count in ``m``.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p-values must be 1-D, got shape {p.shape}")
    out = np.full(len(p), math.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if (p[ok] < 0).any() or (p[ok] > 1).any():
        raise ValueError("p-values must lie in [0, 1]")
    order = ok[np.argsort(p[ok], kind="stable")]
    m, running = len(order), 0.0
    for j, i in enumerate(order):
        running = max(running, min(1.0, (m - j) * float(p[i])))
        out[i] = running
    return [float(x) for x in out]


def min_resolvable_fpr(
    n_nonmembers: int, *, min_false_positives: int = MIN_FALSE_POSITIVES
) -> float:
    """The lowest FPR at which ``n_nonmembers`` allow ``min_false_positives`` false positives:
    TPR at FPR ``x`` is reported only where ``x >= min_false_positives / n_nonmembers``."""
    if n_nonmembers < 1:
        raise ValueError(f"need at least one non-member, got {n_nonmembers}")
    return min_false_positives / n_nonmembers


def _allowed(fpr: float, n_out: int) -> int:
    # false positives allowed at FPR <= fpr (the slack of mistrust.metrics.rates.tpr_at_fpr)
    return int(math.floor((fpr + 1e-12) * n_out))


def tpr_at_fpr_fast(member_scores: np.ndarray, nonmember_scores: np.ndarray, fpr: float) -> float:
    """:func:`mistrust.metrics.tpr_at_fpr` from the two score groups, by one order statistic.

    With ``k`` false positives allowed, the best rule "score >= t" that admits at most ``k``
    non-members admits every member scoring above the ``(k+1)``-th highest non-member score.
    """
    k = _allowed(fpr, len(nonmember_scores))
    if k >= len(nonmember_scores):
        return 1.0
    bar = np.partition(nonmember_scores, len(nonmember_scores) - 1 - k)[-1 - k]
    return float((member_scores > bar).mean())


def tpr_at_fpr_interval(
    score: np.ndarray,
    is_member: np.ndarray,
    fpr: float,
    *,
    seed: int,
    n_boot: int = 1000,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap ``1 - alpha`` interval of TPR at FPR ``fpr``.

    Members and non-members are resampled separately (their counts stay fixed), and the
    threshold is chosen again in every resample, as it was on the data. ``(nan, nan)``
    where the non-members cannot resolve ``fpr`` (:func:`min_resolvable_fpr`).

    The resamples are never drawn element by element: only two numbers of each one
    matter, and both have a known distribution given the data (:func:`_bootstrap_tprs`),
    so ``n_boot`` resamples cost ``O(n_boot)`` draws after one sort, not
    ``O(n_boot * N)``.
    """
    return tpr_at_fpr_intervals(score, is_member, [fpr], seed=seed, n_boot=n_boot, alpha=alpha)[0]


def _bootstrap_tprs(
    x_sorted: np.ndarray, y_sorted: np.ndarray, k: int, rng: np.random.Generator, n_boot: int
) -> np.ndarray:
    """``(n_boot,)`` TPRs of stratified bootstrap resamples, the threshold allowing ``k``
    false positives chosen again in each; ``x_sorted``, ``y_sorted``: the member and
    non-member scores, ascending.

    A resample of the ``n`` non-members is ``n`` positions drawn uniformly from their
    descending order; its threshold is the score at the ``(k+1)``-th smallest position
    drawn. Positions are ``ceil(n U)`` for uniform ``U``, a monotone map, so that position
    is ``ceil(n V)`` with ``V`` the ``(k+1)``-th smallest of ``n`` uniforms:
    ``V ~ Beta(k+1, n-k)``. Given the threshold, the number of resampled members above
    it is ``Binomial(n_members, share of members above it)``. Both draws are exact: the
    TPRs have the distribution of the element-wise bootstrap's.
    """
    n_in, n_out = len(x_sorted), len(y_sorted)
    pos = np.ceil(n_out * rng.beta(k + 1, n_out - k, size=n_boot)).astype(np.int64)
    bars = y_sorted[n_out - np.clip(pos, 1, n_out)]
    above = n_in - np.searchsorted(x_sorted, bars, side="right")
    return rng.binomial(n_in, above / n_in) / n_in


def tpr_at_fpr_intervals(
    score: np.ndarray,
    is_member: np.ndarray,
    fprs: Sequence[float],
    *,
    seed: int,
    n_boot: int = 1000,
    alpha: float = 0.05,
    ranked: Ranked | None = None,
) -> list[tuple[float, float]]:
    """:func:`tpr_at_fpr_interval` at each of ``fprs``, sorting the scores once.

    Each FPR's resamples are drawn from a generator seeded with ``seed``, so each interval
    equals the one :func:`tpr_at_fpr_interval` gives with the same seed. ``ranked`` as
    for :func:`auroc_interval`.
    """
    _check_alpha(alpha)
    r = ranked_for(score, is_member, ranked)
    n_out = r.n_nonmembers
    out: list[tuple[float, float]] = []
    sorted_xy = None
    for fpr in fprs:
        k = _allowed(fpr, n_out)
        if fpr < min_resolvable_fpr(n_out):
            out.append((math.nan, math.nan))
            continue
        if k >= n_out:
            out.append((1.0, 1.0))
            continue
        if sorted_xy is None:
            sorted_xy = r.groups()
        tprs = _bootstrap_tprs(*sorted_xy, k, np.random.default_rng(seed), n_boot)
        low, high = np.quantile(tprs, [alpha / 2, 1 - alpha / 2])
        out.append((float(low), float(high)))
    return out


def epsilon_lower_bound(
    tp: int, n_members: int, fp: int, n_nonmembers: int, *, delta: float = 1e-5, alpha: float = 0.05
) -> float:
    """The epsilon that a fixed decision rule's counts certify, at confidence ``1 - alpha``.

    Any test of "member" against an ``(epsilon, delta)``-DP training algorithm has
    ``FPR + e^eps FNR >= 1 - delta`` and ``FNR + e^eps FPR >= 1 - delta``, so

        ``eps >= max(log((1 - delta - FPR) / FNR), log((1 - delta - FNR) / FPR))``.

    FPR and FNR are replaced by the upper ends of their Clopper-Pearson ``1 - alpha``
    intervals (``FNR_up = 1 - TPR_low``), so the bound holds with confidence at least
    ``1 - alpha``. A term whose numerator is not positive drops out; the result is 0
    when the counts certify nothing. The rule must be fixed before the counts are taken
    (here: the threshold calibrated on the shadow model).
    """
    if not 0.0 <= delta < 1.0:
        raise ValueError(f"delta must lie in [0, 1), got {delta}")
    tpr_low, _ = clopper_pearson(tp, n_members, alpha)
    _, fpr_high = clopper_pearson(fp, n_nonmembers, alpha)
    fnr_high = 1.0 - tpr_low
    bounds = [0.0]
    for a, b in ((fpr_high, fnr_high), (fnr_high, fpr_high)):
        if 1.0 - delta - a > 0.0 and b > 0.0:
            bounds.append(math.log((1.0 - delta - a) / b))
    return max(bounds)


def null_test(
    nonmember_scores: np.ndarray, *, seed: int, alpha: float = 0.01, order: np.ndarray | None = None
) -> tuple[float, float, float]:
    """AUROC with its DeLong ``1 - alpha`` interval between two disjoint halves of genuine
    non-members, the first half (by a seeded permutation) scored as if it were members.

    Both halves come from one distribution, so a sound attack gives an interval that
    contains 0.5; ``alpha`` is 1 % by default so that a sound attack fails 1 run in 100.
    Needs at least 4 scores. ``order``: an ascending ``argsort`` of the scores where the
    caller has one (:meth:`~mistrust.metrics.rates.Ranked.order_of`; saves the sort).
    """
    y = np.asarray(nonmember_scores, dtype=np.float64)
    if y.ndim != 1 or len(y) < 4:
        raise ValueError(f"the null test needs at least 4 non-member scores, got shape {y.shape}")
    half = np.zeros(len(y), bool)
    half[np.random.default_rng(seed).permutation(len(y))[: len(y) // 2]] = True
    return auroc_interval(y, half, alpha=alpha, ranked=Ranked(y, half, order=order))


def tie_fraction(score: np.ndarray) -> float:
    """The share of samples in the largest group of equal scores (1/N when all differ)."""
    s = np.asarray(score)
    if s.ndim != 1 or len(s) == 0:
        raise ValueError(f"score must be 1-D and non-empty, got shape {s.shape}")
    return float(np.unique(s, return_counts=True)[1].max() / len(s))


def constant_decisions(predicted: np.ndarray) -> bool:
    """True when every decision is the same (TPR = FPR = 1, or TPR = FPR = 0)."""
    p = np.asarray(predicted, dtype=bool)
    return bool(p.all() or not p.any())
