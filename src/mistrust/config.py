"""Typed configuration: YAML presets, ``--set`` overrides and validation.

A config is a tree of dataclasses. Presets ship as YAML files inside the
package; a user file or ``--set key=value`` overrides are merged on top of the
defaults, and anything unknown or of the wrong type raises ``ConfigError``
(the CLI turns that into one line and exit status 2).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mistrust.errors import ConfigError

log = logging.getLogger(__name__)


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


def _score_based_attacks() -> tuple[str, ...]:
    from mistrust.attacks import SCORE_BASED_ATTACKS  # one list, kept with the attacks

    return SCORE_BASED_ATTACKS


@dataclass
class AttackConfig:
    names: list[str] = field(default_factory=lambda: list(_score_based_attacks()))
    top_k: int = 3
    class_thresholds: bool = False
    strict_threshold: bool = False  # true: member iff score > threshold (the paper), not >=
    score_precision: str = "float64"  # "float32": scores rounded as the paper's float32 code
    salem_score: str = "logit"  # "sigmoid": Salem scored by its probability (the paper)
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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def preset_names() -> list[str]:
    files = resources.files("mistrust") / "presets"
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if where is not None:
            what += f" at line {where.line + 1}, column {where.column + 1}"
        raise ConfigError(f"{origin}: not valid YAML ({what})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level")
    return data


def load_preset_dict(name: str) -> dict[str, Any]:
    if name not in preset_names():
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(preset_names())}")
    text = (resources.files("mistrust") / "presets" / f"{name}.yaml").read_text()
    return _read_yaml(text, f"preset {name}")


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): _coerce(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-2" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {hint}")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = prefix.rstrip(".") or "config"
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]!s} in {where}; known keys: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for name in names & set(data):
        hint = hints[name]
        key = prefix + name
        if dataclasses.is_dataclass(hint):
            if not isinstance(data[name], dict):
                raise ConfigError(f"{key}: expected a mapping")
            kwargs[name] = _build(hint, data[name], key + ".")
        else:
            kwargs[name] = _coerce(data[name], hint, key)
    return cls(**kwargs)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict[str, Any]:
    """``"train.epochs=5"`` -> ``{"train": {"epochs": 5}}`` (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    out: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        out = {part: out}
    return out


#: keys that moved out of ``reference`` (they now cover every model of a study)
MOVED_REFERENCE_KEYS = ("executor", "ray_address")


def _fold_reference_executor(data: dict[str, Any]) -> dict[str, Any]:
    """Accept ``reference.executor`` / ``reference.ray_address`` (older configs) as the
    top-level keys, with a warning; a conflicting top-level value is an error."""
    ref = data.get("reference")
    if not isinstance(ref, dict) or not any(k in ref for k in MOVED_REFERENCE_KEYS):
        return data
    data, ref = dict(data), dict(ref)
    for key in MOVED_REFERENCE_KEYS:
        if key not in ref:
            continue
        value = ref.pop(key)
        if key in data and data[key] != value:
            raise ConfigError(
                f"reference.{key} ({value!r}) conflicts with the top-level {key} "
                f"({data[key]!r}); set only the top-level {key} (reference.{key} is deprecated)"
            )
        data[key] = value
        log.warning(
            "config: reference.%s is deprecated; write '%s: %s' at the top level "
            "(it now covers every model of the study)",
            key,
            key,
            value,
        )
    data["reference"] = ref
    return data


def from_dict(data: dict[str, Any]) -> Config:
    cfg = _build(Config, _fold_reference_executor(data), "")
    validate(cfg)
    return cfg


def load_config(source: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build a config from a preset name or a YAML path, then apply overrides."""
    source = source or "default"
    path = Path(source)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file {source} not found")
        data = _read_yaml(path.read_text(), str(path))
        if "preset" in data:
            base = load_preset_dict(str(data.pop("preset")))
            data = _merge(base, data)
    else:
        data = load_preset_dict(source)
    for text in overrides:
        data = _merge(data, parse_override(text))
    return from_dict(data)


def save_config(cfg: Config, path: Path) -> None:
    from mistrust.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


#: more reference models than any published attack uses (LiRA: 256); the keep matrix grows with it
MAX_REFERENCE_MODELS = 4096

#: names that become file or folder names in a run directory (sets, variants, attacks)
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def check_name(name: str, key: str) -> None:
    """Raise ``ConfigError`` unless ``name`` is safe as one path component of a run directory.

    Lowercase letters, digits, ``_``, ``.`` and ``-``, starting with a letter or
    digit, no ``..``, at most 64 characters: no ``/``, no absolute path, nothing
    that could leave ``RUN/outputs/<variant>/<role>/``.
    """
    ok = (
        isinstance(name, str)
        and len(name) <= 64
        and NAME_PATTERN.fullmatch(name) is not None
        and ".." not in name
    )
    _check(
        ok,
        f"{key}: {name!r} is not a valid name (it becomes a file name in the run directory); "
        "use lowercase letters, digits, '_', '.' and '-', starting with a letter or digit",
    )


def _finite_floats(obj: Any, prefix: str) -> None:
    for f in dataclasses.fields(obj):
        value, key = getattr(obj, f.name), prefix + f.name
        if dataclasses.is_dataclass(value):
            _finite_floats(value, key + ".")
        elif isinstance(value, float):
            _check(math.isfinite(value), f"{key} must be a finite number, got {value}")


def _check_names(cfg: Config) -> None:
    check_name(cfg.name, "name")
    e = cfg.eval
    for key, names in (
        ("eval.sets", e.sets),
        ("eval.folders", list(e.folders)),
        ("variants.names", cfg.variants.names),
        ("attacks.names", cfg.attacks.names),
        ("reference.attacks", cfg.reference.attacks),
    ):
        for name in names:
            check_name(name, key)
        dups = sorted({n for n in names if names.count(n) > 1})
        _check(not dups, f"{key} has duplicates ({', '.join(dups)}); list each name once")


def _check_classes(cfg: Config, num_classes: int) -> None:
    """Class-dependent checks, for datasets whose class count is known before loading."""
    d = cfg.data
    for c in d.held_out_classes:
        _check(
            0 <= c < num_classes,
            f"data.held_out_classes: class {c} does not exist ({d.dataset} has classes "
            f"0..{num_classes - 1})",
        )
    kept = num_classes - len(set(d.held_out_classes))
    _check(
        kept >= 2,
        f"data.held_out_classes leaves {kept} class(es) of {d.dataset}; "
        "a classifier and its attacks need at least 2",
    )
    if "salem" in cfg.attacks.names:
        _check(
            cfg.attacks.top_k <= kept,
            f"attacks.top_k ({cfg.attacks.top_k}) exceeds the {kept} classes the model has",
        )


def check_reference_config(cfg: Config) -> None:
    """Raise ``ConfigError`` for unknown or duplicate ``reference.attacks`` names."""
    from mistrust.attacks import REFERENCE_ATTACKS

    names = cfg.reference.attacks
    for name in names:
        if name not in REFERENCE_ATTACKS:
            raise ConfigError(
                f"reference.attacks: unknown attack {name!r}; choose from "
                f"{', '.join(REFERENCE_ATTACKS)}"
            )
    if len(set(names)) != len(names):
        raise ConfigError("reference.attacks has duplicates")
    if names and cfg.reference.n_models < 2:
        raise ConfigError(f"reference.n_models must be at least 2, got {cfg.reference.n_models}")


def _check_calibration(cfg: Config) -> None:
    """Post-hoc variant settings: allowed values and combinations."""
    v = cfg.variants
    _check(
        v.laplace_search_samples is None or v.laplace_search_samples > 0,
        "variants.laplace_search_samples must be positive",
    )
    if v.laplace_method == "paper":
        _check(
            v.laplace_prior == "grid" and v.laplace_pred == "mc",
            "variants.laplace_method: paper searches the prior on a grid and predicts by "
            "Monte Carlo; set variants.laplace_prior: grid and variants.laplace_pred: mc, "
            "or variants.laplace_method: laplace-torch",
        )
    # whether the splits leave the data a post-hoc variant fits on is the plan check's
    # (mistrust.plan): it knows the pool sizes, so it can say what would fit


def _one_of(key: str, value: str, choices: Sequence[str]) -> None:
    names = " or ".join([", ".join(choices[:-1]), choices[-1]] if len(choices) > 1 else choices)
    _check(value in choices, f"{key} must be {names}, got {value!r}")


def _check_choices(cfg: Config) -> None:
    """Keys with a fixed set of values; each set is kept by the module that uses it."""
    from mistrust.attacks.salem import OUTPUTS
    from mistrust.attacks.signals import PRECISIONS
    from mistrust.calibration.laplace import PREDS, PRIORS
    from mistrust.data.folders import FITS
    from mistrust.data.sources import SPLITS
    from mistrust.devices import EXECUTORS
    from mistrust.metrics.rates import AUPR_METHODS
    from mistrust.training import AUGMENTS, OPTIMIZERS
    from mistrust.variants import CALIBRATION_SETS, LAPLACE_METHODS

    d, t, a, e, v = cfg.data, cfg.train, cfg.attacks, cfg.eval, cfg.variants
    for key, value, choices in (
        ("data.augment", d.augment, AUGMENTS),
        ("data.fit", d.fit, FITS),
        ("train.optimizer", t.optimizer, OPTIMIZERS),
        ("executor", cfg.executor, EXECUTORS),
        ("attacks.score_precision", a.score_precision, PRECISIONS),
        ("attacks.salem_score", a.salem_score, OUTPUTS),
        ("attacks.aupr", a.aupr, tuple(AUPR_METHODS)),
        ("eval.ood_split", e.ood_split, SPLITS),
        ("variants.laplace_method", v.laplace_method, tuple(LAPLACE_METHODS)),
        ("variants.laplace_prior", v.laplace_prior, PRIORS),
        ("variants.laplace_pred", v.laplace_pred, PREDS),
        ("variants.calibration_set", v.calibration_set, CALIBRATION_SETS),
    ):
        _one_of(key, value, choices)


def validate(cfg: Config) -> None:
    """Range and name checks that types alone cannot express."""
    from mistrust.attacks import attack_names
    from mistrust.data.sources import get_source, source_names
    from mistrust.devices import DEVICE_TYPES
    from mistrust.models import has_width, model_names, pretrainable
    from mistrust.variants import variant_names

    _check_names(cfg)
    _finite_floats(cfg, "")
    _check_choices(cfg)
    d, t = cfg.data, cfg.train
    _check(
        d.dataset in source_names(),
        f"data.dataset: unknown dataset {d.dataset!r}; choose from {', '.join(source_names())}",
    )
    _check(cfg.model.width is None or cfg.model.width > 0, "model.width must be positive")
    _check(
        cfg.model.arch in model_names(),
        f"model.arch: unknown model {cfg.model.arch!r}; choose from {', '.join(model_names())}",
    )
    m = cfg.model
    _check(
        not m.pretrained or pretrainable(m.arch),
        f"model.pretrained: {m.arch} has no pretrained weights; set model.pretrained: false "
        f"or choose model.arch from {', '.join(n for n in model_names() if pretrainable(n))}",
    )
    _check(
        m.width is None or has_width(m.arch),
        f"model.width: {m.arch!r} has a fixed width; leave model.width unset",
    )
    for key in ("train_size", "test_size", "members", "nonmembers"):
        _check(getattr(d, key) > 0, f"data.{key} must be positive, got {getattr(d, key)}")
    _check(
        d.members <= d.train_size,
        f"data.members ({d.members}) cannot exceed data.train_size ({d.train_size})",
    )
    _check(
        d.nonmembers <= d.test_size,
        f"data.nonmembers ({d.nonmembers}) cannot exceed data.test_size ({d.test_size})",
    )
    if d.load_size is not None:
        _check(
            d.image_size is not None and d.load_size >= d.image_size,
            f"data.load_size ({d.load_size}) needs data.image_size set and at most "
            "data.load_size (images are kept at load_size and cropped to image_size)",
        )
    _check(t.lr > 0, f"train.lr must be positive, got {t.lr}")
    _check(t.epochs > 0, f"train.epochs must be positive, got {t.epochs}")
    _check(t.batch_size > 0, f"train.batch_size must be positive, got {t.batch_size}")
    _check(t.weight_decay >= 0, f"train.weight_decay must be >= 0, got {t.weight_decay}")
    _check(
        0 <= t.label_smoothing < 1,
        f"train.label_smoothing must be in [0, 1), got {t.label_smoothing}",
    )
    _check(
        cfg.device == "auto" or cfg.device.split(":")[0] in DEVICE_TYPES,
        f"device must be {', '.join(DEVICE_TYPES)} or auto, got {cfg.device!r}",
    )
    for name in cfg.variants.names:
        _check(
            name in variant_names(),
            f"variants.names: unknown variant {name!r}; choose from {', '.join(variant_names())}",
        )
    _check(len(set(cfg.variants.names)) == len(cfg.variants.names), "variants.names has duplicates")
    for name in cfg.attacks.names:
        _check(
            name in attack_names(),
            f"attacks.names: unknown attack {name!r}; choose from {', '.join(attack_names())}",
        )
    _check(cfg.attacks.top_k > 0, f"attacks.top_k must be positive, got {cfg.attacks.top_k}")
    _check(cfg.variants.temperature > 0, "variants.temperature must be positive")
    from mistrust.data.evalsets import evalset_names

    known = evalset_names()
    for name in cfg.eval.sets:
        _check(
            name in known or name in cfg.eval.folders,
            f"eval.sets: unknown evaluation set {name!r}; choose from {', '.join(known)} "
            "or name a folder under eval.folders",
        )
    check_reference_config(cfg)
    r = cfg.reference
    _check(r.n_models >= 2 or not r.attacks, "reference.n_models must be at least 2")
    _check(r.z_size > 0, "reference.z_size must be positive")
    _check(cfg.eval.gan_images > 0, "eval.gan_images must be positive")
    _check(cfg.eval.size is None or cfg.eval.size > 0, "eval.size must be positive")
    e, v = cfg.eval, cfg.variants
    for name in e.folders:
        _check(
            name not in known,
            f"eval.folders: {name!r} is a built-in evaluation set; give the folder another name",
        )
    _check(e.scale_factor > 0, f"eval.scale_factor must be positive, got {e.scale_factor}")
    _check(e.gan_epochs > 0, f"eval.gan_epochs must be positive, got {e.gan_epochs}")
    _check(e.gallery_size >= 0, f"eval.gallery_size must be >= 0, got {e.gallery_size}")
    from mistrust.data.evalsets import DATASET_SETS

    for name in e.full_sets:  # a name not in eval.sets is allowed: nothing to do for it
        _check(
            name in DATASET_SETS or name in e.folders,
            f"eval.full_sets: {name!r} is not a dataset; only sets drawn from datasets or "
            f"folders can be used whole ({', '.join(DATASET_SETS)} or eval.folders)",
        )
    _check(d.image_size is None or d.image_size > 0, "data.image_size must be positive")
    _check(
        t.eval_batch_size > 0, f"train.eval_batch_size must be positive, got {t.eval_batch_size}"
    )
    _check(t.momentum >= 0, f"train.momentum must be >= 0, got {t.momentum}")
    _check(
        0 <= v.label_smoothing < 1,
        f"variants.label_smoothing must be in [0, 1), got {v.label_smoothing}",
    )
    _check(v.weight_decay >= 0, f"variants.weight_decay must be >= 0, got {v.weight_decay}")
    _check(v.laplace_samples > 0, "variants.laplace_samples must be positive")
    _check(v.laplace_grid > 0, "variants.laplace_grid must be positive")
    _check_calibration(cfg)
    _check(
        0 <= cfg.seed < 2**31, f"seed must be an integer in [0, 2^31), got {cfg.seed}"
    )  # numpy refuses negative seeds; torch's and ours (seed + 1000 + i) must fit
    _check(cfg.seeds > 0, f"seeds must be a positive integer, got {cfg.seeds}")
    _check(
        cfg.seed + cfg.seeds <= 2**31,
        f"seeds: seed + seeds - 1 = {cfg.seed + cfg.seeds - 1} must be below 2^31; "
        "lower seeds or seed",
    )
    for key, names in (
        ("variants.names", v.names),
        ("attacks.names", cfg.attacks.names),
        ("eval.sets", e.sets),
    ):
        _check(bool(names), f"{key} is empty; name at least one")
    _check(
        r.n_models <= MAX_REFERENCE_MODELS,
        f"reference.n_models must be at most {MAX_REFERENCE_MODELS}, got {r.n_models}",
    )
    num_classes = get_source(d.dataset).num_classes
    if num_classes:
        _check_classes(cfg, num_classes)
