"""The strongest attack of an audit and how far ahead of the runner-up it is, as rows.

The attacks that compete are chosen by :func:`mistrust.metrics.persample.attack_ranking`
(a shadow-fixed threshold, a defined AUROC, no degenerate flag), the same choice the
per-sample view makes. The strongest and the runner-up scored the same members and
non-members, so their AUROCs are compared with DeLong's paired test
(:func:`mistrust.checks.stats.auroc_difference_interval`): two attacks a few thousandths
apart on one split are often not told apart by it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mistrust.checks.stats import auroc_difference_interval, auroc_difference_p_value
from mistrust.metrics.persample import attack_ranking
from mistrust.rows import MetricRow

__all__ = ["GAP_KEYS", "RUNNER_UP", "STRONGEST", "strongest_rows"]

#: metric of the strongest attack's row on the ranked set (value 1)
STRONGEST = "strongest"
#: metric of the runner-up's row on the ranked set (value 1): its attack column names it
RUNNER_UP = "runner_up"
#: on the strongest's row: AUROC(strongest) - AUROC(runner-up), DeLong's paired 95 %
#: interval and the one-sided p-value of "the strongest's AUROC is the higher"
GAP_KEYS: tuple[str, ...] = (
    "auroc_gap_to_runner_up",
    "auroc_gap_ci_low",
    "auroc_gap_ci_high",
    "auroc_gap_p",
)


def strongest_rows(
    variant: str,
    rows: Sequence[MetricRow],
    scores: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    dataset: str = "original",
) -> list[MetricRow]:
    """The ranking rows of ``variant`` on ``dataset``.

    Args:
        variant: rows of other variants are ignored; the first column of the new rows.
        rows: the audit's rows so far (AUROC, thresholds and flags are read from them).
        scores: per attack, its ``(score (N,), is_member (N,) bool)`` on ``dataset``; only
            these attacks compete, in this order (the first listed wins a tie).
        dataset: the set the attacks are ranked on (the in-distribution one).

    Returns:
        ``[]`` if no attack competes; the ``strongest`` row alone if one does; else also
        the runner-up's row and the :data:`GAP_KEYS` on the strongest's row.
    """
    value = {(r.attack, r.dataset, r.metric): r.value for r in rows if r.variant == variant}
    order = attack_ranking(value, list(scores), dataset)
    if not order:
        return []
    best = order[0]
    out = [MetricRow(variant, best, dataset, STRONGEST, 1.0)]
    if len(order) < 2:
        return out
    second = order[1]
    (sa, member), (sb, member_b) = scores[best], scores[second]
    if not np.array_equal(np.asarray(member, dtype=bool), np.asarray(member_b, dtype=bool)):
        raise ValueError(f"{best} and {second} scored different members on {dataset}")
    d, low, high = auroc_difference_interval(sa, sb, member)
    p = auroc_difference_p_value(sa, sb, member)
    gap = dict(zip(GAP_KEYS, (d, low, high, p), strict=True))
    out += [MetricRow(variant, best, dataset, k, float(x)) for k, x in gap.items()]
    out.append(MetricRow(variant, second, dataset, RUNNER_UP, 1.0))
    return out
