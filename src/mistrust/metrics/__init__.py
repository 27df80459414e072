"""Pure metric functions: NumPy arrays in, python floats out.

Attack metrics (``score`` higher = member, ``is_member`` bool):
:func:`roc_curve`, :func:`auroc`, :func:`aupr`, :func:`fpr_at_tpr`,
:func:`tpr_at_fpr`, :func:`oracle_threshold`, :func:`clopper_pearson`,
:func:`mmps`, :func:`emd` and the one-call summary :func:`attack_metrics`.
"""

from __future__ import annotations

from mistrust.metrics.attack import METRIC_KEYS, attack_metrics, mmps
from mistrust.metrics.distance import emd
from mistrust.metrics.intervals import clopper_pearson
from mistrust.metrics.rates import (
    aupr,
    auroc,
    fpr_at_tpr,
    oracle_threshold,
    roc_curve,
    roc_point,
    tpr_at_fpr,
)

__all__ = [
    "METRIC_KEYS",
    "attack_metrics",
    "aupr",
    "auroc",
    "clopper_pearson",
    "emd",
    "fpr_at_tpr",
    "mmps",
    "oracle_threshold",
    "roc_curve",
    "roc_point",
    "tpr_at_fpr",
]
