"""Per-sample view of an audit: which members are most exposed, and whether attacks agree.

Pure functions on plain arrays (no model, no config): the scores and decisions an audit
already saved go in, rankings and overlaps come out.

* :func:`strongest_attack` picks the attack with the highest AUROC (in-distribution);
  :func:`attack_ranking` lists the attacks that may rank members in that order, the one
  choice behind the ``strongest`` rows of an audit and the per-sample view.
* :func:`most_vulnerable` ranks members by that attack's margin over its shadow-fixed
  threshold, ``score - operating_score``: the further above, the more confidently the
  attack calls the sample "member".
* :func:`jaccard` / :func:`jaccard_matrix` measure how far the sets that different
  attacks flag (members they call "member", or non-members they wrongly call so)
  overlap: ``|A ∩ B| / |A ∪ B|``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "DEGENERATE_FLAGS",
    "attack_ranking",
    "jaccard",
    "jaccard_matrix",
    "most_vulnerable",
    "strongest_attack",
]

#: trust-check flags (docs/CHECKS.md) that keep an attack out of the ranking: its
#: decisions or scores carry no ranking (constant, tied) or point the wrong way
DEGENERATE_FLAGS = ("flag_constant", "flag_ties", "flag_polarity")


def strongest_attack(auroc: Mapping[str, float]) -> str | None:
    """The name with the highest AUROC; on a tie the one listed first; NaN never wins.

    ``None`` if no value is a number (no attack, or every AUROC undefined).
    """
    best: tuple[float, str] | None = None
    for name, value in auroc.items():
        if value is None or math.isnan(value):
            continue
        if best is None or value > best[0]:
            best = (float(value), name)
    return None if best is None else best[1]


def attack_ranking(
    value: Mapping[tuple[str, str, str], float], attacks: Sequence[str], dataset: str
) -> list[str]:
    """The ``attacks`` that may rank members on ``dataset``, highest AUROC first.

    ``value[(attack, set, metric)]`` holds the result rows' values. An attack takes part
    when it has a finite shadow-fixed threshold (``(attack, "shadow", "operating_score")``:
    the per-sample view ranks members by their margin over it), a defined AUROC on
    ``dataset`` and none of the :data:`DEGENERATE_FLAGS` raised there. Ties keep the order
    of ``attacks`` (as :func:`strongest_attack`); ``[]`` if none takes part.
    """
    auroc: dict[str, float] = {}
    for a in attacks:
        threshold = value.get((a, "shadow", "operating_score"))
        if threshold is None or not math.isfinite(threshold):
            continue
        if any(value.get((a, dataset, f)) == 1.0 for f in DEGENERATE_FLAGS):
            continue
        auc = value.get((a, dataset, "auroc"))
        if auc is not None and not math.isnan(auc):
            auroc[a] = float(auc)
    order: list[str] = []
    while (best := strongest_attack(auroc)) is not None:
        order.append(best)
        del auroc[best]
    return order


def most_vulnerable(
    member_score: np.ndarray, operating_score: float, *, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` members with the largest margin ``score - operating_score``, largest first.

    Args:
        member_score: ``(M,)`` one attack's scores of the members (higher = member).
        operating_score: that attack's threshold, fixed on the shadow model.
        k: how many to return (fewer if there are fewer members).

    Returns:
        ``(index (min(k, M),) int64, margin (min(k, M),) float64)``: positions in
        ``member_score`` and their margins. Ties keep the lower position first; NaN
        scores come last.
    """
    s = np.asarray(member_score, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"member_score must be 1-D, got shape {s.shape}")
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    margin = s - float(operating_score)
    key = np.where(np.isnan(margin), np.inf, -margin)  # NaN sorts after every number
    order = np.argsort(key, kind="stable")[:k].astype(np.int64)
    return order, margin[order]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """``|a ∩ b| / |a ∪ b|`` of two ``(N,)`` bool masks over the same samples.

    NaN when neither flags anything: two empty sets neither agree nor disagree.
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"masks must be 1-D of one length, got shapes {a.shape} and {b.shape}")
    union = int(np.count_nonzero(a | b))
    return math.nan if union == 0 else int(np.count_nonzero(a & b)) / union


def jaccard_matrix(flags: Sequence[np.ndarray]) -> np.ndarray:
    """``(K, K)`` Jaccard index of every pair of ``K`` bool masks ``(N,)``; symmetric.

    The diagonal is 1, or NaN for a mask that flags nothing.
    """
    masks = [np.asarray(f, dtype=bool) for f in flags]
    out = np.empty((len(masks), len(masks)), dtype=np.float64)
    for i, a in enumerate(masks):
        for j in range(i, len(masks)):
            out[i, j] = out[j, i] = jaccard(a, masks[j])
    return out
