"""Over-confidence reduction variants: the registry of their names (docs/ARCHITECTURE.md).

Training-time variants change the training config and get their own models;
post-hoc variants transform the base models' cached outputs (:mod:`mistrust.posthoc`).
This module sits below :mod:`mistrust.config`, which reads the allowed names from
:func:`variant_names`, so it takes the training and variant settings as any objects
with the right fields rather than importing the config classes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol, TypeVar


class VariantSettings(Protocol):
    """The fields of ``variants`` that training-time variants read."""

    label_smoothing: float
    weight_decay: float


T = TypeVar("T")  # a dataclass of training settings with label_smoothing / weight_decay fields


@dataclass(frozen=True)
class Variant:
    name: str
    posthoc: bool
    description: str

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
        Variant("temperature-fit", True, "temperature fitted by NLL (variants.calibration_set)"),
        Variant(
            "laplace", True, "last-layer Laplace, Kronecker-factored (variants.laplace_method)"
        ),
    )
}


def variant_names() -> list[str]:
    return list(_VARIANTS)


def get_variant(name: str) -> Variant:
    if name not in _VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose from {', '.join(_VARIANTS)}")
    return _VARIANTS[name]
