"""One name per option: a config key keeps its name on the way to the attack that reads it.

An attack option is named once, by its key in the config (``attacks.salem_score``), and
that name is the keyword of ``mistrust.audit``, of ``create_attack`` and of the attack's
constructor, and the attribute the attack keeps it in. The keys that reach the audit by
another route are listed here, with that route.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from mistrust.attacks import attack_names, create_attack, create_reference_attack
from mistrust.attacks.reference import family_names, reference_attack_class
from mistrust.attacks.registry import _REGISTRY
from mistrust.config import AttackConfig, ReferenceConfig
from mistrust.core.audit import audit

#: keys of the ``attacks`` section that are not options of an attack object
NOT_ATTACK_OPTIONS = {
    "names": "the attacks to run: the keyword attacks= of mistrust.audit",
    "aupr": "a metric option: the keyword aupr= of mistrust.audit",
}

#: keys of the ``reference`` section that the reference stage reads, not an attack object
REFERENCE_STAGE_KEYS = {
    "attacks",
    "n_models",
    "epochs",
    "population_size",
    "z_size",
    "augment_queries",
}

#: a value of each attack option other than its default, to see it arrive
VALUES = {
    "top_k": 2,
    "class_thresholds": True,
    "strict_threshold": True,
    "score_precision": "float32",
    "salem_score": "sigmoid",
    "salem_rows": 20,
}


def _params(fn) -> set[str]:
    return set(inspect.signature(fn).parameters) - {"self", "name", "signal", "online"}


def _attack_options() -> list[str]:
    return [f.name for f in dataclasses.fields(AttackConfig) if f.name not in NOT_ATTACK_OPTIONS]


def test_every_attack_option_is_named_as_in_the_config() -> None:
    options = _attack_options()
    assert set(options) == set(VALUES)
    audit_keywords = _params(audit)
    factory_params = set().union(*(_params(f) for f in _REGISTRY.values()))
    for key in options:
        assert key in audit_keywords, f"mistrust.audit has no keyword {key}"
        assert key in _params(create_attack), f"create_attack has no keyword {key}"
        assert key in factory_params, f"no attack's constructor takes {key}"
    # and nothing else: create_attack takes the config's options and the run's seed
    assert _params(create_attack) == {*options, "seed"}


def test_every_constructor_option_of_an_attack_is_a_config_key() -> None:
    keys = {f.name for f in dataclasses.fields(AttackConfig)}
    tuning = {"hidden", "lr", "batch_size", "patience", "min_delta", "max_epochs", "n_thresholds"}
    # what tells shokri from shokri-log (its features, one model per class or one shared,
    # the rows a class needs, the rows it trains on) is the attack's design, not an option
    tuning |= {"features", "per_class", "min_class_rows", "max_rows"}
    for name, factory in _REGISTRY.items():
        # the Salem MLP's and the entropy grid's settings are the paper's, not options
        assert _params(factory) - tuning <= keys | {"seed"}, name


@pytest.mark.parametrize("key", sorted(VALUES))
def test_an_attack_option_arrives_under_its_name(key: str) -> None:
    reached = [
        name
        for name in attack_names()
        if key in _params(_REGISTRY[name])
        and getattr(create_attack(name, **{key: VALUES[key]}), key) == VALUES[key]
    ]
    assert reached, f"no attack keeps {key}"


def test_every_reference_attack_option_is_named_as_in_the_config() -> None:
    keys = {f.name for f in dataclasses.fields(ReferenceConfig)} - REFERENCE_STAGE_KEYS
    assert keys == {"fixed_variance", "rmia_a", "rmia_gamma"}
    families = [reference_attack_class(f"{family}-offline") for family in family_names()]
    assert set().union(*(_params(cls.__init__) for cls in families)) == keys
    values = {"fixed_variance": True, "rmia_a": 0.1, "rmia_gamma": 2.0}
    for family in family_names():
        attack = create_reference_attack(f"{family}-offline", **values)
        for key in _params(type(attack).__init__):
            assert getattr(attack, key) == values[key], (family, key)
