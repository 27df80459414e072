"""Every trained model of a study as one executor task: target and shadow, for each
training-time variant (``base``, ``label-smoothing``, ``weight-decay``).

A task trains its model (or reuses a finished one, or resumes from the epoch
checkpoint of an interrupted one, :func:`mistrust.study.train.train_or_load`) and
caches its outputs on its role's splits and on the evaluation sets, into
``RUN/models/<variant>/<role>.pt`` and ``RUN/outputs/<variant>/<role>/``. Tasks
share nothing but the read-only inputs, so they run in any order, on this machine
(``executor: local``, one task per core) or spread over a Ray cluster (``executor:
ray``, :func:`mistrust.runtime.executors.run_tasks`), with the same bytes either way: on a
CPU every task runs torch with one thread (:func:`mistrust.runtime.executors.training_resources`).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mistrust.calibration.variants import BASE, get_variant, sets_fitted_on
from mistrust.config import DataConfig, ModelConfig, TrainConfig
from mistrust.core.outputs import cached, compute_outputs, inference_layout
from mistrust.data.images import ImageSet, Preprocess
from mistrust.data.splits import ROLES
from mistrust.runtime.executors import run_tasks, training_resources
from mistrust.runtime.paths import RunPaths
from mistrust.training.private import DPSettings

log = logging.getLogger(__name__)

__all__ = [
    "StudyJob",
    "cache_outputs",
    "train_study_model",
    "train_study_models",
    "trained_variants",
]


@dataclass
class StudyJob:
    """What every model task needs (put once into Ray's object store): the run's ``data``
    and ``model`` sections, each trained variant's training settings, and the inputs."""

    data: DataConfig
    model: ModelConfig
    train: dict[str, TrainConfig]  # trained variant -> its training settings, in run order
    seed: int  # the target's; the shadow trains with seed + 1
    eval_batch_size: int
    paths: RunPaths  # the run directory: models/<variant>/<role>.pt, outputs/<variant>/<role>/
    preprocess: Preprocess
    num_classes: int
    splits: dict[str, ImageSet]  # "<role>_train" / "<role>_test": uint8 images of the split
    sets: dict[str, tuple[torch.Tensor, torch.Tensor]]  # evaluation set -> (x float, labels)
    device: str
    progress: bool
    #: trained variant -> its DP-SGD settings, for those that train privately
    privacy: dict[str, DPSettings] = field(default_factory=dict)
    #: the canaries put into the target's training data (docs/DP.md), None without;
    #: all of them, in and out, are the evaluation set ``canaries`` of ``sets``
    canaries: ImageSet | None = None


def trained_variants(variant_names: Sequence[str], *, reference: bool) -> list[str]:
    """Of ``variant_names`` (``variants.names``), those with their own models; ``base`` too
    when a post-hoc variant or the reference attacks (``reference``: any configured) need
    its models."""
    names = [v for v in variant_names if not get_variant(v).posthoc]
    needs_base = any(get_variant(v).posthoc for v in variant_names) or reference
    if needs_base and BASE not in names:
        names.insert(0, BASE)
    return names


def cache_outputs(model: torch.nn.Module, job: StudyJob, variant: str, role: str) -> None:
    """``model``'s outputs on ``role``'s train and test splits and on the evaluation sets
    that role needs, each cached as ``outputs/<variant>/<role>/<name>.npz`` (computed only
    if missing)."""
    dev, bs = job.device, job.eval_batch_size
    what = f"{variant}/{role}"
    with inference_layout(model):  # once for every set, not twice per set
        for split in ("train", "test"):
            subset = job.splits[f"{role}_{split}"]
            cached(
                job.paths.outputs(variant, role, split),
                lambda s=subset: compute_outputs(
                    model, job.preprocess(s.images), s.labels, batch_size=bs, device=dev
                ),
                model=what,
                dataset=split,
            )
        fitted_on = sets_fitted_on()
        for name, (x, labels) in job.sets.items():
            # "original" is a subset of the test split; every other set only the target
            # sees, except those a post-hoc variant fits on (the Laplace prior's noise set)
            if name == "original" or (role == "shadow" and name not in fitted_on):
                continue
            cached(
                job.paths.outputs(variant, role, name),
                lambda x=x, y=labels: compute_outputs(model, x, y, batch_size=bs, device=dev),
                model=what,
                dataset=name,
            )


def with_canaries(train: ImageSet, canaries: ImageSet) -> tuple[ImageSet, dict[str, str]]:
    """The target's training split followed by the canaries that went in, and what of
    them the model's fingerprint keeps (a hash of their pixels and labels)."""
    digest = hashlib.sha256(canaries.images.numpy().tobytes())
    digest.update(canaries.labels.numpy().tobytes())
    both = ImageSet(
        torch.cat([train.images, canaries.images]),
        torch.cat([train.labels, canaries.labels]),
        train.classes,
        train.name,
    )
    return both, {"canaries": digest.hexdigest()[:16]}


def train_study_model(job: StudyJob, task: tuple[str, str]) -> dict[str, Any]:
    """Executor task: train (or reuse) the ``(variant, role)`` model and cache its outputs.

    Returns ``variant``, ``role``, ``trained`` (now), ``train_seconds`` and
    ``outputs_seconds``.
    """
    from mistrust.study.train import train_or_load

    vname, role = task
    train_set, extra = job.splits[f"{role}_train"], None
    if role == "target" and job.canaries is not None:
        train_set, extra = with_canaries(train_set, job.canaries)
    model, meta, fresh = train_or_load(
        job.data,
        job.model,
        job.train[vname],
        role=role,
        train_set=train_set,
        preprocess=job.preprocess,
        num_classes=job.num_classes,
        seed=job.seed + ROLES.index(role),
        device=torch.device(job.device),
        progress=job.progress,
        model_path=job.paths.model(vname, role),
        label=f"{vname}/{role}",
        private=job.privacy.get(vname),
        privacy_path=job.paths.privacy(vname, role),
        extra=extra,
    )
    if fresh:
        shutil.rmtree(job.paths.role_outputs(vname, role), ignore_errors=True)
    t0 = time.perf_counter()
    cache_outputs(model, job, vname, role)
    return {
        "variant": vname,
        "role": role,
        "trained": fresh,
        "train_seconds": float(meta.get("train_seconds", 0.0)),
        "outputs_seconds": time.perf_counter() - t0,
    }


def train_study_models(
    job: StudyJob,
    *,
    executor: str,
    address: str | None,
    progress: bool,
) -> dict[str, float]:
    """Run a ``(variant, role)`` task for every variant of ``job.train`` and every role on
    ``executor`` (``address``: the Ray cluster's, None for a local instance); training
    seconds of the models trained now, by ``"<variant>/<role>"``."""
    tasks = [(v, role) for v in job.train for role in ROLES]
    metas = run_tasks(
        train_study_model,
        tasks,
        shared=job,
        executor=executor,
        address=address,
        **training_resources(job.device, models=[job.paths.model(*t) for t in tasks]),
        progress=progress and executor != "local",
        desc="models",
    )
    fresh = [m for m in metas if m["trained"]]
    log.debug("models: %d trained, %d reused", len(fresh), len(metas) - len(fresh))
    return {f"{m['variant']}/{m['role']}": m["train_seconds"] for m in fresh}
