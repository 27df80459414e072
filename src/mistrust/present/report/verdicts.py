"""The verdicts in the report's summary, read in ten seconds: a coloured matrix (attack ×
set) of the first variant, the reasons told once per rule that decided them
(:func:`mistrust.present.tables.verdicts.reason_groups`), and every cell's own reason one click
away. Every string from the run goes through :func:`html.escape`."""

from __future__ import annotations

from html import escape

from mistrust.checks import INCONCLUSIVE, LEAKAGE_SHOWN, NOT_SHOWN
from mistrust.present.report.run import Run
from mistrust.present.tables.findings import verdict_lines
from mistrust.present.tables.model import variants_of
from mistrust.present.tables.privacy import privacy_findings
from mistrust.present.tables.verdicts import reason_groups, verdict_grid

#: the CSS class of a verdict's cell (template.html colours them)
CLASS = {LEAKAGE_SHOWN: "v-leak", NOT_SHOWN: "v-not", INCONCLUSIVE: "v-inc"}


def _matrix(grid: dict, variant: str) -> str:
    attacks = list(dict.fromkeys(a for a, _ in grid))
    sets = list(dict.fromkeys(d for _, d in grid))
    head = "".join(f"<th>{escape(d)}</th>" for d in ["attack \\ set", *sets])
    body = []
    for a in attacks:
        tds = []
        for d in sets:
            found = grid.get((a, d))
            if found is None:
                tds.append("<td>–</td>")
                continue
            tds.append(
                f'<td class="{CLASS[found.label]}" title="{escape(found.reason)}">'
                f"{escape(found.label)}</td>"
            )
        body.append(f'<tr><th scope="row">{escape(a)}</th>{"".join(tds)}</tr>')
    legend = "".join(f'<span class="{c}">{escape(label)}</span>' for label, c in CLASS.items())
    return (
        f'<div class="tablebox matrix"><table><caption>Verdict per attack and set '
        f"({escape(variant)})</caption><thead><tr>{head}</tr></thead>"
        f'<tbody>{"".join(body)}</tbody></table><p class="note legend">{legend} · '
        "hover a cell for its reason · docs/CHECKS.md</p></div>"
    )


def _details(run: Run) -> str:
    """Every cell's own reason: per attack its in-distribution verdict, then the sets
    whose verdict differs or is distribution shift."""
    items = []
    for attack, label, reason, notes in verdict_lines(run.rows):
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
    return (
        f"<details><summary>Every verdict with its reason</summary><ul>{''.join(items)}</ul>"
        '<p class="note">In-distribution members vs non-members; indented: other sets.</p>'
        "</details>"
    )


def verdict_summary(run: Run) -> str:
    """The summary's verdicts (first variant): matrix, grouped reasons, details."""
    variants = variants_of(run.rows)
    grid = verdict_grid(run.rows, variants[0]) if variants else {}
    # a bound above the model's DP guarantee: a bug, whatever the verdicts (docs/DP.md)
    dp = "".join(
        f'<p class="warn">DP violation: {escape(t)} (docs/DP.md)</p>'
        for t in privacy_findings(run.rows, run.model_rows)
    )
    if not grid:
        return f'<p class="missing">No trust checks in results.csv: no verdicts.</p>{dp}'
    v = variants[0]
    groups = "".join(
        f'<li><span class="{CLASS[g.label]}">{escape(g.label)}</span> '
        f"<strong>{escape(g.where)}</strong>: {escape(g.why)}</li>"
        for g in reason_groups(run.rows, v)
    )
    return (
        f'<div class="verdicts">{_matrix(grid, v)}<ul class="reasons">{groups}</ul>'
        f"{_details(run)}{dp}</div>"
    )


def verdicts_markdown(run: Run) -> list[str]:
    """The same for ``report.md``: the grouped reasons, then every cell's reason."""
    variants = variants_of(run.rows)
    groups = reason_groups(run.rows, variants[0]) if variants else []
    dp = [f"**DP violation**: {t}\n" for t in privacy_findings(run.rows, run.model_rows)]
    if not groups:
        return dp
    text = [f"Verdicts ({variants[0]}):\n"]
    text += [f"- **{g.label}**, {g.where}: {g.why}" for g in groups]
    text.append("\nEvery verdict with its reason:\n")
    for attack, label, reason, notes in verdict_lines(run.rows):
        text.append(f"- {attack}: **{label}**, {reason}")
        text += [f"  - {d}: **{lab}**, {why}" for d, lab, why in notes]
    return ["\n".join(text) + "\n", *dp]
