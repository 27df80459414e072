"""Over-confidence reduction variants: the registry of their names (docs/ARCHITECTURE.md).

Training-time variants change the training config and get their own models;
post-hoc variants transform the base models' cached outputs (:mod:`mistrust.posthoc`).
This module sits below :mod:`mistrust.config`, which reads the allowed names from
:func:`variant_names`, so it takes the training and variant settings as any objects
with the right fields rather than importing the config classes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar


class VariantSettings(Protocol):
    """The fields of ``variants`` that training-time variants read."""

    label_smoothing: float
    weight_decay: float


T = TypeVar("T")  # a dataclass of training settings with label_smoothing / weight_decay fields


class CalibrationSettings(Protocol):
    """The fields of ``variants`` that decide which data a post-hoc variant fits on."""

    calibration_set: str  # "held-out" (test data the attacks never score) or "nonmembers"
    laplace_method: str  # "paper" or "laplace-torch"
    laplace_prior: str  # "grid" (validated) or "marglik" (training data only)


def _never(vcfg: CalibrationSettings) -> bool:
    return False


def _fits_on_validation(vcfg: CalibrationSettings) -> bool:
    return vcfg.calibration_set == "held-out"


def laplace_validates(vcfg: CalibrationSettings) -> bool:
    """Whether the Laplace prior search needs validation data (``calibration_set``):
    the paper's construction and the grid do, laplace-torch's marglik does not."""
    return vcfg.laplace_method == "paper" or vcfg.laplace_prior == "grid"


def _laplace_needs_held_out(vcfg: CalibrationSettings) -> bool:
    return laplace_validates(vcfg) and _fits_on_validation(vcfg)


@dataclass(frozen=True)
class Variant:
    name: str
    posthoc: bool
    description: str
    #: whether the variant fits on each role's held-out calibration split (test data
    #: the attacks never score), which exists only when data.test_size > data.nonmembers
    needs_held_out: Callable[[CalibrationSettings], bool] = _never

    def train_config(self, base: T, vcfg: VariantSettings) -> T:
        if self.name == "label-smoothing":
            return dataclasses.replace(base, label_smoothing=vcfg.label_smoothing)
        if self.name == "weight-decay":
            return dataclasses.replace(base, weight_decay=vcfg.weight_decay)
        return base


_VARIANTS = {
    v.name: v
    for v in (
        Variant("base", False, "plain training"),
        Variant("label-smoothing", False, "cross-entropy with label smoothing"),
        Variant("weight-decay", False, "L2 weight decay"),
        Variant("temperature", True, "softmax temperature fixed at variants.temperature"),
        Variant(
            "temperature-fit",
            True,
            "temperature fitted by NLL (variants.calibration_set)",
            _fits_on_validation,
        ),
        Variant(
            "laplace",
            True,
            "last-layer Laplace, Kronecker-factored (variants.laplace_method)",
            _laplace_needs_held_out,
        ),
    )
}


def variant_names() -> list[str]:
    return list(_VARIANTS)


def get_variant(name: str) -> Variant:
    if name not in _VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose from {', '.join(_VARIANTS)}")
    return _VARIANTS[name]
