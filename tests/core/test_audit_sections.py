"""The audit config's sections check themselves (``validate()`` beside each dataclass of
``config/own.py``): a bad value fails there alone, with the line ``load_audit_config``
gives for it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from mistrust.config import ConfigError
from mistrust.config.own import AuditConfig, load_audit_config

MODEL = {
    "target": {
        "model": "/x/net.pt2",
        "members": {"folder": "/x/m"},
        "nonmembers": {"folder": "/x/n"},
    }
}
LOGITS = {"logits": {"target": {"members": "/x/m.npz", "nonmembers": "/x/n.npz"}}}

Section = Callable[[AuditConfig], None]


def _preprocess(cfg: AuditConfig) -> None:
    cfg.preprocess.validate()


def _target(cfg: AuditConfig) -> None:
    cfg.target.validate()


def _shadow(cfg: AuditConfig) -> None:
    cfg.shadow.validate(cfg.target)


def _logits(cfg: AuditConfig) -> None:
    cfg.logits.validate()


#: (the config, overrides, the section's own check, the message)
CASES: list[tuple[dict[str, Any], list[str], Section, str]] = [
    (MODEL, ["preprocess.channels=2"], _preprocess, "preprocess.channels must be 1 or 3"),
    (MODEL, ["preprocess.mean=[0.5]"], _preprocess, "preprocess.mean is given without preprocess.std; give both (one value per channel) or neither (no normalisation)"),
    (MODEL, ["preprocess.mean=[0.5]", "preprocess.std=[0]"], _preprocess, "preprocess.std must be positive"),
    (MODEL, ["target.model=null"], _target, "target: name the model: target.model (a torch.export .pt2 file), or target.factory and target.weights (a state dict)"),
    (MODEL, ["target.members.npz=/x/a.npz"], _target, "target.members: give one of folder, npz or dataset, not folder and npz"),
    (MODEL, ["target.nonmembers.split=zz"], _target, "target.nonmembers.split must be train or test"),
    (MODEL, ["target.members.index=/x/i.npy"], _target, "target.members.index needs target.members.dataset"),
    (MODEL, ["shadow.source=zz"], _shadow, "shadow.source must be none, train, checkpoint, got 'zz'"),
    (MODEL, ["shadow.source=checkpoint"], _shadow, "shadow.source: checkpoint needs shadow.model (.pt2) or shadow.weights"),
    (MODEL, ["shadow.source=checkpoint", "shadow.weights=/x/w.pt"], _shadow, "shadow.weights needs shadow.factory (the function that builds the model)"),
    (MODEL, ["shadow.source=train"], _shadow, "shadow.source: train needs a factory (target.factory or shadow.factory) to build the shadow model"),
    (MODEL, ["shadow.source=train", "shadow.factory=a.b:c", "shadow.model=/x/s.pt2"], _shadow, "shadow.source: train trains new weights"),
    (MODEL, ["shadow.source=train", "shadow.factory=a.b:c"], _shadow, "shadow.members: missing; name the images with shadow.members.folder, shadow.members.npz or shadow.members.dataset"),
    (LOGITS, ["logits.kind=zz"], _logits, "logits.kind must be logits or probs, got 'zz'"),
    (LOGITS, ["logits.target.nonmembers=null"], _logits, "logits.target.nonmembers: missing; name a file"),
    (LOGITS, ["logits.shadow.members=/x/s.npz"], _logits, "logits.shadow needs both members and nonmembers (or neither: no shadow)"),
    (LOGITS, ["logits.sets={original: /x/b.npz}"], _logits, "logits.sets: 'original' is the target's non-members"),
]  # fmt: skip


def _unchecked(data: dict[str, Any], overrides: list[str]) -> AuditConfig:
    """The audit config as loaded, before any check."""
    from mistrust.config import parse_override
    from mistrust.config.loading import _build, _merge

    for text in ["variants.calibration_set=nonmembers", *overrides]:
        data = _merge(data, parse_override(text))
    return _build(AuditConfig, data, "")


@pytest.mark.parametrize("data, overrides, section, message", CASES)
def test_an_audit_section_fails_alone_with_the_message_of_the_whole_config(
    data: dict[str, Any], overrides: list[str], section: Section, message: str
) -> None:
    want = f"^{re.escape(message)}$"
    with pytest.raises(ConfigError, match=want):
        load_audit_config(data, overrides)
    with pytest.raises(ConfigError, match=want):
        section(_unchecked(data, overrides))


@pytest.mark.parametrize(
    "data, overrides, message",
    [
        (MODEL, ["variants.names=[base, weight-decay]"], "variants.names: weight-decay trains its own models; an audit of a given model has base and the post-hoc variants (temperature, temperature-fit, laplace)"),
        (MODEL, ["variants.calibration_set=held-out"], "variants.calibration_set: held-out needs target.calibration (and shadow.calibration) images; or set variants.calibration_set: nonmembers"),
        (MODEL, ["eval.sets=[original, held-out]"], "eval.sets: held-out needs a registry run (data.held_out_classes)"),
        (LOGITS, ["variants.names=[base, laplace]"], "variants.names: laplace needs the model's last-layer features, which outputs alone do not have; audit the model (target.model) or leave laplace out"),
        (LOGITS, ["variants.names=[base, temperature]", "variants.calibration_set=held-out"], "variants.calibration_set: held-out needs logits.target.calibration (and logits.shadow.calibration); or set variants.calibration_set: nonmembers"),
    ],
)  # fmt: skip
def test_checks_between_audit_sections_keep_their_messages(
    data: dict[str, Any], overrides: list[str], message: str
) -> None:
    cfg = _unchecked(data, overrides)
    for section in (_preprocess, _target, _shadow) if "target" in data else (_logits,):
        section(cfg)  # each section alone is fine
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        load_audit_config(data, overrides)


def test_both_kinds_of_audit_pass_every_section() -> None:
    for data in (MODEL, LOGITS):
        cfg = load_audit_config(data)
        cfg.preprocess.validate()
        cfg.shadow.check_source()
    load_audit_config(MODEL).target.validate()
    load_audit_config(LOGITS).logits.validate()
