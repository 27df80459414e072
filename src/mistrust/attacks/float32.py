"""Scores in the paper's arithmetic: float32 PyTorch, as its attack code computed them.

The ``paper-*`` presets (``attacks.score_precision: float32``) take their scores from
here. Rounding float64 results to float32 is not the same thing: a float32 softmax
divides by ``1 + rest`` summed in float32, which is exactly 1 once the non-maximal
terms vanish against the 1 (for two classes: ``rest <= 2^-24``; with more, each term
added below 2^-24 vanishes on its own), so the max score is exactly 1.0 there; a
float64 ``1 / (1 + rest)`` rounds to 1.0 only below about 2^-25. The order of that
sum is torch's: on a GPU (where the paper ran) it can differ, and with it the last
bit of a score. The paper's entropy is
``torch.distributions.Categorical(probs=softmax).entropy()``, which clamps the
probabilities inside its logarithm to ``[eps, 1 - eps]`` (``eps`` = float32 epsilon,
about 1.19e-7): every saturated row gets the same entropy, about 1.19e-7, where
float64 resolves entropies down to 1e-300.

Each function takes logits ``(N, C)`` (rounded to float32 first, as a float32
model would have produced them) and returns float64 arrays holding float32 values
exactly, so the rest of the pipeline (ROC, thresholds, metrics) stays float64.
torch is imported on first use: importing :mod:`mistrust.attacks` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mistrust.attacks._checks import check_logits

if TYPE_CHECKING:
    import torch

__all__ = [
    "entropy",
    "entropy_of",
    "max_score",
    "max_score_of",
    "sigmoid",
    "softmax",
    "top_k_scores",
    "top_k_scores_of",
]


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.numpy().astype(np.float64)


def softmax(logits: np.ndarray) -> torch.Tensor:
    """``torch.softmax`` of the float32 logits, ``(N, C)`` float32 tensor."""
    import torch

    x = np.ascontiguousarray(check_logits(logits), dtype=np.float32)
    return torch.softmax(torch.from_numpy(x), dim=1)


def max_score(logits: np.ndarray) -> np.ndarray:
    """Maximum float32 softmax probability ``(N,)``; exactly 1.0 for saturated rows."""
    return max_score_of(softmax(logits))


def max_score_of(p: torch.Tensor) -> np.ndarray:
    """:func:`max_score` of an already computed :func:`softmax` ``p``."""
    return _numpy(p.max(dim=1).values)


def top_k_scores(logits: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest float32 softmax probabilities per row, descending: ``(N, k)``."""
    return top_k_scores_of(softmax(logits), k)


def top_k_scores_of(p: torch.Tensor, k: int) -> np.ndarray:
    """:func:`top_k_scores` of an already computed :func:`softmax` ``p``."""
    import torch

    if not (isinstance(k, int | np.integer) and 1 <= k <= p.shape[1]):
        raise ValueError(f"k must be an integer in [1, {p.shape[1]}], got {k!r}")
    return _numpy(torch.topk(p, int(k), dim=1, largest=True, sorted=True).values)


def entropy(logits: np.ndarray) -> np.ndarray:
    """Entropy of the float32 softmax ``(N,)`` as ``Categorical(probs=...)`` computes it.

    The same operations in the same order: the probabilities renormalised by their
    sum, their log taken after clamping to ``[eps, 1 - eps]``, ``-sum(p log p)``.
    The clamp sets the floor: a row whose float32 softmax is one-hot has entropy
    ``-log(1 - eps)`` (about 1.19e-7), not 0.
    """
    return entropy_of(softmax(logits))


def entropy_of(p: torch.Tensor) -> np.ndarray:
    """:func:`entropy` of an already computed :func:`softmax` ``p`` (left unchanged)."""
    import torch

    p = p / p.sum(dim=1, keepdim=True)
    eps = torch.finfo(p.dtype).eps
    return _numpy(-(p.clamp(min=eps, max=1 - eps).log() * p).sum(dim=1))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``torch.sigmoid`` of ``x`` rounded to float32 ``(N,)``; 1.0 from logits of about 16.6."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return _numpy(torch.sigmoid(t))
