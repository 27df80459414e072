"""The differential-privacy check (docs/CHECKS.md, docs/DP.md): no empirical lower bound
on epsilon may exceed what the model's accountant (or its owner) guarantees.

Every ``epsilon_lower_bound`` of an attack and the canary audit's bound hold with
confidence 95 % each; a bound above the guaranteed epsilon is therefore either that
5 % or, far more likely when it is well above, a bug in the private training (noise,
clipping, sampling, accounting) or in the audit. Pure: rows and numbers in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from mistrust.checks.canary import CanaryAudit
from mistrust.rows import MetricRow, ModelRow

__all__ = [
    "ACCOUNTING_KEYS",
    "CANARY_SET",
    "CANARY_KEYS",
    "DP_FLAG",
    "accounting_rows",
    "canary_rows",
    "dp_violation_rows",
    "violation_text",
]

#: the flag of ``results.csv`` (per attack) and ``model_metrics.csv`` (canaries)
DP_FLAG = "flag_dp_violation"
#: the ``dataset`` of the canary audit's rows in ``model_metrics.csv`` (role ``target``)
CANARY_SET = "canaries"
CANARY_KEYS: tuple[str, ...] = ("canary_epsilon_lower_bound", "canary_guesses", "canary_correct")
#: the accounting keys that become ``model_metrics.csv`` rows (dataset ``train``)
ACCOUNTING_KEYS: tuple[str, ...] = ("dp_epsilon", "dp_delta", "dp_noise_multiplier")


def accounting_rows(variant: str, role: str, accounting: Mapping[str, float]) -> list[ModelRow]:
    """``dp_epsilon`` (spent), ``dp_delta`` and ``dp_noise_multiplier`` of one model."""
    return [
        ModelRow(variant, role, "train", k, float(accounting[k]))
        for k in ACCOUNTING_KEYS
        if k in accounting
    ]


def canary_rows(variant: str, audit: CanaryAudit, epsilon: float | None = None) -> list[ModelRow]:
    """The canary audit of ``variant``'s target; with the guaranteed ``epsilon``, its
    :data:`DP_FLAG` too."""
    rows = [
        ModelRow(variant, "target", CANARY_SET, "canary_epsilon_lower_bound", audit.epsilon),
        ModelRow(variant, "target", CANARY_SET, "canary_guesses", float(audit.guesses)),
        ModelRow(variant, "target", CANARY_SET, "canary_correct", float(audit.correct)),
    ]
    if epsilon is not None:
        flag = float(audit.epsilon > epsilon)
        rows.append(ModelRow(variant, "target", CANARY_SET, DP_FLAG, flag))
    return rows


def dp_violation_rows(rows: Sequence[MetricRow], variant: str, epsilon: float) -> list[MetricRow]:
    """A :data:`DP_FLAG` row beside every ``epsilon_lower_bound`` of ``variant``: 1 where
    the bound exceeds the guaranteed ``epsilon``, else 0 (a NaN bound: 0)."""
    return [
        MetricRow(r.variant, r.attack, r.dataset, DP_FLAG, float(r.value > epsilon))
        for r in rows
        if r.variant == variant and r.metric == "epsilon_lower_bound" and not math.isnan(r.value)
    ]


def violation_text(variant: str, epsilon: float, bounds: Mapping[str, float]) -> str:
    """The verdict on a DP variant whose empirical bounds ``bounds`` (attack or
    ``canaries`` -> bound) exceed its guaranteed ``epsilon``; "" when none does."""
    over = {k: b for k, b in bounds.items() if b > epsilon}
    if not over:
        return ""
    which = ", ".join(f"{k} {b:.2f}" for k, b in over.items())
    return (
        f"{variant}: the empirical epsilon lower bound exceeds the guaranteed epsilon "
        f"{epsilon:.2f} ({which}); a bound holds with 95 % confidence, so a bug in the "
        "private training or in the audit is likely"
    )
