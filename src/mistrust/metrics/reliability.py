"""Calibration metrics on logits: accuracy, NLL, ECE, over-confidence error, MMPS.

Every function takes logits ``(N, C)`` (log-probabilities work too: softmax is
shift-invariant) and, where needed, integer labels ``(N,)``, and returns a
python float. Softmax is computed internally in float64 with the max-shift trick.

Binning (ECE, OE, reliability diagram): ``n_bins`` equal-width bins over the
max confidence; bin ``b`` holds confidences in ``[b/n, (b+1)/n)`` and the last
bin also holds exactly ``1.0``. torchmetrics' ``MulticlassCalibrationError``
uses the same bins except that it gives confidence ``1.0`` a bin of its own, so
the two agree unless some confidence is exactly 1.0 (saturated softmax).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "accuracy",
    "ece",
    "mmps",
    "nll",
    "overconfidence_error",
    "reliability_bins",
    "softmax",
]


def _check_logits(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] < 2:
        raise ValueError(f"logits must be (N, C) with N >= 1 and C >= 2, got {logits.shape}")
    if not np.isfinite(logits).all():
        raise ValueError("logits contain NaN or infinite values")
    return logits


def _check_labels(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(logits):
        raise ValueError(f"labels must be ({len(logits)},) to match logits, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(
            f"labels must lie in [0, {logits.shape[1]}), got {labels.min()}..{labels.max()}"
        )
    return labels.astype(np.int64)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax. logits: ``(N, C)`` -> probabilities ``(N, C)`` float64."""
    return np.exp(_log_softmax(_check_logits(logits)))


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy. logits: ``(N, C)``; labels: ``(N,)``."""
    logits = _check_logits(logits)
    labels = _check_labels(logits, labels)
    return float((logits.argmax(axis=1) == labels).mean())


def nll(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood (nats) of the true labels. logits: ``(N, C)``; labels: ``(N,)``."""
    logits = _check_logits(logits)
    labels = _check_labels(logits, labels)
    logp = _log_softmax(logits)
    return float(-logp[np.arange(len(labels)), labels].mean())


def mmps(logits: np.ndarray) -> float:
    """Mean maximum prediction score (mean top-1 softmax probability). logits: ``(N, C)``."""
    return float(softmax(logits).max(axis=1).mean())


def reliability_bins(
    logits: np.ndarray, labels: np.ndarray, *, n_bins: int = 15
) -> dict[str, np.ndarray]:
    """Per-bin statistics for a reliability diagram.

    Args:
        logits: ``(N, C)``.
        labels: ``(N,)`` integer class labels.
        n_bins: number of equal-width confidence bins over ``[0, 1]``.

    Returns:
        ``edges`` ``(n_bins + 1,)``; ``accuracy``, ``confidence`` ``(n_bins,)``
        float64 (0 for empty bins); ``count`` ``(n_bins,)`` int64.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    logits = _check_logits(logits)
    labels = _check_labels(logits, labels)
    probs = np.exp(_log_softmax(logits))
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.int64)
    denom = np.maximum(count, 1)
    acc_b = np.bincount(idx, weights=correct, minlength=n_bins) / denom
    conf_b = np.bincount(idx, weights=conf, minlength=n_bins) / denom
    return {"edges": edges, "accuracy": acc_b, "confidence": conf_b, "count": count}


def ece(logits: np.ndarray, labels: np.ndarray, *, n_bins: int = 15) -> float:
    """Expected calibration error: ``sum_b |B_b|/N * |acc_b - conf_b|``.

    logits: ``(N, C)``; labels: ``(N,)``. Equal-width bins over the max confidence.
    """
    bins = reliability_bins(logits, labels, n_bins=n_bins)
    weight = bins["count"] / bins["count"].sum()
    return float(np.sum(weight * np.abs(bins["accuracy"] - bins["confidence"])))


def overconfidence_error(logits: np.ndarray, labels: np.ndarray, *, n_bins: int = 15) -> float:
    """Over-confidence error (Thulasidasan et al. 2019).

    ``OE = sum_b |B_b|/N * conf_b * max(conf_b - acc_b, 0)``; only bins where the
    model is more confident than accurate contribute. logits: ``(N, C)``; labels: ``(N,)``.
    """
    bins = reliability_bins(logits, labels, n_bins=n_bins)
    weight = bins["count"] / bins["count"].sum()
    gap = np.maximum(bins["confidence"] - bins["accuracy"], 0.0)
    return float(np.sum(weight * bins["confidence"] * gap))
