"""The text sections of ``report.html``: the summary (headline, verdicts, facts, overview),
the audit tables grouped by variant, the paper comparison and the run details.

Every string that comes from the run (set, variant, attack names, config values) goes
through :func:`html.escape`.
"""

from __future__ import annotations

import csv
import math
from html import escape
from pathlib import Path

from mistrust.present.report.run import Run
from mistrust.present.report.verdicts import verdict_summary
from mistrust.present.tables import Table
from mistrust.present.tables.formats import fmt, to_html
from mistrust.present.tables.model import attacks_of, lookup, of_variant, sets_of, variants_of
from mistrust.present.tables.privacy import guarantee
from mistrust.present.tables.strongest import strongest_line


def _overview(run: Run) -> str:
    val, mval = lookup(run.rows), lookup(run.model_rows)
    head = (
        "<tr><th>variant</th><th>train acc.</th><th>test acc.</th><th>ECE</th>"
        "<th>best in-dist. AUROC</th><th>mean OOD FPR</th><th>worst OOD FPR</th></tr>"
    )
    # DP variants: the accountant's epsilon and the largest empirical bounds (docs/DP.md)
    private = any(guarantee(mval, v) is not None for v in variants_of(run.rows))
    if private:
        head = head[: -len("</tr>")] + "<th>accountant ε</th><th>ε LB attacks / canaries</th></tr>"
    body = []
    for v in variants_of(run.rows):
        attacks = attacks_of(of_variant(run.rows, v))
        ood = [s for s in sets_of(of_variant(run.rows, v)) if s != "original"]
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
        if private:
            key = "epsilon_lower_bound"
            bounds = [val.get((v, a, "original", key), math.nan) for a in attacks]
            bounds = [b for b in bounds if not math.isnan(b)]  # NaN: no decisions
            canary = mval.get((v, "target", "canaries", "canary_epsilon_lower_bound"))
            cells += [
                fmt(guarantee(mval, v)) if guarantee(mval, v) is not None else "–",
                f"{fmt(max(bounds)) if bounds else '–'} / {fmt(canary)}",
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


def subject(run: Run) -> tuple[str | None, str | None]:
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


def _strongest(run: Run) -> str:
    """The first variant's strongest attack against its runner-up, one line."""
    variants = variants_of(run.rows)
    line = strongest_line(run.rows, variants[0]) if variants else None
    return f'<p class="strongest">{escape(line)}</p>' if line else ""


def summary(run: Run, head_html: str) -> str:
    model, data = subject(run)
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
        f"{_strongest(run)}"
        f'{verdict_summary(run)}<div class="glance">{_overview(run)}'
        f'<dl class="facts">{dl}</dl></div></section>'
    )


def tables_section(tables: list[Table], variants: list[str]) -> str:
    out = ['<section id="tables"><h2>Audit tables</h2>']
    for i, v in enumerate(variants):
        own = [t for t in tables if t.group == v]
        first, rest = own[:2], own[2:]
        boxes = "".join(to_html(t) for t in first) + "".join(
            to_html(t, "tablebox wide") for t in rest
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
            + "".join(to_html(t) for t in cross)
            + "</div>"
        )
    models = [t for t in tables if t.key in ("models", "emd")]
    if models:
        out.append(
            '<h3>Models</h3><div class="tables">' + "".join(to_html(t) for t in models) + "</div>"
        )
    return "".join(out) + "</section>"


def _kv(d: object) -> str:
    if not isinstance(d, dict):
        return str(d)
    return ", ".join(f"{k} {x:.4g}" if isinstance(x, float) else f"{k} {x}" for k, x in d.items())


def config(run: Run) -> str:
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


def paper(run: Run) -> str:
    """The FPR / AUROC rows of ``compare.csv`` (``mistrust compare``), if the run has one."""
    path = run.paths.compare_csv
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
