from __future__ import annotations

import pytest

from mistrust.attacks import (
    Attack,
    ThresholdAttack,
    attack_names,
    create_attack,
    register_attack,
    registry,
)


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_builtin_names() -> None:
    names = attack_names()
    for name in ("threshold", "entropy", "salem", "loss", "modified-entropy", "logit-confidence"):
        assert name in names
        assert isinstance(create_attack(name), Attack)
        assert create_attack(name).name == name


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(ValueError, match="unknown attack 'nope'.*threshold.*salem"):
        create_attack("nope")


def test_duplicate_name_is_refused(clean_registry) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_attack("loss")(ThresholdAttack)
    with pytest.raises(ValueError, match="non-empty"):
        register_attack("")


def test_factories_receive_only_what_they_accept(clean_registry) -> None:
    seen = {}

    @register_attack("plain")
    def plain() -> Attack:
        return ThresholdAttack("loss")

    @register_attack("greedy")
    def greedy(**kwargs: object) -> Attack:
        seen.update(kwargs)
        return ThresholdAttack("loss")

    @register_attack("seeded")
    def seeded(*, seed: int) -> Attack:
        seen["seeded"] = seed
        return ThresholdAttack("loss")

    assert "plain" in attack_names()
    create_attack("plain", top_k=5)
    create_attack("greedy", class_thresholds=True)
    create_attack("seeded", seed=7)
    assert seen == {
        "top_k": 3,
        "class_thresholds": True,
        "seed": 42,
        "strict_threshold": False,
        "score_precision": "float64",
        "salem_score": "logit",
        "salem_rows": 16_384,
        "seeded": 7,
    }
    assert create_attack("loss", class_thresholds=True).class_thresholds is True
