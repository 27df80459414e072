"""The reference-attack stage: LiRA and RMIA under the same OOD audit as the score-based attacks.

Each step is resumable:

1. **Population** (``RUN/reference_keep.npz``): who each reference model trains on,
   :func:`mistrust.data.population.make_population` (audited samples IN for exactly
   half of the models; ``population_size`` samples per model, default
   ``data.train_size``; ``z_size`` RMIA population samples from the shadow pool).
2. **Reference models and their outputs**: :mod:`mistrust.study.reference_models` (one
   executor task per model, local or Ray; outputs cached per model).
3. **Signals, scores, rows, checks and verdicts**: :mod:`mistrust.pipeline.reference`,
   which ``mistrust audit`` runs too on reference outputs read from files. For each
   family of the configured attacks, each reference model's and the target's signal
   (``ReferenceAttack.signal``; LiRA: logit-scaled confidence per query; RMIA:
   probability of the label) on the population and on every OOD set; the attack objects
   (:mod:`mistrust.attacks.reference`, built by name from their registry), fitted on the
   reference population (their leave-one-out operating point), score the target's members
   paired with each set: ``RUN/scores/base/<attack>/<dataset>.npz`` and tidy rows with the
   metrics of :func:`mistrust.metrics.attack_metrics`.

Perturbed copies: a set whose rows are copies of the audited non-members (``scaled``,
``permuted``, ``unnormalized``: row ``j`` is non-member ``j`` perturbed; the mapping is
:attr:`mistrust.data.evalsets.EvalInputs.source`, never guessed from a set's name) keeps
that non-member's IN / OUT models: the offline attacks use only the reference models that
did NOT train on the source image, the online attacks its IN and OUT models, as on
``original`` (``offline_on_ood = 0.0``). Half of the reference models trained on the
source image and are more confident on its copy, so counting them as OUT would inflate
the OUT statistics.

Other OOD sets: no reference model trained on their samples, so there are no IN
statistics. The online attacks therefore score the whole pair (members and OOD
non-members alike) with their offline counterpart and its operating point
(:func:`mistrust.pipeline.reference.scored_as`); those rows carry
``offline_on_ood = 1.0``, and their numbers equal the offline attack's. The label of a
sample without one (OOD sets other than the perturbed originals) is the target's
predicted class, for the target and the reference models alike, as for the score-based
attacks (:func:`mistrust.pipeline.evaluate.attack_labels`). That choice favours "member": the
target is confident in its own argmax by construction, the reference models need not be.

Queries: with ``reference.augment_queries`` (default: exactly when the models trained
with horizontal flips, ``data.augment``), every model is also queried on the flipped
image; a family that takes every query (``ReferenceAttack.queries``: LiRA) gets them all
(LiRA fits its Gaussians per query and averages the per-query scores), the others the
unflipped query only (RMIA) (:func:`query_flips`).

Operating point (row ``shadow / operating_score``): there is no shadow model, but
the reference models are shadows whose membership is known; see
:meth:`mistrust.attacks.reference.base.ReferenceAttack.fit`.

One attack per set pair: every statistic an attack pools over examples (LiRA's pooled
variances, its fallback means) is estimated once, at ``fit``, on the reference
population, never on the rows of a set. So the members' scores are the same whichever
set they are paired with (for an online attack on a set scored offline: the offline
attack's member scores), a set's rows do not depend on the other sets, and the FPR on
a set is measured with the same attack as the TPR.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from mistrust.calibration.variants import BASE
from mistrust.config import Config, check_reference_config
from mistrust.core.audit import MetricRow
from mistrust.core.outputs import Outputs
from mistrust.data.bundle import Data
from mistrust.data.evalsets import EvalInputs
from mistrust.data.population import make_population, population_images
from mistrust.data.splits import positions
from mistrust.pipeline.reference import (
    Family,
    ReferenceOutputs,
    read_signals,
    reference_rows,
    scored_as,
)
from mistrust.runtime.paths import RunPaths
from mistrust.study.reference_models import (
    ReferenceJob,
    target_extra_outputs,
    train_reference_models,
)
from mistrust.training.trainer import AUGMENT_FLIPS

__all__ = ["query_flips", "reference_attack_rows", "reference_outputs", "scored_as"]


def _load_signals(
    paths: RunPaths,
    n_models: int,
    keys: dict[str, np.ndarray],
    flips: list[bool],
    families: dict[str, Family],
) -> dict[str, dict[str, np.ndarray]]:
    """:func:`mistrust.pipeline.reference.read_signals` on the cached outputs of the run's
    reference models."""
    return read_signals(_cached_logits(paths), n_models, keys, flips, families)


def _cached_logits(paths: RunPaths):  # noqa: ANN202
    def logits(m: int, key: str, flip: bool) -> np.ndarray:
        return Outputs.load(paths.reference_output(m, key, flip=flip)).logits

    return logits


def _source(inputs: EvalInputs) -> np.ndarray | None:
    return None if inputs.source is None else inputs.source.numpy().astype(np.int64)


def query_flips(augment_queries: bool | None, train_augment: str) -> bool:
    """Whether the reference attacks also query horizontally flipped images:
    ``augment_queries`` when set, else exactly when the models trained with flips."""
    if augment_queries is not None:
        return augment_queries
    return AUGMENT_FLIPS[train_augment]


def reference_outputs(
    cfg: Config,
    data: Data,
    sets: dict[str, EvalInputs],
    paths: RunPaths,
    *,
    device: torch.device | str,
    progress: bool,
) -> ReferenceOutputs:
    """Draw the population, train (or reuse) the reference models and gather the outputs
    that :func:`mistrust.pipeline.reference.reference_rows` scores.

    Args:
        cfg: the run's config (``reference`` section; ``eval.sets`` names the sets scored).
        data: :class:`mistrust.data.bundle.Data` (pools, preprocess, splits).
        sets: evaluation inputs by name (every OOD name of ``eval.sets``; ``original``
            is taken from the test pool).
        paths: the run directory; the base target model must exist at
            ``models/base/target.pt`` and its outputs under ``outputs/base/target/``
            (``train.npz``, ``test.npz``, ``<set>.npz``).
        device: where models train and run.
        progress: progress bars.
    """
    from mistrust.pipeline.evaluate import attack_labels

    r = cfg.reference
    device = torch.device(device)
    ood = [n for n in cfg.eval.sets if n != "original"]
    missing = [n for n in ood if n not in sets]
    if missing:
        raise ValueError(f"evaluation sets {missing} are in eval.sets but were not passed")
    pop = make_population(
        data.splits,
        n_models=r.n_models,
        z_size=r.z_size,
        seed=cfg.seed,
        population_size=r.population_size or cfg.data.train_size,
    )
    pop.save(paths.reference_keep)
    images, labels = population_images(data, pop)
    flip = query_flips(r.augment_queries, cfg.data.augment)
    job = ReferenceJob(
        cfg.data,
        cfg.model,
        dataclasses.replace(cfg.train, epochs=r.epochs or cfg.train.epochs),
        cfg.seed,
        paths,
        data.preprocess,
        data.num_classes,
        images,
        labels,
        {n: (sets[n].x, sets[n].labels) for n in ood},
        flip,
        str(device),
        progress and cfg.executor == "local",
    )
    train_reference_models(
        job, pop, executor=cfg.executor, address=cfg.ray_address, progress=progress
    )

    def target(name: str) -> Outputs:
        return Outputs.load(paths.outputs(BASE, "target", name))

    train, test = target("train"), target("test")
    sp = data.splits
    members = train.subset(positions(sp["target_train"], sp["target_members"]))
    nonmembers = test.subset(positions(sp["target_test"], sp["target_nonmembers"]))
    target_sets = {n: target(n) for n in ood}
    extra = target_extra_outputs(job, pop)
    logits = {
        "audited": np.concatenate([members.logits, nonmembers.logits]),
        "z": extra["z"].logits,
        **{n: target_sets[n].logits for n in ood},
    }
    if flip:
        logits.update({k: extra[k].logits for k in ["audited-flip", *(f"{n}-flip" for n in ood)]})
    return ReferenceOutputs(
        pop=pop,
        labels=labels.numpy(),
        ref_logits=_cached_logits(paths),
        n_models=r.n_models,
        target=logits,
        set_labels={n: attack_labels(target_sets[n]) for n in ood},
        sources={n: _source(sets[n]) for n in ood},
        flip=flip,
    )


def reference_attack_rows(
    cfg: Config,
    data: Data,
    sets: dict[str, EvalInputs],
    paths: RunPaths,
    *,
    device: torch.device | str,
    progress: bool,
) -> list[MetricRow]:
    """Train (or reuse) the reference models and run ``cfg.reference.attacks`` on every set
    (arguments: :func:`reference_outputs`).

    Returns:
        tidy :class:`~mistrust.core.audit.MetricRow` ``("base", attack, dataset, metric,
        value)``: the :data:`mistrust.metrics.METRIC_KEYS` per attack and set,
        ``offline_on_ood`` for the online attacks, and ``("base", attack, "shadow",
        "operating_score", t)``.
        Writes ``scores/base/<attack>/<set>.npz`` (score, is_member, predicted, max_score).
        The checks and verdicts are :func:`mistrust.pipeline.reference.add_reference_rows`'.
    """
    check_reference_config(cfg)
    if not cfg.reference.attacks:
        return []
    outs = reference_outputs(cfg, data, sets, paths, device=device, progress=progress)
    return reference_rows(cfg.reference, outs, list(cfg.eval.sets), paths, aupr=cfg.attacks.aupr)
