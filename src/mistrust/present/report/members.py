"""The report's per-sample view, read from ``vulnerable.csv`` and ``agreement.csv``.

:func:`agreement_tables` turns the Jaccard rows of one variant into one attack x attack
:class:`~mistrust.present.tables.Table` per group of samples (members, then the false
positives of each set); :func:`vulnerable_html` / :func:`vulnerable_markdown` list the
most vulnerable members. Files written by :mod:`mistrust.present.vulnerable`.
"""

from __future__ import annotations

import csv
import math
from html import escape
from pathlib import Path

from mistrust.present.tables import Table
from mistrust.present.tables.formats import fmt
from mistrust.present.tables.model import ordered
from mistrust.present.vulnerable import MEMBERS
from mistrust.runtime.paths import RunPaths

_FIXED = ("variant", "rank", "index", "class", "ranked_by", "margin", "max_score")
_FIXED += ("flagged_by", "n_attacks")


def _read(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _float(text: str) -> float:
    return float(text) if text not in ("", None) else math.nan


def agreement_tables(paths: RunPaths, variant: str) -> list[Table]:
    """Jaccard matrices of ``variant``: members first, then each set's false positives."""
    rows = [r for r in _read(paths.agreement_csv) if r["variant"] == variant]
    out = []
    for i, samples in enumerate(ordered([r["samples"] for r in rows])):
        own = [r for r in rows if r["samples"] == samples]
        attacks = ordered([r["attack_a"] for r in own])
        count = {r["attack_a"]: r["n_a"] for r in own}
        name = {a: f"{a} ({count[a]})" for a in attacks}
        cells = {(name[r["attack_a"]], r["attack_b"]): _float(r["jaccard"]) for r in own}
        what = (
            "members each attack calls member"
            if samples == MEMBERS
            else f"false positives on {samples}"
        )
        out.append(
            Table(
                f"agreement_{i}",
                f"Agreement: {what} ({variant})",
                [name[a] for a in attacks],
                attacks,
                cells,
                "attack (flagged)",
                "share",
                "Jaccard index |A∩B| / |A∪B| of the samples two attacks flag at their "
                "shadow-fixed thresholds; in brackets: how many each flags; "
                "– : neither flags any",
                variant,
            )
        )
    return out


def _vulnerable(paths: RunPaths, variant: str) -> tuple[list[dict[str, str]], list[str]]:
    rows = [r for r in _read(paths.vulnerable_csv) if r["variant"] == variant]
    attacks = [c for c in (rows[0] if rows else {}) if c not in _FIXED]
    return rows, [a for a in attacks if any(r[a] != "" for r in rows)]


def vulnerable_html(paths: RunPaths, variant: str) -> str:
    """The ranking of ``variant`` as an HTML table ('' if the run has none)."""
    rows, attacks = _vulnerable(paths, variant)
    if not rows:
        return ""
    head = ["rank", "index", "class", "margin", "max score", "flagged by", *attacks]
    body = "".join(
        f'<tr><th scope="row">{escape(r["rank"])}</th><td>{escape(r["index"])}</td>'
        f"<td>{escape(r['class'])}</td><td>{fmt(_float(r['margin']), 3)}</td>"
        f"<td>{fmt(_float(r['max_score']), 4)}</td>"
        f"<td>{escape(r['flagged_by'])} / {escape(r['n_attacks'])}</td>"
        + "".join(f"<td>{fmt(_float(r[a]), 3)}</td>" for a in attacks)
        + "</tr>"
        for r in rows
    )
    caption = f"Most vulnerable members ({variant}), ranked by {rows[0]['ranked_by']}"
    note = (
        f"margin: {rows[0]['ranked_by']}'s score minus its shadow-fixed threshold (the attack "
        "with the highest in-distribution AUROC); index: the sample's index in the dataset's "
        "training pool; flagged by: attacks that call it member; then each attack's score"
    )
    return (
        f'<div class="tablebox"><table><caption>{escape(caption)}</caption><thead><tr>'
        + "".join(f"<th>{escape(h)}</th>" for h in head)
        + f'</tr></thead><tbody>{body}</tbody></table><p class="note">{escape(note)}</p></div>'
    )


def vulnerable_markdown(paths: RunPaths, variant: str) -> str:
    """The ranking of ``variant`` as a Markdown table ('' if the run has none)."""
    rows, attacks = _vulnerable(paths, variant)
    if not rows:
        return ""
    head = ["rank", "index", "class", "margin", "flagged by", *attacks]
    lines = [
        f"### Most vulnerable members ({variant}), ranked by {rows[0]['ranked_by']}\n",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    lines += [
        "| "
        + " | ".join(
            [
                r["rank"],
                r["index"],
                r["class"],
                fmt(_float(r["margin"]), 3),
                f"{r['flagged_by']} / {r['n_attacks']}",
                *(fmt(_float(r[a]), 3) for a in attacks),
            ]
        )
        + " |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"
