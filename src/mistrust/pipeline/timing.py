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
    _inner: list[float] = field(default_factory=list, repr=False)  # per open stage

    @contextmanager
    def stage(self, name: str, *, say: str | None = None) -> Iterator[None]:
        """Time ``name`` (summed over entries); a stage opened inside another counts only
        for itself, so the stages add up to the whole. With ``say``, log ``say (N.N s)``
        once it has finished: the one console line of a stage."""
        t0 = time.perf_counter()
        self.seconds.setdefault(name, 0.0)  # listed in the order the stages open
        self._inner.append(0.0)
        try:
            yield
        finally:
            elapsed = time.perf_counter() - t0
            own = elapsed - self._inner.pop()
            self.seconds[name] += own
            if self._inner:
                self._inner[-1] += elapsed
        if say is not None:
            log.info("%s (%.1f s)", say, elapsed)
