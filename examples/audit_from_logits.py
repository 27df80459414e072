"""Audit a model trained elsewhere from its saved outputs: no model, no data loader.

Each ``.npz`` file holds one model's outputs on its attack set:

* ``logits`` ``(N, C)`` float (or ``probs`` ``(N, C)``: converted with ``probs_to_logits``),
* ``labels`` ``(N,)`` int true classes,
* ``is_member`` ``(N,)`` bool, True for samples from that model's training set.

Usage::

    python examples/audit_from_logits.py                       # synthetic demo
    python examples/audit_from_logits.py shadow.npz target.npz
    python examples/audit_from_logits.py shadow.npz target.npz --ood ood.npz

Every attack is fitted on the SHADOW outputs only and applied unchanged to the
target. ``--ood`` adds an evaluation set whose non-members replace the
target's (the target's members are kept), the paper's OOD false-positive test.
Without files, a synthetic shadow/target pair is generated, and the OOD set is
the target's non-member logits multiplied by 20, a stand-in for the paper's
"scaled inputs" that ReLU networks answer with extreme confidence.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mistrust.attacks import SCORE_BASED_ATTACKS, create_attack, signals
from mistrust.metrics import attack_metrics

Outputs = tuple[np.ndarray, np.ndarray, np.ndarray]
COLUMNS = ("auroc", "precision", "tpr", "fpr", "fpr_ci_high", "tpr_at_1fpr", "mmps_fp")


def load(path: Path) -> Outputs:
    with np.load(path) as f:
        logits = f["logits"] if "logits" in f else signals.probs_to_logits(f["probs"])
        return logits, f["labels"], f["is_member"].astype(bool)


def synthetic(n: int, n_classes: int, seed: int) -> Outputs:
    """A model that is more confident on its training members than on unseen data."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    is_member = np.arange(n) < n // 2
    logits = rng.normal(scale=1.5, size=(n, n_classes))
    logits[np.arange(n), labels] += np.where(is_member, 5.0, 3.0)
    return logits, labels, is_member


def with_nonmembers(target: Outputs, other: Outputs) -> Outputs:
    """The target's members plus the non-members of ``other``."""
    keep, drop = target[2], ~other[2]
    return tuple(np.concatenate([t[keep], o[drop]]) for t, o in zip(target, other, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shadow", nargs="?", type=Path, help="shadow model outputs (.npz)")
    ap.add_argument("target", nargs="?", type=Path, help="target model outputs (.npz)")
    ap.add_argument("--ood", type=Path, help="extra non-member set of the target model (.npz)")
    ap.add_argument("--class-thresholds", action="store_true", help="per-class thresholds")
    args = ap.parse_args()

    if args.shadow and args.target:
        shadow, target = load(args.shadow), load(args.target)
        sets = {"original": target}
        if args.ood:
            sets["ood"] = with_nonmembers(target, load(args.ood))
    else:
        shadow, target = synthetic(5_000, 10, seed=0), synthetic(5_000, 10, seed=1)
        scaled = (target[0] * 20.0, target[1], target[2])
        sets = {"original": target, "scaled x20": with_nonmembers(target, scaled)}

    print(f"{'attack':<17} {'set':<11} " + " ".join(f"{c:>11}" for c in COLUMNS))
    for name in SCORE_BASED_ATTACKS:
        attack = create_attack(name, class_thresholds=args.class_thresholds)
        attack.fit(*shadow)
        for set_name, (logits, labels, is_member) in sets.items():
            score = attack.score(logits, labels)
            metrics = attack_metrics(
                score, is_member, attack.decide(score), max_score=signals.max_score(logits)
            )
            row = " ".join(f"{metrics[c]:>11.4f}" for c in COLUMNS)
            print(f"{name:<17} {set_name:<11} {row}")


if __name__ == "__main__":
    main()
