"""Typed configuration: YAML presets, ``--set`` overrides and validation.

A config is a tree of dataclasses (:mod:`~mistrust.config.sections`). Presets ship as
YAML files inside the package; a user file or ``--set key=value`` overrides are merged on
top of the defaults (:mod:`~mistrust.config.loading`), and anything unknown, of the wrong
type or out of range raises ``ConfigError`` (each section's ``validate()``, then the checks
between sections of :mod:`~mistrust.config.validation`; the CLI turns it into one line and
exit status 2).
"""

from mistrust.config.loading import (
    MOVED_REFERENCE_KEYS,
    from_dict,
    load_config,
    load_preset_dict,
    parse_override,
    preset_names,
    save_config,
)
from mistrust.config.sections import (
    AttackConfig,
    CanaryConfig,
    Config,
    DataConfig,
    EvalConfig,
    ModelConfig,
    ReferenceConfig,
    TrainConfig,
    VariantsConfig,
)
from mistrust.config.validation import (
    MAX_REFERENCE_MODELS,
    NAME_PATTERN,
    check_name,
    check_reference_config,
    validate,
)
from mistrust.errors import ConfigError

__all__ = [
    "MAX_REFERENCE_MODELS",
    "MOVED_REFERENCE_KEYS",
    "NAME_PATTERN",
    "AttackConfig",
    "CanaryConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "ReferenceConfig",
    "TrainConfig",
    "VariantsConfig",
    "check_name",
    "check_reference_config",
    "from_dict",
    "load_config",
    "load_preset_dict",
    "parse_override",
    "preset_names",
    "save_config",
    "validate",
]
