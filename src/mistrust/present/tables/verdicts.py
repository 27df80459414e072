"""The verdicts of a run told together: every (attack, set) that one rule decided becomes
one group with one sentence, and the epsilon lower bound per attack.

A run of six attacks on eight sets has 48 verdicts, most of them decided by the same rule
for the same reason (a classifier of the pixels alone separates the set from the members);
the report's summary and the console say that once. Read from the typed rows, like the
tables; the rules are those of :mod:`mistrust.checks.verdict` (docs/CHECKS.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from mistrust.checks import INCONCLUSIVE, LEAKAGE_SHOWN, NOT_SHOWN, Verdict
from mistrust.checks.assemble import verdict_of_rows
from mistrust.checks.measure import DELTA
from mistrust.checks.verdict import (
    BASELINE,
    CHANCE,
    DEGENERATE,
    FAMILY,
    IID,
    NO_BASELINE,
    NULL_TEST,
    SHIFT,
    SHOWN,
)
from mistrust.present.tables.build import IN_DISTRIBUTION
from mistrust.present.tables.model import Table, attacks_of, lookup, no_shadow, of_variant, sets_of
from mistrust.rows import MetricRow, Values

__all__ = ["ReasonGroup", "epsilon_table", "reason_groups", "verdict_grid"]

#: the order groups are told in
LABEL_ORDER = (LEAKAGE_SHOWN, NOT_SHOWN, INCONCLUSIVE)


class ReasonGroup(NamedTuple):
    """The cells one rule decided with one label, and what they have in common."""

    label: str
    rule: str
    cells: list[tuple[str, str]]  # (attack, set), in the run's order
    where: str  # "held-out, digits (2 sets), every attack"
    why: str  # "the blind baseline ... (AUROC 0.71-1.00): distribution shift ..."


def verdict_grid(rows: Sequence[MetricRow], variant: str) -> dict[tuple[str, str], Verdict]:
    """``{(attack, set): Verdict}`` of every cell of ``variant`` that has checks."""
    val = lookup(rows)
    own = of_variant(rows, variant)
    out = {}
    for a in attacks_of(own):
        for d in sets_of([r for r in own if r.attack == a]):
            found = verdict_of_rows(val, variant, a, d)
            if found is not None:
                out[(a, d)] = found
    return out


def _span(xs: list[float], digits: int = 2) -> str:
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return "–"
    lo, hi = f"{min(xs):.{digits}f}", f"{max(xs):.{digits}f}"
    return lo if lo == hi else f"{lo}–{hi}"


def _p_most(xs: list[float]) -> str:
    worst = max((x for x in xs if not math.isnan(x)), default=math.nan)
    return "–" if math.isnan(worst) else ("< 0.001" if worst < 1e-3 else f"≤ {worst:.3g}")


def _why(label: str, rule: str, cells: list[tuple[str, str]], val: Values, v: str) -> str:
    """One sentence for the cells of one (label, rule), with the ranges of their numbers."""

    def nums(metric: str) -> list[float]:
        return [val.get((v, a, d, metric), math.nan) for a, d in cells]

    auc, base, p = _span(nums("auroc")), _span(nums("baseline_auroc")), nums("p_leakage_holm")
    if rule == SHIFT:
        return (
            f"the blind baseline, a classifier of the pixels alone, separates them from the "
            f"members (AUROC {base}; the attacks {auc}): distribution shift, membership "
            "neither shown nor ruled out"
        )
    if rule == CHANCE:
        return f"AUROC {auc}, not above chance (0.5)"
    if rule == SHOWN:
        return (
            f"AUROC {auc}, above chance and above the blind baseline's {base} "
            f"(Holm-adjusted p {_p_most(p)})"
        )
    if rule == IID:
        return (
            f"AUROC {auc}, above chance (Holm-adjusted p {_p_most(p)}); members and "
            "non-members split i.i.d. by construction, so no distribution shift"
        )
    if rule == NO_BASELINE:
        if label == LEAKAGE_SHOWN:
            return (
                f"AUROC {auc}, above chance (Holm-adjusted p {_p_most(p)}); blind baseline not run"
            )
        return (
            f"AUROC {auc}, above chance, but the blind baseline was not run (no inputs): "
            "distribution shift not ruled out"
        )
    if rule == FAMILY:
        return (
            f"AUROC {auc}, above chance at 95 %, not at the 1 % family-wise level "
            f"(Holm-adjusted p {_span(p, 3)})"
        )
    if rule == BASELINE:
        return f"AUROC {auc}, above chance but not clearly above the blind baseline's {base}"
    if rule == DEGENERATE:
        return "degenerate attack: constant decisions, tied scores or inverted polarity"
    if rule == NULL_TEST:
        return "the null test failed or could not run"
    return ""


def _where(cells: list[tuple[str, str]], attacks: list[str], sets: list[str]) -> str:
    """``"original, every attack"``, ``"held-out, digits (2 sets), every attack"``, or per
    set which attacks: ``"digits (all), held-out (all but entropy), noise (salem)"``."""
    by_set = {d: [a for a in attacks if (a, d) in cells] for d in sets}
    by_set = {d: a for d, a in by_set.items() if a}
    if all(len(a) == len(attacks) for a in by_set.values()):
        names = ", ".join(by_set)
        count = f" ({len(by_set)} sets)" if len(by_set) > 1 else ""
        return f"{names}{count}, every attack" if len(attacks) > 1 else f"{names}{count}"
    parts = []
    for d, a in by_set.items():
        if len(a) == len(attacks):
            parts.append(f"{d} (all)")
        elif 2 * len(a) > len(attacks):
            parts.append(f"{d} (all but {', '.join(x for x in attacks if x not in a)})")
        else:
            parts.append(f"{d} ({', '.join(a)})")
    return ", ".join(parts)


def reason_groups(rows: Sequence[MetricRow], variant: str) -> list[ReasonGroup]:
    """The verdicts of ``variant`` grouped by (label, rule): leakage shown first, then not
    shown, then inconclusive; within a label, in the order the cells appear."""
    grid = verdict_grid(rows, variant)
    if not grid:
        return []
    val = lookup(rows)
    attacks = list(dict.fromkeys(a for a, _ in grid))
    sets = list(dict.fromkeys(d for _, d in grid))
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for cell, found in grid.items():
        groups.setdefault((found.label, found.rule or found.reason), []).append(cell)
    out = []
    for (label, rule), cells in groups.items():
        why = _why(label, rule, cells, val, variant) or grid[cells[0]].reason
        out.append(ReasonGroup(label, rule, cells, _where(cells, attacks, sets), why))
    return sorted(out, key=lambda g: LABEL_ORDER.index(g.label))


def epsilon_table(rows: Sequence[MetricRow], variant: str) -> Table | None:
    """Per attack of ``variant``: its verdict and AUROC on the in-distribution set and the
    epsilon lower bound its shadow-fixed operating point certifies there (the single
    number an auditor quotes); None where the run has no epsilon."""
    val = lookup(rows)
    attacks = [
        a
        for a in attacks_of(of_variant(rows, variant))
        if (variant, a, IN_DISTRIBUTION, "epsilon_lower_bound") in val
    ]
    if not attacks:
        return None
    grid = verdict_grid(rows, variant)
    cells: dict[tuple[str, str], float | str] = {}
    for a in attacks:
        if (a, IN_DISTRIBUTION) in grid:
            cells[(a, "verdict")] = grid[(a, IN_DISTRIBUTION)].label
        cells[(a, "AUROC")] = val.get((variant, a, IN_DISTRIBUTION, "auroc"), math.nan)
        cells[(a, "epsilon >=")] = val[(variant, a, IN_DISTRIBUTION, "epsilon_lower_bound")]
    t = Table(
        f"epsilon_{variant}",
        f"Epsilon lower bound per attack ({variant})",
        attacks,
        ["verdict", "AUROC", "epsilon >="],
        cells,
        "attack",
        note=(
            f"on the {IN_DISTRIBUTION} set, at the threshold fitted on the shadow model "
            f"(delta {DELTA:g}, 95 % Clopper-Pearson); docs/CHECKS.md"
        ),
        group=variant,
    )
    if no_shadow(rows, variant):
        t.missing = "no shadow"
    return t
