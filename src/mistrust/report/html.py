"""``build_report``: one self-contained, deterministic ``report.html`` (+ ``report.md``, LaTeX).

Reads only the run directory. Every string that comes from the run (set,
variant, attack names, config values) goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import json
import logging
import math
from dataclasses import dataclass, field
from html import escape
from importlib import resources
from pathlib import Path
from string import Template

import yaml

from mistrust.io import atomic_write_text
from mistrust.report import persample, plots
from mistrust.report.tables import (
    MEMBERS,
    Table,
    attacks_of,
    build_tables,
    fmt,
    headline,
    lookup,
    read_attack_rows,
    read_model_rows,
    sets_of,
    to_markdown,
    tradeoff_points,
    variants_of,
    verdict_lines,
    write_latex,
)

log = logging.getLogger(__name__)


@dataclass
class Run:
    """What the report reads from a run directory."""

    path: Path
    rows: list[tuple]
    model_rows: list[tuple]
    config: dict = field(default_factory=dict)
    config_text: str = ""
    doc: dict = field(default_factory=dict)

    @classmethod
    def load(cls, run_dir: Path) -> Run:
        run_dir = Path(run_dir)
        run = cls(run_dir, read_attack_rows(run_dir), read_model_rows(run_dir))
        if (run_dir / "results.json").is_file():
            run.doc = json.loads((run_dir / "results.json").read_text())
        if (run_dir / "config.yaml").is_file():
            run.config_text = (run_dir / "config.yaml").read_text()
            run.config = yaml.safe_load(run.config_text) or {}
        elif isinstance(run.doc.get("config"), dict):
            run.config = run.doc["config"]
            run.config_text = yaml.safe_dump(run.config, sort_keys=False)
        return run

    def get(self, dotted: str, default: object = None) -> object:
        node: object = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node


def _shade(t: Table, row: str, x: float | str) -> str:
    if isinstance(x, str) or math.isnan(x) or t.shade == "none":
        return ""
    if t.shade == "share":  # a fraction in [0, 1], e.g. an overlap
        hue, level = 212, x
    elif t.shade == "rate":
        hue, level = (212, x) if row == MEMBERS else (4, x)
    else:
        hue, level = (212, 2 * (x - 0.5)) if x >= 0.5 else (4, 2 * (0.5 - x))
    level = min(max(level, 0.0), 1.0)
    return f' style="background:hsl({hue},70%,{98 - 40 * level:.0f}%)"'


def table_html(t: Table, css: str = "tablebox") -> str:
    best: dict[str, float] = {}
    if t.bold_max:
        for (r, c), x in t.cells.items():
            if isinstance(x, str):
                continue
            if r != MEMBERS and not math.isnan(x) and x > best.get(c, -math.inf):
                best[c] = x
    head = "".join(f"<th>{escape(c)}</th>" for c in [t.corner, *t.cols])
    body = []
    for r in t.rows:
        tds = []
        for c in t.cols:
            x = t.cells.get((r, c))
            cls = ' class="best"' if x is not None and best.get(c) == x else ""
            if isinstance(x, str):
                text = escape(x)
            elif t.missing and x is not None and math.isnan(x):
                text = escape(t.missing)
            else:
                text = fmt(x, 3)
            tds.append(f"<td{cls}{_shade(t, r, x) if x is not None else ''}>{text}</td>")
        tr = ' class="members"' if r == MEMBERS else ""
        body.append(f'<tr{tr}><th scope="row">{escape(r)}</th>{"".join(tds)}</tr>')
    note = f'<p class="note">{escape(t.note)}</p>' if t.note else ""
    return (
        f'<div class="{css}"><table><caption>{escape(t.title)}</caption><thead><tr>{head}'
        f"</tr></thead><tbody>{''.join(body)}</tbody></table>{note}</div>"
    )


def _overview(run: Run) -> str:
    val, mval = lookup(run.rows), lookup(run.model_rows)
    head = (
        "<tr><th>variant</th><th>train acc.</th><th>test acc.</th><th>ECE</th>"
        "<th>best in-dist. AUROC</th><th>mean OOD FPR</th><th>worst OOD FPR</th></tr>"
    )
    body = []
    for v in variants_of(run.rows):
        attacks = attacks_of([r for r in run.rows if r[0] == v])
        ood = [s for s in sets_of([r for r in run.rows if r[0] == v]) if s != "original"]
        aucs = [
            val[(v, a, "original", "auroc")] for a in attacks if (v, a, "original", "auroc") in val
        ]
        fprs = [
            (val[(v, a, s, "fpr")], s, a) for a in attacks for s in ood if (v, a, s, "fpr") in val
        ]
        worst = max(fprs, key=lambda t: t[0]) if fprs else None
        cells = [
            fmt(mval.get((v, "target", "train", "accuracy"))),
            fmt(mval.get((v, "target", "test", "accuracy"))),
            fmt(mval.get((v, "target", "test", "ece")), 3),
            fmt(max(aucs)) if aucs else "–",
            fmt(sum(x for x, _, _ in fprs) / len(fprs)) if fprs else "–",
            escape(f"{worst[0]:.2f} ({worst[1]}, {worst[2]})") if worst else "–",
        ]
        body.append(f"<tr><th>{escape(v)}</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        f'<div class="tablebox"><table><caption>At a glance (target models)</caption>'
        f"<thead>{head}</thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _file_of(spec: object) -> str | None:
    """``out/target.pt2`` -> ``target.pt2``; a data section ``{npz: out/m.npz, ...}`` ->
    ``m.npz`` (the first of its npz, folder or dataset that is given)."""
    if isinstance(spec, str) and spec:
        return Path(spec).name
    if isinstance(spec, dict):
        given = [spec.get(k) for k in ("npz", "folder", "dataset") if spec.get(k)]
        return _file_of(given[0]) if given else None
    return None


def _subject(run: Run) -> tuple[str | None, str | None]:
    """What was audited, on what: the registry model and dataset of ``mistrust run``, or
    the model file / factory (or saved outputs) and the members' data of ``mistrust audit``."""
    outputs = _file_of(run.get("logits.target.members"))
    model = (
        run.get("model.arch")
        or _file_of(run.get("target.model"))
        or run.get("target.factory")
        or ("saved outputs" if outputs else None)
    )
    data = run.get("data.dataset") or _file_of(run.get("target.members")) or outputs
    return (None if model is None else str(model)), (None if data is None else str(data))


def _summary(run: Run, head_html: str) -> str:
    model, data = _subject(run)
    facts = [
        ("model", model),
        ("data", data),
        (
            "per role",
            f"{run.get('data.train_size')} train / {run.get('data.test_size')} "
            f"test; {run.get('data.members')} members, "
            f"{run.get('data.nonmembers')} non-members",
        ),
        (
            "training",
            f"{run.get('train.optimizer')}, lr {run.get('train.lr')}, "
            f"{run.get('train.epochs')} epochs, seed {run.get('seed')}",
        ),
        ("variants", ", ".join(variants_of(run.rows))),
        ("attacks", ", ".join(attacks_of(run.rows))),
        ("evaluation sets", ", ".join(sets_of(run.rows))),
    ]
    dl = "".join(
        f"<dt>{escape(k)}</dt><dd>{escape(str(x))}</dd>"
        for k, x in facts
        if x is not None and "None" not in str(x)
    )
    warn = (
        '<p class="warn">stand-in data: synthetic images, the numbers show that the '
        "pipeline works, not a finding</p>"
        if run.get("data.stand_in")
        else ""
    )
    return (
        f'<section id="summary" class="summary"><p class="headline">{head_html}</p>{warn}'
        f'{_verdicts(run)}<dl class="facts">{dl}</dl>{_overview(run)}</section>'
    )


def _verdicts(run: Run) -> str:
    """Verdict per attack (first variant), with the sets whose verdict differs."""
    lines = verdict_lines(run.rows)
    if not lines:
        return '<p class="missing">No trust checks in results.csv: no verdicts.</p>'
    items = []
    for attack, label, reason, notes in lines:
        sub = "".join(
            f"<li>{escape(d)}: <strong>{escape(lab)}</strong>, {escape(why)}</li>"
            for d, lab, why in notes
        )
        items.append(
            f'<li><span class="attack">{escape(attack)}</span>: '
            f'<strong class="verdict">{escape(label)}</strong>, {escape(reason)}'
            + (f"<ul>{sub}</ul>" if sub else "")
            + "</li>"
        )
    v = variants_of(run.rows)[0]
    return (
        f'<div class="verdicts"><h3>Verdict per attack ({escape(v)})</h3>'
        f'<ul>{"".join(items)}</ul><p class="note">In-distribution members vs non-members; '
        "indented: other sets. How each verdict is decided: docs/CHECKS.md.</p></div>"
    )


def _tables(tables: list[Table], variants: list[str]) -> str:
    out = ['<section id="tables"><h2>Audit tables</h2>']
    for i, v in enumerate(variants):
        own = [t for t in tables if t.group == v]
        first, rest = own[:2], own[2:]
        boxes = "".join(table_html(t) for t in first) + "".join(
            table_html(t, "tablebox wide") for t in rest
        )
        is_open = " open" if i == 0 or len(variants) <= 2 else ""
        out.append(
            f"<details{is_open}><summary>Variant {escape(v)}</summary>"
            f'<div class="tables">{boxes}</div></details>'
        )
    cross = [t for t in tables if not t.group and t.key.startswith("fpr_a")]
    if cross:
        out.append(
            '<h3>Per attack: evaluation sets × variants</h3><div class="tables">'
            + "".join(table_html(t) for t in cross)
            + "</div>"
        )
    models = [t for t in tables if t.key in ("models", "emd")]
    if models:
        out.append(
            '<h3>Models</h3><div class="tables">'
            + "".join(table_html(t) for t in models)
            + "</div>"
        )
    return "".join(out) + "</section>"


def _figure(fig: object, caption: str, alt: str, css: str = "", save: Path | None = None) -> str:
    """An embedded figure; ``save`` also keeps it as a PNG file in the run directory."""
    if fig is None:
        return ""
    cls = f' class="{css}"' if css else ""
    return (
        f'<figure{cls}><img alt="{escape(alt)}" src="{plots.png_uri(fig, save=save)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _section(key: str, title: str, items: list[str], missing: str) -> str:
    items = [x for x in items if x]
    body = (
        f'<div class="figs">{"".join(items)}</div>'
        if items
        else (f'<p class="missing">{escape(missing)}</p>')
    )
    return f'<section id="{key}"><h2>{escape(title)}</h2>{body}</section>'


def _galleries(run: Run, sets: list[str]) -> list[str]:
    root = run.path / "figures"
    found = {s: root / f"gallery_{s}.png" for s in sets}
    found = {
        s: p for s, p in found.items() if p.resolve().is_relative_to(root.resolve()) and p.is_file()
    }
    extra = sorted(p for p in root.glob("gallery_*.png") if p not in found.values())
    found.update({p.stem[len("gallery_") :]: p for p in extra})
    return [
        f'<figure><img alt="{escape(f"false positives: {s}")}" '
        f'src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode("ascii")}">'
        f"<figcaption>{escape(s)}: highest-scored non-members</figcaption></figure>"
        for s, p in found.items()
    ]


def _per_sample(run: Run) -> str:
    """The most vulnerable members (table and thumbnails) and the attacks' agreement,
    for the first variant (``vulnerable.csv`` and ``agreement.csv`` hold every variant)."""
    v = variants_of(run.rows)[0]
    items = [persample.vulnerable_html(run.path, v)]
    png = run.path / "figures" / "vulnerable.png"
    if png.is_file():
        items.append(
            f'<figure class="full"><img alt="most vulnerable members" '
            f'src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode("ascii")}">'
            "<figcaption>The same members, largest margin first: dataset index and class "
            "above, the target's max softmax score below</figcaption></figure>"
        )
    items += [table_html(t) for t in persample.agreement_tables(run.path, v)]
    items = [x for x in items if x]
    body = (
        f'<div class="tables">{"".join(items)}</div>'
        if items
        else '<p class="missing">No vulnerable.csv or agreement.csv in the run: '
        "per-sample view omitted.</p>"
    )
    return f'<section id="per-sample"><h2>Per-sample view</h2>{body}</section>'


def _figures(run: Run) -> str:
    variants, attacks = variants_of(run.rows), attacks_of(run.rows)
    v0, sets = variants[0], sets_of([r for r in run.rows if r[0] == variants[0]])
    mval = lookup(run.model_rows)
    roc = [
        _figure(
            plots.roc_figure(run.path, v0, a, sets),
            f"{a}: ROC (left) and log-log ROC "
            f"(right), members vs each set; dots mark the shadow-calibrated threshold",
            f"ROC curves of {a}",
        )
        for a in attacks
    ]
    if len(variants) > 1:
        roc.append(
            _figure(
                plots.variant_roc_figure(run.path, variants, attacks),
                "In-distribution log-log ROC per variant",
                "ROC per variant",
                "full",
            )
        )
    hist = [
        _figure(
            plots.histogram_figure(
                run.path,
                v,
                attacks[0],
                sets_of([r for r in run.rows if r[0] == v]),
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
    rel = _figure(
        plots.reliability_figure(run.path, variants),
        "Accuracy per confidence bin (15 equal-width bins, empty bins left out); red "
        "dashes: the bin's mean confidence (above the bar: over-confident)",
        "reliability diagrams",
        "full",
        run.path / "figures" / "reliability.png",
    )
    trade = _figure(
        plots.tradeoff_figure(tradeoff_points(run.rows)),
        "One point per (variant, attack); colour = attack, marker = variant",
        "over-confidence vs leakage trade-off",
        "full",
        run.path / "figures" / "tradeoff.png",
    )
    return "".join(
        [
            _section("roc", "ROC curves", roc, "No stored scores: ROC curves omitted."),
            _section("histograms", "Max-score distributions", hist, "No stored scores: omitted."),
            _section(
                "galleries",
                "False-positive galleries",
                _galleries(run, sets),
                "No figures/gallery_*.png in the run: galleries omitted.",
            ),
            _section(
                "reliability",
                "Reliability diagrams",
                [rel],
                "No outputs/<variant>/target/test.npz: reliability diagrams omitted.",
            ),
            _section(
                "tradeoff",
                "Over-confidence vs leakage",
                [trade],
                "No out-of-distribution sets: trade-off plot omitted.",
            ),
        ]
    )


def _kv(d: object) -> str:
    if not isinstance(d, dict):
        return str(d)
    return ", ".join(f"{k} {x:.4g}" if isinstance(x, float) else f"{k} {x}" for k, x in d.items())


def _config(run: Run) -> str:
    versions = run.doc.get("versions") or {}
    info = run.doc.get("variants") or {}
    timings = run.doc.get("timings") or {}
    rows = "".join(
        f'<tr><th>{escape(str(k))}</th><td class="kv">{escape(str(x))}</td></tr>'
        for k, x in versions.items()
    )
    rows += "".join(
        f'<tr><th>{escape(f"{v}/{role}")}</th><td class="kv">{escape(_kv(d))}</td></tr>'
        for v, roles in info.items()
        if isinstance(roles, dict)
        for role, d in roles.items()
    )
    rows += "".join(
        f'<tr><th>{escape(f"time: {k}")}</th><td class="kv">{fmt(x, 1)} s</td></tr>'
        for k, x in timings.items()
        if isinstance(x, (int, float))
    )
    table = (
        (
            f'<div class="tablebox"><table><caption>Software and run details</caption>'
            f"<tbody>{rows}</tbody></table></div>"
        )
        if rows
        else ('<p class="missing">No results.json: versions unknown.</p>')
    )
    cfg = (
        f"<pre>{escape(run.config_text)}</pre>"
        if run.config_text
        else '<p class="missing">No config.yaml in the run.</p>'
    )
    return (
        f'<section id="config"><h2>Configuration and software</h2>'
        f'<div class="tables">{table}<div class="wide">{cfg}</div></div></section>'
    )


NAV = (
    ("summary", "Summary"),
    ("tables", "Tables"),
    ("roc", "ROC"),
    ("histograms", "Max scores"),
    ("galleries", "False positives"),
    ("reliability", "Reliability"),
    ("tradeoff", "Trade-off"),
    ("per-sample", "Per sample"),
    ("config", "Config"),
)


def _paper(run: Run) -> str:
    """The FPR / AUROC rows of ``compare.csv`` (``mistrust compare``), if the run has one."""
    import csv

    path = run.path / "compare.csv"
    if not path.is_file():
        return ""
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["metric"] in ("fpr", "auroc")]
    flag = {"1": "yes", "0": "no", "": ""}
    body = "".join(
        "<tr>"
        + "".join(f"<td>{escape(r[k])}</td>" for k in ("variant", "attack", "dataset", "metric"))
        + "".join(f"<td>{fmt(float(r[k]), 3)}</td>" for k in ("ours", "paper"))
        + f"<td>{float(r['difference']):+.3f}</td><td>{flag.get(r['paper_in_ci'], '')}</td></tr>"
        for r in rows
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("variant", "attack", "set", "metric", "ours", "paper", "difference", "in CI")
    )
    return (
        '<section id="paper"><h2>Beside the paper</h2><p class="note">The paper\'s published '
        "values (FPR and AUROC; every metric in compare.csv and compare.md). In CI: the "
        "paper's value lies inside our exact 95 % interval.</p>"
        f'<div class="tablebox"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
        "</table></div></section>"
    )


def render(run: Run, tables: list[Table]) -> tuple[str, str]:
    """``(html, markdown)`` of the report."""
    head_html, head_text = headline(run.rows)
    name = str(run.get("name", run.path.name))
    body = _summary(run, head_html) + _tables(tables, variants_of(run.rows)) + _figures(run)
    body += _per_sample(run)
    paper = _paper(run)
    nav = NAV + ((("paper", "Paper"),) if paper else ())
    template = Template((resources.files("mistrust.report") / "template.html").read_text())
    page = template.substitute(
        title=escape(f"mistrust audit: {name}"),
        nav="".join(f'<a href="#{k}">{t}</a>' for k, t in nav),
        body=body + paper + _config(run),
        subtitle=escape(
            " on ".join(x or "?" for x in _subject(run))
            + f" · {len(variants_of(run.rows))} variant(s) · "
            f"{len(attacks_of(run.rows))} attack(s) · run folder {run.path.name}"
        ),
        version=escape(str((run.doc.get("versions") or {}).get("mistrust", ""))),
    )
    md = [
        f"# mistrust audit: {name}\n",
        f"**{head_text}**\n",
        *_verdicts_md(run),
        "Figures (ROC curves, max-score histograms, galleries, reliability diagrams, "
        "trade-off) are in `report.html`.\n",
    ] + [to_markdown(t) for t in tables]
    v0 = variants_of(run.rows)[0]
    md += [x for x in [persample.vulnerable_markdown(run.path, v0)] if x]
    md += [to_markdown(t) for t in persample.agreement_tables(run.path, v0)]
    if (run.path / "compare.md").is_file():
        md.append((run.path / "compare.md").read_text().replace("# ", "## ", 1))
    return page, "\n".join(md)


def _verdicts_md(run: Run) -> list[str]:
    lines = verdict_lines(run.rows)
    if not lines:
        return []
    text = [f"Verdict per attack ({variants_of(run.rows)[0]}):\n"]
    for attack, label, reason, notes in lines:
        text.append(f"- {attack}: **{label}**, {reason}")
        text += [f"  - {d}: **{lab}**, {why}" for d, lab, why in notes]
    return ["\n".join(text) + "\n"]


def build_report(run_dir: Path) -> Path:
    """Write ``report.html``, ``report.md`` and ``tables/*.tex`` into ``run_dir``; return the HTML."""
    run = Run.load(Path(run_dir))
    if not run.rows:
        raise ValueError(f"{run.path / 'results.csv'} holds no results")
    tables = build_tables(run.rows, run.model_rows)
    page, md = render(run, tables)
    write_latex(run.path, tables)
    atomic_write_text(run.path / "report.md", md)
    out = run.path / "report.html"
    atomic_write_text(out, page)
    log.debug("wrote %s (%.1f MB)", out, len(page) / 1e6)
    return out
