"""Where a run computes: the torch device (the config's ``device`` string, checked against
the machine) and the names of the executors its tasks run on (:mod:`mistrust.runtime.executors`)."""

from __future__ import annotations

import torch

from mistrust.errors import ConfigError

__all__ = ["DEVICE_TYPES", "EXECUTORS", "resolve_device"]

#: device types a ``device`` string may name (``cuda:1`` too), besides ``auto``
DEVICE_TYPES: tuple[str, ...] = ("cpu", "cuda", "mps")

#: the executor names :func:`mistrust.runtime.executors.run_tasks` accepts (``executor``); kept here,
#: below the config, so that the config can check them
EXECUTORS: tuple[str, ...] = ("local", "ray")


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA where there is a GPU, else the CPU; anything unavailable raises
    ``ConfigError``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            f"device {name!r} requested but only {torch.cuda.device_count()} GPU(s) exist"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} requested but MPS is not available; use --device cpu")
    return dev
