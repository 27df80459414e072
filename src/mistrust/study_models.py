"""Every trained model of a study as one executor task: target and shadow, for each
training-time variant (``base``, ``label-smoothing``, ``weight-decay``).

A task trains its model (or reuses a finished one, or resumes from the epoch
checkpoint of an interrupted one, :func:`mistrust.modeling.train_or_load`) and
caches its outputs on its role's splits and on the evaluation sets, into
``RUN/models/<variant>/<role>.pt`` and ``RUN/outputs/<variant>/<role>/``. Tasks
share nothing but the read-only inputs, so they run in any order, in this
process (``executor: local``) or spread over a Ray cluster (``executor: ray``,
:func:`mistrust.executors.run_tasks`), with the same bytes either way: every task
runs torch with this process's thread count.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from typing import Any

import torch

from mistrust.config import Config
from mistrust.data.images import ImageSet, Preprocess
from mistrust.data.splits import ROLES
from mistrust.executors import run_tasks, training_resources
from mistrust.outputs import cached, compute_outputs
from mistrust.run_paths import RunPaths
from mistrust.variants import BASE, get_variant, sets_fitted_on

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
    """What every model task needs (put once into Ray's object store)."""

    cfg: Config
    paths: RunPaths  # the run directory: models/<variant>/<role>.pt, outputs/<variant>/<role>/
    preprocess: Preprocess
    num_classes: int
    splits: dict[str, ImageSet]  # "<role>_train" / "<role>_test": uint8 images of the split
    sets: dict[str, tuple[torch.Tensor, torch.Tensor]]  # evaluation set -> (x float, labels)
    device: str
    progress: bool


def trained_variants(cfg: Config) -> list[str]:
    """Variants with their own models; ``base`` too when a post-hoc variant or the
    reference attacks need its models."""
    names = [v for v in cfg.variants.names if not get_variant(v).posthoc]
    needs_base = any(get_variant(v).posthoc for v in cfg.variants.names) or cfg.reference.attacks
    if needs_base and BASE not in names:
        names.insert(0, BASE)
    return names


def cache_outputs(model: torch.nn.Module, job: StudyJob, variant: str, role: str) -> None:
    """``model``'s outputs on ``role``'s train and test splits and on the evaluation sets
    that role needs, each cached as ``outputs/<variant>/<role>/<name>.npz`` (computed only
    if missing)."""
    dev, bs = job.device, job.cfg.train.eval_batch_size
    what = f"{variant}/{role}"
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
        # "original" is a subset of the test split; every other set only the target sees,
        # except those a post-hoc variant fits on (the Laplace prior's noise set), per role
        if name == "original" or (role == "shadow" and name not in fitted_on):
            continue
        cached(
            job.paths.outputs(variant, role, name),
            lambda x=x, y=labels: compute_outputs(model, x, y, batch_size=bs, device=dev),
            model=what,
            dataset=name,
        )


def train_study_model(job: StudyJob, task: tuple[str, str]) -> dict[str, Any]:
    """Executor task: train (or reuse) the ``(variant, role)`` model and cache its outputs.

    Returns ``variant``, ``role``, ``trained`` (now), ``train_seconds`` and
    ``outputs_seconds``.
    """
    from mistrust.modeling import train_or_load

    vname, role = task
    cfg = job.cfg
    model, meta, fresh = train_or_load(
        cfg.data,
        cfg.model,
        get_variant(vname).train_config(cfg.train, cfg.variants),
        role=role,
        train_set=job.splits[f"{role}_train"],
        preprocess=job.preprocess,
        num_classes=job.num_classes,
        seed=cfg.seed + ROLES.index(role),
        device=torch.device(job.device),
        progress=job.progress,
        model_path=job.paths.model(vname, role),
        label=f"{vname}/{role}",
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
    cfg: Config,
    job: StudyJob,
    *,
    progress: bool,
) -> dict[str, float]:
    """Run every ``(variant, role)`` task on ``cfg.executor``; training seconds of the
    models trained now, by ``"<variant>/<role>"``."""
    tasks = [(v, role) for v in trained_variants(cfg) for role in ROLES]
    metas = run_tasks(
        train_study_model,
        tasks,
        shared=job,
        executor=cfg.executor,
        address=cfg.ray_address,
        **training_resources(job.device),
        progress=progress and cfg.executor != "local",
        desc="models",
    )
    fresh = [m for m in metas if m["trained"]]
    log.debug("models: %d trained, %d reused", len(fresh), len(metas) - len(fresh))
    return {f"{m['variant']}/{m['role']}": m["train_seconds"] for m in fresh}
