"""Membership inference attacks on model outputs (logits), fitted on a shadow model.

Example::

    from mistrust.attacks import create_attack
    attack = create_attack("loss").fit(shadow_logits, shadow_labels, shadow_is_member)
    score = attack.score(target_logits, target_labels)  # (N,), higher = member
    member = attack.decide(score)  # == attack.predict(target_logits, target_labels)

Built-in score-based attacks (``SCORE_BASED_ATTACKS``): ``threshold`` (max
softmax score), ``entropy``, ``salem`` (ML-Leaks MLP on the top-k scores) from
the paper, plus ``loss``, ``modified-entropy`` and ``logit-confidence``. Registered
but run only when named (``OPT_IN_ATTACKS``, config key ``attacks.names``): ``shokri``
(Shokri et al.'s per-class models on the full sorted softmax vector) and ``shokri-log``
(one model on the sorted log-softmax and the label's logit-confidence). Other modules
add attacks with :func:`register_attack`.

Only have probabilities? Pass ``signals.probs_to_logits(p)`` (= ``log p``) as logits.
"""

from __future__ import annotations

from functools import partial

from mistrust.attacks import signals
from mistrust.attacks.base import Attack, NotFittedError
from mistrust.attacks.reference import (
    RMIA,
    LiRA,
    ReferenceAttack,
    create_reference_attack,
    reference_attack_names,
)
from mistrust.attacks.registry import attack_names, create_attack, register_attack
from mistrust.attacks.salem import SalemAttack
from mistrust.attacks.score_based import SIGNAL_SCORES, EntropyAttack, ThresholdAttack
from mistrust.attacks.set_signals import SetSignals
from mistrust.attacks.shokri import ShokriAttack, ShokriLogAttack

__all__ = [
    "OPT_IN_ATTACKS",
    "REFERENCE_ATTACKS",
    "SCORE_BASED_ATTACKS",
    "SIGNAL_SCORES",
    "Attack",
    "EntropyAttack",
    "LiRA",
    "NotFittedError",
    "RMIA",
    "ReferenceAttack",
    "SalemAttack",
    "SetSignals",
    "ShokriAttack",
    "ShokriLogAttack",
    "ThresholdAttack",
    "attack_names",
    "create_attack",
    "create_reference_attack",
    "reference_attack_names",
    "register_attack",
    "signals",
]

#: the attacks defined in this package that need only the target's (and shadow's) outputs
SCORE_BASED_ATTACKS: tuple[str, ...] = (
    "threshold",
    "entropy",
    "salem",
    "loss",
    "modified-entropy",
    "logit-confidence",
)

#: score-based attacks that are registered but not in the default list (nor any preset's):
#: a run includes them when ``attacks.names`` names them, ``audit`` when ``attacks`` does
OPT_IN_ATTACKS: tuple[str, ...] = ("shokri", "shokri-log")


def __getattr__(name: str) -> tuple[str, ...]:
    # REFERENCE_ATTACKS: the attacks that also need reference models trained on the target's
    # data distribution (every family of :mod:`mistrust.attacks.reference`, online and
    # offline; run by :mod:`mistrust.study.reference`). Read from the registry on each
    # access, so a family registered later is in it too.
    if name == "REFERENCE_ATTACKS":
        return tuple(reference_attack_names())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _register_builtins() -> None:
    for name in SCORE_BASED_ATTACKS:
        if name in attack_names():  # module reloaded
            continue
        if name == "entropy":
            register_attack(name)(EntropyAttack)
        elif name == "salem":
            register_attack(name)(SalemAttack)
        else:
            register_attack(name)(partial(ThresholdAttack, name))
    for cls in (ShokriAttack, ShokriLogAttack):
        if cls.name not in attack_names():
            register_attack(cls.name)(cls)


_register_builtins()
