"""The public API behind ``mistrust.audit``: the array-only audit of :mod:`mistrust.core.audit`,
returned as an :class:`AuditResult` that can also write a run directory (results files,
per-sample views, the report). The core itself never imports the presentation layer.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from mistrust.core.audit import Audit, MetricRow, ScoreSet
from mistrust.core.audit import audit as _audit
from mistrust.io import atomic_write_text
from mistrust.present.report import build_report
from mistrust.present.results import ATTACK_COLUMNS, tidy_csv
from mistrust.present.vulnerable import per_sample_view, write_per_sample
from mistrust.runtime.paths import RunPaths

__all__ = ["AuditResult", "MetricRow", "ScoreSet", "audit"]


class AuditResult(Audit):
    """What :func:`audit` returns: tidy metric rows and the per-sample scores behind them
    (:class:`mistrust.core.audit.Audit`), plus the files of a run directory."""

    def to_csv(self, path: Path | str) -> Path:
        """Write the rows as tidy CSV (the format of a run's ``results.csv``); return ``path``."""
        path = Path(path)
        atomic_write_text(path, tidy_csv(ATTACK_COLUMNS, self.rows))
        return path

    def report(self, directory: Path | str) -> Path:
        """Write ``results.csv``, the scores and the HTML / Markdown / LaTeX report of a run
        directory into ``directory``; return the path of ``report.html``."""
        paths = RunPaths(directory)
        self.to_csv(paths.results_csv)
        variants = list(dict.fromkeys(r.variant for r in self.rows))
        for variant in variants:
            self.save_scores(paths.variant_scores(variant))
        # the most vulnerable members and how far the attacks agree (vulnerable.csv,
        # agreement.csv); a member's index is its position among the target's members
        first = next((s for per_set in self.scores.values() for s in per_set.values()), None)
        index = np.arange(0 if first is None else int(first.is_member.sum()))
        views = [
            per_sample_view(paths.variant_scores(v), self.rows, variant=v, k=16, member_index=index)
            for v in variants
        ]
        write_per_sample(paths, views)
        return build_report(paths.root)


@functools.wraps(_audit)
def audit(*args: Any, **kwargs: Any) -> AuditResult:
    found = _audit(*args, **kwargs)
    return AuditResult(rows=found.rows, scores=found.scores)
