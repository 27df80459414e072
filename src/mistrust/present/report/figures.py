"""The figure sections of ``report.html`` (ROC curves, max-score histograms, galleries,
reliability diagrams, trade-off) and the per-sample view; the plots themselves are
drawn by :mod:`mistrust.present.report.plots`."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from html import escape
from pathlib import Path

from mistrust.errors import InputError
from mistrust.io import atomic_write_bytes
from mistrust.present.report import members, plots
from mistrust.present.report.run import Run
from mistrust.present.tables.findings import tradeoff_points
from mistrust.present.tables.formats import to_html
from mistrust.present.tables.model import attacks_of, lookup, of_variant, sets_of, variants_of


@dataclass(frozen=True)
class _Plot:
    """A figure of the report: ``draw()`` makes it (None: its inputs are missing)."""

    draw: Callable[[], object]
    caption: str
    alt: str
    css: str = ""
    save: Path | None = None  # also kept as a PNG file in the run directory


def _render(specs: list[_Plot]) -> list[str]:
    """Each plot as an embedded ``<figure>`` ("" where it has no inputs), drawn in parallel
    (:func:`mistrust.present.report.plots.draw_pngs`)."""
    pngs = plots.draw_pngs([p.draw for p in specs])
    html = []
    for p, png in zip(specs, pngs, strict=True):
        if png is None:
            html.append("")
            continue
        if p.save is not None:
            atomic_write_bytes(p.save, png)
        cls = f' class="{p.css}"' if p.css else ""
        html.append(
            f'<figure{cls}><img alt="{escape(p.alt)}" src="{plots.data_uri(png)}">'
            f"<figcaption>{escape(p.caption)}</figcaption></figure>"
        )
    return html


def _section(key: str, title: str, items: list[str], missing: str) -> str:
    items = [x for x in items if x]
    body = (
        f'<div class="figs">{"".join(items)}</div>'
        if items
        else (f'<p class="missing">{escape(missing)}</p>')
    )
    return f'<section id="{key}"><h2>{escape(title)}</h2>{body}</section>'


def _gallery(run: Run, name: str) -> Path | None:
    """``figures/gallery_<name>.png`` if the run has it (None for a name that cannot be a
    file name)."""
    try:
        path = run.paths.gallery(name)
    except InputError:
        return None
    return path if path.is_file() else None


def _galleries(run: Run, sets: list[str]) -> list[str]:
    root = run.paths.figures_dir
    found = {s: p for s in sets if (p := _gallery(run, s)) is not None}
    pattern = run.paths.gallery("*").name  # gallery_*.png
    extra = sorted(p for p in root.glob(pattern) if p not in found.values())
    found.update({p.stem[len("gallery_") :]: p for p in extra})
    return [
        f'<figure><img alt="{escape(f"false positives: {s}")}" '
        f'src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode("ascii")}">'
        f"<figcaption>{escape(s)}: highest-scored non-members</figcaption></figure>"
        for s, p in found.items()
    ]


def per_sample(run: Run) -> str:
    """The most vulnerable members (table and thumbnails) and the attacks' agreement,
    for the first variant (``vulnerable.csv`` and ``agreement.csv`` hold every variant)."""
    v = variants_of(run.rows)[0]
    items = [members.vulnerable_html(run.paths, v)]
    png = run.paths.figure("vulnerable")
    if png.is_file():
        items.append(
            f'<figure class="full"><img alt="most vulnerable members" '
            f'src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode("ascii")}">'
            "<figcaption>The same members, largest margin first: dataset index and class "
            "above, the target's max softmax score below</figcaption></figure>"
        )
    items += [to_html(t) for t in members.agreement_tables(run.paths, v)]
    items = [x for x in items if x]
    body = (
        f'<div class="tables">{"".join(items)}</div>'
        if items
        else '<p class="missing">No vulnerable.csv or agreement.csv in the run: '
        "per-sample view omitted.</p>"
    )
    return f'<section id="per-sample"><h2>Per-sample view</h2>{body}</section>'


def figures(run: Run) -> str:
    variants, attacks = variants_of(run.rows), attacks_of(run.rows)
    v0, sets = variants[0], sets_of(of_variant(run.rows, variants[0]))
    mval = lookup(run.model_rows)
    roc = [
        _Plot(
            partial(plots.roc_figure, run.paths, v0, a, sets),
            f"{a}: ROC (left) and log-log ROC "
            f"(right), members vs each set; dots mark the shadow-calibrated threshold",
            f"ROC curves of {a}",
        )
        for a in attacks
    ]
    if len(variants) > 1:
        roc.append(
            _Plot(
                partial(plots.variant_roc_figure, run.paths, variants, attacks),
                "In-distribution log-log ROC per variant",
                "ROC per variant",
                "full",
            )
        )
    hist = [
        _Plot(
            partial(
                plots.histogram_figure,
                run.paths,
                v,
                attacks[0],
                sets_of(of_variant(run.rows, v)),
                {
                    s: mval[(v, "target", s, "emd_max_score")]
                    for s in sets
                    if (v, "target", s, "emd_max_score") in mval
                },
            ),
            f"{v}: max softmax score of the members (black outline) vs each set (filled)",
            f"max-score histograms for {v}",
            "full",
        )
        for v in variants
    ]
    rel = _Plot(
        partial(plots.reliability_figure, run.paths, variants),
        "Accuracy per confidence bin (15 equal-width bins, empty bins left out); red "
        "dashes: the bin's mean confidence (above the bar: over-confident)",
        "reliability diagrams",
        "full",
        run.paths.figure("reliability"),
    )
    trade = _Plot(
        partial(plots.tradeoff_figure, tradeoff_points(run.rows)),
        "One point per (variant, attack); colour = attack, marker = variant",
        "over-confidence vs leakage trade-off",
        "full",
        run.paths.figure("tradeoff"),
    )
    drawn = iter(_render([*roc, *hist, rel, trade]))
    roc_html, hist_html = [next(drawn) for _ in roc], [next(drawn) for _ in hist]
    rel_html, trade_html = next(drawn), next(drawn)
    return "".join(
        [
            _section("roc", "ROC curves", roc_html, "No stored scores: ROC curves omitted."),
            _section(
                "histograms", "Max-score distributions", hist_html, "No stored scores: omitted."
            ),
            _section(
                "galleries",
                "False-positive galleries",
                _galleries(run, sets),
                "No figures/gallery_*.png in the run: galleries omitted.",
            ),
            _section(
                "reliability",
                "Reliability diagrams",
                [rel_html],
                "No outputs/<variant>/target/test.npz: reliability diagrams omitted.",
            ),
            _section(
                "tradeoff",
                "Over-confidence vs leakage",
                [trade_html],
                "No out-of-distribution sets: trade-off plot omitted.",
            ),
        ]
    )
