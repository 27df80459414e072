"""The trust checks of one attack on one evaluation set, as flat dicts of floats.

:func:`set_checks` runs on every (attack, set) pair, :func:`in_distribution_checks` once
per attack on its in-distribution non-members. Their keys are metric names of
``results.csv``; flags are 1.0 (raised) or 0.0. docs/CHECKS.md describes each.
"""

from __future__ import annotations

import math

import numpy as np

from mistrust.checks.stats import (
    auroc_difference_interval,
    auroc_difference_p_value,
    auroc_interval,
    auroc_p_value,
    constant_decisions,
    epsilon_lower_bound,
    min_resolvable_fpr,
    null_test,
    tpr_at_fpr_intervals,
)
from mistrust.metrics.rates import Ranked, ranked_for

__all__ = [
    "BASELINE_KEYS",
    "DELTA",
    "IN_DISTRIBUTION_KEYS",
    "LOW_FPRS",
    "SET_CHECK_KEYS",
    "TIE_LIMIT",
    "in_distribution_checks",
    "set_checks",
]

#: the low FPRs whose TPR ``attack_metrics`` reports: (metric key, FPR)
LOW_FPRS: tuple[tuple[str, float], ...] = (("tpr_at_0.1fpr", 0.001), ("tpr_at_1fpr", 0.01))
#: scores tied across more than this share of the samples raise ``flag_ties``
TIE_LIMIT = 0.5
#: the delta of the epsilon lower bound (a typical target for datasets of 10^4-10^5)
DELTA = 1e-5

SET_CHECK_KEYS: tuple[str, ...] = (
    "auroc_ci_low",
    "auroc_ci_high",
    "min_resolvable_fpr",
    "tpr_at_0.1fpr_ci_low",
    "tpr_at_0.1fpr_ci_high",
    "tpr_at_1fpr_ci_low",
    "tpr_at_1fpr_ci_high",
    "tied_fraction",
    "flag_ties",
    "flag_constant",
    "iid_split",
    "p_leakage",
)
BASELINE_KEYS: tuple[str, ...] = (
    "baseline_auroc",
    "baseline_auroc_ci_low",
    "baseline_auroc_ci_high",
    "baseline_tpr_at_1fpr",
    "auroc_minus_baseline",
    "auroc_minus_baseline_ci_low",
    "auroc_minus_baseline_ci_high",
)
IN_DISTRIBUTION_KEYS: tuple[str, ...] = (
    "null_auroc",
    "null_auroc_ci_low",
    "null_auroc_ci_high",
    "flag_null",
    "flag_polarity",
    "epsilon_lower_bound",
)


def set_checks(
    score: np.ndarray,
    is_member: np.ndarray,
    predicted: np.ndarray | None,
    *,
    seed: int,
    baseline: np.ndarray | None = None,
    iid: bool = False,
    ranked: Ranked | None = None,
) -> dict[str, float]:
    """Checks of one attack's scores and decisions on one set of members and non-members.

    Args:
        score, is_member, predicted: ``(N,)`` as for :func:`mistrust.metrics.attack_metrics`;
            ``predicted`` None: no decisions (no shadow model), ``flag_constant`` is nan.
        seed: the bootstrap's seed.
        baseline: ``(N,)`` the blind baseline's scores of the same samples, or None
            (not run: the :data:`BASELINE_KEYS` are left out).
        iid: the members and these non-members were drawn from one pool by a seeded
            random split, so their inputs cannot differ but by chance (``iid_split``).
        ranked: ``Ranked(score, is_member)`` where the caller has it: every check of the
            set reads its one sort.

    Returns:
        ``{key: float}`` for :data:`SET_CHECK_KEYS` (then :data:`BASELINE_KEYS`): the
        AUROC's DeLong 95 % interval; the lowest resolvable FPR and bootstrap intervals
        of TPR at 0.1 % and 1 % FPR (nan where not resolvable); the largest share of
        tied scores and ``flag_ties``; ``flag_constant`` (every decision the same);
        ``iid_split`` (1.0 or 0.0, ``iid``) and ``p_leakage``, the one-sided p-value of the
        leakage claim: AUROC above 0.5 and, where the baseline ran on a split not i.i.d.
        by construction, above the baseline's AUROC too (the larger of the two p-values:
        both must hold). On an i.i.d. split the baseline carries no membership
        information, so comparing against it would only add its noise.
    """
    r = ranked_for(score, is_member, ranked)
    s, m = r.score, r.is_member
    _, low, high = auroc_interval(s, m, ranked=r)
    n_out = r.n_nonmembers
    out = {
        "auroc_ci_low": low,
        "auroc_ci_high": high,
        "min_resolvable_fpr": min_resolvable_fpr(n_out),
    }
    intervals = tpr_at_fpr_intervals(s, m, [fpr for _, fpr in LOW_FPRS], seed=seed, ranked=r)
    for (key, _), (low, high) in zip(LOW_FPRS, intervals, strict=True):
        out[f"{key}_ci_low"], out[f"{key}_ci_high"] = low, high
    ties = r.largest_tie() / len(s)  # tie_fraction(s), from the sort at hand
    out |= {
        "tied_fraction": ties,
        "flag_ties": float(ties > TIE_LIMIT),
        # no decisions without a shadow model's threshold: nothing to be constant
        "flag_constant": math.nan if predicted is None else float(constant_decisions(predicted)),
        "iid_split": float(iid),
    }
    p_leakage = auroc_p_value(s, m, ranked=r)
    if baseline is not None:
        b = np.asarray(baseline, dtype=np.float64)
        if b.shape != s.shape:
            raise ValueError(f"baseline scores have shape {b.shape} but the attack's {s.shape}")
        rb = Ranked(b, m)
        auc_b, b_low, b_high = auroc_interval(b, m, ranked=rb)
        d, d_low, d_high = auroc_difference_interval(s, b, m, ranked=(r, rb))
        out |= {
            "baseline_auroc": auc_b,
            "baseline_auroc_ci_low": b_low,
            "baseline_auroc_ci_high": b_high,
            "baseline_tpr_at_1fpr": rb.resolved_tpr_at_fpr(0.01),
            "auroc_minus_baseline": d,
            "auroc_minus_baseline_ci_low": d_low,
            "auroc_minus_baseline_ci_high": d_high,
        }
        if not iid:
            p_leakage = max(p_leakage, auroc_difference_p_value(s, b, m, ranked=(r, rb)))
    out["p_leakage"] = p_leakage
    return {k: float(v) for k, v in out.items()}


def in_distribution_checks(
    score: np.ndarray,
    is_member: np.ndarray,
    predicted: np.ndarray | None,
    *,
    seed: int,
    delta: float = DELTA,
    ranked: Ranked | None = None,
) -> dict[str, float]:
    """Checks of one attack on its in-distribution non-members (once per attack).

    Returns ``{key: float}`` for :data:`IN_DISTRIBUTION_KEYS`: the null test (AUROC and
    99 % interval between two halves of the non-members, ``flag_null`` when the interval
    excludes 0.5; nan with fewer than 4 non-members), ``flag_polarity`` (the AUROC's
    95 % interval lies below 0.5: members score lower than non-members), and the
    epsilon lower bound of the decisions (:func:`~mistrust.checks.stats.epsilon_lower_bound`).
    ``ranked`` as for :func:`set_checks`.
    """
    r = ranked_for(score, is_member, ranked)
    s, m = r.score, r.is_member
    if (~m).sum() >= 4:
        null, n_low, n_high = null_test(s[~m], seed=seed, order=r.order_of(~m))
        flag_null = float(not n_low <= 0.5 <= n_high)
    else:
        null = n_low = n_high = flag_null = math.nan
    _, _, high = auroc_interval(s, m, ranked=r)
    if predicted is None:  # no decisions (no shadow model): no operating point to bound
        eps = math.nan
    else:
        pred = np.asarray(predicted, dtype=bool)
        tp, fp = int((pred & m).sum()), int((pred & ~m).sum())
        eps = epsilon_lower_bound(tp, int(m.sum()), fp, int((~m).sum()), delta=delta)
    return {
        "null_auroc": float(null),
        "null_auroc_ci_low": float(n_low),
        "null_auroc_ci_high": float(n_high),
        "flag_null": float(flag_null),
        "flag_polarity": float(high < 0.5),
        "epsilon_lower_bound": eps,
    }
