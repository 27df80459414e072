"""mistrust: audit score-based membership inference attacks and how far to trust them.

Audit arrays of logits in a few lines (attacks are fitted on the shadow model's
outputs, then applied unchanged to the target's members paired with each set of
non-members; every score is higher for "more likely member")::

    import mistrust

    result = mistrust.audit(
        shadow=(shadow_logits, shadow_labels, shadow_is_member),  # (N, C), (N,), (N,) bool
        target=(target_logits, target_labels, target_is_member),
        eval_sets={"scaled": ood_logits},  # (M, C) non-members the target never saw
    )
    result.value("threshold", "scaled", "fpr")  # false-positive rate on the OOD set
    result.to_frame()  # tidy table: variant, attack, dataset, metric, value
    result.report("audit/")  # the HTML report of `mistrust run`

Full runs (train target and shadow models, calibrate, audit, report): ``mistrust run``.
A model trained elsewhere, or its saved outputs, into a run directory with the same
report: ``mistrust.run_audit("audit.yaml", "runs/mine")`` (``mistrust audit``).
The layers of the package: docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mistrust._version import __version__

if TYPE_CHECKING:
    from mistrust.api import AuditResult, MetricRow, ScoreSet, audit
    from mistrust.attacks import SCORE_BASED_ATTACKS, attack_names, create_attack
    from mistrust.own.run import run_audit

__all__ = [
    "SCORE_BASED_ATTACKS",
    "AuditResult",
    "MetricRow",
    "ScoreSet",
    "__version__",
    "attack_names",
    "audit",
    "create_attack",
    "run_audit",
]

# imported on first use, so that `import mistrust.cli` (and `mistrust --help`) stays fast
_LAZY = {
    "SCORE_BASED_ATTACKS": "mistrust.attacks",
    "attack_names": "mistrust.attacks",
    "create_attack": "mistrust.attacks",
    "AuditResult": "mistrust.api",
    "MetricRow": "mistrust.api",
    "ScoreSet": "mistrust.api",
    "audit": "mistrust.api",
    "run_audit": "mistrust.own.run",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'mistrust' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
