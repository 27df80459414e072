"""``validate``: every check of a config, with one-line errors.

Each section checks its own keys (``validate()`` beside its dataclass in
:mod:`mistrust.config.sections`); the checks here are those between sections.
"""

from __future__ import annotations

from mistrust.config.checks import NAME_PATTERN, check, check_name
from mistrust.config.sections import MAX_REFERENCE_MODELS, Config

__all__ = [
    "MAX_REFERENCE_MODELS",
    "NAME_PATTERN",
    "check_classes",
    "check_name",
    "check_reference_config",
    "validate",
]


def validate(cfg: Config) -> None:
    """Range, name and choice checks that types alone cannot express."""
    cfg.validate()
    for section in cfg.sections():
        section.validate()
    for between in BETWEEN_SECTIONS:
        between(cfg)


def check_reference_config(cfg: Config) -> None:
    """Raise ``ConfigError`` for unknown or duplicate ``reference.attacks`` names."""
    cfg.reference.check_attacks()


def check_classes(cfg: Config, num_classes: int) -> None:
    """The held-out classes and Salem's ``top_k`` against the dataset's ``num_classes``
    (the plan check calls it once an image folder's classes are counted)."""
    d = cfg.data
    for c in d.held_out_classes:
        check(
            0 <= c < num_classes,
            f"data.held_out_classes: class {c} does not exist ({d.dataset} has classes "
            f"0..{num_classes - 1})",
        )
    kept = num_classes - len(set(d.held_out_classes))
    check(
        kept >= 2,
        f"data.held_out_classes leaves {kept} class(es) of {d.dataset}; "
        "a classifier and its attacks need at least 2",
    )
    if "salem" in cfg.attacks.names:
        check(
            cfg.attacks.top_k <= kept,
            f"attacks.top_k ({cfg.attacks.top_k}) exceeds the {kept} classes the model has",
        )


def _classes_of_the_dataset(cfg: Config) -> None:
    """:func:`check_classes` for a dataset whose class count is known before loading."""
    from mistrust.data.sources import get_source

    num_classes = get_source(cfg.data.dataset).num_classes
    if num_classes:
        check_classes(cfg, num_classes)


def _canaries_set_name(cfg: Config) -> None:
    """The canaries' outputs are cached as the evaluation set ``canaries`` (docs/DP.md)."""
    check(
        not cfg.canaries.count or "canaries" not in cfg.eval.sets,
        "eval.sets: 'canaries' names the canaries' outputs when canaries.count is set; "
        "give the evaluation set another name",
    )


#: the checks of one section against another, after every section's own
BETWEEN_SECTIONS = (_classes_of_the_dataset, _canaries_set_name)
