"""The report a researcher reads: ``build_report(run_dir)`` writes ``report.html``
(one self-contained page), ``report.md`` and ``tables/*.tex`` from a run directory."""

from __future__ import annotations

from pathlib import Path

__all__ = ["build_report"]


def build_report(run_dir: Path) -> Path:
    """Build the report of ``run_dir`` (which must hold ``results.csv``); return ``report.html``.

    A directory of a study repeated over seeds (``results_seeds.csv``, no ``results.csv``)
    gets the report across seeds. Imports matplotlib lazily so that
    ``mistrust.present.report.gallery`` stays cheap to import.
    """
    from mistrust.present.report.html import build_report as build
    from mistrust.runtime.paths import RunPaths

    paths = RunPaths(run_dir)
    if not paths.results_csv.is_file() and paths.results_seeds_csv.is_file():
        from mistrust.present.report.seeds import build_seeds_report

        return build_seeds_report(paths.root)

    return build(paths)
