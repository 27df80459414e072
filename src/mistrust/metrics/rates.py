"""ROC-derived rates of a membership score (pure functions, NumPy in, floats out).

Every function takes ``score (N,)`` (higher = more likely member) and
``is_member (N,)`` bool with at least one member and one non-member.

ROC convention (scikit-learn's ``roc_curve`` with ``drop_intermediate=False``):
point ``i`` predicts "member" for ``score >= thresholds[i]``; ``thresholds[0]``
is ``inf`` (nothing predicted), the last point predicts everything. Tied
scores are never split, so no interpolation is done anywhere: every reported
rate is achieved by an actual threshold.
"""

from __future__ import annotations

import numpy as np

from mistrust.errors import InputError

__all__ = [
    "AUPR_METHODS",
    "aupr",
    "aupr_trapezoid",
    "auroc",
    "check_scores",
    "fpr_at_tpr",
    "oracle_threshold",
    "roc_curve",
    "roc_point",
    "tpr_at_fpr",
]

_TOL = 1e-12  # rates compared with a target allow this slack for float rounding (e.g. 0.1 * 30)


def check_scores(score: np.ndarray, is_member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``score`` as float64 ``(N,)`` and ``is_member`` as bool ``(N,)``."""
    s = np.asarray(score)
    m = np.asarray(is_member)
    if s.ndim != 1 or m.ndim != 1:
        raise InputError(f"score and is_member must be 1-D, got shapes {s.shape} and {m.shape}")
    if len(s) != len(m):
        raise InputError(f"score has {len(s)} entries but is_member has {len(m)}")
    s = s.astype(np.float64, copy=False)
    if not np.isfinite(s).all():
        raise InputError("score contains NaN or Inf")
    if m.dtype != bool:
        if not (np.issubdtype(m.dtype, np.number) and np.isin(m, (0, 1)).all()):
            raise InputError("is_member must be boolean (or 0/1)")
        m = m.astype(bool)
    n_in = int(m.sum())
    if n_in == 0 or n_in == len(m):
        raise InputError(
            f"need both members and non-members, got {n_in} members and {len(m) - n_in} non-members"
        )
    return s, m


def _counts(s: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False/true positive counts and thresholds at each distinct score, descending."""
    order = np.argsort(s, kind="mergesort")[::-1]
    s, m = s[order], m[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each tie block
    tps = np.cumsum(m)[last]
    return 1 + last - tps, tps, s[last]


def roc_curve(
    score: np.ndarray, is_member: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve: ``(fpr, tpr, thresholds)``, each ``(K + 1,)`` for ``K`` distinct scores.

    Equals ``sklearn.metrics.roc_curve(is_member, score, drop_intermediate=False)``.
    """
    fps, tps, thr = _counts(*check_scores(score, is_member))
    fps, tps = np.r_[0, fps], np.r_[0, tps]
    return fps / fps[-1], tps / tps[-1], np.r_[np.inf, thr]


def roc_point(score: np.ndarray, is_member: np.ndarray, threshold: float) -> tuple[float, float]:
    """``(tpr, fpr)`` of the rule "member iff ``score >= threshold``"."""
    s, m = check_scores(score, is_member)
    pred = s >= threshold
    return float(pred[m].mean()), float(pred[~m].mean())


def auroc(score: np.ndarray, is_member: np.ndarray) -> float:
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``); ties count one half."""
    fpr, tpr, _ = roc_curve(score, is_member)
    return float(np.trapezoid(tpr, fpr))


def aupr(score: np.ndarray, is_member: np.ndarray) -> float:
    """Average precision, members positive (``sklearn.metrics.average_precision_score``).

    ``sum_i (R_i - R_{i-1}) P_i`` over the distinct thresholds (step-wise, no
    trapezoid, so it is not optimistic).
    """
    fps, tps, _ = _counts(*check_scores(score, is_member))
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def aupr_trapezoid(score: np.ndarray, is_member: np.ndarray) -> float:
    """Trapezoid area under the precision-recall curve, members positive.

    The curve is scikit-learn's ``precision_recall_curve``: one point per
    distinct threshold down to the first that reaches full recall, plus
    ``(recall 0, precision 1)``; linear interpolation between neighbouring
    thresholds (``sklearn.metrics.auc(recall, precision)``). This is the
    paper's AUPR (torchmetrics' ``auc`` of its ``precision_recall_curve``);
    linear interpolation of precision is optimistic, which is why the
    default is :func:`aupr`. The paper's code re-sorted the points by recall
    with an unstable sort, so where several thresholds share one recall the
    order it joined them in was unspecified; here they keep threshold order.
    """
    fps, tps, _ = _counts(*check_scores(score, is_member))
    stop = int(np.searchsorted(tps, tps[-1])) + 1  # first threshold with full recall
    precision = np.r_[1.0, tps[:stop] / (tps[:stop] + fps[:stop])]
    recall = np.r_[0.0, tps[:stop] / tps[-1]]
    return float(np.trapezoid(precision, recall))


#: ``attacks.aupr`` choices: name -> function
AUPR_METHODS = {"average-precision": aupr, "trapezoid": aupr_trapezoid}


def fpr_at_tpr(score: np.ndarray, is_member: np.ndarray, tpr: float = 0.95) -> float:
    """Smallest FPR of a threshold whose TPR is at least ``tpr`` (the paper's FPR@95%TPR)."""
    if not 0.0 <= tpr <= 1.0:
        raise ValueError(f"tpr must lie in [0, 1], got {tpr}")
    fprs, tprs, _ = roc_curve(score, is_member)
    return float(fprs[np.argmax(tprs >= tpr - _TOL)])


def tpr_at_fpr(score: np.ndarray, is_member: np.ndarray, fpr: float = 0.001) -> float:
    """Largest TPR of a threshold whose FPR is at most ``fpr`` (no interpolation).

    The ``(0, 0)`` point always qualifies, so the result is 0 when even the
    top-scored tie block contains too many non-members.
    """
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"fpr must lie in [0, 1], got {fpr}")
    fprs, tprs, _ = roc_curve(score, is_member)
    return float(tprs[fprs <= fpr + _TOL].max())


def oracle_threshold(score: np.ndarray, is_member: np.ndarray) -> float:
    """Threshold (rule ``score >= t``) maximising TPR - FPR on the given data; first maximum.

    On the shadow data this is the calibration rule of the threshold attacks; on
    the target data it is the best-in-hindsight ("oracle") operating point, an
    upper bound no real attacker can pick. TPR - FPR (balanced accuracy) rather
    than accuracy, so an unbalanced evaluation set does not move it; on balanced
    sets the two coincide. May be ``inf`` (predict nothing) for a useless score.
    """
    fpr, tpr, thr = roc_curve(score, is_member)
    return float(thr[np.argmax(tpr - fpr)])
