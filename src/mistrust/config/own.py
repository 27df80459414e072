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

from mistrust.calibration.variants import get_variant, variant_names
from mistrust.config import (
    AttackConfig,
    Config,
    ConfigError,
    EvalConfig,
    ReferenceConfig,
    TrainConfig,
    VariantsConfig,
    parse_override,
    validate,
)
from mistrust.config.checks import check, check_name, check_names, finite_floats
from mistrust.config.loading import _build, _merge, _read_yaml

__all__ = [
    "AuditConfig",
    "AuditReferenceConfig",
    "DataSpec",
    "LogitFiles",
    "LogitsConfig",
    "PreprocessConfig",
    "ShadowConfig",
    "TargetConfig",
    "load_audit_config",
]

SHADOW_SOURCES = ("none", "train", "checkpoint")
#: the arrays of ``reference.logits`` that are not named after an evaluation set
REFERENCE_ARRAYS = ("population", "target_z")


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

    def validate(self, key: str, *, required: bool) -> None:
        """The images named once (``required``: named at all), under the config key ``key``."""
        given = [k for k in ("folder", "npz", "dataset") if getattr(self, k) is not None]
        check(
            len(given) <= 1,
            f"{key}: give one of folder, npz or dataset, not {' and '.join(given)}",
        )
        check(
            given or not required,
            f"{key}: missing; name the images with {key}.folder, {key}.npz or {key}.dataset",
        )
        check(self.split in ("train", "test"), f"{key}.split must be train or test")
        check(self.labels is None or self.folder is not None, f"{key}.labels needs {key}.folder")
        check(self.index is None or self.dataset is not None, f"{key}.index needs {key}.dataset")


@dataclass
class ModelSpec:
    """A model from outside: ``model`` (.pt2), or ``factory`` plus ``weights``."""

    model: str | None = None  # torch.export program saved with torch.export.save
    factory: str | None = None  # "package.module:function" returning a nn.Module
    factory_args: dict[str, int | float | bool | str] = field(default_factory=dict)
    weights: str | None = None  # torch.save(model.state_dict(), path)
    last_layer: str | None = None  # module name of the head; None: the final nn.Linear

    def validate_model(self, key: str, *, required: bool) -> None:
        """One way to name the model (``required``: named at all), under the config key ``key``."""
        check(
            self.model is None or (self.factory is None and self.weights is None),
            f"{key}: give either model (.pt2) or factory and weights, not both",
        )
        check(
            self.weights is None or self.factory is not None,
            f"{key}.weights needs {key}.factory (the function that builds the model)",
        )
        if required:
            check(
                self.model is not None or (self.factory is not None and self.weights is not None),
                f"{key}: name the model: {key}.model (a torch.export .pt2 file), or "
                f"{key}.factory and {key}.weights (a state dict)",
            )


@dataclass
class TargetConfig(ModelSpec):
    members: DataSpec = field(default_factory=DataSpec)  # the model trained on these
    nonmembers: DataSpec = field(default_factory=DataSpec)  # ... and never saw these
    calibration: DataSpec = field(default_factory=DataSpec)  # optional, never scored
    # the model's DP guarantee, if it has one: every epsilon lower bound is checked against
    # it (docs/DP.md); it holds for the post-hoc variants too (post-processing)
    dp_epsilon: float | None = None
    dp_delta: float | None = None

    def check_guarantee(self) -> None:
        """The claimed DP guarantee, checked for an audit of outputs too."""
        check(
            self.dp_epsilon is None or (math.isfinite(self.dp_epsilon) and self.dp_epsilon > 0),
            f"target.dp_epsilon must be a positive number, got {self.dp_epsilon}",
        )
        check(
            self.dp_delta is None or 0 <= self.dp_delta < 1,
            f"target.dp_delta must be in [0, 1), got {self.dp_delta}",
        )
        check(
            self.dp_delta is None or self.dp_epsilon is not None,
            "target.dp_delta needs target.dp_epsilon (the model's guarantee is the pair)",
        )

    def validate(self) -> None:
        self.validate_model("target", required=True)
        self.members.validate("target.members", required=True)
        self.nonmembers.validate("target.nonmembers", required=True)
        self.calibration.validate("target.calibration", required=False)


@dataclass
class ShadowConfig(ModelSpec):
    source: str = "none"  # "none", "train" (factory, on ``members``) or "checkpoint"
    members: DataSpec = field(default_factory=DataSpec)
    nonmembers: DataSpec = field(default_factory=DataSpec)
    calibration: DataSpec = field(default_factory=DataSpec)

    def check_source(self) -> None:
        check(
            self.source in SHADOW_SOURCES,
            f"shadow.source must be {', '.join(SHADOW_SOURCES)}, got {self.source!r}",
        )

    def validate(self, target: ModelSpec) -> None:
        """What ``source`` needs: a checkpoint or a trained shadow may be built by the
        target's factory."""
        self.check_source()
        if self.source == "checkpoint":
            check(
                self.model is not None or self.weights is not None,
                "shadow.source: checkpoint needs shadow.model (.pt2) or shadow.weights",
            )
            factory = self.factory or (target.factory if self.weights else None)
            dataclasses.replace(self, factory=factory).validate_model("shadow", required=True)
        if self.source == "train":
            check(
                (self.factory or target.factory) is not None,
                "shadow.source: train needs a factory (target.factory or shadow.factory) to "
                "build the shadow model",
            )
            check(
                self.model is None and self.weights is None,
                "shadow.source: train trains new weights",
            )
        if self.source != "none":
            self.members.validate("shadow.members", required=True)
            self.nonmembers.validate("shadow.nonmembers", required=True)
            self.calibration.validate("shadow.calibration", required=False)


@dataclass
class PreprocessConfig:
    """The transform the model expects: images to ``channels x size x size`` in [0, 1],
    then ``(x - mean) / std`` per channel. Unset size / channels: the program's input."""

    size: int | None = None
    channels: int | None = None
    mean: list[float] = field(default_factory=list)  # empty with std: no normalisation
    std: list[float] = field(default_factory=list)  # given with mean, or neither
    fit: str = "squash"  # image folders made square: "squash" or "center-crop"

    def validate(self) -> None:
        check(self.size is None or self.size > 0, "preprocess.size must be positive")
        check(self.channels in (None, 1, 3), "preprocess.channels must be 1 or 3")
        check(self.fit in ("squash", "center-crop"), "preprocess.fit must be squash or center-crop")
        # no default fills in a missing half: a mean with std 1 (or a std with mean 0) is not
        # the transform the model was trained with, and its outputs would silently differ
        for given, missing in (("mean", "std"), ("std", "mean")):
            check(
                not getattr(self, given) or bool(getattr(self, missing)),
                f"preprocess.{given} is given without preprocess.{missing}; give both (one "
                "value per channel) or neither (no normalisation)",
            )
        check(
            len(self.mean) == len(self.std),
            f"preprocess.mean has {len(self.mean)} values but preprocess.std has "
            f"{len(self.std)}; give one per channel in both",
        )
        check(
            not self.mean or self.channels is None or len(self.mean) == self.channels,
            f"preprocess.mean and std have {len(self.mean)} values for {self.channels} "
            "channels; give one per channel",
        )
        check(all(s > 0 for s in self.std), "preprocess.std must be positive")


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

    def validate(self) -> None:
        check(
            self.kind in ("logits", "probs"),
            f"logits.kind must be logits or probs, got {self.kind!r}",
        )
        check(self.target.nonmembers is not None, "logits.target.nonmembers: missing; name a file")
        sh = self.shadow
        check(
            (sh.members is None) == (sh.nonmembers is None),
            "logits.shadow needs both members and nonmembers (or neither: no shadow)",
        )
        for name in self.sets:
            check_name(name, "logits.sets")
            check(name != "original", "logits.sets: 'original' is the target's non-members")


@dataclass
class AuditReferenceConfig:
    """Reference-model attacks (LiRA, RMIA) on reference models trained elsewhere:
    ``keep`` (``.npz``: who trained on which population row) and either their outputs,
    ``logits`` (``.npz``: every reference model's logits, and the target's on RMIA's
    ``z`` rows; an audit of outputs), or the models themselves (an audit of a model):
    ``models`` (``.pt2`` files) or ``factory`` plus ``weights`` (state dicts), run over
    the audited rows, ``population`` (further images) and every evaluation set; or,
    with ``n_models`` instead of ``keep`` and the models, trained by the audit itself
    from the factory with the ``train`` recipe. Layouts: docs/REFERENCE_AUDIT.md. The attack options are those of ``mistrust run``'s
    ``reference`` section."""

    attacks: list[str] = field(default_factory=list)
    keep: str | None = None
    logits: str | None = None
    models: list[str] = field(default_factory=list)  # torch.export programs, one per model
    factory: str | None = None  # None: the target's factory
    factory_args: dict[str, int | float | bool | str] = field(default_factory=dict)
    weights: list[str] = field(default_factory=list)  # state dicts, one per model
    population: str | None = None  # .npz images + labels: the rows after the audited ones
    n_models: int = 0  # > 0: the audit trains this many reference models (even) itself
    rmia_gamma: float = 1.0
    rmia_a: float = 0.3
    fixed_variance: bool = False

    @property
    def checkpoints(self) -> list[ModelSpec]:
        """The reference models as the target is named (the factory: the target's unless
        given), in the order of keep's rows."""
        if self.models:
            return [ModelSpec(model=m) for m in self.models]
        return [
            ModelSpec(factory=self.factory, factory_args=dict(self.factory_args), weights=w)
            for w in self.weights
        ]

    def validate(self, *, logits_only: bool, target_factory: str | None = None) -> None:
        check_names("reference.attacks", self.attacks)
        finite_floats(self, "reference.")
        ReferenceConfig(attacks=list(self.attacks)).check_attacks()
        if not self.attacks:
            return
        given = [k for k in ("models", "weights", "population", "n_models") if getattr(self, k)]
        if self.n_models and not logits_only:
            self._validate_trained(target_factory)
            return
        check(
            self.keep is not None,
            "reference.keep: missing; name the .npz file (docs/REFERENCE_AUDIT.md)",
        )
        if logits_only:
            check(
                not given and self.factory is None,
                f"reference.{(given or ['factory'])[0]}: an audit of outputs reads the "
                "reference models' logits (reference.logits); audit the model (target.model) "
                "to run reference checkpoints",
            )
            check(
                self.logits is not None,
                "reference.logits: missing; name the .npz file (docs/REFERENCE_AUDIT.md)",
            )
            return
        check(
            self.logits is None,
            "reference.logits: an audit of a model runs the reference models; name them "
            "with reference.models (.pt2) or reference.weights (docs/REFERENCE_AUDIT.md)",
        )
        check(
            bool(self.models) != bool(self.weights),
            "reference: name the reference models with reference.models (.pt2 files) or "
            "reference.weights (state dicts), one of the two",
        )
        check(
            not self.models or self.factory is None,
            "reference.factory builds the models of reference.weights, not of reference.models",
        )
        check(
            not self.weights or (self.factory or target_factory) is not None,
            "reference.weights needs a factory (reference.factory or target.factory)",
        )

    def _validate_trained(self, target_factory: str | None) -> None:
        """``n_models``: the audit draws the keep matrix and trains the models itself."""
        named = [k for k in ("models", "weights", "keep", "logits") if getattr(self, k)]
        check(
            not named,
            f"reference.n_models: the audit trains the reference models and draws their "
            f"keep matrix itself; leave out reference.{(named or [''])[0]}, or n_models to "
            "audit given checkpoints",
        )
        check(
            self.n_models >= 2 and self.n_models % 2 == 0,
            f"reference.n_models: must be even and at least 2 (each audited sample is IN "
            f"for exactly half of the models), got {self.n_models}",
        )
        check(
            (self.factory or target_factory) is not None,
            "reference.n_models: training reference models needs a factory "
            "(reference.factory or target.factory)",
        )


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
    reference: AuditReferenceConfig = field(default_factory=AuditReferenceConfig)

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


def validate_audit(cfg: AuditConfig) -> None:
    """Raise ``ConfigError`` for anything the audit cannot run: each section's own checks
    (``validate()`` beside it), then those between sections."""
    check_name(cfg.name, "name")
    validate(cfg.run_config())  # attacks, variants, eval, train: the checks of mistrust run
    cfg.preprocess.validate()
    _variants_of_a_given_model(cfg)
    cfg.shadow.check_source()
    cfg.target.check_guarantee()
    cfg.reference.validate(logits_only=cfg.logits_only, target_factory=cfg.target.factory)
    if cfg.logits_only:
        cfg.logits.validate()
        _reference_set_names(cfg)
        _variants_of_outputs(cfg)
        return
    _reference_set_names(cfg)
    cfg.target.validate()
    cfg.shadow.validate(cfg.target)
    _calibration_images(cfg)
    _no_held_out_set(cfg)


def _reference_set_names(cfg: AuditConfig) -> None:
    """The reference logits (a file's arrays, or those computed from the checkpoints) are
    named after the sets, beside two of their own."""
    if cfg.reference.attacks:
        key, sets = (
            ("logits.sets", cfg.logits.sets) if cfg.logits_only else ("eval.sets", cfg.eval.sets)
        )
        for name in REFERENCE_ARRAYS:
            check(
                name not in sets,
                f"{key}: {name!r} is an array of reference.logits; rename the set",
            )


def _variants_of_a_given_model(cfg: AuditConfig) -> None:
    for name in cfg.variants.names:
        check(
            get_variant(name).from_base,
            f"variants.names: {name} trains its own models; an audit of a given model has "
            f"base and the post-hoc variants ({', '.join(_from_base_names())})",
        )


def _variants_of_outputs(cfg: AuditConfig) -> None:
    """Outputs alone: no last-layer features, and held-out calibration needs its files."""
    lg = cfg.logits
    for name in cfg.variants.names:
        check(
            not get_variant(name).needs_features,
            f"variants.names: {name} needs the model's last-layer features, which outputs "
            f"alone do not have; audit the model (target.model) or leave {name} out",
        )
    if cfg.variants.calibration_set == "held-out" and any(
        get_variant(v).posthoc for v in cfg.variants.names
    ):
        check(
            lg.target.calibration is not None
            and (lg.shadow.members is None or lg.shadow.calibration is not None),
            "variants.calibration_set: held-out needs logits.target.calibration (and "
            "logits.shadow.calibration); or set variants.calibration_set: nonmembers",
        )


def _calibration_images(cfg: AuditConfig) -> None:
    t, s = cfg.target, cfg.shadow
    if cfg.variants.calibration_set == "held-out":
        check(
            t.calibration.given() and (s.source == "none" or s.calibration.given()),
            "variants.calibration_set: held-out needs target.calibration (and "
            "shadow.calibration) images; or set variants.calibration_set: nonmembers",
        )


def _no_held_out_set(cfg: AuditConfig) -> None:
    unknown_sets = [n for n in cfg.eval.sets if n == "held-out"]
    check(not unknown_sets, "eval.sets: held-out needs a registry run (data.held_out_classes)")


def _from_base_names() -> list[str]:
    """The post-hoc variants, which an audit of a given model can have beside base."""

    return [n for n in variant_names() if get_variant(n).posthoc]


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
    r = cfg.reference
    r.keep, r.logits, r.population = (
        v if v is None or Path(v).is_absolute() else str(base / v)
        for v in (r.keep, r.logits, r.population)
    )
    r.models, r.weights = (
        [v if Path(v).is_absolute() else str(base / v) for v in files]
        for files in (r.models, r.weights)
    )
    cfg.logits.sets = {
        k: v if Path(v).is_absolute() else str(base / v) for k, v in cfg.logits.sets.items()
    }
    cfg.eval.folders = {
        k: v if Path(v).is_absolute() else str(base / v) for k, v in cfg.eval.folders.items()
    }
