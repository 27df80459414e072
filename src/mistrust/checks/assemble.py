"""Every check and verdict of an audit, as tidy rows of ``results.csv``.

:func:`check_rows` gives the checks of one attack on every set; :func:`add_verdicts` then
adjusts the leakage p-values of all the attacks on each set together (Holm) and adds a
verdict per attack and set. The verdict of one attack depends on the other attacks it
was audited with, so it is decided once they all have their checks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence

import numpy as np

from mistrust.checks.measure import in_distribution_checks, set_checks
from mistrust.checks.stats import holm
from mistrust.checks.verdict import Verdict, verdict
from mistrust.metrics.rates import Ranked
from mistrust.rows import MetricRow, Values

__all__ = ["VERDICT_KEYS", "add_verdicts", "check_rows", "verdict_of_rows"]

#: ``(score (N,), is_member (N,) bool, predicted (N,) bool)`` of one attack on one set;
#: ``predicted`` None where the attack made no decisions (audited without a shadow model)
Scored = tuple[np.ndarray, np.ndarray, np.ndarray | None]
#: the rows :func:`add_verdicts` adds per attack and set
VERDICT_KEYS: tuple[str, ...] = ("p_leakage_holm", "verdict")


def check_rows(
    variant: str,
    attack: str,
    scored: Mapping[str, Scored],
    *,
    seed: int,
    baseline: Mapping[str, np.ndarray] | None = None,
    in_distribution: str | None = "original",
    iid_sets: Collection[str] = (),
    ranked: Mapping[str, Ranked] | None = None,
) -> list[MetricRow]:
    """The checks of ``attack`` on every set (no verdict: :func:`add_verdicts`).

    Args:
        variant, attack: the first two columns of every row.
        scored: per set name, the attack's ``(score, is_member, predicted)``.
        seed: for the bootstraps and the null test's split.
        baseline: per set name, the blind baseline's ``(N,)`` scores of the same samples
            (sets without one get no ``baseline_*`` rows).
        in_distribution: the set of in-distribution non-members (null test, polarity,
            epsilon lower bound), or None / a name not in ``scored``: none.
        iid_sets: the sets whose non-members were drawn from one pool with the members
            by a seeded random split (``iid_split`` 1.0): no distribution shift there.
        ranked: per set name, ``Ranked(score, is_member)`` where the caller has it (the
            metrics' sort, read again by every check).

    Returns:
        A :class:`~mistrust.rows.MetricRow` per set and value: the
        :data:`~mistrust.checks.SET_CHECK_KEYS` (and :data:`~mistrust.checks.BASELINE_KEYS`),
        and the :data:`~mistrust.checks.IN_DISTRIBUTION_KEYS` on the in-distribution set.
    """
    rows: list[MetricRow] = []
    for name, (score, is_member, predicted) in scored.items():
        b = None if baseline is None else baseline.get(name)
        iid = name in iid_sets
        r = None if ranked is None else ranked.get(name)
        cell = set_checks(score, is_member, predicted, seed=seed, baseline=b, iid=iid, ranked=r)
        if name == in_distribution:
            cell |= in_distribution_checks(score, is_member, predicted, seed=seed, ranked=r)
        rows += [MetricRow(variant, attack, name, k, v) for k, v in cell.items()]
    return rows


def add_verdicts(
    rows: Sequence[MetricRow], *, in_distribution: str | None = "original"
) -> list[MetricRow]:
    """``rows`` with the :data:`VERDICT_KEYS` of every (variant, attack, set) that has
    checks, decided afresh (any such rows already there are dropped) and appended.

    The family of the Holm adjustment is every attack of one variant on one set: the
    chance that any of them is called "leakage shown" when none leaks stays at most
    :data:`~mistrust.checks.verdict.FAMILY_ALPHA`.
    """
    kept = [r for r in rows if r.metric not in VERDICT_KEYS]
    p: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for r in kept:
        if r.metric == "p_leakage":
            p[(r.variant, r.dataset)][r.attack] = r.value
    adjusted = {
        (v, a, d): x
        for (v, d), per_attack in p.items()
        for a, x in zip(per_attack, holm(list(per_attack.values())), strict=True)
    }
    vals = Values({r[:4]: r.value for r in kept})
    for (v, a, d), x in adjusted.items():
        vals[(v, a, d, "p_leakage_holm")] = x
    out = list(kept)
    for (v, a, d), x in adjusted.items():
        found = verdict_of_rows(vals, v, a, d, in_distribution=in_distribution)
        if found is None:
            continue
        out += [MetricRow(v, a, d, "p_leakage_holm", x), MetricRow(v, a, d, "verdict", found.code)]
    return out


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
    family = len(vals.attacks_with(variant, name, "p_leakage"))
    return verdict(
        cell, in_dist, set_name=name, in_distribution=name == in_distribution, family=family
    )
