"""The renderers of a :class:`~mistrust.present.tables.model.Table`: console text, Markdown, CSV,
LaTeX (booktabs) and HTML. They only format; what a table holds is decided when it is
built (:mod:`mistrust.present.tables.build`).

An absent cell (no such value in the run) is written the format's own way: "" in
Markdown and CSV, "-" on the console, "--" in LaTeX, "–" in HTML. A NaN cell says the
table's ``missing`` text where it has one.
"""

from __future__ import annotations

import csv
import io
import math
from html import escape

from mistrust.present.tables.model import MEMBERS, Cell, Table, is_nan


def fmt(x: Cell | None, digits: int = 2) -> str:
    """A number to ``digits`` decimals, text as it is, "–" for none or NaN."""
    if isinstance(x, str):
        return x
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _plain(t: Table, x: Cell | None, absent: str, col: str = "") -> str:
    """Console and Markdown text of one cell."""
    if x is None:
        return absent
    if isinstance(x, str):
        return x
    return t.missing if t.missing and math.isnan(x) else t.number(col, x)


# -- console -------------------------------------------------------------------------
def to_text(t: Table, *, min_width: int = 7) -> str:
    """Fixed-width columns for the console, a rule under the header; a table without rows
    (e.g. accuracy, where no sample has a label) is the header and the rule alone."""
    text = {(r, c): _plain(t, t.cells.get((r, c)), "-", c) for r in t.rows for c in t.cols}
    w0 = max([len(t.corner), *(len(r) for r in t.rows)])
    widths = [max(min_width, len(c), *(len(text[(r, c)]) for r in t.rows)) for c in t.cols]
    head = (
        t.corner.ljust(w0)
        + "  "
        + "  ".join(c.rjust(w) for c, w in zip(t.cols, widths, strict=True))
    )
    lines = [head, "-" * len(head)]
    for r in t.rows:
        vals = [text[(r, c)].rjust(w) for c, w in zip(t.cols, widths, strict=True)]
        lines.append(r.ljust(w0) + "  " + "  ".join(vals))
    return "\n".join(lines)


# -- Markdown ------------------------------------------------------------------------
def markdown(t: Table, *, absent: str = "") -> str:
    """The grid alone, as a Markdown table."""
    lines = ["| " + " | ".join([t.corner, *t.cols]) + " |", "|" + "---|" * (len(t.cols) + 1)]
    for r in t.rows:
        vals = [_plain(t, t.cells.get((r, c)), absent, c) for c in t.cols]
        lines.append("| " + " | ".join([r, *vals]) + " |")
    return "\n".join(lines) + "\n"


def to_markdown(t: Table) -> str:
    """The report's form: title, grid and note."""
    text = f"### {t.title}\n\n" + markdown(t)
    return text + (f"\n_{t.note}_\n" if t.note else "")


# -- CSV -----------------------------------------------------------------------------
def tidy_csv(columns: tuple[str, ...], rows: list) -> str:
    """Rows as CSV text, floats written exactly (``repr``): ``results.csv``'s format."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([repr(x) if isinstance(x, float) else x for x in row])
    return buf.getvalue()


def to_csv(t: Table) -> str:
    """The grid as CSV, floats exact; the first column is named by the corner's first
    word (``"set \\ attack"`` -> ``set``); an absent cell is empty."""
    first = t.corner.split(" \\ ")[0] or "row"
    return tidy_csv(
        (first, *t.cols), [(r, *(t.cells.get((r, c), "") for c in t.cols)) for r in t.rows]
    )


# -- LaTeX ---------------------------------------------------------------------------
_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def column_max(t: Table) -> dict[str, float]:
    """The largest number per column, members' row left out (``{}`` unless ``bold_max``)."""
    best: dict[str, float] = {}
    if not t.bold_max:
        return best
    for (r, c), x in t.cells.items():
        if isinstance(x, str):
            continue
        if r != MEMBERS and not math.isnan(x) and x > best.get(c, -math.inf):
            best[c] = x
    return best


def to_latex(t: Table) -> str:
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``)."""
    best = column_max(t)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{tex_escape(t.title)}}}",
        rf"\label{{tab:{t.key}}}",
        r"\begin{tabular}{l" + "r" * len(t.cols) + "}",
        r"\toprule",
        " & ".join(tex_escape(x) for x in [t.corner, *t.cols]) + r" \\",
        r"\midrule",
    ]
    for r in t.rows:
        vals = []
        for c in t.cols:
            x = t.cells.get((r, c))
            if isinstance(x, str):
                vals.append(tex_escape(x))
                continue
            s = "--" if x is None or math.isnan(x) else t.number(c, x)
            s = tex_escape(t.missing) if is_nan(x) and t.missing else s
            vals.append(rf"\textbf{{{s}}}" if x is not None and best.get(c) == x else s)
        lines.append(" & ".join([tex_escape(r), *vals]) + r" \\")
        if r == MEMBERS:
            lines.append(r"\midrule")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if t.note:
        lines.append(rf"\par\smallskip{{\footnotesize {tex_escape(t.note)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


# -- HTML ----------------------------------------------------------------------------
def _shade(t: Table, row: str, x: Cell) -> str:
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


def to_html(t: Table, css: str = "tablebox") -> str:
    """A captioned ``<table>`` in a ``<div class=css>``; cells shaded by ``t.shade``."""
    best = column_max(t)
    head = "".join(f"<th>{escape(c)}</th>" for c in [t.corner, *t.cols])
    body = []
    for r in t.rows:
        tds = []
        for c in t.cols:
            x = t.cells.get((r, c))
            cls = ' class="best"' if x is not None and best.get(c) == x else ""
            if isinstance(x, str):
                text = escape(x)
            elif t.missing and is_nan(x):
                text = escape(t.missing)
            elif x is None or math.isnan(x):
                text = fmt(x)
            else:
                text = t.number(c, x)
            tds.append(f"<td{cls}{_shade(t, r, x) if x is not None else ''}>{text}</td>")
        tr = ' class="members"' if r == MEMBERS else ""
        body.append(f'<tr{tr}><th scope="row">{escape(r)}</th>{"".join(tds)}</tr>')
    note = f'<p class="note">{escape(t.note)}</p>' if t.note else ""
    return (
        f'<div class="{css}"><table><caption>{escape(t.title)}</caption><thead><tr>{head}'
        f"</tr></thead><tbody>{''.join(body)}</tbody></table>{note}</div>"
    )
