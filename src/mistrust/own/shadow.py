"""The shadow model of ``mistrust audit``: a checkpoint from outside, or trained here.

A shadow trained here uses the target's factory (or its own) on ``shadow.members``, with
seed ``seed + 1`` as a run's shadow, and is kept as ``models/trained/shadow.pt`` with a
fingerprint of everything that shapes it (the factory's code included), so a rerun reuses
it and a change retrains it. The data of a shadow from any source must be disjoint from
the target's members and non-members (:func:`check_disjoint`).
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

from mistrust.config import TrainConfig
from mistrust.config.own import DataSpec, ShadowConfig, TargetConfig
from mistrust.data.images import ImageSet, Preprocess
from mistrust.errors import DataError
from mistrust.io import atomic_torch_save
from mistrust.own.inputs import load_model
from mistrust.runtime.paths import RunPaths

log = logging.getLogger(__name__)

__all__ = ["check_disjoint", "shadow_model"]


def shadow_model(
    s: ShadowConfig,
    t: TargetConfig,
    tcfg: TrainConfig,
    paths: RunPaths,
    pre: Preprocess,
    train: ImageSet,
    *,
    seed: int,
    device: str,
    progress: bool,
) -> Any:
    """The shadow as a model wrapper: loaded (``shadow.source: checkpoint``), reused from
    ``paths.trained_shadow`` or trained now on ``train`` (``source: train``, the shadow's
    members). ``s`` / ``t``: the ``shadow`` and ``target`` sections (the target's factory
    is the shadow's where it names none); ``tcfg``: the ``train`` section. The caller has
    checked its images with :func:`check_disjoint`."""
    if s.source == "checkpoint":
        return load_model(s, fallback=t)
    from mistrust.models.external import build_factory_model, factory_code, wrap_module
    from mistrust.training import train_model

    if (train.labels < 0).any():
        raise DataError(
            "shadow.members: training a shadow needs a label for every image; use class "
            "sub-folders, a labels file or 'labels' in the .npz"
        )
    factory = s.factory or t.factory
    kwargs = s.factory_args or t.factory_args
    assert factory is not None
    code = factory_code(factory, kwargs)
    key = {
        "factory": factory,
        "code": code,  # an edited factory (or its model's class) is another model
        "kwargs": kwargs,
        "train": dataclasses.asdict(tcfg),
        "seed": seed,
        "preprocess": dataclasses.asdict(pre),
        "data": hashlib.sha256(
            train.images.numpy().tobytes() + train.labels.numpy().tobytes()
        ).hexdigest(),
    }
    fp = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = paths.trained_shadow
    torch.manual_seed(seed + 1)
    model = build_factory_model(factory, kwargs)
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("fingerprint") == fp:
            model.load_state_dict(state["state_dict"])
            log.debug("reusing the trained shadow %s", path)
            return wrap_module(model, last_layer=s.last_layer or t.last_layer)
        if state.get("code") == code:
            why = "its training settings or data changed"
        elif "code" in state:
            why = f"the code of {factory} changed"
        else:
            why = "it was saved without its factory's code"
        log.info("%s: retraining the shadow, since %s", path, why)
    t0 = time.perf_counter()
    train_model(
        model,
        train.images,
        train.labels,
        pre,
        tcfg,
        seed=seed + 1,
        device=device,
        checkpoint=path.with_suffix(".ckpt.pt"),
        fingerprint=fp,
        progress=progress,
        desc="shadow",
    )
    model.cpu()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save(path, {"state_dict": state, "fingerprint": fp, "code": code})
    path.with_suffix(".ckpt.pt").unlink(missing_ok=True)
    log.info(
        "shadow: trained %d epochs on %d images (%.1f s)",
        tcfg.epochs,
        len(train),
        time.perf_counter() - t0,
    )
    return wrap_module(model, last_layer=s.last_layer or t.last_layer)


#: each part of the shadow's data against each of the target's, the most telling first
_PAIRS = (
    ("members", "members"),
    ("nonmembers", "members"),
    ("members", "nonmembers"),
    ("nonmembers", "nonmembers"),
)


def check_disjoint(
    t: TargetConfig,
    s: ShadowConfig,
    target: dict[str, ImageSet],
    shadow: dict[str, ImageSet],
) -> None:
    """The shadow's members and non-members share no image with the target's members or
    non-members, as the splits of a run are disjoint; whatever the shadow's source, since
    a loaded shadow's threshold is fitted on these images too. Rows of the same registry
    dataset and split are compared by index, other images by content (SHA-256 of the
    pixels). ``t`` / ``s``: the ``target`` and ``shadow`` sections that name the images."""
    for part, target_part in _PAIRS:
        a, b = getattr(t, target_part), getattr(s, part)
        _check_pair(a, b, part, target_part, target[target_part], shadow[part])


def _check_pair(
    a: DataSpec, b: DataSpec, part: str, target_part: str, target: ImageSet, shadow: ImageSet
) -> None:
    from mistrust.data.external import content_hashes

    whose = "target members" if target_part == "members" else "target non-members"
    if a.dataset is not None and (a.dataset, a.split) == (b.dataset, b.split):
        shared = _shared_rows(a.index, b.index)
        if shared:
            raise DataError(
                f"shadow.{part}: {shared} rows of {a.dataset} ({a.split}) are also {whose}; "
                "give the shadow rows the target was neither trained nor tested on "
                "(disjoint index files)"
            )
        return
    seen = set(content_hashes(target.images))
    shared = sum(h in seen for h in content_hashes(shadow.images))
    if shared:
        raise DataError(
            f"shadow.{part}: {shared} of its {len(shadow)} images are also {whose} "
            "(identical pixels); a shadow must be trained and tested on data disjoint from "
            "the target's members and non-members"
        )


def _shared_rows(target_index: str | None, shadow_index: str | None) -> int | str:
    """How many rows two index files of one split share; no file is the whole split."""
    from mistrust.data.external import read_index

    n = 2**62  # the bounds were checked when the images were read
    a = set(read_index(target_index, n).tolist()) if target_index else None
    b = set(read_index(shadow_index, n).tolist()) if shadow_index else None
    if a is None:
        return "all" if b is None else len(b)
    return len(a) if b is None else len(a & b)
