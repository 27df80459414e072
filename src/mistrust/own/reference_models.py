"""Reference models trained elsewhere, from their checkpoints: ``mistrust audit`` runs
each once over the population rows, every evaluation set and (for the target too) the
further population rows, with the target's preprocessing, and hands the logits to the
very checks and scoring of the logits way (:func:`mistrust.own.reference.reference_outputs`).

The logits are cached under ``outputs/reference/<m>/`` (``population.npz``,
``<set>.npz``) and ``outputs/reference/target/extra.npz`` (the target on the rows after
the audited ones), so a second audit reuses them; the audit's inputs key names the
checkpoints, so an edited one recomputes them. Layout: docs/REFERENCE_AUDIT.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mistrust.config.own import AuditConfig, ModelSpec
from mistrust.core.outputs import Outputs
from mistrust.data.external import _existing, load_image_arrays
from mistrust.errors import InputError
from mistrust.own.inputs import load_model
from mistrust.own.outputs import Computed
from mistrust.own.reference import _z, needs_z, read_keep, reference_outputs
from mistrust.pipeline.reference import ReferenceOutputs
from mistrust.runtime.paths import REFERENCE_TARGET, RunPaths

__all__ = ["reference_from_models", "reference_key"]

#: how the computed logits are named in messages, where a file's path would be
_WHAT = "the reference models' logits"


def reference_key(cfg: AuditConfig) -> dict[str, Any]:
    """What changes the reference models' logits, for the audit's inputs key (empty for
    the logits way, whose files are read at every audit)."""
    r = cfg.reference
    if cfg.logits_only or not r.attacks:
        return {}
    trained = {"n_models": r.n_models} if r.n_models else {}  # other audits' keys unchanged
    return {
        **trained,
        "models": list(r.models),
        "weights": list(r.weights),
        "factory": r.factory,
        "factory_args": dict(r.factory_args),
        "population": r.population,
        "files": [r.population, *r.models, *r.weights],
    }


def _spec_name(cfg: AuditConfig, m: int, spec: ModelSpec) -> str:
    key = "models" if cfg.reference.models else "weights"
    return f"reference.{key}[{m}] ({spec.model or spec.weights})"


def _run(model: Any, x: torch.Tensor, batch: int, device: str, what: str, width: int) -> np.ndarray:
    logits, _ = model.outputs(x, batch_size=batch, device=device)
    if logits.shape[1] != width:
        raise InputError(
            f"{what}: {logits.shape[1]} outputs, but the target has {width}; reference "
            "models must classify the target's classes"
        )
    if not np.isfinite(logits).all():
        raise InputError(f"{what}: NaN or infinite logits; check the preprocessing")
    return logits.astype(np.float32)


def _save(path: Path, logits: np.ndarray) -> np.ndarray:
    Outputs(logits, np.full(len(logits), -1, np.int64)).save(path)
    return logits


def reference_from_models(
    cfg: AuditConfig, computed: Computed, paths: RunPaths, *, batch: int, device: str
) -> ReferenceOutputs:
    """The reference outputs of the checkpoints ``cfg.reference`` names, on the inputs
    ``computed`` hands over (the target's members, non-members and sets, preprocessed).

    Raises:
        mistrust.errors.InputError: as :func:`mistrust.own.reference.reference_outputs`,
            and a checkpoint count that is not keep's model count, a population whose
            size is not keep's, a model whose outputs are not the target's classes.
        mistrust.errors.DataError: a missing file.
    """
    r = cfg.reference
    keep_file = read_keep(r)
    specs = r.checkpoints
    keep = keep_file.get("keep")
    a = len(computed.queries["audited"])
    extra, extra_labels = _population(cfg, computed)
    if keep is not None and keep.ndim == 2:  # else the shared checks say what is wrong
        which = "reference.models" if r.models else "reference.weights"
        if len(specs) != keep.shape[0]:
            raise InputError(
                f"{which}: {len(specs)} file(s), but {r.keep} keeps {keep.shape[0]} reference "
                "models (its rows); name one checkpoint per row, in keep's order"
            )
        if keep.shape[1] != a + len(extra):
            raise InputError(
                f"{r.keep}: keep has {keep.shape[1]} rows, but the audited rows ({a}) and "
                f"reference.population ({len(extra)}) make {a + len(extra)}"
            )
        labels = keep_file.get("labels")
        if labels is not None and labels.shape == (keep.shape[1],):
            differ = np.flatnonzero((extra_labels >= 0) & (labels[a:] != extra_labels))
            if len(differ):
                row = int(differ[0])
                raise InputError(
                    f"{r.keep}: row {a + row} has label {int(labels[a + row])} but "
                    f"reference.population's image {row} is labelled {int(extra_labels[row])}"
                )
    for m, spec in enumerate(specs):  # every file there before any model runs
        name = spec.model or spec.weights
        assert name is not None
        _existing(name, f"reference.{'models' if r.models else 'weights'}[{m}]")
    width = Outputs.load(paths.outputs("base", "target", "train")).logits.shape[1]
    sets = list(computed.sets)
    arrays: dict[str, list[np.ndarray]] = {"population": [], **{s: [] for s in sets}}
    queries = {"population": torch.cat([computed.queries["audited"], extra]), **computed.queries}
    for m, spec in enumerate(specs):
        what = _spec_name(cfg, m, spec)
        model: Any = None  # loaded once, and only if some logits are not cached
        for key, rows in arrays.items():
            path = paths.reference_output(m, key)
            if path.is_file():
                rows.append(Outputs.load(path).logits)
                continue
            if model is None:
                model = load_model(spec, fallback=cfg.target)
            rows.append(_save(path, _run(model, queries[key], batch, device, what, width)))
    logit_file = {k: np.stack(v) for k, v in arrays.items()}
    if needs_z(r) and len(extra):
        path = paths.reference_output(REFERENCE_TARGET, "extra")
        if path.is_file():
            on_extra = Outputs.load(path).logits
        else:
            on_extra = _save(path, _run(computed.target, extra, batch, device, "the target", width))
        z = keep_file.get("z")
        if z is not None and keep is not None and keep.ndim == 2:
            z = _z(z, a, keep.shape[1], r.keep or "")
            logit_file["target_z"] = on_extra[z - a]
    return reference_outputs(r, sets, paths, keep_file, logit_file, _WHAT)


def _population(cfg: AuditConfig, computed: Computed) -> tuple[torch.Tensor, np.ndarray]:
    """``reference.population``'s images with the target's preprocessing, and their
    labels (none: no rows)."""
    r = cfg.reference
    audited = computed.queries["audited"]
    if r.population is None:
        return audited.new_zeros((0, *audited.shape[1:])), np.zeros(0, np.int64)
    assert computed.pre is not None
    images = load_image_arrays(r.population, name="reference.population")
    return computed.pre(images.images), images.labels.numpy().astype(np.int64)
