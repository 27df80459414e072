"""The privacy table and its finding (docs/DP.md): per variant with a DP guarantee or a
canary audit, the accountant's epsilon beside every empirical lower bound."""

from __future__ import annotations

import math
from collections.abc import Sequence

from mistrust.checks.dp import CANARY_SET, DP_FLAG, violation_text
from mistrust.present.tables.model import Table, lookup, ordered
from mistrust.rows import MetricRow, ModelRow, Values

#: the table's columns: (role, dataset, metric of model_metrics.csv) or an attack bound
COLUMNS = (
    ("target", "train", "dp_epsilon", "accountant epsilon"),
    ("target", "train", "dp_delta", "delta"),
    ("target", "train", "dp_noise_multiplier", "noise multiplier"),
    (None, None, "epsilon_lower_bound", "largest attack epsilon LB"),
    ("target", CANARY_SET, "canary_epsilon_lower_bound", "canary epsilon LB"),
    ("target", CANARY_SET, "canary_guesses", "canary guesses"),
    ("target", CANARY_SET, "canary_correct", "canary correct"),
    (None, None, DP_FLAG, "DP violation"),
)

#: metrics written exactly (``%g``) rather than to the table's decimals
_EXACT = ("dp_delta", "canary_guesses", "canary_correct")


def _private(model_rows: Sequence[ModelRow]) -> list[str]:
    keys = ("dp_epsilon", "canary_epsilon_lower_bound")
    return ordered(r.variant for r in model_rows if r.role == "target" and r.metric in keys)


def attack_bounds(val: Values, rows: Sequence[MetricRow], variant: str) -> dict[str, float]:
    """``attack -> epsilon_lower_bound`` of ``variant`` (NaN bounds left out)."""
    return {
        r.attack: r.value
        for r in rows
        if r.variant == variant and r.metric == "epsilon_lower_bound" and not math.isnan(r.value)
    }


def guarantee(mval: Values, variant: str) -> float | None:
    """The epsilon ``variant``'s target is guaranteed (its accountant's), or None."""
    eps = mval.get((variant, "target", "train", "dp_epsilon"))
    return None if eps is None or math.isnan(eps) else float(eps)


def privacy_table(rows: Sequence[MetricRow], model_rows: Sequence[ModelRow]) -> Table | None:
    """Accountant vs empirical epsilon per variant; None where no variant has either."""
    variants = _private(model_rows)
    if not variants:
        return None
    val, mval = lookup(rows), lookup(model_rows)
    cells: dict[tuple[str, str], float | str] = {}
    for v in variants:
        bounds = attack_bounds(val, rows, v)
        for role, dataset, metric, col in COLUMNS:
            if metric == "epsilon_lower_bound":
                if bounds:
                    best = max(bounds, key=lambda a: bounds[a])
                    cells[(v, col)] = f"{bounds[best]:.2f} ({best})"
            elif metric == DP_FLAG:
                flags = [r.value for r in rows if r.variant == v and r.metric == DP_FLAG]
                flags += [r.value for r in model_rows if r.variant == v and r.metric == DP_FLAG]
                if flags:
                    cells[(v, col)] = "yes" if max(flags) == 1 else "no"
            elif (v, role, dataset, metric) in mval:
                x = mval[(v, role, dataset, metric)]
                # a delta is small, counts are whole: written as such, not rounded to 0.000
                cells[(v, col)] = f"{x:g}" if metric in _EXACT else x
    cols = [c for *_, c in COLUMNS if any((v, c) in cells for v in variants)]
    return Table(
        "privacy",
        "Privacy: the accountant's epsilon and the empirical lower bounds",
        variants,
        cols,
        cells,
        "variant",
        "none",
        "accountant: Opacus's RDP accountant over the target's DP-SGD training; lower "
        "bounds (LB) at 95 % confidence: each attack's shadow-fixed operating point "
        "(delta 1e-5), the one-run canary audit (docs/DP.md). A bound above the "
        "accountant's epsilon is a DP violation: a bug in training or auditing is likely",
    )


def privacy_findings(rows: Sequence[MetricRow], model_rows: Sequence[ModelRow]) -> list[str]:
    """A sentence per DP variant whose empirical bounds exceed its guarantee."""
    val, mval = lookup(rows), lookup(model_rows)
    out = []
    for v in _private(model_rows):
        eps = guarantee(mval, v)
        if eps is None:
            continue
        bounds = attack_bounds(val, rows, v)
        canary = mval.get((v, "target", CANARY_SET, "canary_epsilon_lower_bound"))
        if canary is not None:
            bounds[CANARY_SET] = canary
        text = violation_text(v, eps, bounds)
        if text:
            out.append(text)
    return out
