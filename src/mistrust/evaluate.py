"""Attacks and metrics from cached outputs only (no model, no data loader)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mistrust.attacks import create_attack
from mistrust.attacks.signals import at_precision, max_score
from mistrust.config import Config
from mistrust.io import atomic_savez
from mistrust.metrics import attack_metrics, emd
from mistrust.metrics.calibration import accuracy, ece, mmps, nll, overconfidence_error
from mistrust.outputs import Outputs

log = logging.getLogger(__name__)


@dataclass
class RoleOutputs:
    """One role's outputs for one variant: attack subsets plus every evaluation set."""

    members: Outputs
    nonmembers: Outputs
    train: Outputs
    test: Outputs
    sets: dict[str, Outputs]  # evaluation sets ("original" included) for the target


def attack_labels(out: Outputs) -> np.ndarray:
    """True labels where known; the predicted class where no class applies (OOD)."""
    labels = out.labels.copy()
    unknown = labels < 0
    labels[unknown] = out.logits[unknown].argmax(1)
    return labels


def _pair(members: Outputs, nonmembers: Outputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    logits = np.concatenate([members.logits, nonmembers.logits])
    labels = np.concatenate([attack_labels(members), attack_labels(nonmembers)])
    is_member = np.concatenate([np.ones(len(members), bool), np.zeros(len(nonmembers), bool)])
    return logits, labels, is_member


def evaluate_attacks(
    cfg: Config, variant: str, target: RoleOutputs, shadow: RoleOutputs, scores_dir: Path
) -> tuple[list[tuple], dict[str, dict[str, np.ndarray]]]:
    """Fit every attack on the shadow outputs, apply to the target paired with each set.

    Returns tidy rows ``(variant, attack, dataset, metric, value)`` and the
    per-sample target scores ``{attack: {dataset: score}}``.
    """
    rows: list[tuple] = []
    all_scores: dict[str, dict[str, np.ndarray]] = {}
    sh_logits, sh_labels, sh_member = _pair(shadow.members, shadow.nonmembers)
    a = cfg.attacks
    for name in a.names:
        attack = create_attack(
            name,
            top_k=a.top_k,
            class_thresholds=a.class_thresholds,
            seed=cfg.seed,
            strict=a.strict_threshold,
            precision=a.score_precision,
            output=a.salem_score,
        )
        attack.fit(sh_logits, sh_labels, sh_member)
        all_scores[name] = {}
        for ds, nonmembers in target.sets.items():
            logits, labels, is_member = _pair(target.members, nonmembers)
            score = attack.score(logits, labels)
            predicted = attack.decide(score)
            top = at_precision(max_score(logits), a.score_precision)
            atomic_savez(
                scores_dir / name / f"{ds}.npz",
                score=score,
                is_member=is_member,
                predicted=predicted,
                max_score=top,
            )
            metrics = attack_metrics(score, is_member, predicted, max_score=top, aupr=a.aupr)
            rows += [(variant, name, ds, k, float(v)) for k, v in metrics.items()]
            all_scores[name][ds] = score
        threshold = getattr(attack, "operating_score_", None)
        if threshold is not None:
            rows.append((variant, name, "shadow", "operating_score", float(threshold)))
    return rows, all_scores


def model_metrics(variant: str, role: str, outs: RoleOutputs) -> list[tuple]:
    """Rows ``(variant, role, dataset, metric, value)`` for one model."""
    rows = [
        (variant, role, "train", "accuracy", accuracy(outs.train.logits, outs.train.labels)),
        (variant, role, "test", "accuracy", accuracy(outs.test.logits, outs.test.labels)),
        (variant, role, "test", "ece", ece(outs.test.logits, outs.test.labels, n_bins=15)),
        (
            variant,
            role,
            "test",
            "overconfidence_error",
            overconfidence_error(outs.test.logits, outs.test.labels, n_bins=15),
        ),
        (variant, role, "test", "nll", nll(outs.test.logits, outs.test.labels)),
        (variant, role, "members", "mmps", mmps(outs.members.logits)),
        (variant, role, "nonmembers", "mmps", mmps(outs.nonmembers.logits)),
    ]
    member_top = max_score(outs.members.logits)
    for ds, out in outs.sets.items():
        if ds == "original":
            continue
        rows.append((variant, role, ds, "mmps", mmps(out.logits)))
    for ds, out in outs.sets.items():
        rows.append((variant, role, ds, "emd_max_score", emd(member_top, max_score(out.logits))))
    return [(v, r, d, m, float(x)) for v, r, d, m, x in rows]
