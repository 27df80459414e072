"""Reference models of the reference attacks: training (one executor task per model) and
their cached outputs, plus the target outputs the reference attacks need beyond ``target_dir``.

* **Models** (``RUN/models/reference/<i>.pt``): the target's architecture and
  training config (``reference.epochs`` if set), trained by
  :func:`mistrust.study.train.train_or_load` under the role ``reference-<i>-<digest of
  its training set>`` with seed ``seed + 1000 + i``, one task per model
  (:func:`mistrust.runtime.executors.run_tasks`, local or Ray). A finished model is reused;
  an interrupted one resumes from its epoch checkpoint.
* **Outputs**, once per model (``RUN/outputs/reference/<i>/<dataset>.npz``, logits and
  labels only): ``population`` (every population row) and every OOD evaluation set, and
  their ``-flip`` queries when queries are flipped.
* **Target extras** (``RUN/outputs/reference/target/``, cleared when the target
  changes): the ``z`` rows and, with flipped queries, ``audited-flip`` and ``<set>-flip``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mistrust.calibration.variants import BASE
from mistrust.config import DataConfig, ModelConfig, TrainConfig
from mistrust.core.outputs import Outputs, cached, compute_outputs
from mistrust.data.images import ImageSet, Preprocess
from mistrust.data.population import Population
from mistrust.io import atomic_write_text
from mistrust.models.layout import memory_format_for
from mistrust.runtime.executors import run_tasks, training_resources
from mistrust.runtime.paths import REFERENCE, REFERENCE_TARGET, RunPaths

log = logging.getLogger(__name__)

__all__ = [
    "ReferenceJob",
    "target_extra_outputs",
    "train_reference_model",
    "train_reference_models",
]

_SEED_OFFSET = 1000  # reference model i trains with seed + 1000 + i (target: seed, shadow: seed+1)


@dataclass
class ReferenceJob:
    """What every reference-training task needs (put once into Ray's object store): the
    run's ``data`` and ``model`` sections, the reference models' training settings and seed,
    and the population and queries."""

    data: DataConfig
    model: ModelConfig
    tcfg: TrainConfig  # the run's train section with reference.epochs; its eval_batch_size
    seed: int  # the run's; reference model i trains with seed + 1000 + i
    paths: RunPaths  # the run directory: models/reference/, outputs/reference/
    preprocess: Preprocess
    num_classes: int
    images: torch.Tensor  # (P, C, H, W) uint8, the population
    labels: torch.Tensor  # (P,) int64
    queries: dict[str, tuple[torch.Tensor, torch.Tensor]]  # OOD set -> (x float, labels)
    flip: bool  # also query the horizontally flipped inputs
    device: str
    progress: bool


def _outputs_of(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    prep: Callable[[torch.Tensor], torch.Tensor],
    bs: int,
    device: str,
) -> Outputs:
    """Logits and labels (no features, to keep many models' files small), in chunks."""
    chunk = max(bs, 4096)
    parts = [
        compute_outputs(
            model, prep(images[i : i + chunk]), labels[i : i + chunk], batch_size=bs, device=device
        )
        for i in range(0, len(images), chunk)
    ]
    if not parts:
        raise ValueError("cannot compute outputs of an empty input set")
    return Outputs(
        np.concatenate([p.logits for p in parts]), np.concatenate([p.labels for p in parts])
    )


def _logits_only(out: Outputs) -> Outputs:
    return Outputs(out.logits, out.labels)


def _cached(
    paths: RunPaths,
    model: int | str,
    dataset: str,
    n: int,
    compute: Callable[[], Outputs],
    *,
    flip: bool = False,
) -> Outputs:
    """:func:`mistrust.core.outputs.cached` of ``outputs/reference/<model>/<dataset>[-flip].npz``,
    recomputed when the row count no longer matches."""
    path = paths.reference_output(model, dataset, flip=flip)
    what = dataset + ("-flip" if flip else "")
    out = cached(path, compute, model=f"{REFERENCE}/{model}", dataset=what)
    if len(out) != n:
        log.warning("recomputing %s: %d rows cached, %d expected", path, len(out), n)
        out = compute()
        out.save(path)
    return out


def _query_outputs(
    paths: RunPaths,
    owner: int | str,
    name: str,
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    bs: int,
    device: str,
    *,
    flip: bool,
) -> Outputs:
    """``owner``'s cached logits on the (already preprocessed) evaluation set ``name``,
    mirrored horizontally with ``flip``."""
    return _cached(
        paths,
        owner,
        name,
        len(x),
        lambda: _logits_only(
            compute_outputs(model, x.flip(-1) if flip else x, y, batch_size=bs, device=device)
        ),
        flip=flip,
    )


def _flipped(pre: Preprocess) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: pre(x).flip(-1)


def train_reference_model(job: ReferenceJob, task: tuple[int, np.ndarray, str]) -> dict[str, Any]:
    """Executor task: train (or reuse) reference model ``i`` and cache its outputs.

    task: ``(i, rows (K,) of the population it trains on, digest of those rows)``.
    Returns metadata: ``index``, ``trained`` (now), ``train_seconds``, ``train_accuracy``.
    """
    from mistrust.study.train import train_or_load

    i, rows, digest = task
    rows_t = torch.as_tensor(rows, dtype=torch.long)
    subset = ImageSet(job.images[rows_t], job.labels[rows_t], [], f"reference-{i}")
    model, meta, fresh = train_or_load(
        job.data,
        job.model,
        job.tcfg,
        role=f"reference-{i}-{digest}",
        train_set=subset,
        preprocess=job.preprocess,
        num_classes=job.num_classes,
        model_path=job.paths.reference_model(i),
        label=f"{REFERENCE}/reference-{i}-{digest}",
        seed=job.seed + _SEED_OFFSET + i,
        device=torch.device(job.device),
        progress=job.progress,
    )
    paths = job.paths
    if fresh:
        shutil.rmtree(paths.reference_outputs(i), ignore_errors=True)
    # in compute_outputs' layout once for every set below (the model is this task's own)
    model.to(memory_format=memory_format_for(model))
    bs, pre, dev = job.tcfg.eval_batch_size, job.preprocess, job.device
    n = len(job.images)
    _cached(
        paths,
        i,
        "population",
        n,
        lambda: _outputs_of(model, job.images, job.labels, pre, bs, dev),
    )
    if job.flip:
        _cached(
            paths,
            i,
            "population",
            n,
            lambda: _outputs_of(model, job.images, job.labels, _flipped(pre), bs, dev),
            flip=True,
        )
    for name, (x, labels) in job.queries.items():
        for flip in (False, True) if job.flip else (False,):
            _query_outputs(paths, i, name, model, x, labels, bs, dev, flip=flip)
    acc = meta.get("train_accuracy") or [float("nan")]
    return {
        "index": i,
        "trained": fresh,
        "train_seconds": float(meta.get("train_seconds", 0.0)),
        "train_accuracy": float(acc[-1]),
    }


def train_reference_models(
    job: ReferenceJob, pop: Population, *, executor: str, address: str | None, progress: bool
) -> None:
    """Run one :func:`train_reference_model` task per row of ``pop.keep`` on ``executor``
    (``"local"`` or ``"ray"``; ``address``: the Ray cluster's, None for a local instance)."""
    tasks = [(i, np.flatnonzero(pop.keep[i]), pop.digest(i)) for i in range(len(pop.keep))]
    metas = run_tasks(
        train_reference_model,
        tasks,
        shared=job,
        executor=executor,
        address=address,
        **training_resources(job.device, models=[job.paths.reference_model(t[0]) for t in tasks]),
        progress=progress,
        desc="reference models",
    )
    log.debug(
        "reference models: %d trained, %d reused",
        sum(m["trained"] for m in metas),
        sum(not m["trained"] for m in metas),
    )


def target_extra_outputs(job: ReferenceJob, pop: Population) -> dict[str, Outputs]:
    """Target outputs that ``target_dir`` lacks: ``z`` and, with flips, ``audited-flip`` and
    ``<set>-flip``; cached under ``RUN/outputs/reference/target`` (cleared on a new target)."""
    from mistrust.study.train import load_model

    paths, device = job.paths, torch.device(job.device)
    images, labels, pre = job.images, job.labels, job.preprocess
    model, meta = load_model(paths.model(BASE, "target"), job.model, stand_in=job.data.stand_in)
    model.to(device, memory_format=memory_format_for(model))  # once for every set below
    marker, me = paths.reference_fingerprint, REFERENCE_TARGET
    if not marker.is_file() or marker.read_text() != meta["fingerprint"]:
        shutil.rmtree(paths.reference_outputs(me), ignore_errors=True)
        atomic_write_text(marker, meta["fingerprint"])
    bs, dev, a = job.tcfg.eval_batch_size, str(device), pop.n_audited
    z = torch.as_tensor(pop.z)
    out = {
        "z": _cached(
            paths,
            me,
            "z",
            len(z),
            lambda: _outputs_of(model, images[z], labels[z], pre, bs, dev),
        )
    }
    if job.flip:
        out["audited-flip"] = _cached(
            paths,
            me,
            "audited",
            a,
            lambda: _outputs_of(model, images[:a], labels[:a], _flipped(pre), bs, dev),
            flip=True,
        )
        for name, (x, y) in job.queries.items():
            out[f"{name}-flip"] = _query_outputs(paths, me, name, model, x, y, bs, dev, flip=True)
    return out
