"""Train or load one role's model for one training-time variant.

Takes the config sections it reads (``data``, ``model``, ``train``), never the whole config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from mistrust.config import DataConfig, ModelConfig, TrainConfig
from mistrust.data.images import ImageSet, Preprocess
from mistrust.errors import CheckpointError, WeightsError
from mistrust.io import atomic_torch_save
from mistrust.models import Classifier, create_model
from mistrust.training import train_model
from mistrust.training.private import (
    DPSettings,
    make_private_compatible,
    train_private,
    write_accounting,
)

log = logging.getLogger(__name__)


def fingerprint(
    dcfg: DataConfig,
    mcfg: ModelConfig,
    tcfg: TrainConfig,
    role: str,
    seed: int,
    extra: dict[str, Any] | None = None,
) -> str:
    """Everything that changes the trained weights; a model is reused only on a match.
    ``extra``: what else does (DP-SGD settings, canaries); absent, the key is as before."""
    key = {
        "data": dataclasses.asdict(dcfg),
        "model": dataclasses.asdict(mcfg),
        "train": dataclasses.asdict(tcfg),
        "role": role,
        "seed": seed,
    }
    if extra:
        key["extra"] = extra
    for k in ("members", "nonmembers", "root", "download"):
        key["data"].pop(k)
    key["train"].pop("eval_batch_size")
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def build_model(
    mcfg: ModelConfig, *, channels: int, num_classes: int, size: int, stand_in: bool = False
) -> Classifier:
    """The configured model. On stand-in data (``stand_in``: a smoke test whose numbers mean
    nothing) pretrained weights that are not on this machine are replaced by random ones."""

    def build(pretrained: bool) -> Classifier:
        return create_model(
            mcfg.arch,
            channels=channels,
            num_classes=num_classes,
            size=size,
            width=mcfg.width,
            pretrained=pretrained,
            weights_path=mcfg.weights_path,
        )

    try:
        return build(mcfg.pretrained)
    except WeightsError as exc:
        if not stand_in:
            raise
        log.warning("stand-in data: %s; training from random weights instead", _reason(exc))
        return build(False)


def _reason(exc: BaseException) -> str:
    """The first sentence of an exception message (torch's run over many lines), or its type."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip().split(". ")[0].rstrip(".:") if lines else ""
    text = text or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _mismatch(model: torch.nn.Module, saved: dict[str, Any]) -> str:
    """How ``saved`` weights differ from ``model``'s, in a few words."""
    want = model.state_dict()
    missing = [k for k in want if k not in saved]
    extra = [k for k in saved if k not in want]
    shaped = [
        k
        for k in want
        if k in saved and isinstance(saved[k], torch.Tensor) and saved[k].shape != want[k].shape
    ]
    parts = [
        f"{len(v)} {what} (e.g. {v[0]})"
        for v, what in ((missing, "missing"), (extra, "unexpected"), (shaped, "of another shape"))
        if v
    ]
    return "tensors: " + ", ".join(parts) if parts else "incompatible tensors"


def read_checkpoint(path: Path) -> dict[str, Any]:
    """``{"state_dict": ..., "meta": ...}`` of a model file, loaded without unpickling code.

    ``torch.load(weights_only=True)`` only rebuilds tensors and plain containers,
    so a file holding any other (pickled) object is refused, never executed.

    Raises:
        CheckpointError: the file is empty, truncated, not a torch file, holds
            anything but weights, or lacks ``meta`` / ``state_dict``.
    """
    fix = "delete the file to retrain"
    try:
        if path.stat().st_size == 0:
            raise CheckpointError(f"{path}: model file is empty; {fix}")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError:
        if zipfile.is_zipfile(path):  # a torch file, but with objects beyond tensors
            raise CheckpointError(
                f"{path}: refusing to load: the file holds pickled objects other than weights "
                f"(it could run code); {fix}"
            ) from None
        raise CheckpointError(
            f"{path}: not a torch model file (damaged, or saved in another format); {fix}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - torch signals damage with many types
        raise CheckpointError(f"{path}: cannot read model file ({_reason(exc)}); {fix}") from None
    if not (
        isinstance(state, dict)
        and isinstance(state.get("meta"), dict)
        and isinstance(state.get("state_dict"), dict)
    ):
        raise CheckpointError(f"{path}: not a mistrust model file (no meta / state_dict); {fix}")
    return state


def load_model(
    path: Path, mcfg: ModelConfig, *, stand_in: bool = False
) -> tuple[Classifier, dict[str, Any]]:
    """The model saved at ``path``; it must have ``mcfg``'s architecture (``arch``, ``width``).
    ``stand_in``: as :func:`build_model`.

    Raises:
        CheckpointError: unreadable file (see :func:`read_checkpoint`) or weights
            of another architecture; the message says to delete the file.
    """
    state = read_checkpoint(path)
    meta = state["meta"]
    fix = "delete the file to retrain, or use another --out"
    saved = (meta.get("arch"), meta.get("width", mcfg.width))
    if saved != (mcfg.arch, mcfg.width):
        raise CheckpointError(
            f"{path} holds a {_describe(*saved)} model but the config asks for "
            f"{_describe(mcfg.arch, mcfg.width)}; {fix}"
        )
    try:
        model = build_model(
            mcfg,
            channels=meta["channels"],
            num_classes=meta["num_classes"],
            size=meta["size"],
            stand_in=stand_in,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: damaged metadata ({_reason(exc)}); {fix}") from None
    if meta.get("dp"):  # trained with DP-SGD: its layers were made Opacus-compatible
        model = make_private_compatible(model)
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError:
        raise CheckpointError(
            f"{path}: its weights do not fit model {_describe(mcfg.arch, mcfg.width)} "
            f"({_mismatch(model, state['state_dict'])}); {fix}"
        ) from None
    model.eval()
    return model, meta


def _describe(arch: object, width: object) -> str:
    return f"{arch!r}" + ("" if width is None else f" (width {width})")


def train_or_load(
    dcfg: DataConfig,
    mcfg: ModelConfig,
    tcfg: TrainConfig,
    *,
    role: str,
    train_set: ImageSet,
    preprocess: Preprocess,
    num_classes: int,
    model_path: Path,
    seed: int,
    device: torch.device,
    progress: bool,
    label: str = "",
    private: DPSettings | None = None,
    privacy_path: Path | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[Classifier, dict[str, Any], bool]:
    """Returns (model, metadata, trained_now). Reuses ``model_path`` when its fingerprint matches.

    ``dcfg``, ``mcfg``, ``tcfg``: the run's ``data`` and ``model`` sections and the variant's
    training settings; all of them are in the fingerprint. ``label``: the model's name in
    the log and progress bar (e.g. ``"base/target"``; default ``role``). ``private``:
    train with DP-SGD (:func:`mistrust.training.private.train_private`), its accounting
    written to ``privacy_path`` (removed when the model trains without). ``extra``: more of the fingerprint (e.g. which canaries
    ``train_set`` holds).
    """
    label = label or role
    if private is not None:
        extra = {**(extra or {}), "dp": dataclasses.asdict(private)}
    fp = fingerprint(dcfg, mcfg, tcfg, role, seed, extra)
    if model_path.is_file():
        model, meta = load_model(model_path, mcfg, stand_in=dcfg.stand_in)
        if meta.get("fingerprint") == fp:
            log.debug("reusing %s", model_path)
            return model.to(device), meta, False
        log.info("%s was trained with another config; retraining", model_path)
    log.debug(
        "training %s (%s, %d images, %d epochs)",
        label,
        mcfg.arch,
        len(train_set),
        tcfg.epochs,
    )
    torch.manual_seed(seed)
    model = build_model(
        mcfg,
        channels=preprocess.channels,
        num_classes=num_classes,
        size=preprocess.size,
        stand_in=dcfg.stand_in,
    )
    ckpt = model_path.with_suffix(".ckpt.pt")
    if privacy_path is not None:
        privacy_path.unlink(missing_ok=True)
    if private is not None:
        model = make_private_compatible(model)
        hist, accounting = train_private(
            model,
            train_set.images,
            train_set.labels,
            preprocess,
            tcfg,
            private,
            seed=seed,
            device=device,
            desc=label,
        )
    else:
        hist = train_model(
            model,
            train_set.images,
            train_set.labels,
            preprocess,
            tcfg,
            seed=seed,
            device=device,
            augment=dcfg.augment,
            checkpoint=ckpt,
            fingerprint=fp,
            progress=progress,
            desc=label,
        )
    meta = {
        "arch": mcfg.arch,
        "width": mcfg.width,
        "channels": preprocess.channels,
        "size": preprocess.size,
        "num_classes": num_classes,
        "fingerprint": fp,
        "role": role,
        "seed": seed,
        "train_seconds": hist.seconds,
        "loss": hist.loss,
        "train_accuracy": hist.accuracy,
        "resumed_from_epoch": hist.resumed_from,
    }
    if private is not None:
        meta["dp"] = accounting
        if privacy_path is not None:
            write_accounting(privacy_path, accounting)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save(model_path, {"state_dict": state, "meta": meta})
    ckpt.unlink(missing_ok=True)
    return model, meta, True
