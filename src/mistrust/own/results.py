"""From an audit's cached outputs to what the audit core and the report read.

The cached files (:mod:`mistrust.own.outputs`) are read back as the index arrays and
:class:`~mistrust.pipeline.evaluate.RoleOutputs` a run would have; model metrics leave out those
that need labels when the members or non-members have none; variants that fit on labels
are refused early when labels are missing; the galleries draw each set's top-scored
non-members. docs/ARCHITECTURE.md places this among the stages of ``mistrust audit``.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from mistrust.calibration.variants import BASE
from mistrust.config.own import AuditConfig
from mistrust.core.audit import labels_or_predicted
from mistrust.core.outputs import Outputs
from mistrust.errors import InputError
from mistrust.io import load_npz
from mistrust.pipeline.evaluate import RoleOutputs, model_metrics
from mistrust.runtime.paths import RunPaths

__all__ = ["check_calibration_labels", "galleries", "model_rows", "read_role", "role_splits"]

#: model metrics that need true labels (left out for unlabelled members / non-members)
_LABELLED_METRICS = ("accuracy", "ece", "overconfidence_error", "nll")


def role_splits(paths: RunPaths, role: str) -> dict[str, np.ndarray]:
    """Index arrays of the cached files, as :func:`mistrust.data.splits.make_splits` names
    them: train.npz = the members, test.npz = the non-members then the calibration images."""
    n_members = len(load_npz(paths.outputs(BASE, role, "train"))["labels"])
    n_test = len(load_npz(paths.outputs(BASE, role, "test"))["labels"])
    n_non = json.loads(paths.parts(role).read_text())["nonmembers"]
    return {
        f"{role}_train": np.arange(n_members),
        f"{role}_members": np.arange(n_members),
        f"{role}_test": np.arange(n_test),
        f"{role}_nonmembers": np.arange(n_non),
        f"{role}_calibration": np.arange(n_non, n_test),
    }


def read_role(
    paths: RunPaths, variant: str, role: str, splits: dict[str, np.ndarray], set_names: list[str]
) -> RoleOutputs:
    """``role``'s outputs of ``variant``; the target's also on each of ``set_names``."""
    train = Outputs.load(paths.outputs(variant, role, "train"))
    test = Outputs.load(paths.outputs(variant, role, "test"))
    nonmembers = test.subset(splits[f"{role}_nonmembers"])
    sets = {"original": nonmembers}
    if role == "target":
        sets.update({n: Outputs.load(paths.outputs(variant, role, n)) for n in set_names})
    return RoleOutputs(train, nonmembers, train, test, sets)


def model_rows(variant: str, role: str, outs: RoleOutputs) -> list[tuple]:
    """:func:`mistrust.pipeline.evaluate.model_metrics`; without labels only those that need none."""
    labelled = (outs.train.labels >= 0).all() and (outs.test.labels >= 0).all()
    if labelled:
        return model_metrics(variant, role, outs)

    def guess(o: Outputs) -> Outputs:
        return Outputs(o.logits, labels_or_predicted(o.logits, o.labels), o.features)

    fake = RoleOutputs(
        guess(outs.members), guess(outs.nonmembers), guess(outs.train), guess(outs.test), outs.sets
    )
    return [r for r in model_metrics(variant, role, fake) if r[3] not in _LABELLED_METRICS]


def check_calibration_labels(paths: RunPaths, roles: tuple[str, ...], name: str) -> None:
    """Refuse a post-hoc variant ``name`` that fits on labels a role's data lack."""
    if name == "temperature":
        return
    for role in roles:
        split = "test" if name == "temperature-fit" else "train"
        labels = load_npz(paths.outputs(BASE, role, split))["labels"]
        if (labels < 0).any():
            raise InputError(
                f"variants.names: {name} fits on labelled data, but {role}'s "
                f"{'non-members' if name == 'temperature-fit' else 'members'} have no labels; "
                "give labels or leave the variant out"
            )


def galleries(
    cfg: AuditConfig,
    paths: RunPaths,
    displays: dict[str, torch.Tensor],
    scores: dict[str, dict[str, np.ndarray]],
) -> None:
    """Top-scored non-members of each set, for the first variant and attack."""
    from mistrust.present.report.gallery import nonmember_gallery, save_galleries

    if not scores:
        return
    variant = cfg.variants.names[0]
    attack = next(iter(scores))
    save_galleries(
        [
            nonmember_gallery(
                display,
                scores[attack][name],
                load_npz(paths.scores(variant, attack, name))["max_score"],
                paths.gallery(name),
                k=cfg.eval.gallery_size,
                title=f"{name}: highest {attack} scores among non-members ({variant})",
            )
            for name, display in displays.items()
            if name in scores[attack]
        ]
    )
