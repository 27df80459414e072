"""The audit tables: built once from a run's typed rows, then formatted.

* :mod:`~mistrust.present.tables.model`: :class:`Table` and the evaluation-set grid, readers of
  ``results.csv`` / ``model_metrics.csv``.
* :mod:`~mistrust.present.tables.build`: every table of a run (:func:`build_tables`).
* :mod:`~mistrust.present.tables.findings`: the headline, the verdict lines, the trade-off points.
* :mod:`~mistrust.present.tables.formats`: console, Markdown, CSV, LaTeX and HTML renderers.

``tables.md``, ``tables/*.csv`` (:mod:`mistrust.present.results`), the console summary
(:mod:`mistrust.present.summary`), ``report.md``, ``report.html`` and ``tables/*.tex``
(:mod:`mistrust.present.report`) all format these tables. docs/ARCHITECTURE.md says how a
table or a renderer is added.
"""

from __future__ import annotations

from mistrust.present.tables.build import build_tables, fpr_table, variant_fpr_table
from mistrust.present.tables.model import (
    MEMBERS,
    Table,
    read_attack_rows,
    read_model_rows,
    set_table,
)

__all__ = [
    "MEMBERS",
    "Table",
    "build_tables",
    "fpr_table",
    "read_attack_rows",
    "read_model_rows",
    "set_table",
    "variant_fpr_table",
]
