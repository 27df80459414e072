"""The report a researcher reads: ``build_report(run_dir)`` writes ``report.html``
(one self-contained page), ``report.md`` and ``tables/*.tex`` from a run directory."""

from __future__ import annotations

from pathlib import Path

__all__ = ["build_report"]


def build_report(run_dir: Path) -> Path:
    """Build the report of ``run_dir`` (which must hold ``results.csv``); return ``report.html``.

    Imports matplotlib lazily so that ``mistrust.report.gallery`` stays cheap to import.
    """
    from mistrust.report.html import build_report as build

    return build(Path(run_dir))
