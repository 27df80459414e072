"""Over-confidence reduction variants (DESIGN §2).

Training-time variants change the training config and get their own models;
post-hoc variants transform the base models' cached outputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from mistrust.config import TrainConfig, VariantsConfig


def _never(vcfg: VariantsConfig) -> bool:
    return False


def _always(vcfg: VariantsConfig) -> bool:
    return True


def _laplace_needs_held_out(vcfg: VariantsConfig) -> bool:
    """Whether the prior search validates on held-out test data (the calibration split).

    Read from the config where it says so (``laplace_validation``, or the paper's
    construction under ``laplace_method: paper``, which validates on the attack
    non-members); without such an option the search uses the held-out split.
    """
    validation = getattr(vcfg, "laplace_validation", None)
    if validation is not None:
        return validation not in ("nonmembers", "attack-nonmembers")
    return getattr(vcfg, "laplace_method", None) != "paper"


@dataclass(frozen=True)
class Variant:
    name: str
    posthoc: bool
    description: str
    #: whether the variant fits on each role's held-out calibration split (test data
    #: the attacks never score), which exists only when data.test_size > data.nonmembers
    needs_held_out: Callable[[VariantsConfig], bool] = _never

    def train_config(self, base: TrainConfig, vcfg: VariantsConfig) -> TrainConfig:
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
            "temperature-fit", True, "temperature fitted by NLL on held-out test data", _always
        ),
        Variant(
            "laplace",
            True,
            "last-layer Laplace approximation (Kronecker-factored)",
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
