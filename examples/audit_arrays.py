"""Audit arrays of logits with ``mistrust.audit``: no model, no files, one call.

Usage::

    python examples/audit_arrays.py            # prints the FPR / TPR table
    python examples/audit_arrays.py --report out/   # also writes out/report.html

The arrays here are synthetic: a model more confident on its training members
than on unseen data, for both the shadow and the target model. The OOD set is
the target's non-member logits multiplied by 20, a stand-in for the paper's
"scaled inputs", which ReLU networks answer with extreme confidence. Replace
them with your own models' logits: ``(N, C)`` logits, ``(N,)`` labels,
``(N,)`` bool membership.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import mistrust


def synthetic(n: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits ``(n, C)``, labels ``(n,)`` and membership ``(n,)``: members get a larger margin."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    is_member = np.arange(n) < n // 2
    logits = rng.normal(scale=1.5, size=(n, n_classes))
    logits[np.arange(n), labels] += np.where(is_member, 5.0, 3.0)
    return logits, labels, is_member


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", type=Path, help="write the HTML report into this folder")
    args = ap.parse_args()

    shadow = synthetic(4_000, 10, seed=0)
    target = synthetic(4_000, 10, seed=1)
    t_logits, _, t_member = target

    result = mistrust.audit(
        shadow=shadow,
        target=target,
        eval_sets={"scaled-x20": 20.0 * t_logits[~t_member]},  # logits only: no class applies
        attacks=["threshold", "entropy", "loss"],
    )

    print(f"{'attack':<10} {'TPR':>6} {'FPR original':>13} {'FPR scaled-x20':>15}")
    for attack in ("threshold", "entropy", "loss"):
        tpr = result.value(attack, "original", "tpr")
        fpr = result.value(attack, "original", "fpr")
        fpr_ood = result.value(attack, "scaled-x20", "fpr")
        print(f"{attack:<10} {tpr:>6.3f} {fpr:>13.3f} {fpr_ood:>15.3f}")
    if args.report:
        print(f"report: {result.report(args.report)}")


if __name__ == "__main__":
    main()
