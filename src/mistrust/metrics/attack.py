"""All metrics of one attack on one evaluation set, as a flat dict of floats."""

from __future__ import annotations

import math

import numpy as np

from mistrust.metrics.intervals import clopper_pearson
from mistrust.metrics.rates import AUPR_METHODS, AUPR_OF_RANKED, Ranked, ranked_for

__all__ = ["METRIC_KEYS", "attack_metrics", "mmps"]

#: the keys of :func:`attack_metrics`, in order
METRIC_KEYS: tuple[str, ...] = (
    "precision",
    "tpr",
    "fpr",
    "accuracy",
    "advantage",
    "auroc",
    "aupr",
    "fpr_at_95tpr",
    "tpr_at_0.1fpr",
    "tpr_at_1fpr",
    "tpr_ci_low",
    "tpr_ci_high",
    "fpr_ci_low",
    "fpr_ci_high",
    "mmps_tp",
    "mmps_fp",
    "mmps_fn",
    "mmps_tn",
    "oracle_tpr",
    "oracle_fpr",
    "oracle_accuracy",
    "n_members",
    "n_nonmembers",
)


def mmps(max_score: np.ndarray, mask: np.ndarray) -> float:
    """Mean max prediction score of the samples selected by ``mask`` (``nan`` if none).

    max_score: ``(N,)`` max softmax probability per sample; mask: ``(N,)`` bool.
    """
    ms, mk = np.asarray(max_score, dtype=np.float64), np.asarray(mask, dtype=bool)
    if ms.shape != mk.shape or ms.ndim != 1:
        raise ValueError(
            f"max_score and mask must be 1-D of equal length, got {ms.shape}, {mk.shape}"
        )
    return float(ms[mk].mean()) if mk.any() else math.nan


def _ratio(a: int, b: int) -> float:
    return a / b if b else math.nan


def attack_metrics(
    score: np.ndarray,
    is_member: np.ndarray,
    predicted: np.ndarray,
    *,
    max_score: np.ndarray,
    aupr: str = "average-precision",
    ranked: Ranked | None = None,
) -> dict[str, float]:
    """Metrics of an attack's scores and decisions on a labelled evaluation set.

    Args:
        score: ``(N,)`` attack scores, higher = member (for the threshold-free metrics).
        is_member: ``(N,)`` bool ground truth; needs members and non-members.
        predicted: ``(N,)`` bool decisions at the attack's own (shadow-calibrated)
            operating point.
        max_score: ``(N,)`` the target model's max softmax probability, for MMPS.
        aupr: ``"average-precision"`` (step-wise) or ``"trapezoid"`` (the paper's
            trapezoid under the PR curve), see :mod:`mistrust.metrics.rates`.
        ranked: ``Ranked(score, is_member)`` if the caller has it (one sort serves the
            checks too); built here otherwise.

    Returns:
        ``{key: float}`` for every key of ``METRIC_KEYS``:

        * ``precision`` = TP / (TP + FP), ``nan`` when nothing is predicted member
          (undefined; the paper's code wrote 0). ``tpr``, ``fpr``, ``accuracy``,
          ``advantage`` = TPR - FPR.
        * ``auroc``, ``aupr`` (by ``aupr``), ``fpr_at_95tpr``,
          ``tpr_at_0.1fpr`` / ``tpr_at_1fpr`` (largest TPR at FPR <= 0.1 % / 1 %; ``nan``
          where the non-members allow fewer than
          :data:`~mistrust.metrics.rates.MIN_FALSE_POSITIVES` false positives at that
          FPR, i.e. below the lowest resolvable FPR: not measured, so not reported).
        * ``tpr_ci_*`` / ``fpr_ci_*``: exact 95 % Clopper-Pearson intervals.
        * ``mmps_tp|fp|fn|tn``: mean max score per confusion cell, ``nan`` if empty.
        * ``oracle_*``: at the best-in-hindsight threshold on THIS data
          (max TPR - FPR, see ``oracle_threshold``), for comparison only.
        * ``n_members``, ``n_nonmembers``.
    """
    if aupr not in AUPR_METHODS:
        raise ValueError(f"aupr must be one of {list(AUPR_METHODS)}, got {aupr!r}")
    r = ranked_for(score, is_member, ranked)
    s, m = r.score, r.is_member
    pred = np.asarray(predicted)
    if pred.shape != s.shape:
        raise ValueError(f"predicted has shape {pred.shape} but score has {s.shape}")
    if pred.dtype != bool:
        if not (np.issubdtype(pred.dtype, np.number) and np.isin(pred, (0, 1)).all()):
            raise ValueError(f"predicted must be boolean (or 0/1), got dtype {pred.dtype}")
        pred = pred.astype(bool)
    ms = np.asarray(max_score, dtype=np.float64)
    if ms.shape != s.shape:
        raise ValueError(f"max_score has shape {ms.shape} but score has {s.shape}")

    n_in, n_out = int(m.sum()), int((~m).sum())
    tp, fp = int((pred & m).sum()), int((pred & ~m).sum())
    tn = n_out - fp
    tpr, fpr = tp / n_in, fp / n_out
    tpr_ci, fpr_ci = clopper_pearson(tp, n_in), clopper_pearson(fp, n_out)
    oracle = s >= r.oracle_threshold()
    o_tp, o_fp = int((oracle & m).sum()), int((oracle & ~m).sum())
    out = {
        "precision": _ratio(tp, tp + fp),
        "tpr": tpr,
        "fpr": fpr,
        "accuracy": (tp + tn) / (n_in + n_out),
        "advantage": tpr - fpr,
        "auroc": r.auroc(),
        "aupr": AUPR_OF_RANKED[aupr](r),
        "fpr_at_95tpr": r.fpr_at_tpr(0.95),
        "tpr_at_0.1fpr": r.resolved_tpr_at_fpr(0.001),
        "tpr_at_1fpr": r.resolved_tpr_at_fpr(0.01),
        "tpr_ci_low": tpr_ci[0],
        "tpr_ci_high": tpr_ci[1],
        "fpr_ci_low": fpr_ci[0],
        "fpr_ci_high": fpr_ci[1],
        "mmps_tp": mmps(ms, pred & m),
        "mmps_fp": mmps(ms, pred & ~m),
        "mmps_fn": mmps(ms, ~pred & m),
        "mmps_tn": mmps(ms, ~pred & ~m),
        "oracle_tpr": o_tp / n_in,
        "oracle_fpr": o_fp / n_out,
        "oracle_accuracy": (o_tp + n_out - o_fp) / (n_in + n_out),
        "n_members": n_in,
        "n_nonmembers": n_out,
    }
    return {k: float(out[k]) for k in METRIC_KEYS}
