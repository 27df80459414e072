"""One variant's cached outputs read back per role, scored and measured.

The same for ``mistrust run`` and ``mistrust audit``: both cache a role's outputs as
``outputs/<variant>/<role>/train.npz`` and ``test.npz`` plus the target's evaluation
sets, and name the rows of each part (members, non-members, calibration) with index
arrays as :func:`mistrust.data.splits.make_splits` does (an audit's are ranges of its
files). Nothing here runs a model.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mistrust.config import AttackConfig
from mistrust.core.audit import labels_or_predicted
from mistrust.core.outputs import Outputs
from mistrust.data.splits import positions
from mistrust.pipeline.evaluate import RoleOutputs, evaluate_attacks, model_metrics
from mistrust.pipeline.privacy import Guarantee, privacy_rows
from mistrust.rows import MetricRow, ModelRow
from mistrust.runtime.paths import RunPaths

log = logging.getLogger(__name__)

__all__ = ["VariantScores", "model_rows", "role_outputs", "score_variant"]

#: model metrics that need true labels (left out for unlabelled members / non-members)
_LABELLED_METRICS = ("accuracy", "ece", "overconfidence_error", "nll")


def role_outputs(
    paths: RunPaths,
    variant: str,
    role: str,
    splits: Mapping[str, np.ndarray],
    set_names: Sequence[str],
) -> RoleOutputs:
    """``role``'s cached outputs of ``variant``: its splits, attack members and non-members,
    and (the target's) evaluation sets ``set_names``, ``original`` being its non-members."""
    train = Outputs.load(paths.outputs(variant, role, "train"))
    test = Outputs.load(paths.outputs(variant, role, "test"))
    members = train.subset(positions(splits[f"{role}_train"], splits[f"{role}_members"]))
    nonmembers = test.subset(positions(splits[f"{role}_test"], splits[f"{role}_nonmembers"]))
    sets = {}
    if role == "target":
        for name in set_names:
            sets[name] = (
                nonmembers
                if name == "original"
                else Outputs.load(paths.outputs(variant, role, name))
            )
    return RoleOutputs(members, nonmembers, train, test, sets)


def model_rows(variant: str, role: str, outs: RoleOutputs) -> list[ModelRow]:
    """:func:`mistrust.pipeline.evaluate.model_metrics`; where the members or non-members
    have no labels (an audit's unlabelled images), only the metrics that need none."""
    labelled = (outs.train.labels >= 0).all() and (outs.test.labels >= 0).all()
    if labelled:
        return model_metrics(variant, role, outs)

    def guess(o: Outputs) -> Outputs:
        return Outputs(o.logits, labels_or_predicted(o.logits, o.labels), o.features)

    fake = RoleOutputs(
        guess(outs.members), guess(outs.nonmembers), guess(outs.train), guess(outs.test), outs.sets
    )
    return [r for r in model_metrics(variant, role, fake) if r[3] not in _LABELLED_METRICS]


@dataclass
class VariantScores:
    """One variant's attack rows, the target's per-sample scores ``{attack: {set: score}}``
    and its models' rows."""

    rows: list[MetricRow]
    scores: dict[str, dict[str, np.ndarray]]
    model_rows: list[ModelRow]


def score_variant(
    acfg: AttackConfig,
    variant: str,
    paths: RunPaths,
    splits: Mapping[str, np.ndarray],
    roles: Sequence[str],
    set_names: Sequence[str],
    *,
    seed: int,
    baseline: Mapping[str, np.ndarray] | None,
    iid_sets: Collection[str],
    dp_delta: float,
    claimed: Guarantee | None = None,
) -> VariantScores:
    """Attacks (fitted on the shadow, if ``roles`` has one) and model metrics of
    ``variant`` from its cached outputs; ``scores/<variant>/`` is written on the way.
    ``acfg``: the ``attacks`` section; the rest as
    :func:`mistrust.pipeline.evaluate.evaluate_attacks` takes it; ``dp_delta`` and
    ``claimed``: as :func:`mistrust.pipeline.privacy.privacy_rows` takes them (its rows
    follow the attacks' and the models')."""
    log.debug("attacks and metrics: %s", variant)
    per_role = {role: role_outputs(paths, variant, role, splits, set_names) for role in roles}
    rows, scores = evaluate_attacks(
        acfg,
        variant,
        per_role["target"],
        per_role.get("shadow"),
        paths.variant_scores(variant),
        seed=seed,
        baseline=baseline,
        iid_sets=iid_sets,
    )
    measured = [r for role in roles for r in model_rows(variant, role, per_role[role])]
    flags, private = privacy_rows(paths, variant, roles, rows, delta=dp_delta, claimed=claimed)
    return VariantScores(rows + flags, scores, measured + private)
