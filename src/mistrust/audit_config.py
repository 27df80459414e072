"""The config of ``mistrust audit``: a model (or its outputs) from outside, audited.

One YAML file names either

* a **model** (``target``): a ``torch.export`` program (``model: net.pt2``) or a
  factory plus a state dict (``factory: pkg.mod:make``, ``weights: net.pt``), its
  preprocessing (``preprocess``) and its members and non-members (image folders,
  ``.npz`` arrays or a registry dataset plus index files), with an optional shadow
  model (``shadow.source``: ``train`` with the factory, ``checkpoint``, or ``none``);
* or **outputs only** (``logits``): ``.npz`` / ``.csv`` files of logits or
  probabilities of the target (and shadow) on members, non-members and each
  evaluation set, from any framework.

The sections ``attacks``, ``variants``, ``eval`` and ``train`` (how a shadow is
trained) are those of ``mistrust run`` (:mod:`mistrust.config`), read and checked by
the same code. Layouts and examples: README, "Audit your own model".
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mistrust.config import (
    AttackConfig,
    Config,
    ConfigError,
    EvalConfig,
    TrainConfig,
    VariantsConfig,
    check_name,
    parse_override,
    validate,
)
from mistrust.config.loading import _build, _merge, _read_yaml

__all__ = [
    "AuditConfig",
    "DataSpec",
    "LogitFiles",
    "LogitsConfig",
    "PreprocessConfig",
    "ShadowConfig",
    "TargetConfig",
    "load_audit_config",
]

SHADOW_SOURCES = ("none", "train", "checkpoint")


@dataclass
class DataSpec:
    """Images of one role and part: exactly one of ``folder``, ``npz``, ``dataset``."""

    folder: str | None = None  # ROOT/<class>/*.png, or flat ROOT/*.png with ``labels``
    labels: str | None = None  # flat folder: CSV lines "file,label"
    npz: str | None = None  # arrays images (N, H, W[, C]) or (N, C, H, W), labels (N,)
    dataset: str | None = None  # a registry dataset (``mistrust datasets``)
    split: str = "train"  # of ``dataset``: train or test
    index: str | None = None  # of ``dataset``: .npy or text file of row indices

    def given(self) -> bool:
        return any(x is not None for x in (self.folder, self.npz, self.dataset))


@dataclass
class ModelSpec:
    """A model from outside: ``model`` (.pt2), or ``factory`` plus ``weights``."""

    model: str | None = None  # torch.export program saved with torch.export.save
    factory: str | None = None  # "package.module:function" returning a nn.Module
    factory_args: dict[str, int | float | bool | str] = field(default_factory=dict)
    weights: str | None = None  # torch.save(model.state_dict(), path)
    last_layer: str | None = None  # module name of the head; None: the final nn.Linear


@dataclass
class TargetConfig(ModelSpec):
    members: DataSpec = field(default_factory=DataSpec)  # the model trained on these
    nonmembers: DataSpec = field(default_factory=DataSpec)  # ... and never saw these
    calibration: DataSpec = field(default_factory=DataSpec)  # optional, never scored
    # the model's DP guarantee, if it has one: every epsilon lower bound is checked against
    # it (docs/DP.md); it holds for the post-hoc variants too (post-processing)
    dp_epsilon: float | None = None
    dp_delta: float | None = None


@dataclass
class ShadowConfig(ModelSpec):
    source: str = "none"  # "none", "train" (factory, on ``members``) or "checkpoint"
    members: DataSpec = field(default_factory=DataSpec)
    nonmembers: DataSpec = field(default_factory=DataSpec)
    calibration: DataSpec = field(default_factory=DataSpec)


@dataclass
class PreprocessConfig:
    """The transform the model expects: images to ``channels x size x size`` in [0, 1],
    then ``(x - mean) / std`` per channel. Unset size / channels: the program's input."""

    size: int | None = None
    channels: int | None = None
    mean: list[float] = field(default_factory=list)  # empty with std: no normalisation
    std: list[float] = field(default_factory=list)  # given with mean, or neither
    fit: str = "squash"  # image folders made square: "squash" or "center-crop"


@dataclass
class LogitFiles:
    members: str | None = None
    nonmembers: str | None = None
    calibration: str | None = None


@dataclass
class LogitsConfig:
    """Outputs only: ``.npz`` (``logits`` or ``probs``, optional ``labels``) or ``.csv``."""

    target: LogitFiles = field(default_factory=LogitFiles)
    shadow: LogitFiles = field(default_factory=LogitFiles)
    sets: dict[str, str] = field(default_factory=dict)  # evaluation set name -> file
    kind: str = "logits"  # what .csv files hold: "logits" or "probs"


def _audit_variants() -> VariantsConfig:
    # an outside model has no held-out split unless one is named (target.calibration)
    return VariantsConfig(calibration_set="nonmembers")


@dataclass
class AuditConfig:
    name: str = "audit"
    seed: int = 42
    device: str = "cpu"
    data_root: str | None = None  # where registry datasets are (as data.root of a run)
    target: TargetConfig = field(default_factory=TargetConfig)
    shadow: ShadowConfig = field(default_factory=ShadowConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    logits: LogitsConfig = field(default_factory=LogitsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)  # a shadow trained here
    variants: VariantsConfig = field(default_factory=_audit_variants)
    attacks: AttackConfig = field(default_factory=AttackConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    @property
    def logits_only(self) -> bool:
        return self.logits.target.members is not None

    @property
    def has_shadow(self) -> bool:
        if self.logits_only:
            return self.logits.shadow.members is not None
        return self.shadow.source != "none"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def run_config(self) -> Config:
        """The settings shared with ``mistrust run`` as a run config, for the stages
        (post-hoc variants, attacks) that read them."""
        return Config(
            name=self.name,
            seed=self.seed,
            device=self.device,
            train=self.train,
            variants=self.variants,
            attacks=self.attacks,
            eval=self.eval,
        )


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def _check_spec(spec: DataSpec, key: str, *, required: bool) -> None:
    given = [k for k in ("folder", "npz", "dataset") if getattr(spec, k) is not None]
    _check(
        len(given) <= 1,
        f"{key}: give one of folder, npz or dataset, not {' and '.join(given)}",
    )
    _check(
        given or not required,
        f"{key}: missing; name the images with {key}.folder, {key}.npz or {key}.dataset",
    )
    _check(spec.split in ("train", "test"), f"{key}.split must be train or test")
    _check(spec.labels is None or spec.folder is not None, f"{key}.labels needs {key}.folder")
    _check(spec.index is None or spec.dataset is not None, f"{key}.index needs {key}.dataset")


def _check_model(m: ModelSpec, key: str, *, required: bool) -> None:
    _check(
        m.model is None or (m.factory is None and m.weights is None),
        f"{key}: give either model (.pt2) or factory and weights, not both",
    )
    _check(
        m.weights is None or m.factory is not None,
        f"{key}.weights needs {key}.factory (the function that builds the model)",
    )
    if required:
        _check(
            m.model is not None or (m.factory is not None and m.weights is not None),
            f"{key}: name the model: {key}.model (a torch.export .pt2 file), or "
            f"{key}.factory and {key}.weights (a state dict)",
        )


def _check_normalisation(p: PreprocessConfig) -> None:
    # no default fills in a missing half: a mean with std 1 (or a std with mean 0) is not
    # the transform the model was trained with, and its outputs would silently differ
    for given, missing in (("mean", "std"), ("std", "mean")):
        _check(
            not getattr(p, given) or bool(getattr(p, missing)),
            f"preprocess.{given} is given without preprocess.{missing}; give both (one "
            "value per channel) or neither (no normalisation)",
        )
    _check(
        len(p.mean) == len(p.std),
        f"preprocess.mean has {len(p.mean)} values but preprocess.std has {len(p.std)}; "
        "give one per channel in both",
    )
    _check(
        not p.mean or p.channels is None or len(p.mean) == p.channels,
        f"preprocess.mean and std have {len(p.mean)} values for {p.channels} channels; "
        "give one per channel",
    )


def validate_audit(cfg: AuditConfig) -> None:
    """Raise ``ConfigError`` for anything the audit cannot run."""
    check_name(cfg.name, "name")
    validate(cfg.run_config())  # attacks, variants, eval, train: the checks of mistrust run
    p = cfg.preprocess
    _check(p.size is None or p.size > 0, "preprocess.size must be positive")
    _check(p.channels in (None, 1, 3), "preprocess.channels must be 1 or 3")
    _check(p.fit in ("squash", "center-crop"), "preprocess.fit must be squash or center-crop")
    _check_normalisation(p)
    _check(all(s > 0 for s in p.std), "preprocess.std must be positive")
    t = cfg.target
    _check(
        t.dp_epsilon is None or (math.isfinite(t.dp_epsilon) and t.dp_epsilon > 0),
        f"target.dp_epsilon must be a positive number, got {t.dp_epsilon}",
    )
    _check(
        t.dp_delta is None or 0 <= t.dp_delta < 1,
        f"target.dp_delta must be in [0, 1), got {t.dp_delta}",
    )
    _check(
        t.dp_delta is None or t.dp_epsilon is not None,
        "target.dp_delta needs target.dp_epsilon (the model's guarantee is the pair)",
    )
    for name in cfg.variants.names:
        _check(
            name == "base" or get_posthoc(name),
            f"variants.names: {name} trains its own models; an audit of a given model has "
            "base and the post-hoc variants (temperature, temperature-fit, laplace)",
        )
    _check(
        cfg.shadow.source in SHADOW_SOURCES,
        f"shadow.source must be {', '.join(SHADOW_SOURCES)}, got {cfg.shadow.source!r}",
    )
    if cfg.logits_only:
        _check_logits(cfg)
        return
    t, s = cfg.target, cfg.shadow
    _check_model(t, "target", required=True)
    _check_spec(t.members, "target.members", required=True)
    _check_spec(t.nonmembers, "target.nonmembers", required=True)
    _check_spec(t.calibration, "target.calibration", required=False)
    if s.source == "checkpoint":
        _check(
            s.model is not None or s.weights is not None,
            "shadow.source: checkpoint needs shadow.model (.pt2) or shadow.weights",
        )
        _check_model(
            dataclasses.replace(s, factory=s.factory or (t.factory if s.weights else None)),
            "shadow",
            required=True,
        )
    if s.source == "train":
        _check(
            (s.factory or t.factory) is not None,
            "shadow.source: train needs a factory (target.factory or shadow.factory) to "
            "build the shadow model",
        )
        _check(s.model is None and s.weights is None, "shadow.source: train trains new weights")
    if s.source != "none":
        _check_spec(s.members, "shadow.members", required=True)
        _check_spec(s.nonmembers, "shadow.nonmembers", required=True)
        _check_spec(s.calibration, "shadow.calibration", required=False)
    if cfg.variants.calibration_set == "held-out":
        _check(
            t.calibration.given() and (s.source == "none" or s.calibration.given()),
            "variants.calibration_set: held-out needs target.calibration (and "
            "shadow.calibration) images; or set variants.calibration_set: nonmembers",
        )
    unknown_sets = [n for n in cfg.eval.sets if n == "held-out"]
    _check(not unknown_sets, "eval.sets: held-out needs a registry run (data.held_out_classes)")


def _check_logits(cfg: AuditConfig) -> None:
    lg = cfg.logits
    _check(lg.kind in ("logits", "probs"), f"logits.kind must be logits or probs, got {lg.kind!r}")
    _check(lg.target.nonmembers is not None, "logits.target.nonmembers: missing; name a file")
    sh = lg.shadow
    _check(
        (sh.members is None) == (sh.nonmembers is None),
        "logits.shadow needs both members and nonmembers (or neither: no shadow)",
    )
    for name in lg.sets:
        check_name(name, "logits.sets")
        _check(name != "original", "logits.sets: 'original' is the target's non-members")
    _check(
        "laplace" not in cfg.variants.names,
        "variants.names: laplace needs the model's last-layer features, which outputs alone "
        "do not have; audit the model (target.model) or leave laplace out",
    )
    if cfg.variants.calibration_set == "held-out" and any(
        get_posthoc(v) for v in cfg.variants.names
    ):
        _check(
            lg.target.calibration is not None
            and (sh.members is None or sh.calibration is not None),
            "variants.calibration_set: held-out needs logits.target.calibration (and "
            "logits.shadow.calibration); or set variants.calibration_set: nonmembers",
        )


def get_posthoc(name: str) -> bool:
    from mistrust.variants import get_variant

    return get_variant(name).posthoc


def load_audit_config(
    source: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()
) -> AuditConfig:
    """An audit config from a YAML file (or a dict), with ``--set key=value`` overrides.

    Relative paths in a file are taken relative to the file's folder.
    """
    if isinstance(source, dict):
        data, base = dict(source), None
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"config file {source} not found")
        data, base = _read_yaml(path.read_text(), str(path)), path.parent
    for text in overrides:
        data = _merge(data, parse_override(text))
    # an outside model has no held-out split unless one is named: calibrate on non-members
    data = _merge({"variants": {"calibration_set": "nonmembers"}}, data)
    cfg = _build(AuditConfig, data, "")
    if base is not None:
        _resolve_paths(cfg, base)
    validate_audit(cfg)
    return cfg


_PATH_KEYS = ("folder", "labels", "npz", "index", "model", "weights")


def _resolve_paths(cfg: AuditConfig, base: Path) -> None:
    def fix(obj: Any) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                fix(value)
            elif f.name in _PATH_KEYS or isinstance(obj, LogitFiles):
                if isinstance(value, str) and not Path(value).is_absolute():
                    setattr(obj, f.name, str(base / value))

    for section in (cfg.target, cfg.shadow, cfg.logits):
        fix(section)
    cfg.logits.sets = {
        k: v if Path(v).is_absolute() else str(base / v) for k, v in cfg.logits.sets.items()
    }
    cfg.eval.folders = {
        k: v if Path(v).is_absolute() else str(base / v) for k, v in cfg.eval.folders.items()
    }
