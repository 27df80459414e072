"""Attack registry: names -> factories, so the CLI and configs list choices from one place.

A factory is any callable returning an :class:`~mistrust.attacks.base.Attack`
(usually the class itself). :func:`create_attack` passes it only the keyword
arguments its signature accepts (all of them if it takes ``**kwargs``), so a
factory simply leaves out the options that do not apply to it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from mistrust.attacks.base import Attack
from mistrust.attacks.salem import FIT_ROWS

__all__ = ["attack_names", "create_attack", "register_attack"]

F = TypeVar("F", bound=Callable[..., Attack])

_REGISTRY: dict[str, Callable[..., Attack]] = {}


def register_attack(name: str) -> Callable[[F], F]:
    """Decorator registering an attack factory under ``name``.

    Raises:
        ValueError: ``name`` is empty or already registered.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"attack name must be a non-empty string, got {name!r}")

    def deco(factory: F) -> F:
        if name in _REGISTRY:
            raise ValueError(f"attack {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def attack_names() -> list[str]:
    """Registered attack names, in registration order."""
    return list(_REGISTRY)


def create_attack(
    name: str,
    *,
    top_k: int = 3,
    class_thresholds: bool = False,
    seed: int = 42,
    strict_threshold: bool = False,
    score_precision: str = "float64",
    salem_score: str = "logit",
    salem_rows: int | None = FIT_ROWS,
) -> Attack:
    """Build the attack registered as ``name`` (unfitted).

    Args:
        name: a key of :func:`attack_names`.
        top_k: number of top softmax scores the ``salem`` attack model sees.
        class_thresholds: one threshold per true class for the label-dependent
            threshold attacks (``threshold``, ``loss``, ``modified-entropy``,
            ``logit-confidence``).
        seed: seed of attacks that train a model (``salem``).
        strict_threshold: the threshold attacks decide ``score > threshold`` (the
            paper's rule) instead of ``>=``.
        score_precision: ``"float64"``, or ``"float32"`` for scores in the paper's
            float32 torch arithmetic (``threshold``, ``entropy``, ``salem``; the other
            ``threshold``-family signals are rounded to float32).
        salem_score: what ``salem`` scores with, ``"logit"`` or ``"sigmoid"`` (the paper).
        salem_rows: most shadow rows ``salem``'s attack model trains on (a seeded sample
            of a larger shadow set); None: every row (the paper).

    Each option has the name of its key in the config's ``attacks`` section (and of the
    keyword of :func:`mistrust.audit`), and a factory takes it under that name.

    Raises:
        ValueError: unknown ``name`` (the message lists the choices).
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown attack {name!r}; choose one of: {', '.join(attack_names())}"
        ) from None
    kwargs: dict[str, Any] = {
        "top_k": top_k,
        "class_thresholds": class_thresholds,
        "seed": seed,
        "strict_threshold": strict_threshold,
        "score_precision": score_precision,
        "salem_score": salem_score,
        "salem_rows": salem_rows,
    }
    params = inspect.signature(factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return factory(**kwargs)
