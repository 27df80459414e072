"""The report of a study repeated over seeds (``mistrust run --seeds K``).

Reads ``results_seeds.csv``, ``model_metrics_seeds.csv`` and ``config.yaml`` of the
top-level run directory and writes ``report.html`` and ``report.md`` there: mean ± sd of
the false-positive rates, AUROC and model accuracy, with a link to each seed's own
report (``seed-<seed>/report.html``).
"""

from __future__ import annotations

from html import escape
from importlib import resources
from pathlib import Path
from string import Template

import yaml

from mistrust._version import __version__
from mistrust.io import atomic_write_text
from mistrust.present.repeats import read_seed_rows, seed_cells, seed_dirs, seed_table
from mistrust.present.tables import Table
from mistrust.present.tables.formats import to_html
from mistrust.present.tables.model import ordered
from mistrust.rows import ModelSeedRow
from mistrust.runtime.paths import RunPaths

__all__ = ["build_seeds_report", "render"]


def _model_table(model_rows: list[ModelSeedRow], seeds: int) -> Table:
    """Train / test accuracy and ECE of each variant's target model, mean ± sd."""
    wanted = (("train", "accuracy", "train acc."), ("test", "accuracy", "test acc."))
    wanted += (("test", "ece", "ECE"),)
    cells = {
        (r.variant, label): (r.n, r.mean, r.sd)
        for r in model_rows
        for d, m, label in wanted
        if r.role == "target" and (r.dataset, r.metric) == (d, m)
    }
    variants = ordered(k[0] for k in cells)
    t = Table(
        "models", "Target models", variants, [label for *_, label in wanted], cells, "variant"
    )
    return seed_cells(t, seeds)


def render(run_dir: Path) -> tuple[str, str]:
    """``(html, markdown)`` of the report across seeds in ``run_dir``."""
    paths = RunPaths(run_dir)
    rows = read_seed_rows(paths.results_seeds_csv)
    model_rows = read_seed_rows(paths.model_metrics_seeds_csv, ModelSeedRow)
    config_text = paths.config.read_text() if paths.config.is_file() else ""
    config = (yaml.safe_load(config_text) if config_text else None) or {}
    if "seed" in config and "seeds" in config:
        seeds = [int(config["seed"]) + i for i in range(int(config["seeds"]))]
    else:
        seeds = [int(p.name.split("-", 1)[1]) for p in seed_dirs(paths.root)]
    k = len(seeds)
    name = str(config.get("name", paths.root.name))
    links = ", ".join(
        f'<a href="{escape(paths.seed_run(s).report_html.relative_to(paths.root).as_posix())}">'
        f"{s}</a>"
        if paths.seed_run(s).report_html.is_file()
        else str(s)
        for s in seeds
    )
    parts = [
        '<section id="summary" class="summary">'
        f'<p class="headline">The study repeated with {k} seeds: {links}</p>'
        '<p class="note">Each cell: mean ± sample standard deviation over the seeds; '
        "(n=k) where only k seeds have a value. Every metric is in results_seeds.csv and "
        "model_metrics_seeds.csv; each seed's own run and report are in seed-&lt;seed&gt;/."
        "</p></section>",
        '<section id="tables"><h2>Across seeds</h2><div class="tables">',
    ]
    md = [f"# mistrust audit: {name}, {k} seeds\n", f"Seeds: {', '.join(map(str, seeds))}.\n"]
    for v in ordered(r.variant for r in rows):
        for metric, title in (
            ("fpr", "False-positive rate per evaluation set"),
            ("auroc", "AUROC"),
        ):
            t = seed_table(rows, v, metric)
            if t.cells:
                t.title = f"{title} ({v})"
                parts.append(to_html(seed_cells(t, k)))
    models = _model_table(model_rows, k)
    if models.rows:
        parts.append(to_html(models))
    parts.append("</div></section>")
    if paths.tables_seeds_md.is_file():
        md.append(paths.tables_seeds_md.read_text())
    cfg = f"<pre>{escape(config_text)}</pre>" if config_text else ""
    parts.append(f'<section id="config"><h2>Configuration</h2>{cfg}</section>')
    nav = (("summary", "Summary"), ("tables", "Across seeds"), ("config", "Config"))
    template = Template((resources.files("mistrust.present.report") / "template.html").read_text())
    page = template.substitute(
        title=escape(f"mistrust audit: {name}, {k} seeds"),
        nav="".join(f'<a href="#{key}">{t}</a>' for key, t in nav),
        body="".join(parts),
        subtitle=escape(
            f"mean ± sd over seeds {', '.join(map(str, seeds))} · run folder {paths.root.name}"
        ),
        version=escape(__version__),
    )
    return page, "\n".join(md)


def build_seeds_report(run_dir: Path) -> Path:
    """Write ``report.html`` and ``report.md`` across seeds into ``run_dir``; return the HTML."""
    paths = RunPaths(run_dir)
    if not paths.results_seeds_csv.is_file():
        raise FileNotFoundError(f"no {paths.results_seeds_csv.name} in run directory {run_dir}")
    page, md = render(paths.root)
    atomic_write_text(paths.report_md, md)
    out = paths.report_html
    atomic_write_text(out, page)
    return out
