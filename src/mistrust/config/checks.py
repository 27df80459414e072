"""The checks every section's validator is made of, each failing with one ``ConfigError`` line."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Any

from mistrust.errors import ConfigError

#: names that become file or folder names in a run directory (sets, variants, attacks)
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def check_name(name: str, key: str) -> None:
    """Raise ``ConfigError`` unless ``name`` is safe as one path component of a run directory.

    Lowercase letters, digits, ``_``, ``.`` and ``-``, starting with a letter or
    digit, no ``..``, at most 64 characters: no ``/``, no absolute path, nothing
    that could leave ``RUN/outputs/<variant>/<role>/``.
    """
    ok = (
        isinstance(name, str)
        and len(name) <= 64
        and NAME_PATTERN.fullmatch(name) is not None
        and ".." not in name
    )
    check(
        ok,
        f"{key}: {name!r} is not a valid name (it becomes a file name in the run directory); "
        "use lowercase letters, digits, '_', '.' and '-', starting with a letter or digit",
    )


def check_names(key: str, names: Sequence[str]) -> None:
    """Each name valid as a file name (:func:`check_name`), and listed once."""
    for name in names:
        check_name(name, key)
    dups = sorted({n for n in names if names.count(n) > 1})
    check(not dups, f"{key} has duplicates ({', '.join(dups)}); list each name once")


def finite_floats(obj: Any, prefix: str) -> None:
    """Every float field of the dataclass ``obj`` (and of those inside it) is finite."""
    for f in dataclasses.fields(obj):
        value, key = getattr(obj, f.name), prefix + f.name
        if dataclasses.is_dataclass(value):
            finite_floats(value, key + ".")
        elif isinstance(value, float):
            check(math.isfinite(value), f"{key} must be a finite number, got {value}")


def one_of(key: str, value: str, choices: Sequence[str]) -> None:
    names = " or ".join([", ".join(choices[:-1]), choices[-1]] if len(choices) > 1 else choices)
    check(value in choices, f"{key} must be {names}, got {value!r}")


def not_empty(key: str, names: Sequence[str]) -> None:
    check(bool(names), f"{key} is empty; name at least one")
