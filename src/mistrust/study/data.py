"""The inputs of a study: its dataset's pools and splits, and its evaluation sets.

Read once by the driver (:mod:`mistrust.study.run`) before any model trains; the
``Data`` bundle and the evaluation sets are what every later stage consumes
(docs/ARCHITECTURE.md, "One run", steps 2 and 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mistrust.config import DataConfig, EvalConfig
from mistrust.data.bundle import Data
from mistrust.data.canaries import Canaries, draw_canaries
from mistrust.data.evalsets import EvalContext, EvalInputs, build_evalset
from mistrust.data.images import ImageSet, Preprocess
from mistrust.data.sources import get_source, load_source
from mistrust.data.splits import make_splits
from mistrust.pipeline.context import eval_context, eval_set_names

__all__ = [
    "build_evalsets",
    "canary_sets",
    "evalset_context",
    "gan_training_images",
    "iid_sets",
    "load_data",
    "run_canaries",
]


def load_data(d: DataConfig, *, seed: int) -> Data:
    """The pools of the ``data`` section ``d`` and the run's splits of them (``seed``)."""
    spec = get_source(d.dataset)
    size = d.image_size or spec.size
    load = d.load_size or size  # kept at load size; the model sees ``size`` (Preprocess)
    if d.stand_in:
        from mistrust.data.standin import stand_in_set
        from mistrust.study.plan import stand_in_pool_sizes

        n_train, n_test = stand_in_pool_sizes(d)
        train = stand_in_set(spec, n=n_train, split="train", size=load, seed=seed)
        test = stand_in_set(spec, n=n_test, split="test", size=load, seed=seed)
    else:
        kw = {"root": d.root, "download": d.download, "size": load, "channels": spec.channels}
        kw["fit"] = d.fit
        train = load_source(d.dataset, split="train", **kw)
        test = load_source(d.dataset, split="test", **kw)
    num_classes = int(max(train.labels.max(), test.labels.max())) + 1
    splits = make_splits(train.labels.numpy(), test.labels.numpy(), d, seed=seed)
    held_out = None
    if d.held_out_classes:
        # keep the remaining classes contiguous so the model has no dead outputs
        kept = [c for c in range(num_classes) if c not in set(d.held_out_classes)]
        remap = torch.full((num_classes,), -1, dtype=torch.long)
        remap[kept] = torch.arange(len(kept))
        held_out = test.subset(splits["held_out_test"])
        train = ImageSet(
            train.images,
            remap[train.labels],
            [train.classes[c] for c in kept] if train.classes else [],
            train.name,
        )
        test = ImageSet(test.images, remap[test.labels], train.classes, test.name)
        num_classes = len(kept)
    pre = Preprocess(spec.channels, size, spec.mean, spec.std)
    return Data(train, test, held_out, pre, num_classes, splits)


def run_canaries(count: int, data: Data, *, seed: int) -> Canaries | None:
    """The run's ``count`` canaries (``canaries.count``, docs/DP.md), None without: drawn
    from the training pool outside both roles' training splits, seeded by ``seed``."""
    if not count:
        return None
    used = np.concatenate([data.splits["target_train"], data.splits["shadow_train"]])
    try:
        return draw_canaries(data.train.labels.numpy(), used, count, data.num_classes, seed=seed)
    except ValueError as exc:
        from mistrust.errors import ConfigError

        raise ConfigError(str(exc)) from None


def canary_sets(data: Data, canaries: Canaries) -> tuple[ImageSet, ImageSet]:
    """``(every canary, the canaries that go into the target's training data)``, each
    image with its wrong label."""
    every = ImageSet(
        data.train.images[torch.as_tensor(canaries.index)],
        torch.as_tensor(canaries.label),
        data.train.classes,
        "canaries",
    )
    return every, every.subset(torch.as_tensor(np.flatnonzero(canaries.included)))


def iid_sets(d: DataConfig, ecfg: EvalConfig) -> tuple[str, ...]:
    """The evaluation sets whose non-members are i.i.d. with the target's members by
    construction: ``original`` where both pools are mistrust's seeded split of one pool
    (:attr:`~mistrust.data.sources.SourceSpec.one_pool`, or stand-in images, drawn from
    one generator); the verdicts never blame distribution shift there (docs/CHECKS.md).
    A published train / test split (Fashion-MNIST, CIFAR-10) is not vouched for; the user
    may declare it, or any set, in ``eval.iid_sets``. ``d`` / ``ecfg``: the ``data`` and
    ``eval`` sections."""
    one_pool = d.stand_in or get_source(d.dataset).one_pool
    built = ("original",) if one_pool and "original" in ecfg.sets else ()
    return tuple(n for n in ecfg.sets if n in built or n in ecfg.iid_sets)


def gan_training_images(data: Data, n: int, *, seed: int) -> ImageSet:
    """Up to ``n`` training-pool images outside the target's train split (never its members)."""
    allowed = np.setdiff1d(
        np.flatnonzero(data.train.labels.numpy() >= 0), data.splits["target_train"]
    )
    pick = np.random.default_rng(seed).permutation(allowed)[:n]
    return data.train.subset(np.sort(pick))


def build_evalsets(
    d: DataConfig,
    ecfg: EvalConfig,
    variants: Sequence[str],
    data: Data,
    cache_dir: Path,
    device: torch.device | str,
    progress: bool,
    *,
    seed: int,
) -> dict[str, EvalInputs]:
    """Every evaluation set a run needs (:func:`evalset_context`), built."""
    names, ctx = evalset_context(d, ecfg, variants, data, cache_dir, device, progress, seed=seed)
    return {name: build_evalset(name, ctx) for name in names}


def evalset_context(
    d: DataConfig,
    ecfg: EvalConfig,
    variants: Sequence[str],
    data: Data,
    cache_dir: Path,
    device: torch.device | str,
    progress: bool,
    *,
    seed: int,
) -> tuple[list[str], EvalContext]:
    """The evaluation sets a run needs, in order (``eval.sets``, then those the
    ``variants`` read), and what their builders read. ``d`` / ``ecfg``: the ``data`` and
    ``eval`` sections."""
    ctx = eval_context(
        ecfg,
        preprocess=data.preprocess,
        nonmembers=data.test.subset(data.splits["target_nonmembers"]),
        gan_data=gan_training_images(data, ecfg.gan_images, seed=seed),
        default_size=d.nonmembers,
        seed=seed,
        root=d.root,
        download=d.download,
        fit=d.fit,
        device=str(device),
        progress=progress,
        held_out=data.held_out,
        stand_in=d.stand_in,
        cache_dir=cache_dir,
    )
    return eval_set_names(ecfg.sets, variants), ctx
