"""The shadow model of ``mistrust audit``: a checkpoint from outside, or trained here.

A shadow trained here uses the target's factory (or its own) on ``shadow.members``, with
seed ``seed + 1`` as a run's shadow, and is kept as ``models/trained/shadow.pt`` with a
fingerprint of everything that shapes it, so a rerun reuses it and a change retrains it.
Its data must be disjoint from the target's members (:func:`check_disjoint`).
docs/ARCHITECTURE.md places this among the stages of ``mistrust audit``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from typing import Any

import torch

from mistrust.audit_config import AuditConfig
from mistrust.data.images import ImageSet, Preprocess
from mistrust.errors import DataError
from mistrust.io import atomic_torch_save
from mistrust.own_inputs import load_model, read_images
from mistrust.run_paths import RunPaths

log = logging.getLogger(__name__)

__all__ = ["check_disjoint", "shadow_model"]


def shadow_model(
    cfg: AuditConfig,
    paths: RunPaths,
    pre: Preprocess,
    target_images: dict[str, ImageSet],
    device: str,
    progress: bool,
) -> Any:
    """The shadow as a model wrapper: loaded (``shadow.source: checkpoint``), reused from
    ``paths.trained_shadow`` or trained now (``train``)."""
    s, t = cfg.shadow, cfg.target
    if s.source == "checkpoint":
        return load_model(s, fallback=t)
    from mistrust.models.external import build_factory_model, wrap_module
    from mistrust.training import train_model

    train = read_images(cfg, s.members, pre, "shadow.members")
    check_disjoint(cfg, target_images["members"], train, "shadow.members")
    check_disjoint(
        cfg,
        target_images["members"],
        read_images(cfg, s.nonmembers, pre, "shadow.nonmembers"),
        "shadow.nonmembers",
    )
    if (train.labels < 0).any():
        raise DataError(
            "shadow.members: training a shadow needs a label for every image; use class "
            "sub-folders, a labels file or 'labels' in the .npz"
        )
    factory = s.factory or t.factory
    kwargs = s.factory_args or t.factory_args
    assert factory is not None
    key = {
        "factory": factory,
        "kwargs": kwargs,
        "train": dataclasses.asdict(cfg.train),
        "seed": cfg.seed,
        "preprocess": dataclasses.asdict(pre),
        "data": hashlib.sha256(
            train.images.numpy().tobytes() + train.labels.numpy().tobytes()
        ).hexdigest(),
    }
    fp = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = paths.trained_shadow
    torch.manual_seed(cfg.seed + 1)
    model = build_factory_model(factory, kwargs)
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("fingerprint") == fp:
            model.load_state_dict(state["state_dict"])
            log.debug("reusing the trained shadow %s", path)
            return wrap_module(model, last_layer=s.last_layer or t.last_layer)
    t0 = time.perf_counter()
    train_model(
        model,
        train.images,
        train.labels,
        pre,
        cfg.train,
        seed=cfg.seed + 1,
        device=device,
        checkpoint=path.with_suffix(".ckpt.pt"),
        fingerprint=fp,
        progress=progress,
        desc="shadow",
    )
    model.cpu()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save(path, {"state_dict": state, "fingerprint": fp})
    path.with_suffix(".ckpt.pt").unlink(missing_ok=True)
    log.info(
        "shadow: trained %d epochs on %d images (%.1f s)",
        cfg.train.epochs,
        len(train),
        time.perf_counter() - t0,
    )
    return wrap_module(model, last_layer=s.last_layer or t.last_layer)


def check_disjoint(cfg: AuditConfig, members: ImageSet, other: ImageSet, key: str) -> None:
    """The shadow's data must not hold the target's members: by row index for the same
    registry dataset and split, by content (SHA-256 of the pixels) otherwise."""
    from mistrust.data.external import content_hashes, read_index

    a, b = cfg.target.members, getattr(cfg.shadow, key.split(".")[1])
    if a.dataset is not None and (a.dataset, a.split) == (b.dataset, b.split):
        n = 2**62
        ia = set(read_index(a.index, n).tolist()) if a.index else None
        ib = set(read_index(b.index, n).tolist()) if b.index else None
        shared = len(ia & ib) if ia is not None and ib is not None else -1
        if shared:
            raise DataError(
                f"{key}: {'all' if shared < 0 else shared} rows of {a.dataset} ({a.split}) are "
                "also target members; give the shadow rows the target never trained on "
                f"(disjoint index files)"
            )
        return
    seen = set(content_hashes(members.images))
    shared = sum(h in seen for h in content_hashes(other.images))
    if shared:
        raise DataError(
            f"{key}: {shared} of its {len(other)} images are also target members (identical "
            "pixels); a shadow must be trained and tested on data disjoint from the target's "
            "members"
        )
