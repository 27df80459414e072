"""Train or load one role's model for one training-time variant."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch

from mistrust.config import Config, TrainConfig
from mistrust.data.images import ImageSet, Preprocess
from mistrust.io import atomic_torch_save
from mistrust.models import Classifier, create_model
from mistrust.training import train_model

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A saved model is unreadable or does not match the configured architecture."""


def fingerprint(cfg: Config, tcfg: TrainConfig, role: str, seed: int) -> str:
    """Everything that changes the trained weights; a model is reused only on a match."""
    key = {
        "data": dataclasses.asdict(cfg.data),
        "model": dataclasses.asdict(cfg.model),
        "train": dataclasses.asdict(tcfg),
        "role": role,
        "seed": seed,
    }
    for k in ("members", "nonmembers", "root", "download"):
        key["data"].pop(k)
    key["train"].pop("eval_batch_size")
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def build_model(cfg: Config, *, channels: int, num_classes: int, size: int) -> Classifier:
    m = cfg.model
    return create_model(
        m.arch,
        channels=channels,
        num_classes=num_classes,
        size=size,
        width=m.width,
        pretrained=m.pretrained,
        weights_path=m.weights_path,
    )


def load_model(path: Path, cfg: Config) -> tuple[Classifier, dict[str, Any]]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        meta = state["meta"]
        model = build_model(
            cfg, channels=meta["channels"], num_classes=meta["num_classes"], size=meta["size"]
        )
        model.load_state_dict(state["state_dict"])
    except (OSError, RuntimeError, KeyError, EOFError) as exc:
        raise CheckpointError(
            f"{path}: cannot load model ({exc}); delete the file to retrain"
        ) from None
    model.eval()
    return model, meta


def train_or_load(
    cfg: Config,
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
) -> tuple[Classifier, dict[str, Any], bool]:
    """Returns (model, metadata, trained_now). Reuses ``model_path`` when its fingerprint matches."""
    fp = fingerprint(cfg, tcfg, role, seed)
    if model_path.is_file():
        model, meta = load_model(model_path, cfg)
        if meta.get("fingerprint") == fp:
            log.info("reusing %s", model_path)
            return model.to(device), meta, False
        log.info("%s was trained with another config; retraining", model_path)
    log.info(
        "training %s/%s (%s, %d images, %d epochs)",
        model_path.parent.name,
        role,
        cfg.model.arch,
        len(train_set),
        tcfg.epochs,
    )
    torch.manual_seed(seed)
    model = build_model(
        cfg, channels=preprocess.channels, num_classes=num_classes, size=preprocess.size
    )
    ckpt = model_path.with_suffix(".ckpt.pt")
    hist = train_model(
        model,
        train_set.images,
        train_set.labels,
        preprocess,
        tcfg,
        seed=seed,
        device=device,
        augment=cfg.data.augment,
        checkpoint=ckpt,
        fingerprint=fp,
        progress=progress,
        desc=f"{model_path.parent.name}/{role}",
    )
    meta = {
        "arch": cfg.model.arch,
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
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save(model_path, {"state_dict": state, "meta": meta})
    ckpt.unlink(missing_ok=True)
    return model, meta, True
