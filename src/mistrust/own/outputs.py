"""The outputs ``mistrust audit`` computes once: the target's and shadow's, per set.

From files (``logits:``), each role's members, non-members and calibration outputs are
copied in; from a model, it runs once over each role's images and every evaluation set.
Either way they are cached as a run caches them, under ``outputs/base/<role>/``:
``train.npz`` = the members, ``test.npz`` = the non-members then the calibration
images, ``parts.json`` = where one ends and the other begins (read back as a run's
index arrays by :func:`role_splits`), ``<set>.npz`` = the target's outputs on an
evaluation set. Each role's last layer is kept as ``models/base/<role>.pt`` for the
post-hoc variants that read it (Laplace). docs/ARCHITECTURE.md places this
among the stages of ``mistrust audit``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch

from mistrust.calibration.variants import BASE, get_variant, sets_needed
from mistrust.config import EvalConfig, TrainConfig
from mistrust.config.own import LogitsConfig, PreprocessConfig, ShadowConfig, TargetConfig
from mistrust.core.outputs import Outputs
from mistrust.data.external import LABEL_HEADERS
from mistrust.data.images import ImageSet, Preprocess, to_uint8
from mistrust.errors import InputError
from mistrust.io import atomic_torch_save, atomic_write_text, load_npz
from mistrust.own.inputs import load_model, preprocess_of, role_images
from mistrust.own.shadow import check_disjoint, shadow_model
from mistrust.pipeline.blind import score_sets
from mistrust.pipeline.context import eval_context, eval_set_names
from mistrust.pipeline.timing import Timer
from mistrust.runtime.paths import RunPaths

__all__ = ["Computed", "outputs_from_files", "outputs_from_model", "role_splits"]


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


def outputs_from_files(lg: LogitsConfig, paths: RunPaths) -> list[str]:
    """Cache the outputs the ``logits`` section ``lg`` names; return the evaluation sets'
    names."""
    kind = lg.kind
    roles = {"target": lg.target}
    if lg.shadow.members is not None:  # validate_audit: then its non-members too
        roles["shadow"] = lg.shadow
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
    model: Any, images: ImageSet, pre: Preprocess, batch_size: int, device: str
) -> Outputs:
    logits, feats = model.outputs(pre(images.images), batch_size=batch_size, device=device)
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


@dataclass
class Computed:
    """What :func:`outputs_from_model` hands the driver besides the cached outputs."""

    sets: list[str]  # the evaluation sets of eval.sets, less original
    displays: dict[str, torch.Tensor]  # each newly computed set's images, for its gallery
    baseline: Callable[[], dict[str, np.ndarray]]  # the blind baseline's scores per set
    members: torch.Tensor  # the target's members as 8-bit pixels (the per-sample view)
    # what reference checkpoints are queried on (mistrust.own.reference_models): the
    # target's transform, the target, and its inputs, preprocessed: "audited" (members
    # then non-members) and each set of ``sets``
    pre: Preprocess | None = None
    target: Any = None
    queries: dict[str, torch.Tensor] = field(default_factory=dict)
    # the audited images as read (members then non-members, not preprocessed), with the
    # labels the attacks take: what reference models the audit trains learn from
    audited: ImageSet | None = None


def outputs_from_model(
    t: TargetConfig,
    s: ShadowConfig,
    pcfg: PreprocessConfig,
    ecfg: EvalConfig,
    tcfg: TrainConfig,
    variants: Sequence[str],
    paths: RunPaths,
    *,
    seed: int,
    root: str | None,
    device: str,
    progress: bool,
    timer: Timer | None = None,
) -> Computed:
    """Outputs of the target (and shadow) on every set, cached under ``outputs/base``.

    ``t`` / ``s`` / ``pcfg`` / ``ecfg`` / ``tcfg``: the ``target``, ``shadow``,
    ``preprocess``, ``eval`` and ``train`` sections; ``variants``: ``variants.names``
    (the sets they read are computed for both roles); ``root``: ``data_root``. The blind
    baseline is handed back to run (``Computed.baseline``), as a run's scoring runs it.
    """
    from mistrust.data.evalsets import build_evalset

    batch = tcfg.eval_batch_size
    target = load_model(t)
    pre = preprocess_of(pcfg, target.input_shape)
    images = role_images(t, "target", pre, root=root, fit=pcfg.fit)
    has_shadow = s.source != "none"
    shadow_images = role_images(s, "shadow", pre, root=root, fit=pcfg.fit) if has_shadow else {}
    if shadow_images:  # before any model runs: overlapping data is refused at once
        check_disjoint(t, s, images, shadow_images)
    _role_from_model(target, images, pre, batch, device, paths, "target")
    nonmembers = _labels_or_predicted(images["nonmembers"], paths)
    names = [n for n in eval_set_names(ecfg.sets, variants) if n != "original"]
    ctx = eval_context(
        ecfg,
        preprocess=pre,
        nonmembers=nonmembers,
        gan_data=_gan_data(nonmembers),  # never the target's members
        default_size=len(images["nonmembers"]),
        seed=seed,
        root=root,
        download=True,
        fit=pcfg.fit,
        device=device,
        progress=progress,
    )
    displays: dict[str, torch.Tensor] = {}
    inputs: dict[str, torch.Tensor] = {}  # what the blind baseline sees, per audited set
    for name in ["original", *names]:
        cached = name != "original" and paths.outputs(BASE, "target", name).is_file()
        if cached and name not in ecfg.sets:
            continue
        built = build_evalset(name, ctx)
        if name == "original" or name in ecfg.sets:
            inputs[name] = built.x
        if cached:
            continue  # outputs cached (its gallery was drawn when they were computed)
        if name in ecfg.sets:
            displays[name] = built.display
        if name == "original":
            continue
        labels = built.labels.numpy()
        logits, feats = target.outputs(built.x, batch_size=batch, device=device)
        out = Outputs(logits, labels.astype(np.int64), feats)
        out.check_finite(f"outputs on {name}", hint="these inputs overflow the model")
        out.save(paths.outputs(BASE, "target", name))
    featured = [n for n in variants if get_variant(n).needs_features]
    if featured and not target.head_is_output and target.head_is_output is not None:
        raise InputError(
            f"variants.names: {featured[0]} recalibrates the last linear layer "
            f"({target.head_name!r}), but the model's output is not that layer's output; "
            f"name the layer that produces the logits with target.last_layer, or leave "
            f"{featured[0]} out"
        )
    if has_shadow:
        width = Outputs.load(paths.outputs(BASE, "target", "train")).logits.shape[1]
        for part in shadow_images.values():  # before a shadow trains on them
            _check_labels(part, width)
        stage = nullcontext() if timer is None else timer.stage("shadow")
        with stage:  # an entry of its own in the "Time" line
            shadow = shadow_model(
                s,
                t,
                tcfg,
                paths,
                pre,
                shadow_images["members"],
                seed=seed,
                device=device,
                progress=progress,
            )
            _role_from_model(shadow, shadow_images, pre, batch, device, paths, "shadow")
            for name in sets_needed(list(variants)):  # a post-hoc fit reads it per role
                out_file = paths.outputs(BASE, "shadow", name)
                if not out_file.is_file():
                    x = build_evalset(name, ctx).x
                    logits, feats = shadow.outputs(x, batch_size=batch, device=device)
                    Outputs(logits, np.full(len(logits), -1, np.int64), feats).save(out_file)
    members = pre(images["members"].images)
    baseline = partial(score_sets, members, inputs, paths, seed=seed)  # run by the scoring
    sets = [n for n in ecfg.sets if n != "original"]
    queries = {
        "audited": torch.cat([members, pre(images["nonmembers"].images)]),
        **{n: inputs[n] for n in sets},
    }
    pixels = to_uint8(images["members"].images)
    audited = _joined(images["members"], nonmembers)
    return Computed(sets, displays, baseline, pixels, pre, target, queries, audited)


def _joined(a: ImageSet, b: ImageSet) -> ImageSet:
    """``a`` then ``b``; float pixels if either is (read from sources of two kinds)."""
    x, y = a.images, b.images
    if x.dtype != y.dtype:
        x, y = (v.float().div(255) if v.dtype == torch.uint8 else v for v in (x, y))
    return ImageSet(torch.cat([x, y]), torch.cat([a.labels, b.labels]), a.classes, "audited")


def _labels_or_predicted(nonmembers: ImageSet, paths: RunPaths) -> ImageSet:
    """The target's non-members, each without a label given the target's predicted class
    (read from its cached outputs): the label the attacks take for it, which its perturbed
    copies and the GAN's classes then share, as they share a given label."""
    from mistrust.core.audit import labels_or_predicted

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
    batch_size: int,
    device: str,
    paths: RunPaths,
    role: str,
) -> None:
    """Cache ``role``'s outputs on its members / non-members and its last layer."""
    done = all(paths.outputs(BASE, role, split).is_file() for split in ("train", "test"))
    if not done:
        outs = {k: _outputs(model, s, pre, batch_size, device) for k, s in images.items()}
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
