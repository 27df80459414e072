"""The outputs ``mistrust audit`` computes once: the target's and shadow's, per set.

From files (``logits:``), each role's members, non-members and calibration outputs are
copied in; from a model, it runs once over each role's images and every evaluation set.
Either way they are cached as a run caches them, under ``outputs/base/<role>/``:
``train.npz`` = the members, ``test.npz`` = the non-members then the calibration
images, ``parts.json`` = where one ends and the other begins, ``<set>.npz`` = the
target's outputs on an evaluation set. Each role's last layer is kept as
``models/base/<role>.pt`` for the Laplace variants. docs/ARCHITECTURE.md places this
among the stages of ``mistrust audit``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import torch

from mistrust.audit_config import AuditConfig
from mistrust.blind import score_sets
from mistrust.data.external import LABEL_HEADERS
from mistrust.data.images import ImageSet, Preprocess, to_uint8
from mistrust.devices import resolve_device
from mistrust.errors import InputError
from mistrust.io import atomic_torch_save, atomic_write_text
from mistrust.outputs import Outputs
from mistrust.own_inputs import load_model, preprocess_of, role_images
from mistrust.own_shadow import check_disjoint, shadow_model
from mistrust.run_paths import RunPaths
from mistrust.variants import BASE

__all__ = ["outputs_from_files", "outputs_from_model"]


# ---- outputs from files (logits only) ---------------------------------------------------

#: a .csv column that should have been the labels counts as one more class: say so
_LABEL_COLUMN = f"a .csv's label column is headed {' or '.join(LABEL_HEADERS)}"


def _read(path: str | None, kind: str) -> Outputs | None:
    from mistrust.data.external import read_outputs_file

    if path is None:
        return None
    logits, labels = read_outputs_file(path, kind=kind)
    return Outputs(logits.astype(np.float32), labels)


def _save_role(
    paths: RunPaths, role: str, members: Outputs, nonmembers: Outputs, cal: Outputs | None
) -> None:
    width = {members.logits.shape[1], nonmembers.logits.shape[1]}
    if cal is not None:
        width.add(cal.logits.shape[1])
    if len(width) != 1:
        raise InputError(
            f"{role}: members, non-members and calibration outputs have different "
            f"numbers of classes ({', '.join(map(str, sorted(width)))}); they must come from "
            f"one model ({_LABEL_COLUMN})"
        )
    test = nonmembers if cal is None else _concat(nonmembers, cal)
    members.save(paths.outputs(BASE, role, "train"))
    test.save(paths.outputs(BASE, role, "test"))
    atomic_write_text(paths.parts(role), json.dumps({"nonmembers": len(nonmembers)}))


def _concat(a: Outputs, b: Outputs) -> Outputs:
    feats = None
    if a.features is not None and b.features is not None:
        feats = np.concatenate([a.features, b.features])
    return Outputs(
        np.concatenate([a.logits, b.logits]), np.concatenate([a.labels, b.labels]), feats
    )


def outputs_from_files(cfg: AuditConfig, paths: RunPaths) -> list[str]:
    """Cache the outputs the ``logits:`` section names; return the evaluation sets' names."""
    lg, kind = cfg.logits, cfg.logits.kind
    roles = {"target": lg.target, "shadow": lg.shadow} if cfg.has_shadow else {"target": lg.target}
    width = None
    for role, files in roles.items():
        members, nonmembers = _read(files.members, kind), _read(files.nonmembers, kind)
        assert members is not None and nonmembers is not None  # validate_audit
        _save_role(paths, role, members, nonmembers, _read(files.calibration, kind))
        width = width or members.logits.shape[1]
        if members.logits.shape[1] != width:
            raise InputError(
                f"the target has {width} output columns but the shadow has "
                f"{members.logits.shape[1]}; both models must classify the same classes "
                f"({_LABEL_COLUMN})"
            )
    for name, path in lg.sets.items():
        out = _read(path, kind)
        assert out is not None
        if out.logits.shape[1] != width:
            raise InputError(
                f"{path}: {out.logits.shape[1]} output columns, but the target's members have "
                f"{width}; every set must be scored by the same model ({_LABEL_COLUMN})"
            )
        out.save(paths.outputs(BASE, "target", name))
    return list(lg.sets)


# ---- outputs from a model --------------------------------------------------------------


def _outputs(
    model: Any, images: ImageSet, pre: Preprocess, cfg: AuditConfig, device: str
) -> Outputs:
    logits, feats = model.outputs(
        pre(images.images), batch_size=cfg.train.eval_batch_size, device=device
    )
    _check_labels(images, logits.shape[1])
    out = Outputs(logits, images.labels.numpy().astype(np.int64), feats)
    out.check_finite(images.name, hint="check the preprocessing (preprocess.mean / std)")
    return out


def _check_labels(images: ImageSet, width: int) -> None:
    """Every label a class index of a model with ``width`` outputs (negative ones are
    refused when read)."""
    top = int(images.labels.max()) if len(images) else -1
    if top >= width:
        raise InputError(
            f"{images.name}: the model has {width} outputs but a label is {top}; the labels "
            f"must be the model's class indices 0...{width - 1}"
        )


def outputs_from_model(
    cfg: AuditConfig, paths: RunPaths, progress: bool, timings: dict[str, float] | None = None
) -> tuple[list[str], dict[str, torch.Tensor], dict[str, np.ndarray]]:
    """Outputs of the target (and shadow) on every set, cached under ``outputs/base``;
    returns the set names, the images to draw, and the blind baseline's scores per set.
    ``timings`` gets the seconds of the shadow (training or loading it, and its outputs)
    and of the blind baseline, which the console's "Time" line names."""
    timings = {} if timings is None else timings
    from mistrust.data.evalsets import EvalContext, build_evalset
    from mistrust.data.sources import default_cache

    device = str(resolve_device(cfg.device))
    target = load_model(cfg.target)
    pre = preprocess_of(cfg, target.input_shape)
    images = role_images(cfg, "target", pre)
    shadow_images = role_images(cfg, "shadow", pre) if cfg.has_shadow else {}
    if shadow_images:  # before any model runs: overlapping data is refused at once
        check_disjoint(cfg, images, shadow_images)
    _role_from_model(target, images, pre, cfg, device, paths, "target")
    nonmembers = _labels_or_predicted(images["nonmembers"], paths)
    names = [n for n in cfg.eval.sets if n != "original"]
    if "laplace" in cfg.variants.names and "noise" not in names:
        names.append("noise")  # the Laplace prior objective needs a noise OOD set
    ctx = EvalContext(
        preprocess=pre,
        nonmembers=nonmembers,
        held_out=None,
        gan_data=_gan_data(nonmembers),  # never the target's members
        size=cfg.eval.size or len(images["nonmembers"]),
        seed=cfg.seed,
        root=cfg.data_root,
        download=True,
        cache_dir=default_cache(),
        scale_factor=cfg.eval.scale_factor,
        gan_epochs=cfg.eval.gan_epochs,
        folders=cfg.eval.folders,
        device=device,
        progress=progress,
        ood_split=cfg.eval.ood_split,
        full_sets=tuple(cfg.eval.full_sets),
        fit=cfg.preprocess.fit,
    )
    displays: dict[str, torch.Tensor] = {}
    inputs: dict[str, torch.Tensor] = {}  # what the blind baseline sees, per audited set
    for name in ["original", *names]:
        cached = name != "original" and paths.outputs(BASE, "target", name).is_file()
        if cached and name not in cfg.eval.sets:
            continue
        s = build_evalset(name, ctx)
        if name == "original" or name in cfg.eval.sets:
            inputs[name] = s.x
        if cached:
            continue  # outputs cached (its gallery was drawn when they were computed)
        if name in cfg.eval.sets:
            displays[name] = s.display
        if name == "original":
            continue
        labels = s.labels.numpy()
        logits, feats = target.outputs(s.x, batch_size=cfg.train.eval_batch_size, device=device)
        out = Outputs(logits, labels.astype(np.int64), feats)
        out.check_finite(f"outputs on {name}", hint="these inputs overflow the model")
        out.save(paths.outputs(BASE, "target", name))
    if "laplace" in cfg.variants.names:
        if not target.head_is_output and target.head_is_output is not None:
            raise InputError(
                f"variants.names: laplace recalibrates the last linear layer "
                f"({target.head_name!r}), but the model's output is not that layer's output; "
                "name the layer that produces the logits with target.last_layer, or leave "
                "laplace out"
            )
    if cfg.has_shadow:
        width = Outputs.load(paths.outputs(BASE, "target", "train")).logits.shape[1]
        for part in shadow_images.values():  # before a shadow trains on them
            _check_labels(part, width)
        t0 = time.perf_counter()
        shadow = shadow_model(cfg, paths, pre, shadow_images["members"], device, progress)
        _role_from_model(shadow, shadow_images, pre, cfg, device, paths, "shadow")
        noise = paths.outputs(BASE, "shadow", "noise")
        if "laplace" in cfg.variants.names and not noise.is_file():
            x = build_evalset("noise", ctx).x
            logits, feats = shadow.outputs(x, batch_size=cfg.train.eval_batch_size, device=device)
            Outputs(logits, np.full(len(logits), -1, np.int64), feats).save(noise)
        timings["shadow"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    members = pre(images["members"].images)
    blind = score_sets(members, inputs, paths, seed=cfg.seed)
    timings["blind baseline"] = time.perf_counter() - t0
    return [n for n in cfg.eval.sets if n != "original"], displays, blind


def _labels_or_predicted(nonmembers: ImageSet, paths: RunPaths) -> ImageSet:
    """The target's non-members, each without a label given the target's predicted class
    (read from its cached outputs): the label the attacks take for it, which its perturbed
    copies and the GAN's classes then share, as they share a given label."""
    from mistrust.auditing import labels_or_predicted

    test = Outputs.load(paths.outputs(BASE, "target", "test"))
    n = len(nonmembers)
    labels = torch.from_numpy(labels_or_predicted(test.logits[:n], test.labels[:n]))
    return ImageSet(nonmembers.images, labels, nonmembers.classes, nonmembers.name)


def _gan_data(nonmembers: ImageSet) -> ImageSet:
    """What the GAN set's generator trains on: the non-members as 8-bit pixels, the only
    pixels it takes (its fakes are 8-bit images too, and never the audited inputs)."""
    return ImageSet(
        to_uint8(nonmembers.images), nonmembers.labels, nonmembers.classes, nonmembers.name
    )


def _role_from_model(
    model: Any,
    images: dict[str, ImageSet],
    pre: Preprocess,
    cfg: AuditConfig,
    device: str,
    paths: RunPaths,
    role: str,
) -> None:
    """Cache ``role``'s outputs on its members / non-members and its last layer."""
    done = all(paths.outputs(BASE, role, split).is_file() for split in ("train", "test"))
    if not done:
        outs = {k: _outputs(model, s, pre, cfg, device) for k, s in images.items()}
        _save_role(paths, role, outs["members"], outs["nonmembers"], outs.get("calibration"))
    head = model.head
    atomic_torch_save(
        paths.model(BASE, role),
        {
            "state_dict": {
                "head.weight": head.weight.detach().cpu(),
                "head.bias": head.bias.detach().cpu(),
            },
            "meta": {"role": role, "last_layer": model.head_name, "outside": True},
        },
    )
