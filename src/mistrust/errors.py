"""User errors: problems with what the user gave mistrust, each with a message naming the fix.

Every exception here derives from :class:`MistrustError`. The CLI prints such
an error as one line (``mistrust: error: ...``) and exits with status 2; it
shows a traceback only with ``--debug``. Any other exception is a bug and
keeps its traceback. Each class also derives from the built-in exception that
library callers would expect (``ValueError`` for bad values, ``RuntimeError``
for files and environment), so ``except ValueError`` keeps working.

The classes stay importable from where they were first defined
(``mistrust.config.ConfigError``, ``mistrust.data.sources.DataError``,
``mistrust.study.train.CheckpointError``, ``mistrust.models.WeightsError``).
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "InputError",
    "MistrustError",
    "OutputsError",
    "WeightsError",
]


class MistrustError(Exception):
    """Base of every error caused by user input or the user's environment, not by a bug."""


class ConfigError(MistrustError, ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""


class DataError(MistrustError, RuntimeError):
    """A dataset is missing, unreadable or malformed; the message says how to fix it."""


class CheckpointError(MistrustError, RuntimeError):
    """A saved model is unreadable or does not match the configured architecture."""


class WeightsError(MistrustError, RuntimeError):
    """Pretrained weights were asked for but are not on this machine."""


class OutputsError(MistrustError, ValueError):
    """Model outputs cannot be attacked (NaN or Inf logits: a diverged model, overflowing inputs)."""


class InputError(MistrustError, ValueError):
    """Arrays handed to an attack or a metric are malformed (shape, dtype, NaN, one-sided labels)."""
