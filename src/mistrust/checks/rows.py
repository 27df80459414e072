"""Every check and verdict of one attack, as tidy rows of ``results.csv``."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from mistrust.checks.measure import in_distribution_checks, set_checks
from mistrust.checks.verdict import Verdict, verdict
from mistrust.metrics.rates import auroc
from mistrust.rows import MetricRow, Values

__all__ = ["check_rows", "verdict_of_rows"]

#: ``(score (N,), is_member (N,) bool, predicted (N,) bool)`` of one attack on one set;
#: ``predicted`` None where the attack made no decisions (audited without a shadow model)
Scored = tuple[np.ndarray, np.ndarray, np.ndarray | None]


def _rates(is_member: np.ndarray, predicted: np.ndarray | None) -> dict[str, float]:
    if predicted is None:
        return {"tpr": math.nan, "fpr": math.nan}
    m, p = np.asarray(is_member, bool), np.asarray(predicted, bool)
    return {"tpr": float(p[m].mean()), "fpr": float(p[~m].mean())}


def check_rows(
    variant: str,
    attack: str,
    scored: Mapping[str, Scored],
    *,
    seed: int,
    baseline: Mapping[str, np.ndarray] | None = None,
    in_distribution: str | None = "original",
) -> list[MetricRow]:
    """The checks of ``attack`` on every set, then its verdict per set.

    Args:
        variant, attack: the first two columns of every row.
        scored: per set name, the attack's ``(score, is_member, predicted)``.
        seed: for the bootstraps and the null test's split.
        baseline: per set name, the blind baseline's ``(N,)`` scores of the same samples
            (sets without one get no ``baseline_*`` rows).
        in_distribution: the set of in-distribution non-members (null test, polarity,
            epsilon lower bound), or None / a name not in ``scored``: none.

    Returns:
        A :class:`~mistrust.rows.MetricRow` per set and value: the
        :data:`~mistrust.checks.SET_CHECK_KEYS` (and :data:`~mistrust.checks.BASELINE_KEYS`),
        the :data:`~mistrust.checks.IN_DISTRIBUTION_KEYS` on the in-distribution set, and
        ``verdict`` (:data:`~mistrust.checks.VERDICT_CODES`).
    """
    cells: dict[str, dict[str, float]] = {}
    for name, (score, is_member, predicted) in scored.items():
        b = None if baseline is None else baseline.get(name)
        cells[name] = set_checks(score, is_member, predicted, seed=seed, baseline=b)
    ind = in_distribution if in_distribution in scored else None
    if ind is not None:
        cells[ind] |= in_distribution_checks(*scored[ind], seed=seed)
    rows: list[MetricRow] = []
    for name, cell in cells.items():
        rows += [MetricRow(variant, attack, name, k, v) for k, v in cell.items()]
        cell = cell | {"auroc": _auroc_of(scored[name])} | _rates(*scored[name][1:])
        in_dist = None if ind is None else cells[ind] | {"auroc": _auroc_of(scored[ind])}
        v = verdict(cell, in_dist, set_name=name, in_distribution=name == ind)
        rows.append(MetricRow(variant, attack, name, "verdict", v.code))
    return rows


def _auroc_of(s: Scored) -> float:
    return auroc(s[0], s[1])  # the value results.csv holds, so a re-read verdict agrees


def verdict_of_rows(
    values: Mapping[tuple[str, str, str, str], float],
    variant: str,
    attack: str,
    name: str,
    *,
    in_distribution: str | None = "original",
) -> Verdict | None:
    """The :class:`~mistrust.checks.Verdict` of one (variant, attack, set) from tidy values
    (``(variant, attack, set, metric) -> value``, e.g. read back from ``results.csv``);
    None where the set has no checks."""

    vals = values if isinstance(values, Values) else Values(values)
    cell = vals.cell(variant, attack, name)
    if "auroc_ci_low" not in cell or "auroc" not in cell:
        return None
    in_dist = vals.cell(variant, attack, in_distribution) if in_distribution is not None else {}
    if "flag_null" not in in_dist or "auroc" not in in_dist:
        in_dist = None
    return verdict(cell, in_dist, set_name=name, in_distribution=name == in_distribution)
