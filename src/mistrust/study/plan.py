"""Resolve a whole run before any training: ``check_plan(cfg)`` -> :class:`Plan`.

Everything a run would find wrong only after hours of training is checked here
in seconds: the dataset is present (or stand-in) and large enough for every
split, every evaluation set is available, the model can be built with the given
options and takes the input size, every variant is feasible with the splits,
and the reference population can be drawn. The splits are made by the same
function the run uses (:func:`mistrust.data.splits.make_splits`) on the pools'
labels, so their sizes are exact. No image is decoded when a listing or the
labels suffice, and the model is built on PyTorch's ``meta`` device (shapes
only, no memory).

Any problem raises a :class:`mistrust.errors.MistrustError` naming the key and
the fix; ``mistrust check`` prints the plan, ``mistrust run`` checks it first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from mistrust.config import Config, DataConfig, EvalConfig
from mistrust.errors import ConfigError, DataError, MistrustError

log = logging.getLogger(__name__)

__all__ = ["Plan", "check_plan"]

#: stand-in pools above this many images are refused (the run would generate them all)
_STAND_IN_LIMIT = 10_000_000


@dataclass
class Pool:
    """Labels ``(N,)`` of one split of a dataset and where they come from."""

    labels: np.ndarray
    origin: str  # "stand-in", a path, or "download"


@dataclass
class EvalSetPlan:
    name: str
    size: int
    origin: str


@dataclass
class Plan:
    """What a run will do; :meth:`lines` is what ``mistrust check`` prints."""

    cfg: Config
    device: str
    origin: str
    image_shape: tuple[int, int, int]
    num_classes: int
    pools: tuple[int, int]
    splits: dict[str, np.ndarray]
    trained: list[str]
    posthoc: list[str]
    parameters: int
    eval_sets: list[EvalSetPlan] = field(default_factory=list)
    reference: str = ""

    def lines(self) -> list[str]:
        c, d, s = self.cfg, self.cfg.data, self.splits
        ch, h, w = self.image_shape
        n_cal = len(s["target_calibration"])
        model = c.model.arch + (" (pretrained)" if c.model.pretrained else "")
        if c.model.width is not None:
            model += f", width {c.model.width}"
        out = [
            f"config     {c.name} (seed {c.seed}, device {c.device} -> {self.device})",
            f"data       {d.dataset} ({self.origin}), {ch}x{h}x{w}, {self.num_classes} classes "
            f"trained; pools: {self.pools[0]} train, {self.pools[1]} test images",
            f"splits     per role (target, shadow): train {len(s['target_train'])} "
            f"(attack members {len(s['target_members'])}), test {len(s['target_test'])} "
            f"(attack non-members {len(s['target_nonmembers'])}, held-out calibration {n_cal})"
            + (f"; held-out classes {d.held_out_classes}" if d.held_out_classes else ""),
            f"models     {2 * len(self.trained)} to train: {', '.join(self.trained)} x target, "
            f"shadow; {model}, {self.parameters:,} parameters; "
            f"{len(s['target_train'])} images each, {c.train.epochs} epochs "
            f"({c.train.optimizer}, lr {c.train.lr:g}, batch {c.train.batch_size})",
        ]
        if self.posthoc:
            out.append(f"post-hoc   {', '.join(self.posthoc)} (from the base models' outputs)")
        if self.reference:
            out.append(f"reference  {self.reference}")
        out.append(
            "eval sets  " + ", ".join(f"{e.name} {e.size} ({e.origin})" for e in self.eval_sets)
        )
        out.append(f"attacks    {', '.join(c.attacks.names)}")
        return out


def check_plan(cfg: Config) -> Plan:
    """Check that ``cfg`` can run to the end, without training; return the plan.

    Raises:
        ConfigError: sizes, options or variants that cannot work together.
        DataError: a dataset or image folder is missing (with where to get it).
        WeightsError: pretrained weights are asked for but not on this machine.
    """
    from mistrust.data.sources import get_source
    from mistrust.data.splits import make_splits
    from mistrust.runtime.devices import resolve_device

    device = str(resolve_device(cfg.device))
    if cfg.executor == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ConfigError(
                "executor: ray is not installed; pip install 'mistrust[ray]', "
                "or set executor: local"
            )
    d = cfg.data
    spec = get_source(d.dataset)
    train, test = _pools(d)
    num_classes = int(max(train.labels.max(initial=-1), test.labels.max(initial=-1))) + 1
    if num_classes < 2:
        raise DataError(f"{d.dataset}: the data holds fewer than 2 classes; use another dataset")
    if not spec.num_classes:  # known only now, for folder datasets
        from mistrust.config.validation import check_classes

        check_classes(cfg, num_classes)
    splits = make_splits(train.labels, test.labels, d, seed=cfg.seed)
    kept = num_classes - len(set(d.held_out_classes) & set(range(num_classes)))
    size = d.image_size or spec.size
    parameters = _check_model(cfg, channels=spec.channels, num_classes=kept, size=size)
    test_pool = int((~np.isin(test.labels, d.held_out_classes)).sum())
    trained, posthoc = _check_variants(cfg, splits, test_pool)
    plan = Plan(
        cfg=cfg,
        device=device,
        origin=train.origin,
        image_shape=(spec.channels, size, size),
        num_classes=kept,
        pools=(len(train.labels), len(test.labels)),
        splits=splits,
        trained=trained,
        posthoc=posthoc,
        parameters=parameters,
    )
    plan.eval_sets = _check_eval_sets(cfg.eval, d, cfg.variants.names, splits, train.labels)
    plan.reference = _check_reference(cfg, splits)
    return plan


def stand_in_pool_sizes(d: DataConfig) -> tuple[int, int]:
    """Train and test pool sizes of the stand-in data of the ``data`` section ``d``
    (``data.stand_in``), as the run draws them."""
    from mistrust.data.sources import get_source
    from mistrust.data.standin import stand_in_counts

    return stand_in_counts(
        train_size=d.train_size,
        test_size=d.test_size,
        stratified_pool=d.stratified_pool,
        num_classes=get_source(d.dataset).num_classes or 10,
        held_out=len(set(d.held_out_classes)),
    )


def _pools(d: DataConfig) -> tuple[Pool, Pool]:
    from mistrust.data.sources import get_source

    spec = get_source(d.dataset)
    if d.stand_in:
        n_train, n_test = stand_in_pool_sizes(d)
        if max(n_train, n_test) > _STAND_IN_LIMIT:
            raise ConfigError(
                f"stand-in data of {max(n_train, n_test):,} images per pool is more than stand-in "
                f"data is for (at most {_STAND_IN_LIMIT:,}); lower data.train_size, "
                "data.test_size or data.stratified_pool"
            )
        k = spec.num_classes or 10
        return (
            Pool(np.arange(n_train) % k, "stand-in"),
            Pool(np.arange(n_test) % k, "stand-in"),
        )
    return _labels(d.dataset, "train", d), _labels(d.dataset, "test", d)


def _labels(name: str, split: str, d: DataConfig) -> Pool:
    """The labels of one split of dataset ``name`` (from ``d.root``, or counted as
    torchvision would download it under ``d.download``): read alone where the dataset
    allows (IDX label files, folder listings), otherwise loaded with the images."""
    from mistrust.data.sources import get_source, load_source, source_labels

    try:
        found = source_labels(name, split, d.root)
        if found is not None:
            return Pool(*found)
        images = load_source(name, split=split, root=d.root, download=False, size=8)
    except DataError:
        spec = get_source(name)
        if not (d.download and spec.download_sizes):
            raise
        n = spec.download_sizes[split == "test"]
        return Pool(np.arange(n) % (spec.num_classes or 10), "download")
    return Pool(images.labels.numpy(), "local")


def _check_model(cfg: Config, *, channels: int, num_classes: int, size: int) -> int:
    """Build the model on the meta device (a small one on the CPU: ``models.is_small``) and
    pass a batch through; its parameter count."""
    import warnings

    import torch

    from mistrust.models import is_small
    from mistrust.study.train import build_model

    device = "cpu" if is_small(cfg.model.arch) else "meta"
    try:
        with torch.device(device), torch.no_grad(), warnings.catch_warnings():
            # pretrained weights are read and checked against the model (keys and shapes);
            # copying them into meta tensors is a no-op that torch warns about per tensor
            warnings.filterwarnings("ignore", message=".*to a meta parameter", category=UserWarning)
            model = build_model(
                cfg.model,
                channels=channels,
                num_classes=num_classes,
                size=size,
                stand_in=cfg.data.stand_in,
            )
            model.eval()
            model(torch.zeros(2, channels, size, size))
    except (ValueError, RuntimeError) as exc:
        if isinstance(exc, MistrustError):  # e.g. WeightsError: already says what to do
            raise
        reason = " ".join(str(exc).split())[:200]
        if "state_dict" in reason:
            raise ConfigError(
                f"model.weights_path: the pretrained weights do not fit {cfg.model.arch} "
                f"({reason}); point it to {cfg.model.arch}'s weights or set "
                "model.pretrained: false"
            ) from None
        raise ConfigError(
            f"model.arch: {cfg.model.arch} cannot be built for {channels}x{size}x{size} inputs "
            f"and {num_classes} classes ({reason}); change model.* or data.image_size"
        ) from None
    return sum(p.numel() for p in model.parameters())


def _check_variants(
    cfg: Config, splits: dict[str, np.ndarray], test_pool: int
) -> tuple[list[str], list[str]]:
    """Models to train and post-hoc variants, in run order; infeasible variants raise.

    ``test_pool``: test images of the trained classes (both roles' test splits come from it).
    """
    from mistrust.calibration.variants import get_variant
    from mistrust.study.models import trained_variants

    d = cfg.data
    variants = [get_variant(v) for v in cfg.variants.names]
    for v in variants:
        held_out = min(len(splits[f"{r}_calibration"]) for r in ("target", "shadow"))
        if v.needs_held_out(cfg.variants) and held_out == 0:
            most = test_pool // 2
            fix = (
                f"make data.test_size larger than data.nonmembers (at most {most}: the "
                f"{test_pool} test images are shared by target and shadow)"
                if d.test_size < most
                else f"lower data.nonmembers below data.test_size (the {test_pool} test "
                f"images allow data.test_size at most {most})"
            )
            raise ConfigError(
                f"variant {v.name} fits on held-out test data, but data.test_size "
                f"({d.test_size}) equals data.nonmembers ({d.nonmembers}), which leaves none; "
                f"{fix}, set variants.calibration_set: nonmembers (the paper's choice), "
                f"or drop {v.name} from variants.names"
            )
    trained = trained_variants(cfg.variants.names, reference=bool(cfg.reference.attacks))
    return trained, [v.name for v in variants if v.posthoc]


def _check_eval_sets(
    e: EvalConfig,
    d: DataConfig,
    variants: list[str],
    splits: dict[str, np.ndarray],
    train_labels: np.ndarray,
) -> list[EvalSetPlan]:
    """Size and origin of every evaluation set, as ``build_evalsets`` will make it: both come
    from the evaluation-set registry, by each set's own rule (``evalsets.evalset_size``,
    ``evalsets.evalset_origin``); ``variants``: the variants' names (sets they read)."""
    from pathlib import Path

    from mistrust.calibration.variants import sets_needed
    from mistrust.data.evalsets import SetCounts, evalset_origin, evalset_size
    from mistrust.data.folders import list_images

    names = list(e.sets)
    for name in sets_needed(variants):  # as the run: e.g. the Laplace prior's noise
        if name not in names:
            names.append(name)
    pools: dict[str, Pool] = {}

    def pool_of(source: str) -> Pool:  # the split of another dataset that the run draws from
        if source not in pools:
            pools[source] = _labels(source, e.ood_split, d)
        return pools[source]

    counts = SetCounts(
        size=e.size or d.nonmembers,
        nonmembers=len(splits["target_nonmembers"]),
        held_out=len(splits["held_out_test"]),
        pool=lambda source: len(pool_of(source).labels),
        folders={n: len(list_images(Path(e.folders[n]))[0]) for n in names if n in e.folders},
        full_sets=tuple(e.full_sets),
        stand_in=d.stand_in,
        origin=lambda source: pool_of(source).origin,
        gan_pool=int((train_labels >= 0).sum()) - len(splits["target_train"]),
        gan_images=e.gan_images,
        gan_epochs=e.gan_epochs,
    )
    out = []
    for name in names:
        size = evalset_size(name, counts)
        origin = e.folders[name] if name in e.folders else evalset_origin(name, counts)
        out.append(EvalSetPlan(name, size, origin))
    return out


def _check_reference(cfg: Config, splits: dict[str, np.ndarray]) -> str:
    """Draw the reference population as the run would (cheap: index arrays only)."""
    r = cfg.reference
    if not r.attacks:
        return ""
    from mistrust.data.population import make_population

    population_size = r.population_size or cfg.data.train_size
    make_population(
        splits,
        n_models=r.n_models,
        population_size=population_size,
        z_size=r.z_size,
        seed=cfg.seed,
    )
    epochs = r.epochs or cfg.train.epochs
    return (
        f"{r.n_models} models ({cfg.executor}), {population_size} images each, {epochs} epochs; "
        f"attacks {', '.join(r.attacks)}"
    )
