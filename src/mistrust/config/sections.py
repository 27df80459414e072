"""The config's dataclasses: one per section of a config file, and ``Config`` itself.

Each section checks its own keys (``validate()``, beside its fields); the checks between
sections are :mod:`mistrust.config.validation`'s. The allowed values of a key are read
from the module that uses them, when the check runs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from mistrust.config.checks import check, check_name, check_names, finite_floats, not_empty, one_of

#: more reference models than any published attack uses (LiRA: 256); the keep matrix grows with it
MAX_REFERENCE_MODELS = 4096


@dataclass
class DataConfig:
    dataset: str = "fashion-mnist"
    root: str | None = None  # None: MISTRUST_DATA, the Debian location, then download
    download: bool = True
    stratified_pool: int | None = None  # paper: draw this many train images (stratified) first
    train_size: int = 2000  # per role (target and shadow)
    test_size: int = 2000  # per role
    members: int = 1000  # attack members drawn from each role's train split
    nonmembers: int = 1000  # attack non-members drawn from each role's test split
    held_out_classes: list[int] = field(default_factory=list)
    image_size: int | None = None  # None: the dataset's own size
    load_size: int | None = None  # images kept at this size, cropped to image_size in training
    fit: str = "squash"  # image folders made square: "squash" or "center-crop" (aspect kept)
    augment: str = "none"  # "none", "flip-crop" or "rotate-crop-flip" (the paper's Dogs)
    stand_in: bool = False  # synthetic images of the dataset's shape (smoke tests)

    def validate(self) -> None:
        from mistrust.data.folders import FITS
        from mistrust.data.sources import source_names
        from mistrust.training import AUGMENTS

        finite_floats(self, "data.")
        one_of("data.augment", self.augment, AUGMENTS)
        one_of("data.fit", self.fit, FITS)
        check(
            self.dataset in source_names(),
            f"data.dataset: unknown dataset {self.dataset!r}; choose from "
            f"{', '.join(source_names())}",
        )
        for key in ("train_size", "test_size", "members", "nonmembers"):
            value = getattr(self, key)
            check(value > 0, f"data.{key} must be positive, got {value}")
        check(
            self.members <= self.train_size,
            f"data.members ({self.members}) cannot exceed data.train_size ({self.train_size})",
        )
        check(
            self.nonmembers <= self.test_size,
            f"data.nonmembers ({self.nonmembers}) cannot exceed data.test_size ({self.test_size})",
        )
        if self.load_size is not None:
            check(
                self.image_size is not None and self.load_size >= self.image_size,
                f"data.load_size ({self.load_size}) needs data.image_size set and at most "
                "data.load_size (images are kept at load_size and cropped to image_size)",
            )
        check(self.image_size is None or self.image_size > 0, "data.image_size must be positive")


@dataclass
class ModelConfig:
    arch: str = "salem-cnn"
    pretrained: bool = False
    weights_path: str | None = None
    width: int | None = None  # salem-cnn / mlp hidden width, resnet18-cifar base width

    def validate(self) -> None:
        from mistrust.models import has_width, model_names, pretrainable

        finite_floats(self, "model.")
        check(self.width is None or self.width > 0, "model.width must be positive")
        check(
            self.arch in model_names(),
            f"model.arch: unknown model {self.arch!r}; choose from {', '.join(model_names())}",
        )
        check(
            not self.pretrained or pretrainable(self.arch),
            f"model.pretrained: {self.arch} has no pretrained weights; set model.pretrained: "
            "false or choose model.arch from "
            f"{', '.join(n for n in model_names() if pretrainable(n))}",
        )
        check(
            self.width is None or has_width(self.arch),
            f"model.width: {self.arch!r} has a fixed width; leave model.width unset",
        )


@dataclass
class TrainConfig:
    optimizer: str = "adam"
    lr: float = 0.001
    momentum: float = 0.9
    epochs: int = 30
    batch_size: int = 64
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    eval_batch_size: int = 1024

    def validate(self) -> None:
        from mistrust.training import OPTIMIZERS

        finite_floats(self, "train.")
        one_of("train.optimizer", self.optimizer, OPTIMIZERS)
        check(self.lr > 0, f"train.lr must be positive, got {self.lr}")
        check(self.epochs > 0, f"train.epochs must be positive, got {self.epochs}")
        check(self.batch_size > 0, f"train.batch_size must be positive, got {self.batch_size}")
        check(self.weight_decay >= 0, f"train.weight_decay must be >= 0, got {self.weight_decay}")
        check(
            0 <= self.label_smoothing < 1,
            f"train.label_smoothing must be in [0, 1), got {self.label_smoothing}",
        )
        check(
            self.eval_batch_size > 0,
            f"train.eval_batch_size must be positive, got {self.eval_batch_size}",
        )
        check(self.momentum >= 0, f"train.momentum must be >= 0, got {self.momentum}")


@dataclass
class VariantsConfig:
    names: list[str] = field(default_factory=lambda: ["base"])
    label_smoothing: float = 0.1
    weight_decay: float = 3e-4
    temperature: float = 10.0
    laplace_prior: str = "grid"  # "grid" (the paper's objective) or "marglik"
    laplace_pred: str = "mc"  # "mc" (the paper) or "probit"
    laplace_samples: int = 100
    laplace_grid: int = 21
    laplace_method: str = "laplace-torch"  # or "paper": K-FAC of an MC Fisher, prior per factor
    laplace_search_samples: int | None = None  # MC samples per grid point; None: laplace_samples
    calibration_set: str = "held-out"  # or "nonmembers": fit on the attack non-members (paper)
    # dp-sgd: one variant dp-sgd-eps<value> per target epsilon (docs/DP.md)
    dp_epsilon: float | list[float] = 8.0
    dp_delta: float = 1e-5
    dp_max_grad_norm: float = 1.0

    def validate(self) -> None:
        from mistrust.calibration.laplace import PREDS, PRIORS
        from mistrust.calibration.variants import (
            CALIBRATION_SETS,
            LAPLACE_METHODS,
            is_variant,
            variant_names,
        )

        check_names("variants.names", self.names)
        finite_floats(self, "variants.")
        one_of("variants.laplace_method", self.laplace_method, tuple(LAPLACE_METHODS))
        one_of("variants.laplace_prior", self.laplace_prior, PRIORS)
        one_of("variants.laplace_pred", self.laplace_pred, PREDS)
        one_of("variants.calibration_set", self.calibration_set, CALIBRATION_SETS)
        for name in self.names:
            check(
                is_variant(name),
                f"variants.names: unknown variant {name!r}; choose from "
                f"{', '.join(variant_names())}",
            )
        check(self.temperature > 0, "variants.temperature must be positive")
        check(
            0 <= self.label_smoothing < 1,
            f"variants.label_smoothing must be in [0, 1), got {self.label_smoothing}",
        )
        check(
            self.weight_decay >= 0, f"variants.weight_decay must be >= 0, got {self.weight_decay}"
        )
        check(self.laplace_samples > 0, "variants.laplace_samples must be positive")
        check(self.laplace_grid > 0, "variants.laplace_grid must be positive")
        check(
            self.laplace_search_samples is None or self.laplace_search_samples > 0,
            "variants.laplace_search_samples must be positive",
        )
        if self.laplace_method == "paper":
            check(
                self.laplace_prior == "grid" and self.laplace_pred == "mc",
                "variants.laplace_method: paper searches the prior on a grid and predicts by "
                "Monte Carlo; set variants.laplace_prior: grid and variants.laplace_pred: mc, "
                "or variants.laplace_method: laplace-torch",
            )
        # whether the splits leave the data a post-hoc variant fits on is the plan check's
        # (mistrust.study.plan): it knows the pool sizes, so it can say what would fit
        not_empty("variants.names", self.names)
        self._validate_private()

    def _validate_private(self) -> None:
        """DP-SGD settings (docs/DP.md)."""
        from mistrust.calibration.variants import private_settings

        for name in self.names:  # a member named directly: its epsilon is in its name
            dp = private_settings(name, self)
            check(
                dp is None or 0 < dp.epsilon <= 1000,
                f"variants.names: {name}: the target epsilon must be in (0, 1000]",
            )
        eps = self.dp_epsilon if isinstance(self.dp_epsilon, list) else [self.dp_epsilon]
        check(bool(eps), "variants.dp_epsilon is empty; give a target epsilon or a list of them")
        for e in eps:
            check(
                math.isfinite(e) and 0 < e <= 1000,
                f"variants.dp_epsilon must be in (0, 1000], got {e}",
            )
        check(len(set(eps)) == len(eps), "variants.dp_epsilon has duplicates")
        check(0 < self.dp_delta < 1, f"variants.dp_delta must be in (0, 1), got {self.dp_delta}")
        check(
            self.dp_max_grad_norm > 0,
            f"variants.dp_max_grad_norm must be positive, got {self.dp_max_grad_norm}",
        )


def _score_based_attacks() -> tuple[str, ...]:
    from mistrust.attacks import SCORE_BASED_ATTACKS  # one list, kept with the attacks

    return SCORE_BASED_ATTACKS


def _salem_fit_rows() -> int:
    from mistrust.attacks.salem import FIT_ROWS  # one default, kept with the attack

    return FIT_ROWS


@dataclass
class AttackConfig:
    names: list[str] = field(default_factory=lambda: list(_score_based_attacks()))
    top_k: int = 3
    class_thresholds: bool = False
    strict_threshold: bool = False  # true: member iff score > threshold (the paper), not >=
    score_precision: str = "float64"  # "float32": the paper's float32 torch arithmetic
    salem_score: str = "logit"  # "sigmoid": Salem scored by its probability (the paper)
    # most shadow rows Salem's MLP trains on (a seeded sample above it); null: all (the paper)
    salem_rows: int | None = field(default_factory=_salem_fit_rows)
    aupr: str = "average-precision"  # or "trapezoid" under the PR curve (the paper)

    def validate(self) -> None:
        from mistrust.attacks import attack_names
        from mistrust.attacks.salem import OUTPUTS
        from mistrust.attacks.signals import PRECISIONS
        from mistrust.metrics.rates import AUPR_METHODS

        check_names("attacks.names", self.names)
        finite_floats(self, "attacks.")
        one_of("attacks.score_precision", self.score_precision, PRECISIONS)
        one_of("attacks.salem_score", self.salem_score, OUTPUTS)
        one_of("attacks.aupr", self.aupr, tuple(AUPR_METHODS))
        for name in self.names:
            check(
                name in attack_names(),
                f"attacks.names: unknown attack {name!r}; choose from {', '.join(attack_names())}",
            )
        check(self.top_k > 0, f"attacks.top_k must be positive, got {self.top_k}")
        rows = self.salem_rows
        check(
            rows is None or rows >= 2,
            f"attacks.salem_rows must be at least 2, or null for every shadow row, got {rows}",
        )
        not_empty("attacks.names", self.names)


@dataclass
class EvalConfig:
    sets: list[str] = field(
        default_factory=lambda: ["original", "permuted", "scaled", "unnormalized"]
    )
    size: int | None = None  # None: as many as the in-distribution non-members
    scale_factor: float = 255.0
    folders: dict[str, str] = field(default_factory=dict)  # name -> image folder
    gan_epochs: int = 20
    gan_images: int = 4000  # drawn from training images outside the target's train split
    gallery_size: int = 16
    ood_split: str = "test"  # split other datasets are drawn from ("train": the paper)
    full_sets: list[str] = field(default_factory=list)  # datasets used whole, not sampled
    # sets whose non-members were drawn with the members from one pool by a random split,
    # declared by the user (docs/CHECKS.md): the verdicts never blame distribution shift there
    iid_sets: list[str] = field(default_factory=list)

    def validate(self) -> None:
        from mistrust.data.evalsets import DATASET_SETS, evalset_names
        from mistrust.data.sources import SPLITS

        check_names("eval.sets", self.sets)
        check_names("eval.folders", list(self.folders))
        finite_floats(self, "eval.")
        one_of("eval.ood_split", self.ood_split, SPLITS)
        known = evalset_names()
        for name in self.sets:
            check(
                name in known or name in self.folders,
                f"eval.sets: unknown evaluation set {name!r}; choose from {', '.join(known)} "
                "or name a folder under eval.folders",
            )
        check(self.gan_images > 0, "eval.gan_images must be positive")
        check(self.size is None or self.size > 0, "eval.size must be positive")
        for name in self.folders:
            check(
                name not in known,
                f"eval.folders: {name!r} is a built-in evaluation set; give the folder another "
                "name",
            )
        check(self.scale_factor > 0, f"eval.scale_factor must be positive, got {self.scale_factor}")
        check(self.gan_epochs > 0, f"eval.gan_epochs must be positive, got {self.gan_epochs}")
        check(self.gallery_size >= 0, f"eval.gallery_size must be >= 0, got {self.gallery_size}")
        for name in self.iid_sets:
            check(
                name in self.sets,
                f"eval.iid_sets: {name!r} is not in eval.sets; declare only sets that are scored",
            )
        for name in self.full_sets:  # a name not in eval.sets is allowed: nothing to do for it
            check(
                name in DATASET_SETS or name in self.folders,
                f"eval.full_sets: {name!r} is not a dataset; only sets drawn from datasets or "
                f"folders can be used whole ({', '.join(DATASET_SETS)} or eval.folders)",
            )
        not_empty("eval.sets", self.sets)


@dataclass
class ReferenceConfig:
    """Reference-model attacks (LiRA, RMIA); empty ``attacks`` trains no reference model."""

    attacks: list[str] = field(default_factory=list)
    n_models: int = 8
    epochs: int | None = None  # None: train.epochs
    population_size: int | None = None  # samples each reference model trains on; None: train_size
    z_size: int = 1000  # RMIA population samples z
    rmia_gamma: float = 1.0
    rmia_a: float = 0.3
    fixed_variance: bool = False  # LiRA: one global variance instead of per-example
    # LiRA: also query horizontally flipped images; None: exactly when the models trained
    # with flips (data.augment)
    augment_queries: bool | None = None

    def check_attacks(self) -> None:
        """Raise ``ConfigError`` for unknown or duplicate ``reference.attacks`` names, or
        too few reference models for them."""
        from mistrust.attacks import REFERENCE_ATTACKS

        for name in self.attacks:
            check(
                name in REFERENCE_ATTACKS,
                f"reference.attacks: unknown attack {name!r}; choose from "
                f"{', '.join(REFERENCE_ATTACKS)}",
            )
        check(len(set(self.attacks)) == len(self.attacks), "reference.attacks has duplicates")
        check(
            not self.attacks or self.n_models >= 2,
            f"reference.n_models must be at least 2, got {self.n_models}",
        )

    def validate(self) -> None:
        check_names("reference.attacks", self.attacks)
        finite_floats(self, "reference.")
        self.check_attacks()
        check(self.z_size > 0, "reference.z_size must be positive")
        check(
            self.n_models <= MAX_REFERENCE_MODELS,
            f"reference.n_models must be at most {MAX_REFERENCE_MODELS}, got {self.n_models}",
        )


@dataclass
class CanaryConfig:
    """The one-run canary audit (docs/DP.md): ``count`` training images with random
    wrong labels, each put into the target's training data with probability 1/2."""

    count: int = 0  # 0: no canaries

    def validate(self) -> None:
        check(self.count >= 0, f"canaries.count must be >= 0, got {self.count}")


@dataclass
class Config:
    name: str = "default"
    seed: int = 42
    seeds: int = 1  # repeats of the whole study, with seeds seed, seed + 1, ... (mistrust run)
    device: str = "cpu"
    executor: str = "local"  # where every model trains: "local" (this process) or "ray"
    ray_address: str | None = None  # executor ray: None starts a local Ray instance
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    variants: VariantsConfig = field(default_factory=VariantsConfig)
    attacks: AttackConfig = field(default_factory=AttackConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    canaries: CanaryConfig = field(default_factory=CanaryConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def sections(self) -> list[Any]:
        """The sections (the dataclass fields), in their order; each has its ``validate()``."""
        values = [getattr(self, f.name) for f in dataclasses.fields(self)]
        return [v for v in values if dataclasses.is_dataclass(v)]

    def validate(self) -> None:
        """The top-level keys alone; the sections check themselves (:meth:`sections`), and
        :func:`mistrust.config.validate` runs both and the checks between sections."""
        from mistrust.runtime.devices import DEVICE_TYPES, EXECUTORS

        check_name(self.name, "name")
        one_of("executor", self.executor, EXECUTORS)
        check(
            self.device == "auto" or self.device.split(":")[0] in DEVICE_TYPES,
            f"device must be {', '.join(DEVICE_TYPES)} or auto, got {self.device!r}",
        )
        # numpy refuses negative seeds; torch's and ours (seed + 1000 + i) must fit
        check(0 <= self.seed < 2**31, f"seed must be an integer in [0, 2^31), got {self.seed}")
        check(self.seeds > 0, f"seeds must be a positive integer, got {self.seeds}")
        check(
            self.seed + self.seeds <= 2**31,
            f"seeds: seed + seeds - 1 = {self.seed + self.seeds - 1} must be below 2^31; "
            "lower seeds or seed",
        )
