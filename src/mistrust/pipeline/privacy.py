"""One variant's privacy rows (docs/DP.md), beside its attack rows.

What each role's accountant says its DP-SGD training spent (``models/<variant>/<role>.dp.json``)
or, in an audit, the guarantee the model's owner claims (``target.dp_epsilon``,
``target.dp_delta``); the canary audit of the target where the run has canaries; and the
DP check of every epsilon lower bound against the target's epsilon. ``mistrust run`` and
``mistrust audit`` both get them here, through :func:`mistrust.pipeline.roles.score_variant`.
Nothing here runs a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mistrust.attacks.signals import loss
from mistrust.checks.canary import canary_audit
from mistrust.checks.dp import CANARY_SET, accounting_rows, canary_rows, dp_violation_rows
from mistrust.core.outputs import Outputs
from mistrust.io import load_npz
from mistrust.rows import MetricRow, ModelRow
from mistrust.runtime.paths import RunPaths
from mistrust.training.private import read_accounting

__all__ = ["Guarantee", "privacy_rows"]


@dataclass(frozen=True)
class Guarantee:
    """A DP guarantee claimed for the target model (an audit's ``target.dp_epsilon`` and
    ``dp_delta``); it holds for the post-hoc variants too (post-processing)."""

    epsilon: float
    delta: float | None = None

    def record(self) -> dict[str, Any]:
        """As an accountant's record reads (:func:`mistrust.training.private.read_accounting`)."""
        return {"dp_epsilon": self.epsilon} | (
            {} if self.delta is None else {"dp_delta": self.delta}
        )


def privacy_rows(
    paths: RunPaths,
    variant: str,
    roles: Sequence[str],
    rows: Sequence[MetricRow],
    *,
    delta: float,
    claimed: Guarantee | None = None,
) -> tuple[list[MetricRow], list[ModelRow]]:
    """``(DP flags of the attack rows, model rows)`` of ``variant``: each role's accounting
    (``claimed`` stands for the target's), the canary audit at ``delta``, and a flag
    beside every epsilon lower bound of ``rows`` where the target has an epsilon. Empty
    for a variant that trains without DP, in a run without canaries or a claim."""
    spent = {role: read_accounting(paths.privacy(variant, role)) for role in roles}
    if claimed is not None:
        spent["target"] = claimed.record()
    model_rows: list[ModelRow] = []
    for role in roles:
        if spent[role] is not None:
            model_rows += accounting_rows(variant, role, spent[role])
    target = spent.get("target")
    eps = None if target is None else float(target["dp_epsilon"])
    canary_out = paths.outputs(variant, "target", CANARY_SET)
    if paths.canaries.is_file() and canary_out.is_file():
        out = Outputs.load(canary_out)
        score = -loss(out.logits, out.labels)  # the wrong label's log-probability
        audit = canary_audit(score, load_npz(paths.canaries)["included"], delta=delta)
        model_rows += canary_rows(variant, audit, eps)
    flags = [] if eps is None else dp_violation_rows(rows, variant, eps)
    return flags, model_rows
