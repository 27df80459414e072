"""Evaluation (non-member) sets, each paired with the target's attack members.

A builder returns the model-ready float inputs plus uint8 images to show in the
false-positive gallery. Every set goes through the target's evaluation
transform; the perturbations act on its output (the normalised tensor), as in the paper.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from mistrust.data.images import ImageSet, Preprocess
from mistrust.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class EvalContext:
    """What builders may use; nothing here touches a model."""

    preprocess: Preprocess
    nonmembers: ImageSet  # the target's attack non-members ("original")
    held_out: ImageSet | None  # test images of classes excluded from training
    gan_data: ImageSet  # images disjoint from the target's training data
    size: int
    seed: int
    root: str | None
    download: bool
    cache_dir: Path
    scale_factor: float = 255.0
    gan_epochs: int = 10
    folders: dict[str, str] | None = None
    device: str = "cpu"
    progress: bool = False
    ood_split: str = "test"  # split other datasets are drawn from ("train": the paper)
    full_sets: tuple[str, ...] = ()  # sets used whole rather than sampled down to ``size``
    whole: bool = False  # the set being built is one of ``full_sets`` (set by build_evalset)
    fit: str = "squash"  # how image folders become square ("center-crop": the paper's Dogs)
    stand_in: bool = False  # other datasets as synthetic images too (data.stand_in)


@dataclass
class EvalInputs:
    x: torch.Tensor  # (N, C, H, W) float, ready for the model
    labels: torch.Tensor  # (N,) int64; -1 where no class applies (attacks then use argmax)
    display: torch.Tensor  # (N, C', H', W') uint8, what a person sees in the gallery
    note: str = ""
    # (N,) int64 for sets of copies of the target's attack non-members ("original" and its
    # perturbations): row i is a copy of non-member source[i]. None: no source.
    source: torch.Tensor | None = None


Builder = Callable[[EvalContext], EvalInputs]


def _local(source: str) -> str:
    return "local"


@dataclass
class SetCounts:
    """What a set's size and origin depend on, counted without building it (``mistrust
    check``)."""

    size: int  # eval.size (or data.nonmembers)
    nonmembers: int  # the target's attack non-members
    held_out: int  # test images of the held-out classes
    pool: Callable[[str], int]  # images of a dataset's split that sets are drawn from
    folders: dict[str, int] = dataclasses.field(default_factory=dict)  # set name -> images
    full_sets: tuple[str, ...] = ()
    stand_in: bool = False
    # where a dataset's split comes from ("local", "download", ...), as the plan reports it
    origin: Callable[[str], str] = _local
    gan_pool: int = 0  # training images outside the target's train split (the GAN's data)
    gan_images: int = 0  # eval.gan_images: most of them the GAN trains on
    gan_epochs: int = 0  # eval.gan_epochs


#: a set's rule for ``mistrust check``: its size, or where its images come from, from the
#: counts alone (the latter raises ConfigError where the set cannot be built with them)
Size = Callable[[SetCounts], int]
Origin = Callable[[SetCounts], str]


@dataclass(frozen=True)
class EvalSetEntry:
    """A registered set: how it is built, what it is, and the plan's rules for it."""

    build: Builder
    description: str
    size: Size
    origin: Origin


def _made_size(n: SetCounts) -> int:
    """A set made here (noise, GAN fakes): ``size`` images."""
    return n.size


def _built_at_run_time(n: SetCounts) -> str:
    return "built at run time"


_BUILDERS: dict[str, EvalSetEntry] = {}


def register_evalset(
    name: str, description: str, *, size: Size = _made_size, origin: Origin = _built_at_run_time
) -> Callable[[Builder], Builder]:
    """Decorator registering the builder of the evaluation set ``name``.

    ``size`` and ``origin`` tell ``mistrust check`` how many images the set will hold and
    where they come from, before anything is built (:func:`evalset_size`,
    :func:`evalset_origin`); by default ``size`` images built at run time.
    """

    def deco(fn: Builder) -> Builder:
        if name in _BUILDERS:
            raise ValueError(f"evaluation set {name!r} is already registered")
        _BUILDERS[name] = EvalSetEntry(fn, description, size, origin)
        return fn

    return deco


def evalset_names() -> list[str]:
    return list(_BUILDERS)


def describe(name: str) -> str:
    return _BUILDERS[name].description if name in _BUILDERS else "images from a user folder"


def build_evalset(name: str, ctx: EvalContext) -> EvalInputs:
    if name in ctx.full_sets:
        if not (name in DATASET_SETS or (ctx.folders and name in ctx.folders)):
            raise ValueError(f"evaluation set {name!r} has no full size; only datasets have")
        ctx = dataclasses.replace(ctx, whole=True)
    if ctx.folders and name in ctx.folders:
        return _from_images(_folder(ctx, ctx.folders[name], name), ctx)
    if name not in _BUILDERS:
        raise ValueError(f"unknown evaluation set {name!r}; choose from {', '.join(_BUILDERS)}")
    return _BUILDERS[name].build(ctx)


def evalset_size(name: str, n: SetCounts) -> int:
    """How many images the set ``name`` holds once :func:`build_evalset` has built it.

    The plan check reports this before anything runs; it follows the builders' rules, as
    each set's registration states them: copies of the non-members, sets drawn from images
    (a seeded sample of ``size``, or every image when used whole) and sets made here
    (``size`` images). A folder (``n.folders``) is drawn from its images."""
    if name in n.folders:
        return drawn_size(n.folders[name], size=n.size, whole=name in n.full_sets)
    if name in _BUILDERS:
        return _BUILDERS[name].size(n)
    return n.size


def evalset_origin(name: str, n: SetCounts) -> str:
    """Where the images of the registered set ``name`` come from, as ``mistrust check``
    reports it (a folder set: its folder, which the caller knows).

    Raises:
        ConfigError: the set cannot be built with these counts (no held-out classes, no
            images for the GAN to train on).
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown evaluation set {name!r}; choose from {', '.join(_BUILDERS)}")
    return _BUILDERS[name].origin(n)


def drawn_size(available: int, *, size: int, whole: bool) -> int:
    """Images a set drawn from ``available`` images keeps: all of them when it is used whole
    (``eval.full_sets``), otherwise a seeded sample of at most ``size``."""
    return available if whole else min(available, size)


def stand_in_pool(size: int) -> int:
    """Images of one dataset's stand-in (``data.stand_in``): synthetic data has no size of its
    own, so a set's own size; a set used whole is then every stand-in of its datasets."""
    return size


def _from_images(images: ImageSet, ctx: EvalContext) -> EvalInputs:
    images = _limit(images, ctx)
    unit = ctx.preprocess.to_unit(images.images)
    return EvalInputs(
        ctx.preprocess.normalize(unit), images.labels.clone().fill_(-1), _display(unit)
    )


def _limit(images: ImageSet, ctx: EvalContext) -> ImageSet:
    n = drawn_size(len(images), size=ctx.size, whole=ctx.whole)
    if len(images) == n:
        return images
    g = torch.Generator().manual_seed(ctx.seed)
    return images.subset(torch.randperm(len(images), generator=g)[:n].sort().values)


def _display(unit: torch.Tensor) -> torch.Tensor:
    return unit.clamp(0, 1).mul(255).round().to(torch.uint8)


def _folder(ctx: EvalContext, path: str, name: str) -> ImageSet:
    from mistrust.data.folders import load_folder

    return load_folder(
        path,
        size=ctx.preprocess.size,
        channels=ctx.preprocess.channels,
        name=name,
        limit=None if ctx.whole else ctx.size,
        seed=ctx.seed,
        fit=ctx.fit,
    )


def _same(ctx: EvalContext) -> torch.Tensor:
    """``source`` of a set whose row i is (a copy of) the non-member i."""
    return torch.arange(len(ctx.nonmembers))


def _original(ctx: EvalContext) -> EvalInputs:
    unit = ctx.preprocess.to_unit(ctx.nonmembers.images)
    return EvalInputs(
        ctx.preprocess.normalize(unit), ctx.nonmembers.labels, _display(unit), source=_same(ctx)
    )


def _permuted(ctx: EvalContext) -> EvalInputs:
    from mistrust.data.perturb import permute_pixels

    unit = ctx.preprocess.to_unit(ctx.nonmembers.images)
    g = torch.Generator().manual_seed(ctx.seed)
    # one permutation per image, applied to the unit and normalised tensors alike
    both = permute_pixels(torch.cat([unit, ctx.preprocess.normalize(unit)], 1), generator=g)
    c = unit.shape[1]
    return EvalInputs(both[:, c:], ctx.nonmembers.labels, _display(both[:, :c]), source=_same(ctx))


def _scaled(ctx: EvalContext) -> EvalInputs:
    from mistrust.data.perturb import scale

    unit = ctx.preprocess.to_unit(ctx.nonmembers.images)
    x = scale(ctx.preprocess.normalize(unit), ctx.scale_factor)
    return EvalInputs(
        x, ctx.nonmembers.labels, _display(unit), f"x{ctx.scale_factor:g}", source=_same(ctx)
    )


def _unnormalized(ctx: EvalContext) -> EvalInputs:
    unit = ctx.preprocess.to_unit(ctx.nonmembers.images)
    return EvalInputs(unit, ctx.nonmembers.labels, _display(unit), source=_same(ctx))


def _noise(ctx: EvalContext, *, kind: str) -> EvalInputs:
    from mistrust.data.perturb import noise_images

    g = torch.Generator().manual_seed(ctx.seed + 1)
    p = ctx.preprocess
    imgs = noise_images(ctx.size, channels=p.channels, size=p.size, kind=kind, generator=g)
    return _from_images(ImageSet(imgs, torch.full((len(imgs),), -1), [], f"noise-{kind}"), ctx)


def _held_out(ctx: EvalContext) -> EvalInputs:
    if ctx.held_out is None or len(ctx.held_out) == 0:
        raise ValueError("eval set 'held-out' needs data.held_out_classes to name classes")
    return _from_images(ctx.held_out, ctx)


def gan_generator(ctx: EvalContext) -> torch.nn.Module:
    """The generator of the ``gan`` set: trained on ``ctx.gan_data``, or loaded from the cache
    under ``ctx.cache_dir`` (a run can call this beside other work, then build the set)."""
    from mistrust.data.gan import load_or_train_gan

    return load_or_train_gan(
        ctx.gan_data.images, device=ctx.device, progress=ctx.progress, **_gan_args(ctx)
    )


def gan_is_cached(ctx: EvalContext) -> bool:
    """Whether :func:`gan_generator` would load its generator rather than train it."""
    from mistrust.data.gan import gan_cache_path

    return gan_cache_path(ctx.gan_data.images, **_gan_args(ctx)).is_file()


def _gan_args(ctx: EvalContext) -> dict:
    return dict(
        labels=ctx.gan_data.labels,
        cache_dir=ctx.cache_dir / "gan",
        epochs=ctx.gan_epochs,
        seed=ctx.seed,
    )


def _gan(ctx: EvalContext) -> EvalInputs:
    from mistrust.data.gan import sample_gan

    data = ctx.gan_data
    gen = gan_generator(ctx)
    fakes = sample_gan(gen, ctx.size, seed=ctx.seed, size=data.images.shape[-1])
    return _from_images(ImageSet(fakes, torch.full((len(fakes),), -1), [], "gan"), ctx)


def _load(name: str, ctx: EvalContext, *, index: int = 0) -> ImageSet:
    """Dataset ``name`` at the target's size and channels; its stand-in under ``stand_in``.

    ``index``: the dataset's place among its set's datasets. Stand-ins of one shape look
    alike, so each place is seeded apart (seed + 7 + index: never the run's own stand-in
    data, seeded by seed) and a set of two datasets does not hold each image twice."""
    from mistrust.data.sources import get_source, load_source

    p = ctx.preprocess
    if ctx.stand_in:
        from mistrust.data.standin import stand_in_set

        seed = ctx.seed + 7 + index
        n = stand_in_pool(ctx.size)  # drawn at the target's resolution: no resampling
        return stand_in_set(get_source(name), n=n, split="test", size=p.size, seed=seed)
    return load_source(
        name,
        split=ctx.ood_split,
        root=ctx.root,
        download=ctx.download,
        size=p.size,
        channels=p.channels,
        fit=ctx.fit,
    )


def _dataset(ctx: EvalContext, *, name: str) -> EvalInputs:
    """Every image of the set's datasets (``DATASET_SOURCES``), in order, then sampled."""
    parts = [_load(src, ctx, index=i) for i, src in enumerate(DATASET_SOURCES[name])]
    if len(parts) == 1:
        return _from_images(parts[0], ctx)
    images = torch.cat([part.images for part in parts])
    return _from_images(ImageSet(images, torch.full((len(images),), -1), [], name), ctx)


# ---- the plan's rules of the built-in sets (``evalset_size``, ``evalset_origin``) -------


def _nonmember_size(n: SetCounts) -> int:
    return n.nonmembers


def _nonmember_origin(n: SetCounts) -> str:
    return "target non-members"


def _held_out_size(n: SetCounts) -> int:
    return drawn_size(n.held_out, size=n.size, whole=False)


def _held_out_origin(n: SetCounts) -> str:
    if n.held_out == 0:
        raise ConfigError(
            "eval.sets: 'held-out' needs test images of classes left out of training; "
            "name them in data.held_out_classes, or drop 'held-out' from eval.sets"
        )
    return "held-out classes"


def _generated(n: SetCounts) -> str:
    return "generated"


def _gan_origin(n: SetCounts) -> str:
    n_gan = min(n.gan_images, n.gan_pool)
    if n_gan <= 0:
        raise ConfigError(
            "eval.sets: 'gan' trains on training images outside the target's train "
            "split, and there are none; lower data.train_size or drop 'gan'"
        )
    return f"DCGAN, {n.gan_epochs} epochs on {n_gan} images"


def _dataset_size(n: SetCounts, *, name: str) -> int:
    sources = DATASET_SOURCES[name]
    pools = [stand_in_pool(n.size) if n.stand_in else n.pool(src) for src in sources]
    return drawn_size(sum(pools), size=n.size, whole=name in n.full_sets)


def _dataset_origin(n: SetCounts, *, name: str) -> str:
    if n.stand_in:
        return "stand-in"
    return ", ".join(dict.fromkeys(n.origin(src) for src in DATASET_SOURCES[name]))


_DATASETS = {
    "digits": "scikit-learn's 8x8 handwritten digits, resized",
    "mnist": "MNIST handwritten digits",
    "fashion-mnist": "Fashion-MNIST clothing images",
    "cifar10": "CIFAR-10 images",
    "cifar100": "CIFAR-100 images",
    "svhn": "SVHN house numbers",
    "stl10": "STL-10 images, monkeys removed",
    "stanford-dogs": "Stanford Dogs images, downscaled",
    "afhq-cat": "AFHQ cats",
    "afhq-dog": "AFHQ dogs",
    "afhq-wild": "AFHQ wild animals",
    "afhq-nondog": "AFHQ cats and wild animals (every AFHQ image but the dogs)",
}
#: the datasets each set of other datasets' images is drawn from, in order: the run loads
#: them (``_dataset``), the plan counts them (``evalset_size``)
DATASET_SOURCES: dict[str, tuple[str, ...]] = {
    **{name: (name,) for name in _DATASETS},
    "afhq-nondog": ("afhq-cat", "afhq-wild"),
}
#: sets drawn from other datasets: they can be used whole (``eval.full_sets``)
DATASET_SETS: tuple[str, ...] = tuple(DATASET_SOURCES)

# The built-in sets, in the order they are listed: name, builder, description, size and
# origin for the plan. A table rather than decorators: the builders stay plain module-level
# functions, which mutation testing can reach (it does not mutate decorated functions, nor
# closures built while the module is imported).
_NONMEMBERS = (_nonmember_size, _nonmember_origin)
_MADE = (_made_size, _generated)
BUILTIN: tuple[tuple[str, Builder, str, Size, Origin], ...] = (
    ("original", _original, "in-distribution test images never used in training", *_NONMEMBERS),
    (
        "permuted",
        _permuted,
        "original non-members, H x W positions randomly permuted per image",
        *_NONMEMBERS,
    ),
    (
        "scaled",
        _scaled,
        "original non-members, normalised tensor multiplied by a factor",
        *_NONMEMBERS,
    ),
    (
        "unnormalized",
        _unnormalized,
        "original non-members as raw [0, 1] pixels, no normalisation",
        *_NONMEMBERS,
    ),
    ("noise", partial(_noise, kind="uniform"), "uniform random pixels", *_MADE),
    (
        "noise-gaussian",
        partial(_noise, kind="gaussian"),
        "Gaussian random pixels around mid-grey",
        *_MADE,
    ),
    (
        "held-out",
        _held_out,
        "test images of classes left out of training (near-OOD)",
        _held_out_size,
        _held_out_origin,
    ),
    (
        "gan",
        _gan,
        "fakes from a DCGAN trained on images outside the target's train split",
        _made_size,
        _gan_origin,
    ),
    *(
        (
            name,
            partial(_dataset, name=name),
            desc,
            partial(_dataset_size, name=name),
            partial(_dataset_origin, name=name),
        )
        for name, desc in _DATASETS.items()
    ),
)
for _name, _builder, _desc, _size, _origin in BUILTIN:
    register_evalset(_name, _desc, size=_size, origin=_origin)(_builder)
