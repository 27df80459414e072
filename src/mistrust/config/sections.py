"""The config's dataclasses: one per section of a config file, and ``Config`` itself."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


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


@dataclass
class ModelConfig:
    arch: str = "salem-cnn"
    pretrained: bool = False
    weights_path: str | None = None
    width: int | None = None  # salem-cnn / mlp hidden width, resnet18-cifar base width


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


@dataclass
class CanaryConfig:
    """The one-run canary audit (docs/DP.md): ``count`` training images with random
    wrong labels, each put into the target's training data with probability 1/2."""

    count: int = 0  # 0: no canaries


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
