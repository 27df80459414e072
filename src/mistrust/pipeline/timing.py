"""Wall time per named stage of a run or an audit (``results.json``'s ``timings``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

__all__ = ["Timer"]


@dataclass
class Timer:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str, *, say: str | None = None) -> Iterator[None]:
        """Time ``name`` (summed over entries); with ``say``, log ``say (N.N s)`` once it
        has finished: the one console line of a stage."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
        if say is not None:
            log.info("%s (%.1f s)", say, time.perf_counter() - t0)
