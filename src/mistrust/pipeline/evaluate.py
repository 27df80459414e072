"""Attacks and metrics of one variant from cached outputs only (no model, no data loader)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mistrust.attacks.signals import max_score
from mistrust.config import AttackConfig
from mistrust.core.audit import audit, labels_or_predicted
from mistrust.core.outputs import Outputs
from mistrust.metrics import emd
from mistrust.metrics.reliability import accuracy, ece, mmps, nll, overconfidence_error
from mistrust.rows import MetricRow, ModelRow

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
    return labels_or_predicted(out.logits, out.labels)


def _pair(members: Outputs, nonmembers: Outputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    logits = np.concatenate([members.logits, nonmembers.logits])
    labels = np.concatenate([attack_labels(members), attack_labels(nonmembers)])
    is_member = np.concatenate([np.ones(len(members), bool), np.zeros(len(nonmembers), bool)])
    return logits, labels, is_member


def evaluate_attacks(
    acfg: AttackConfig,
    variant: str,
    target: RoleOutputs,
    shadow: RoleOutputs | None,
    scores_dir: Path,
    *,
    seed: int,
    baseline: Mapping[str, np.ndarray] | None = None,
    iid_sets: Collection[str] = (),
) -> tuple[list[MetricRow], dict[str, dict[str, np.ndarray]]]:
    """Fit every attack on the shadow outputs, apply to the target paired with each set
    (:func:`mistrust.core.audit.audit`), and write ``scores_dir/<attack>/<set>.npz``.
    ``acfg``: the ``attacks`` settings; ``seed`` seeds the attacks that train a model.
    ``shadow=None``: no shadow model (threshold-free metrics only, see ``audit``).

    ``baseline``: the blind baseline's scores per set (:func:`mistrust.pipeline.blind.run_baseline`)
    for the trust checks; None: the verdicts say it was not run. ``iid_sets``: the sets
    split i.i.d. from the members by construction (:func:`mistrust.core.audit.audit`).

    Returns tidy rows ``(variant, attack, dataset, metric, value)`` and the
    per-sample target scores ``{attack: {dataset: score}}``.
    """
    members = target.members
    result = audit(
        None if shadow is None else _pair(shadow.members, shadow.nonmembers),
        (members.logits, members.labels, np.ones(len(members), bool)),
        eval_sets={ds: (out.logits, out.labels) for ds, out in target.sets.items()},
        original=None,  # "original" is one of target.sets, in the config's order
        attacks=acfg.names,
        top_k=acfg.top_k,
        class_thresholds=acfg.class_thresholds,
        seed=seed,
        variant=variant,
        strict_threshold=acfg.strict_threshold,
        score_precision=acfg.score_precision,
        salem_score=acfg.salem_score,
        salem_rows=acfg.salem_rows,
        aupr=acfg.aupr,
        baseline_scores=baseline,
        iid_sets=iid_sets,
    )
    result.save_scores(scores_dir)
    scores = {a: {ds: s.score for ds, s in per_set.items()} for a, per_set in result.scores.items()}
    return list(result.rows), scores


def model_metrics(variant: str, role: str, outs: RoleOutputs) -> list[ModelRow]:
    """The quality rows of one model (``model_metrics.csv``)."""
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
    return [ModelRow(v, r, d, m, float(x)) for v, r, d, m, x in rows]
