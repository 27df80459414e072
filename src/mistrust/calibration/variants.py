"""Over-confidence reduction variants, each one registration (docs/ARCHITECTURE.md).

A training-time variant (:class:`TrainingVariant`) names the training settings it
changes and gets its own target and shadow models. A post-hoc variant
(:class:`PosthocVariant`) builds a fit/transform step from the ``variants``
settings; :mod:`mistrust.pipeline.posthoc` fits one step per role on that role's base
outputs and writes what the step makes of them. Adding a variant is one
:func:`register_variant` call: the config, the plan check and the run find it by name.

This module sits below :mod:`mistrust.config`, which reads the allowed names from
:func:`variant_names`, so it takes the training and variant settings as any objects
with the right fields rather than importing the config classes.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import torch

from mistrust.calibration.temperature import TemperatureScaling
from mistrust.training.private import DPSettings

log = logging.getLogger(__name__)

#: the variant every other is measured against; post-hoc variants start from its outputs
BASE = "base"

#: ``variants.calibration_set`` choices: what a post-hoc variant fits on, per role: the
#: test rows the attacks never score, or the attack non-members (the paper)
CALIBRATION_SETS: tuple[str, ...] = ("held-out", "nonmembers")


class VariantSettings(Protocol):
    """The fields of ``variants`` that the variants read."""

    label_smoothing: float
    weight_decay: float
    temperature: float
    calibration_set: str  # "held-out" (test data the attacks never score) or "nonmembers"
    laplace_method: str  # a key of LAPLACE_METHODS
    laplace_prior: str  # "grid" (validated) or "marglik" (training data only)
    laplace_pred: str  # "mc" or "probit"
    laplace_samples: int
    laplace_grid: int
    laplace_search_samples: int | None
    dp_epsilon: float | list[float]  # one DP-SGD variant per value (a single value: one)
    dp_delta: float
    dp_max_grad_norm: float


class CalibrationSettings(Protocol):
    """The fields of ``variants`` that decide which data a post-hoc variant fits on."""

    calibration_set: str
    laplace_method: str
    laplace_prior: str


T = TypeVar("T")  # a dataclass of training settings


class ModelOutputs(Protocol):
    """One model's cached outputs on one set (:class:`mistrust.core.outputs.Outputs`)."""

    logits: np.ndarray  # (N, C)
    labels: np.ndarray  # (N,)
    features: np.ndarray | None  # (N, D) penultimate activations


class RoleBase(Protocol):
    """One role's base model and outputs, which a post-hoc step may fit on. Each part is
    loaded on first use, so a step reads (and requires) only what it needs."""

    def head(self) -> torch.nn.Linear: ...  # the base model's last layer
    def train(self) -> ModelOutputs: ...  # its training split
    def calibration(self) -> ModelOutputs: ...  # its variants.calibration_set rows
    def noise(self) -> ModelOutputs: ...  # the noise evaluation set


class PosthocStep(Protocol):
    """A post-hoc variant for one role: :meth:`fit` on the role's base, then
    :meth:`transform` each of its base outputs into logits-like ``(N, C)``."""

    def fit(self, role: RoleBase) -> PosthocStep: ...
    def transform(self, out: ModelOutputs) -> np.ndarray: ...
    def fitted(self) -> dict[str, float]: ...  # what was learned, for results.json


def _never(vcfg: CalibrationSettings) -> bool:
    return False


def _fits_on_validation(vcfg: CalibrationSettings) -> bool:
    return vcfg.calibration_set == "held-out"


def laplace_validates(vcfg: CalibrationSettings) -> bool:
    """Whether the Laplace prior search needs validation data (``calibration_set``):
    the paper's construction and the grid do, laplace-torch's marglik does not."""
    return LAPLACE_METHODS[vcfg.laplace_method].validates(vcfg)


def _laplace_needs_held_out(vcfg: CalibrationSettings) -> bool:
    return laplace_validates(vcfg) and _fits_on_validation(vcfg)


# --------------------------------------------------------------------- the steps


class TemperatureStep:
    """Temperature scaling of the logits: fixed (``temperature``) or, with ``None``,
    fitted by NLL on the role's calibration rows."""

    def __init__(self, temperature: float | None) -> None:
        self.scaling = TemperatureScaling(temperature)

    def fit(self, role: RoleBase) -> TemperatureStep:
        if self.scaling.temperature is None:
            cal = role.calibration()
            self.scaling.fit(cal.logits, cal.labels)
        else:
            self.scaling.fit()
        return self

    def transform(self, out: ModelOutputs) -> np.ndarray:
        return self.scaling.transform(out.logits)

    def fitted(self) -> dict[str, float]:
        return {"temperature": float(self.scaling.temperature_)}


def _laplace_torch(
    v: VariantSettings, head: torch.nn.Linear, role: RoleBase, *, seed: int, batch_size: int
) -> Any:
    from mistrust import calibration  # looked up at fit time, so a test can stand in for it

    train, noise = role.train(), role.noise()
    cal = role.calibration() if laplace_validates(v) else None
    if v.laplace_search_samples not in (None, v.laplace_samples):
        log.info("variants.laplace_search_samples applies to laplace_method: paper only")
    return calibration.fit_last_layer_laplace(
        head,
        train.features,
        train.labels,
        val_feats=None if cal is None else cal.features,
        val_labels=None if cal is None else cal.labels,
        ood_feats=noise.features,
        prior=v.laplace_prior,
        grid_size=v.laplace_grid,
        n_samples=v.laplace_samples,
        pred=v.laplace_pred,
        seed=seed,
    )


def _paper_laplace(
    v: VariantSettings, head: torch.nn.Linear, role: RoleBase, *, seed: int, batch_size: int
) -> Any:
    from mistrust.calibration.paper_laplace import PaperLaplace

    train, noise, cal = role.train(), role.noise(), role.calibration()
    return PaperLaplace(
        head,
        grid=np.logspace(0.0, 3.0, v.laplace_grid),
        search_samples=v.laplace_search_samples or v.laplace_samples,
        n_samples=v.laplace_samples,
        batch_size=2 * batch_size,  # the paper's Laplace loaders: twice the training batch
        seed=seed,
    ).fit(
        train.features,
        val_feats=cal.features,
        val_labels=cal.labels,
        ood_feats=noise.features,
    )


@dataclass(frozen=True)
class LaplaceMethod:
    """One construction of last-layer Laplace: how it is fitted on a role's base, and
    whether its prior search reads validation data."""

    fit: Callable[..., Any]  # (settings, head, role, *, seed, batch_size) -> fitted object
    validates: Callable[[CalibrationSettings], bool]


#: ``variants.laplace_method`` -> its construction (the allowed values of that key)
LAPLACE_METHODS: dict[str, LaplaceMethod] = {
    "laplace-torch": LaplaceMethod(_laplace_torch, lambda v: v.laplace_prior == "grid"),
    "paper": LaplaceMethod(_paper_laplace, lambda v: True),
}


class LaplaceStep:
    """Last-layer Laplace of the role's base model (``variants.laplace_method``), applied to
    the cached penultimate features; its output is the log predictive."""

    def __init__(self, settings: VariantSettings, *, seed: int, batch_size: int) -> None:
        self.settings, self.seed, self.batch_size = settings, seed, batch_size

    def fit(self, role: RoleBase) -> LaplaceStep:
        method = LAPLACE_METHODS[self.settings.laplace_method]
        self.laplace_ = method.fit(
            self.settings, role.head(), role, seed=self.seed, batch_size=self.batch_size
        )
        return self

    def transform(self, out: ModelOutputs) -> np.ndarray:
        return self.laplace_.predict_logprobs(out.features)

    def fitted(self) -> dict[str, float]:
        return {"prior_precision": float(self.laplace_.prior_precision_)}


# ------------------------------------------------------------------ the registry


@dataclass(frozen=True)
class TrainingVariant:
    """A variant with its own models, trained with ``changes(settings)`` applied to the
    training settings (e.g. ``{"weight_decay": 3e-4}``)."""

    name: str
    description: str
    changes: Callable[[VariantSettings], dict[str, Any]] = lambda v: {}
    #: DP-SGD's settings where the variant trains privately (docs/DP.md), else None
    private: Callable[[VariantSettings], DPSettings | None] = lambda v: None
    posthoc: ClassVar[bool] = False
    #: evaluation sets it reads besides the role's splits
    needs_sets: ClassVar[tuple[str, ...]] = ()
    #: it reads no last layer or features: its outputs are its models' logits
    needs_features: ClassVar[bool] = False
    #: it fits on no labels (its models were trained before the audit sees them)
    labelled_splits: ClassVar[tuple[str, ...]] = ()

    def needs_held_out(self, vcfg: CalibrationSettings) -> bool:
        return False

    @property
    def from_base(self) -> bool:
        """Whether its outputs come from the base models alone, so that an audit of a
        model from outside (which has only that model) can have it: only ``base`` does;
        every other training-time variant trains models of its own."""
        return self.name == BASE

    def train_config(self, base: T, vcfg: VariantSettings) -> T:
        changes = self.changes(vcfg)
        return dataclasses.replace(base, **changes) if changes else base


@dataclass(frozen=True)
class PosthocVariant:
    """A variant of the base models' outputs: ``step(settings, seed=, batch_size=)``
    builds the :class:`PosthocStep` fitted per role (``batch_size``: the training batch)."""

    name: str
    description: str
    step: Callable[..., PosthocStep]
    #: whether it fits on each role's held-out calibration split (test data the attacks
    #: never score), which exists only when data.test_size > data.nonmembers
    needs_held_out: Callable[[CalibrationSettings], bool] = _never
    #: evaluation sets it reads besides the role's splits (built even if not in eval.sets)
    needs_sets: tuple[str, ...] = ()
    #: whether it reads the base model's last layer and penultimate features, which outputs
    #: read from files (an audit of logits) do not have
    needs_features: bool = False
    #: each role's cached splits whose labels its fit reads: ``train`` (the members) and
    #: ``test`` (the non-members, then the held-out calibration rows); an audit refuses
    #: the variant where they have none
    labelled_splits: tuple[str, ...] = ()
    posthoc: ClassVar[bool] = True
    #: made from the base models' outputs: an audit of a model from outside can have it
    from_base: ClassVar[bool] = True


Variant = TrainingVariant | PosthocVariant


@dataclass(frozen=True)
class VariantFamily:
    """A name of ``variants.names`` that stands for several variants, one per value of a
    setting (``dp-sgd`` -> ``dp-sgd-eps1``, ``dp-sgd-eps8``): the config expands it
    (:func:`expand_names`), and every later stage sees only the members' names."""

    name: str
    description: str
    members: Callable[[VariantSettings], list[str]]  # the names it expands to
    member: Callable[[str], Variant | None]  # the variant a member's name stands for

    # what the config's checks ask before the family is expanded: its members train
    # models of their own, from the roles' splits alone
    posthoc: ClassVar[bool] = False
    from_base: ClassVar[bool] = False
    needs_sets: ClassVar[tuple[str, ...]] = ()
    needs_features: ClassVar[bool] = False
    labelled_splits: ClassVar[tuple[str, ...]] = ()

    def needs_held_out(self, vcfg: CalibrationSettings) -> bool:
        return False


_VARIANTS: dict[str, Variant] = {}
_FAMILIES: dict[str, VariantFamily] = {}


def register_variant(variant: Variant) -> Variant:
    """Make ``variant`` a choice of ``variants.names``."""
    if variant.name in _VARIANTS:
        raise ValueError(f"variant {variant.name!r} is already registered")
    _VARIANTS[variant.name] = variant
    return variant


def register_family(family: VariantFamily) -> VariantFamily:
    """Make ``family`` a choice of ``variants.names``, and its members' names valid."""
    if family.name in _VARIANTS or family.name in _FAMILIES:
        raise ValueError(f"variant {family.name!r} is already registered")
    _FAMILIES[family.name] = family
    return family


register_variant(TrainingVariant(BASE, "plain training"))
register_variant(
    TrainingVariant(
        "label-smoothing",
        "cross-entropy with label smoothing",
        lambda v: {"label_smoothing": v.label_smoothing},
    )
)
register_variant(
    TrainingVariant("weight-decay", "L2 weight decay", lambda v: {"weight_decay": v.weight_decay})
)
register_variant(
    PosthocVariant(
        "temperature",
        "softmax temperature fixed at variants.temperature",
        lambda v, **_: TemperatureStep(v.temperature),
    )
)
register_variant(
    PosthocVariant(
        "temperature-fit",
        "temperature fitted by NLL (variants.calibration_set)",
        lambda v, **_: TemperatureStep(None),
        _fits_on_validation,
        labelled_splits=("test",),  # the NLL of the calibration rows' true classes
    )
)
register_variant(
    PosthocVariant(
        "laplace",
        "last-layer Laplace, Kronecker-factored (variants.laplace_method)",
        LaplaceStep,
        _laplace_needs_held_out,
        needs_sets=("noise",),  # the prior objective's out-of-distribution term
        needs_features=True,
        labelled_splits=("train",),  # the Hessian of the members' loss
    )
)


def variant_names() -> list[str]:
    """The names ``variants.names`` may hold (a family's members are valid too:
    :func:`is_variant`)."""
    return list(_VARIANTS) + list(_FAMILIES)


def is_variant(name: str) -> bool:
    """Whether ``name`` is a registered variant, a family or one of a family's members."""
    return name in _VARIANTS or name in _FAMILIES or _member(name) is not None


def _member(name: str) -> Variant | None:
    for family in _FAMILIES.values():
        found = family.member(name)
        if found is not None:
            return found
    return None


def expand_names(names: list[str], vcfg: VariantSettings) -> list[str]:
    """``names`` with every family replaced by its members (in place, in order, each
    name once)."""
    out: list[str] = []
    for name in names:
        for n in _FAMILIES[name].members(vcfg) if name in _FAMILIES else [name]:
            if n not in out:
                out.append(n)
    return out


def get_variant(name: str) -> Variant:
    """The variant ``name`` (a family's member too). A family itself, which the config
    expands before any stage runs, answers only what the config's checks ask of it."""
    found = _VARIANTS.get(name) or _member(name) or _FAMILIES.get(name)  # type: ignore[arg-type]
    if found is None:
        raise ValueError(f"unknown variant {name!r}; choose from {', '.join(variant_names())}")
    return found


# --------------------------------------------------------------- DP-SGD variants

#: a DP-SGD variant's name: ``dp-sgd-eps<epsilon>`` (``dp-sgd-eps8``, ``dp-sgd-eps0.5``)
DP_SGD = "dp-sgd"
_DP_NAME = re.compile(re.escape(DP_SGD) + r"-eps(\d+(?:\.\d+)?)")


def dp_variant_name(epsilon: float) -> str:
    """``dp-sgd-eps<epsilon>``, the epsilon written without exponent or trailing zeros."""
    return f"{DP_SGD}-eps{np.format_float_positional(float(epsilon), trim='-')}"


def _dp_epsilons(v: VariantSettings) -> list[float]:
    eps = v.dp_epsilon
    return [float(e) for e in eps] if isinstance(eps, list) else [float(eps)]


def _dp_member(name: str) -> TrainingVariant | None:
    found = _DP_NAME.fullmatch(name)
    if found is None:
        return None
    eps = float(found.group(1))
    return TrainingVariant(
        name,
        f"DP-SGD (Opacus), target epsilon {found.group(1)}",
        private=lambda v: DPSettings(eps, v.dp_delta, v.dp_max_grad_norm),
    )


register_family(
    VariantFamily(
        DP_SGD,
        "DP-SGD (Opacus), one variant per variants.dp_epsilon",
        lambda v: [dp_variant_name(e) for e in _dp_epsilons(v)],
        _dp_member,
    )
)


def private_settings(name: str, vcfg: VariantSettings) -> DPSettings | None:
    """DP-SGD's settings of variant ``name``, None where it does not train privately."""
    variant = get_variant(name)
    return variant.private(vcfg) if isinstance(variant, TrainingVariant) else None


def sets_needed(names: list[str]) -> list[str]:
    """Evaluation sets that the variants ``names`` read besides the roles' splits."""
    return [s for n in names for s in get_variant(n).needs_sets]


def sets_fitted_on() -> set[str]:
    """Evaluation sets some post-hoc variant fits on: both roles need their outputs."""
    return {s for v in _VARIANTS.values() for s in v.needs_sets}
