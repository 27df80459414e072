"""Reference models that ``mistrust audit`` trains itself (``reference.n_models``): the
keep matrix drawn over the audited rows and ``reference.population``, each model trained
from the user's factory with the audit's ``train`` recipe, then audited exactly as
reference checkpoints (:func:`mistrust.own.reference_models.reference_from_models`).

* **Keep** (``RUN/reference_keep.npz``, the layout of ``keep.npz``): drawn by
  :func:`mistrust.data.population.make_population` from the audit's seed, so each audited
  row is IN for exactly half of the models (in complementary pairs) and every model
  trains on about half of the further rows; RMIA's ``z`` are all the further rows.
* **Models** (``RUN/models/reference/<m>.pt``, a state dict with its fingerprint): one
  executor task each (:func:`mistrust.runtime.executors.run_tasks`), trained by
  :func:`mistrust.training.train_model` with seed ``seed + 1000 + m`` as a run's
  reference models. The fingerprint holds everything that shapes a model (the factory's
  code included), so a rerun reuses a finished model, resumes an interrupted one from
  its epoch checkpoint and retrains a changed one.

Layout: docs/REFERENCE_AUDIT.md, "Reference models trained by the audit".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mistrust.config import TrainConfig
from mistrust.config.own import AuditConfig
from mistrust.data.images import Preprocess
from mistrust.data.population import make_population
from mistrust.errors import DataError, InputError
from mistrust.io import atomic_savez, atomic_torch_save
from mistrust.own.outputs import Computed
from mistrust.own.reference import needs_z
from mistrust.pipeline.reference import ReferenceOutputs
from mistrust.runtime.executors import run_tasks, training_resources
from mistrust.runtime.paths import RunPaths

log = logging.getLogger(__name__)

__all__ = ["reference_from_training"]

_SEED_OFFSET = 1000  # model m trains with seed + 1000 + m, as a run's reference models


@dataclass
class _Job:
    """What every training task needs (shared once by the executor)."""

    factory: str
    kwargs: dict[str, Any]
    code: str  # the factory's source: part of each model's fingerprint
    tcfg: TrainConfig
    pre: Preprocess
    images: torch.Tensor  # (P, C, H, W): the audited rows, then the population's
    labels: torch.Tensor  # (P,) int64
    keep: np.ndarray  # (M, P) bool
    seed: int
    paths: RunPaths
    device: str
    progress: bool


def reference_from_training(
    cfg: AuditConfig, computed: Computed, paths: RunPaths, *, device: str, progress: bool
) -> ReferenceOutputs:
    """Draw the keep matrix, train (or reuse) ``reference.n_models`` models and return
    their reference outputs, computed as those of the same checkpoints.

    Raises:
        mistrust.errors.InputError: an audited row without a label, population images of
            another shape than the audited ones, RMIA without a population.
        mistrust.errors.DataError: a missing or unreadable population file.
    """
    from mistrust.models.external import factory_code
    from mistrust.own.reference_models import reference_from_models

    r, t = cfg.reference, cfg.target
    assert computed.audited is not None
    images, labels = _rows(cfg, computed)
    a = len(computed.audited)
    if needs_z(r) and len(images) == a:
        raise InputError(
            "reference.population: RMIA takes its population samples z from further "
            "images; name an .npz of them, or leave the rmia attacks out"
        )
    if len(images) == a and a % 2:
        raise InputError(
            f"reference.population: the {a} audited samples split into halves of "
            f"{a // 2} and {a // 2 + 1}, and a model of the smaller half needs one further "
            "image to train on as many; name an .npz of further images"
        )
    pop = make_population(
        {
            "target_members": np.arange(len(computed.members)),
            "target_nonmembers": np.arange(a - len(computed.members)),
            "shadow_train": np.arange(len(images) - a),
        },
        n_models=r.n_models,
        population_size=max((a + 1) // 2, a // 2 + (len(images) - a) // 2),
        z_size=len(images) - a,
        seed=cfg.seed,
    )
    keep_file = {"keep": pop.keep, "labels": labels.numpy()}
    if needs_z(r):
        keep_file["z"] = pop.z
    atomic_savez(paths.reference_keep, **keep_file)
    factory = r.factory or t.factory
    kwargs = dict(r.factory_args or t.factory_args)
    assert factory is not None  # validate_audit
    job = _Job(
        factory,
        kwargs,
        factory_code(factory, kwargs),
        cfg.train,
        computed.pre,
        images,
        labels,
        pop.keep,
        cfg.seed,
        paths,
        device,
        progress,
    )
    models = [paths.reference_model(m) for m in range(r.n_models)]
    fresh = run_tasks(
        _train_one,
        list(range(r.n_models)),
        shared=job,
        executor="local",
        **training_resources(device, models=models),
        progress=progress,
        desc="reference models",
    )
    for m, trained in enumerate(fresh):
        if trained:  # logits of an earlier model of this number are not this one's
            shutil.rmtree(paths.reference_outputs(m), ignore_errors=True)
    log.info("reference models: %d trained, %d reused", sum(fresh), len(fresh) - sum(fresh))
    as_checkpoints = dataclasses.replace(
        r,
        keep=str(paths.reference_keep),
        weights=[str(p) for p in models],
        n_models=0,
    )
    given = dataclasses.replace(cfg, reference=as_checkpoints)
    return reference_from_models(
        given, computed, paths, batch=cfg.train.eval_batch_size, device=device
    )


def _rows(cfg: AuditConfig, computed: Computed) -> tuple[torch.Tensor, torch.Tensor]:
    """The images and labels of the population: the audited rows, then the further ones."""
    from mistrust.data.external import load_image_arrays

    audited = computed.audited
    assert audited is not None
    n_m = len(computed.members)
    if (audited.labels[:n_m] < 0).any():
        raise InputError(
            "reference.n_models: training reference models needs a label for every target "
            "member; give labels with target.members"
        )
    images, labels = audited.images, audited.labels
    path = cfg.reference.population
    if path is None:
        return images, labels.long()
    extra = load_image_arrays(path, name="reference.population")
    if (extra.labels < 0).any():
        raise DataError(
            "reference.population: training reference models needs a label for every "
            "image; save 'labels' in the .npz"
        )
    x = extra.images
    if x.shape[1:] != images.shape[1:]:
        raise InputError(
            f"reference.population: images of shape {tuple(x.shape[1:])}, but the target's "
            f"are {tuple(images.shape[1:])}; give images of the target's size and channels"
        )
    if x.dtype != images.dtype:  # one tensor of float pixels in [0, 1]
        x, images = (v.float().div(255) if v.dtype == torch.uint8 else v for v in (x, images))
    return torch.cat([images, x]), torch.cat([labels, extra.labels]).long()


def _train_one(job: _Job, m: int) -> bool:
    """Executor task: train reference model ``m`` on its rows of ``job.keep``, or reuse
    it; whether it was trained now."""
    from mistrust.models.external import build_factory_model
    from mistrust.training import train_model

    rows = torch.as_tensor(np.flatnonzero(job.keep[m]))
    x, y = job.images[rows], job.labels[rows]
    seed = job.seed + _SEED_OFFSET + m
    key = {
        "factory": job.factory,
        "code": job.code,
        "kwargs": job.kwargs,
        "train": dataclasses.asdict(job.tcfg),
        "seed": seed,
        "preprocess": dataclasses.asdict(job.pre),
        "data": hashlib.sha256(x.numpy().tobytes() + y.numpy().tobytes()).hexdigest(),
    }
    fp = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = job.paths.reference_model(m)
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("fingerprint") == fp:
            return False
        log.info("%s: retraining reference model %d, since what shapes it changed", path, m)
    torch.manual_seed(seed)
    model = build_factory_model(job.factory, job.kwargs)
    train_model(
        model,
        x,
        y,
        job.pre,
        job.tcfg,
        seed=seed,
        device=job.device,
        checkpoint=path.with_suffix(".ckpt.pt"),
        fingerprint=fp,
        progress=job.progress,
        desc=f"reference {m}",
    )
    model.cpu()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save(path, {"state_dict": state, "fingerprint": fp, "code": job.code})
    path.with_suffix(".ckpt.pt").unlink(missing_ok=True)
    return True
