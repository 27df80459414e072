"""The evaluation sets of a run or an audit, and what their builders read.

``mistrust run`` and ``mistrust audit`` differ only in where the target's non-members,
the GAN's training images and the data root come from; which sets are built (those of
``eval.sets`` and those the variants read) and the rest of the context come from the
``eval`` section here, once for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mistrust.calibration.variants import sets_needed
from mistrust.config import EvalConfig
from mistrust.data.evalsets import EvalContext
from mistrust.data.images import ImageSet, Preprocess
from mistrust.data.sources import default_cache

__all__ = ["eval_context", "eval_set_names"]


def eval_set_names(sets: Sequence[str], variants: Sequence[str]) -> list[str]:
    """``sets`` (``eval.sets``) in order, then each set a variant of ``variants`` reads
    that is not among them (e.g. the Laplace prior's noise set)."""
    names = list(sets)
    for name in sets_needed(list(variants)):
        if name not in names:
            names.append(name)
    return names


def eval_context(
    ecfg: EvalConfig,
    *,
    preprocess: Preprocess,
    nonmembers: ImageSet,
    gan_data: ImageSet,
    default_size: int,
    seed: int,
    root: str | None,
    download: bool,
    fit: str,
    device: str,
    progress: bool,
    held_out: ImageSet | None = None,
    stand_in: bool = False,
    cache_dir: Path | None = None,
) -> EvalContext:
    """What the builders of :mod:`mistrust.data.evalsets` read.

    ``ecfg``: the ``eval`` section; ``nonmembers``: the target's attack non-members
    (``original``); ``gan_data``: images the GAN's generator may train on (never the
    target's members); ``default_size``: a set's size where ``eval.size`` leaves it open;
    ``root`` / ``download``: where other datasets are read from; ``fit``: how image
    folders become square; ``cache_dir``: where built sets are cached (None: the user's
    cache, :func:`mistrust.data.sources.default_cache`).
    """
    return EvalContext(
        preprocess=preprocess,
        nonmembers=nonmembers,
        held_out=held_out,
        gan_data=gan_data,
        size=ecfg.size or default_size,
        seed=seed,
        root=root,
        download=download,
        cache_dir=default_cache() if cache_dir is None else cache_dir,
        scale_factor=ecfg.scale_factor,
        gan_epochs=ecfg.gan_epochs,
        folders=ecfg.folders,
        device=device,
        progress=progress,
        ood_split=ecfg.ood_split,
        full_sets=tuple(ecfg.full_sets),
        fit=fit,
        stand_in=stand_in,
    )
