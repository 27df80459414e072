"""Reference-attack registry: families -> classes, and the attack names they give.

A family (a :class:`~mistrust.attacks.reference.base.ReferenceAttack` subclass) registers
once, in its own module, with :func:`register_family`; its two attacks,
``<family>-online`` and ``<family>-offline``, are then known to the config, the plan and
the reference stage. :func:`create_reference_attack` hands a family the options of the
reference section through its ``from_options`` (by default: those its constructor takes).
"""

from __future__ import annotations

from typing import Any, TypeVar

from mistrust.attacks.reference.base import MODES, ReferenceAttack, attack_name, split_name

__all__ = [
    "create_reference_attack",
    "family_names",
    "reference_attack_class",
    "reference_attack_names",
    "register_family",
]

C = TypeVar("C", bound=type[ReferenceAttack])

_FAMILIES: dict[str, type[ReferenceAttack]] = {}


def register_family(cls: C) -> C:
    """Class decorator registering the family ``cls.family`` (both of its attacks).

    Raises:
        ValueError: ``cls`` is no ReferenceAttack, its ``family`` is empty or holds a
            ``-online`` / ``-offline`` suffix, or the family is already registered.
    """
    if not (isinstance(cls, type) and issubclass(cls, ReferenceAttack)):
        raise ValueError(f"a reference-attack family must subclass ReferenceAttack, got {cls!r}")
    family = cls.family
    if not isinstance(family, str) or not family or family.endswith(tuple(f"-{m}" for m in MODES)):
        raise ValueError(f"{cls.__name__}.family must name the family, got {family!r}")
    if family in _FAMILIES:
        raise ValueError(f"reference-attack family {family!r} is already registered")
    _FAMILIES[family] = cls
    return cls


def family_names() -> list[str]:
    """Registered families, in registration order."""
    return list(_FAMILIES)


def reference_attack_names() -> list[str]:
    """Every registered reference attack: each family's online, then offline attack."""
    return [attack_name(f, online=online) for f in _FAMILIES for online in MODES.values()]


def reference_attack_class(name: str) -> type[ReferenceAttack]:
    """The class of the family that the attack ``name`` belongs to.

    Raises:
        ValueError: ``name`` is not a registered reference attack (the message lists them).
    """
    try:
        family, _ = split_name(name)
        return _FAMILIES[family]
    except (ValueError, KeyError):
        raise ValueError(
            f"unknown reference attack {name!r}; choose from {', '.join(reference_attack_names())}"
        ) from None


def create_reference_attack(name: str, **options: Any) -> ReferenceAttack:
    """The unfitted attack ``name`` (one of :func:`reference_attack_names`), built from the
    options of the reference section (``fixed_variance``, ``rmia_a``, ``rmia_gamma``, ...):
    each family takes those it knows.

    Raises:
        ValueError: ``name`` is not a registered reference attack.
    """
    cls = reference_attack_class(name)
    return cls.from_options(online=split_name(name)[1], **options)
