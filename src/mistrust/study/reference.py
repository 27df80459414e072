"""The reference-attack stage: LiRA and RMIA under the same OOD audit as the score-based attacks.

Each step is resumable:

1. **Population** (``RUN/reference_keep.npz``): who each reference model trains on,
   :func:`mistrust.data.population.make_population` (audited samples IN for exactly
   half of the models; ``population_size`` samples per model, default
   ``data.train_size``; ``z_size`` RMIA population samples from the shadow pool).
2. **Reference models and their outputs**: :mod:`mistrust.study.reference_models` (one
   executor task per model, local or Ray; outputs cached per model).
3. **Signals**: for each family of the configured attacks, each reference model's and the
   target's signal (``ReferenceAttack.signal``; LiRA: logit-scaled confidence per query;
   RMIA: probability of the label) on the population and on every OOD set
   (:func:`_load_signals`).
4. **Scores and rows**: the attack objects (:mod:`mistrust.attacks.reference`, built by
   name from their registry),
   fitted on the reference population (their leave-one-out operating point), score the
   target's members paired with each set: ``RUN/scores/base/<attack>/<dataset>.npz`` and
   tidy rows with the metrics of :func:`mistrust.metrics.attack_metrics`.

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
(:func:`scored_as`); those rows carry ``offline_on_ood = 1.0``, and their numbers equal
the offline attack's. The label
of a sample without one (OOD sets other than the perturbed originals) is the target's
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mistrust.attacks import signals
from mistrust.attacks.reference import (
    ReferenceAttack,
    create_reference_attack,
    offline_counterpart,
    reference_attack_class,
)
from mistrust.attacks.reference.base import split_name
from mistrust.calibration.variants import BASE
from mistrust.config import Config, ReferenceConfig, check_reference_config
from mistrust.core.audit import MetricRow
from mistrust.core.outputs import Outputs
from mistrust.data.bundle import Data
from mistrust.data.evalsets import EvalInputs
from mistrust.data.population import Population, make_population, population_images
from mistrust.data.splits import positions
from mistrust.io import atomic_savez
from mistrust.metrics import attack_metrics
from mistrust.runtime.paths import RunPaths
from mistrust.study.reference_models import (
    ReferenceJob,
    target_extra_outputs,
    train_reference_models,
)
from mistrust.training.trainer import AUGMENT_FLIPS

__all__ = ["query_flips", "reference_attack_rows", "scored_as"]


Family = type[ReferenceAttack]


@dataclass
class _Signals:
    """Per family, its signal per dataset key (``population`` or an OOD set) of the reference
    models ``(n, M, Q)`` and of the target ``(n, Q)`` (a family that takes the unflipped
    query alone: ``(n, M)`` and ``(n,)``; ``ReferenceAttack.queries``). The target's keys:
    ``audited``, the OOD sets and, for a family that ``needs_z``, ``z``."""

    ref: dict[str, dict[str, np.ndarray]]
    target: dict[str, dict[str, np.ndarray]]


def _families(names: list[str]) -> dict[str, Family]:
    """The families of the attacks ``names``, by family name, in the order first named."""
    classes = [reference_attack_class(n) for n in names]
    return {cls.family: cls for cls in classes}


def _load_signals(
    paths: RunPaths,
    n_models: int,
    keys: dict[str, np.ndarray],
    flips: list[bool],
    families: dict[str, Family],
) -> dict[str, dict[str, np.ndarray]]:
    """Per family, the reference models' signal per key: ``(n, M, Q)`` for a family that
    takes every query, ``(n, M)`` for one that takes the first; ``keys``: key -> labels;
    ``flips``: per query, whether it is the flipped one (``[False]`` or ``[False, True]``)."""
    q_of = {f: len(flips) if cls.queries else 1 for f, cls in families.items()}
    ref = {f: {k: np.empty((len(y), n_models, q_of[f])) for k, y in keys.items()} for f in families}
    for m in range(n_models):
        for k, labels in keys.items():
            for q, flip in enumerate(flips):
                out = Outputs.load(paths.reference_output(m, k, flip=flip))
                for f, cls in families.items():
                    if q < q_of[f]:
                        ref[f][k][:, m, q] = cls.signal(out.logits, labels)
    # one query: (n, M), the same C-ordered values as (n, M, 1)
    return {
        f: {k: v if families[f].queries else v[:, :, 0] for k, v in per_key.items()}
        for f, per_key in ref.items()
    }


def _attack_set(
    attack: ReferenceAttack,
    ds: str,
    *,
    pop: Population,
    sig: _Signals,
    source: np.ndarray | None = None,
) -> np.ndarray:
    """Scores of the target's members paired with set ``ds`` (fitted ``attack``).

    ``source``: ``(n,)`` for a set of copies of the audited non-members (module docstring):
    row i is a copy of non-member ``source[i]`` and has that non-member's IN / OUT models;
    None: every reference model is OUT for every row of the set.
    """
    nm, a = pop.n_members, pop.n_audited
    keep = pop.in_mask  # (P, M)
    t, refs = sig.target[attack.family], sig.ref[attack.family]
    ref = refs["population"]
    if ds == "original":
        t_x, ref_x, in_x = t["audited"], ref[:a], keep[:a]
    else:
        ood = refs[ds]
        t_x = np.concatenate([t["audited"][:nm], t[ds]])
        ref_x = np.concatenate([ref[:nm], ood])
        if source is None:
            ood_in = np.zeros(ood.shape[:2], bool)
        else:
            ood_in = keep[nm + source]
        in_x = np.concatenate([keep[:nm], ood_in])
    return attack.score(t_x, ref_x, in_x, target_z=t["z"] if attack.needs_z else None)


def _set_rows(
    name: str,
    ds: str,
    *,
    attack: ReferenceAttack,
    online: bool,
    pop: Population,
    sig: _Signals,
    source: np.ndarray | None,
    logits: np.ndarray,
    n_members: int,
    out: Path,
    aupr: str,
) -> list[MetricRow]:
    """Score set ``ds`` for the configured attack ``name`` with the fitted ``attack`` (its
    offline counterpart where ``name`` cannot run online), save ``out`` and return the rows.

    ``logits``: the target's ``(N, C)`` on the members then the set's non-members.
    """
    score = _attack_set(attack, ds, pop=pop, sig=sig, source=source)
    predicted = attack.decide(score)
    is_member = np.r_[np.ones(n_members, bool), np.zeros(len(logits) - n_members, bool)]
    top = signals.max_score(logits)
    atomic_savez(out, score=score, is_member=is_member, predicted=predicted, max_score=top)
    metrics = attack_metrics(score, is_member, predicted, max_score=top, aupr=aupr)
    rows = [MetricRow("base", name, ds, k, float(v)) for k, v in metrics.items()]
    if split_name(name)[1]:
        rows.append(MetricRow("base", name, ds, "offline_on_ood", 0.0 if online else 1.0))
    return rows


def scored_as(name: str, ds: str, source: np.ndarray | None) -> str:
    """The attack that scores set ``ds`` for the configured attack ``name``: ``name`` itself,
    except an online attack on an OOD set that is not a copy of audited non-members
    (``source`` None), where no reference model is IN: there its offline counterpart scores
    the whole pair, members and the set's rows alike (module docstring)."""
    if ds == "original" or source is not None:
        return name
    return offline_counterpart(name)


def _source(inputs: EvalInputs) -> np.ndarray | None:
    return None if inputs.source is None else inputs.source.numpy().astype(np.int64)


def query_flips(augment_queries: bool | None, train_augment: str) -> bool:
    """Whether the reference attacks also query horizontally flipped images:
    ``augment_queries`` when set, else exactly when the models trained with flips."""
    if augment_queries is not None:
        return augment_queries
    return AUGMENT_FLIPS[train_augment]


def _fitted(name: str, r: ReferenceConfig, pop: Population, sig: _Signals) -> ReferenceAttack:
    """The attack ``name`` fitted on the reference population (its operating point)."""
    # every option of the reference section; each family takes those it knows
    attack = create_reference_attack(
        name, fixed_variance=r.fixed_variance, rmia_a=r.rmia_a, rmia_gamma=r.rmia_gamma
    )
    return attack.fit(sig.ref[attack.family]["population"], pop.in_mask, z=pop.z)


def reference_attack_rows(
    cfg: Config,
    data: Data,
    sets: dict[str, EvalInputs],
    paths: RunPaths,
    *,
    device: torch.device | str,
    progress: bool,
) -> list[MetricRow]:
    """Train (or reuse) the reference models and run ``cfg.reference.attacks`` on every set.

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

    Returns:
        tidy :class:`~mistrust.core.audit.MetricRow` ``("base", attack, dataset, metric,
        value)``: the :data:`mistrust.metrics.METRIC_KEYS` per attack and set,
        ``offline_on_ood`` for the online attacks, and ``("base", attack, "shadow",
        "operating_score", t)``.
        Writes ``scores/base/<attack>/<set>.npz`` (score, is_member, predicted, max_score).
    """
    from mistrust.pipeline.evaluate import attack_labels

    check_reference_config(cfg)
    r = cfg.reference
    if not r.attacks:
        return []
    device = torch.device(device)
    set_names = list(cfg.eval.sets)
    ood = [n for n in set_names if n != "original"]
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
    pop_labels = labels.numpy()
    audited_logits = np.concatenate([members.logits, nonmembers.logits])
    keys = {"population": pop_labels, **{n: attack_labels(target_sets[n]) for n in ood}}
    flips = [False, True] if flip else [False]
    families = _families([offline_counterpart(n) for n in r.attacks])
    ref_sig = _load_signals(paths, r.n_models, keys, flips, families)
    target_sig: dict[str, dict[str, np.ndarray]] = {f: {} for f in families}
    for f, cls in families.items():
        if cls.needs_z:
            target_sig[f]["z"] = cls.signal(extra["z"].logits, pop_labels[pop.z])
    for key, logits in [("audited", audited_logits), *[(n, target_sets[n].logits) for n in ood]]:
        y = pop_labels[: pop.n_audited] if key == "audited" else keys[key]
        queries = [logits, *([extra[f"{key}-flip"].logits] if flip else [])]
        for f, cls in families.items():
            if cls.queries:
                target_sig[f][key] = np.stack([cls.signal(x, y) for x in queries], axis=1)
            else:
                target_sig[f][key] = cls.signal(logits, y)
    sig = _Signals(ref_sig, target_sig)

    sources = {n: _source(sets[n]) for n in ood}
    rows: list[MetricRow] = []
    fitted: dict[str, ReferenceAttack] = {}
    for name in r.attacks:
        for ds in set_names:
            run_as = scored_as(name, ds, sources.get(ds))
            online = split_name(name)[1] and run_as == name
            if run_as not in fitted:
                fitted[run_as] = _fitted(run_as, cfg.reference, pop, sig)
            nm = nonmembers if ds == "original" else target_sets[ds]
            rows += _set_rows(
                name,
                ds,
                attack=fitted[run_as],
                online=online,
                pop=pop,
                sig=sig,
                source=sources.get(ds),
                logits=np.concatenate([members.logits, nm.logits]),
                n_members=len(members),
                out=paths.scores(BASE, name, ds),
                aupr=cfg.attacks.aupr,
            )
        if name in fitted and np.isfinite(fitted[name].operating_score_):
            rows.append(
                MetricRow("base", name, "shadow", "operating_score", fitted[name].operating_score_)
            )
    return rows
