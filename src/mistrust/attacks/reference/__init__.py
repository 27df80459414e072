"""Reference-model attacks (LiRA, RMIA): one family per module, registered by name.

A family's module defines its :class:`~mistrust.attacks.reference.base.ReferenceAttack`
subclass and registers it (:func:`~mistrust.attacks.reference.registry.register_family`);
importing it here is all that adding a built-in family takes.
"""

from mistrust.attacks.reference.base import ReferenceAttack, offline_counterpart
from mistrust.attacks.reference.lira import LiRA
from mistrust.attacks.reference.registry import (
    create_reference_attack,
    family_names,
    reference_attack_class,
    reference_attack_names,
    register_family,
)
from mistrust.attacks.reference.rmia import RMIA

__all__ = [
    "RMIA",
    "LiRA",
    "ReferenceAttack",
    "create_reference_attack",
    "family_names",
    "offline_counterpart",
    "reference_attack_class",
    "reference_attack_names",
    "register_family",
]
