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
from mistrust.repeats import format_cell, read_seed_rows, seed_dir, seed_dirs, seed_table

__all__ = ["build_seeds_report", "render"]

SEEDS_FILE = "results_seeds.csv"


def _table(
    title: str, rows: list[str], cols: list[str], cells: dict, seeds: int, corner: str
) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in [corner, *cols])
    body = "".join(
        f'<tr><th scope="row">{escape(r)}</th>'
        + "".join(f"<td>{escape(format_cell(cells.get((r, c)), seeds))}</td>" for c in cols)
        + "</tr>"
        for r in rows
    )
    return (
        f'<div class="tablebox"><table><caption>{escape(title)}</caption><thead><tr>{head}'
        f"</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _model_cells(model_rows: list[tuple]) -> tuple[list[str], list[str], dict]:
    wanted = (("train", "accuracy", "train acc."), ("test", "accuracy", "test acc."))
    wanted += (("test", "ece", "ECE"),)
    cells = {
        (v, label): (n, mean, sd)
        for v, role, d, m, n, mean, sd in model_rows
        for dd, mm, label in wanted
        if role == "target" and (d, m) == (dd, mm)
    }
    variants = list(dict.fromkeys(k[0] for k in cells))
    return variants, [label for *_, label in wanted], cells


def render(run_dir: Path) -> tuple[str, str]:
    """``(html, markdown)`` of the report across seeds in ``run_dir``."""
    run_dir = Path(run_dir)
    rows = read_seed_rows(run_dir / SEEDS_FILE)
    model_rows = read_seed_rows(run_dir / "model_metrics_seeds.csv")
    config_text = (
        (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else ""
    )
    config = (yaml.safe_load(config_text) if config_text else None) or {}
    if "seed" in config and "seeds" in config:
        seeds = [int(config["seed"]) + i for i in range(int(config["seeds"]))]
    else:
        seeds = [int(p.name.split("-", 1)[1]) for p in seed_dirs(run_dir)]
    k = len(seeds)
    name = str(config.get("name", run_dir.name))
    links = ", ".join(
        f'<a href="{escape(f"seed-{s}/report.html")}">{s}</a>'
        if (seed_dir(run_dir, s) / "report.html").is_file()
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
    for v in dict.fromkeys(r[0] for r in rows):
        for metric, title in (
            ("fpr", "False-positive rate per evaluation set"),
            ("auroc", "AUROC"),
        ):
            r, c, cells = seed_table(rows, v, metric)
            if cells:
                parts.append(_table(f"{title} ({v})", r, c, cells, k, "set \\ attack"))
    variants, cols, cells = _model_cells(model_rows)
    if cells:
        parts.append(_table("Target models", variants, cols, cells, k, "variant"))
    parts.append("</div></section>")
    if (run_dir / "tables_seeds.md").is_file():
        md.append((run_dir / "tables_seeds.md").read_text())
    cfg = f"<pre>{escape(config_text)}</pre>" if config_text else ""
    parts.append(f'<section id="config"><h2>Configuration</h2>{cfg}</section>')
    nav = (("summary", "Summary"), ("tables", "Across seeds"), ("config", "Config"))
    template = Template((resources.files("mistrust.report") / "template.html").read_text())
    page = template.substitute(
        title=escape(f"mistrust audit: {name}, {k} seeds"),
        nav="".join(f'<a href="#{key}">{t}</a>' for key, t in nav),
        body="".join(parts),
        subtitle=escape(
            f"mean ± sd over seeds {', '.join(map(str, seeds))} · run folder {run_dir.name}"
        ),
        version=escape(__version__),
    )
    return page, "\n".join(md)


def build_seeds_report(run_dir: Path) -> Path:
    """Write ``report.html`` and ``report.md`` across seeds into ``run_dir``; return the HTML."""
    run_dir = Path(run_dir)
    if not (run_dir / SEEDS_FILE).is_file():
        raise FileNotFoundError(f"no {SEEDS_FILE} in run directory {run_dir}")
    page, md = render(run_dir)
    atomic_write_text(run_dir / "report.md", md)
    out = run_dir / "report.html"
    atomic_write_text(out, page)
    return out
