"""The renderers of one Table, checked against text written out by hand: every format
shows the same cells, and each writes an absent cell, a NaN cell and a text cell its
documented way."""

from __future__ import annotations

import math

from mistrust.present.tables import MEMBERS, Table, set_table
from mistrust.present.tables.formats import markdown, to_csv, to_html, to_latex, to_text
from mistrust.rows import MetricRow


def _table(**kw) -> Table:
    cells = {(MEMBERS, "a"): 0.5, ("original", "a"): 0.25, ("noise", "a"): math.nan}
    cells[("noise", "b")] = "n/r"  # ("original", "b") and (MEMBERS, "b") are absent
    return Table("t", "T", [MEMBERS, "original", "noise"], ["a", "b"], cells, "set \\ attack", **kw)


def test_console() -> None:
    assert to_text(_table()).splitlines() == [
        "set \\ attack         a        b",  # 13 + 2 + 7 + 2 + 7 characters
        "-------------------------------",
        "members (TPR)    0.500        -",
        "original         0.250        -",
        "noise              nan      n/r",
    ]
    assert to_text(_table(missing="no shadow")).splitlines()[-1] == (
        "noise          no shadow      n/r"
    )
    # no rows (an audit whose samples have no labels has no accuracy): the header alone
    empty = Table("t", "T", [], ["train", "test"], {}, "variant/role")
    assert to_text(empty).splitlines() == [
        "variant/role    train     test",
        "------------------------------",
    ]


def test_markdown_and_csv() -> None:
    assert markdown(_table()) == (
        "| set \\ attack | a | b |\n|---|---|---|\n| members (TPR) | 0.500 |  |\n"
        "| original | 0.250 |  |\n| noise | nan | n/r |\n"
    )
    assert "| noise | no shadow | n/r |" in markdown(_table(missing="no shadow"))
    assert to_csv(_table()) == "set,a,b\nmembers (TPR),0.5,\noriginal,0.25,\nnoise,nan,n/r\n"


def test_latex_and_html() -> None:
    tex = to_latex(_table(bold_max=True))
    # the members' row is not a rate of non-members: 0.25 is the column's largest
    assert r"members (TPR) & 0.500 & -- \\" in tex
    assert r"original & \textbf{0.250} & -- \\" in tex and r"noise & -- & n/r \\" in tex
    html = to_html(_table(bold_max=True))
    assert '<tr class="members"><th scope="row">members (TPR)</th><td>0.500</td><td>–</td>' in html
    assert '<td class="best">0.250</td>' in html and "<td>n/r</td>" in html


def test_set_table_is_built_from_typed_rows() -> None:
    rows = [
        MetricRow("v", "a", "original", "tpr", 0.75),
        MetricRow("v", "a", "original", "fpr", 0.25),
        MetricRow("v", "a", "shadow", "operating_score", 3.0),  # never a table row
        MetricRow("w", "a", "original", "fpr", 0.5),
        MetricRow("v", "b", "noise", "fpr", 1.0),
    ]
    t = set_table(rows, variant="v")
    assert (t.rows, t.cols, t.corner) == (
        [MEMBERS, "original", "noise"],
        ["a", "b"],
        "set \\ attack",
    )
    assert t.cells == {(MEMBERS, "a"): 0.75, ("original", "a"): 0.25, ("noise", "b"): 1.0}
    t = set_table(rows, attack="a")
    assert (t.cols, t.corner) == (["v", "w"], "set \\ variant")
    assert t.cells == {(MEMBERS, "v"): 0.75, ("original", "v"): 0.25, ("original", "w"): 0.5}
    t = set_table(rows, variant="v", metric="tpr")  # members' row only with FPR
    assert t.rows == ["original"] and t.cells == {("original", "a"): 0.75}


def test_values_answer_cells_and_metrics_as_a_scan_would() -> None:
    from mistrust.present.tables.model import lookup
    from mistrust.rows import MetricRow

    rows = [
        MetricRow("base", "threshold", "original", "auroc", 0.6),
        MetricRow("base", "threshold", "scaled", "flag_ties", 1.0),
        MetricRow("base", "threshold", "original", "flag_ties", 0.0),
        MetricRow("base", "salem", "scaled", "flag_ties", 1.0),
        MetricRow("laplace", "threshold", "scaled", "flag_ties", 1.0),
    ]
    val = lookup(rows)
    assert val.cell("base", "threshold", "original") == {"auroc": 0.6, "flag_ties": 0.0}
    assert val.cell("base", "loss", "original") == {}
    assert val.across_sets("base", "threshold", "flag_ties") == [("scaled", 1.0), ("original", 0.0)]
    val[("base", "threshold", "noise", "flag_ties")] = 1.0  # a later value is seen too
    assert val.across_sets("base", "threshold", "flag_ties")[-1] == ("noise", 1.0)
    assert val.cell("base", "threshold", "noise") == {"flag_ties": 1.0}


def _grid(shade: str, values: dict[str, float], **kw) -> Table:
    cells = {(r, "a"): x for r, x in values.items()}
    return Table("g", "G", list(values), ["a"], cells, "set \\ attack", shade=shade, **kw)


def _styles(html: str) -> list[str]:
    import re

    return re.findall(r"<td([^>]*)>", html)


def test_html_shades_by_hand() -> None:
    """Lightness 98 - 40 x level: a rate is its own level (members blue, hue 212; other
    rows red, hue 4); an AUROC is 2 |x - 0.5| on the side of 0.5 it lies (above: blue);
    a share is blue; levels are clipped to [0, 1]."""

    def hsl(hue: int, light: int) -> str:
        return f' style="background:hsl({hue},70%,{light}%)"'

    rates = {MEMBERS: 0.5, "original": 0.25, "scaled": 1.5, "noise": -0.5}
    assert _styles(to_html(_grid("rate", rates))) == [
        hsl(212, 78),
        hsl(4, 88),
        hsl(4, 58),
        hsl(4, 98),
    ]
    aurocs = {"original": 0.75, "scaled": 0.25, "noise": 0.5, "gan": 0.1, "held-out": 0.95}
    assert _styles(to_html(_grid("auroc", aurocs))) == [
        hsl(212, 78),
        hsl(4, 78),
        hsl(212, 98),
        hsl(4, 66),
        hsl(212, 62),
    ]
    assert _styles(to_html(_grid("share", {"x": 0.25, "y": 1.0}))) == [hsl(212, 88), hsl(212, 58)]
    assert _styles(to_html(_grid("none", {"x": 0.25}))) == [""]
    nan_and_text = Table("g", "G", ["x", "y"], ["a"], {("x", "a"): math.nan, ("y", "a"): "n/r"})
    nan_and_text.shade = "rate"
    assert _styles(to_html(nan_and_text)) == ["", ""]


def test_html_of_a_table_in_full() -> None:
    t = _table(bold_max=True, missing="no shadow", note="a <note>")
    assert to_html(t, css="box") == (
        '<div class="box"><table><caption>T</caption><thead><tr><th>set \\ attack</th>'
        "<th>a</th><th>b</th></tr></thead><tbody>"
        '<tr class="members"><th scope="row">members (TPR)</th><td>0.500</td><td>–</td></tr>'
        '<tr><th scope="row">original</th><td class="best">0.250</td><td>–</td></tr>'
        '<tr><th scope="row">noise</th><td>no shadow</td><td>n/r</td></tr>'
        '</tbody></table><p class="note">a &lt;note&gt;</p></div>'
    )
    assert to_html(_table()).startswith('<div class="tablebox"><table>')
    assert to_html(_table()).endswith("<td>–</td><td>n/r</td></tr></tbody></table></div>")


def test_latex_of_a_table_in_full() -> None:
    t = _table(bold_max=True, missing="no shadow", note="50% of it")
    t.cells[("original", "b")] = "text"  # a text cell before a number in its row
    t.cells[("original", "a")] = 0.25
    assert to_latex(t) == (
        "\\begin{table}[t]\n\\centering\n\\caption{T}\n\\label{tab:t}\n"
        "\\begin{tabular}{lrr}\n\\toprule\nset \\textbackslash{} attack & a & b \\\\\n"
        "\\midrule\nmembers (TPR) & 0.500 & -- \\\\\n\\midrule\n"
        "original & \\textbf{0.250} & text \\\\\nnoise & no shadow & n/r \\\\\n"
        "\\bottomrule\n\\end{tabular}\n\\par\\smallskip{\\footnotesize 50\\% of it}\n"
        "\\end{table}\n"
    )
    t.cols = ["b", "a"]  # the text cell first: the number after it is still written
    assert "original & text & \\textbf{0.250} \\\\\n" in to_latex(t)
    assert to_latex(_table()).endswith(
        "noise & -- & n/r \\\\\n\\bottomrule\n\\end{tabular}\n\\end{table}\n"
    )


def test_column_max_reads_every_number_after_text() -> None:
    from mistrust.present.tables.formats import column_max

    cells = {("x", "a"): "n/r", ("y", "a"): 0.5, (MEMBERS, "a"): 0.9, ("z", "a"): math.nan}
    t = Table("t", "T", ["x", "y", MEMBERS, "z"], ["a"], cells, bold_max=True)
    assert column_max(t) == {"a": 0.5}
    t.bold_max = False
    assert column_max(t) == {}


def test_markdown_report_form_and_console_widths() -> None:
    from mistrust.present.tables.formats import to_markdown

    assert to_markdown(_table()) == "### T\n\n" + markdown(_table())
    assert to_markdown(_table(note="n")) == "### T\n\n" + markdown(_table()) + "\n_n_\n"
    wide = Table("w", "W", ["r"], ["a-long-column"], {("r", "a-long-column"): 123456.0}, "c")
    # the corner is narrower than the row names; the header wider than the default 7
    assert to_text(wide).splitlines() == ["c  a-long-column", "-" * 16, "r     123456.000"]
    long_corner = Table("w", "W", ["r"], ["a"], {("r", "a"): 12345678.0}, "corner")
    assert to_text(long_corner, min_width=1).splitlines() == [
        "corner             a",
        "--------------------",
        "r       12345678.000",
    ]


def test_csv_first_column_without_a_corner() -> None:
    t = _table()
    t.corner = ""
    assert to_csv(t).splitlines()[0] == "row,a,b"
    t.corner = "attack"
    assert to_csv(t).splitlines()[0] == "attack,a,b"


def test_set_table_needs_one_of_variant_and_attack_and_marks_runs_without_a_shadow() -> None:
    import pytest

    rows = [
        MetricRow("v", "a", "original", "fpr", math.nan),
        MetricRow("v", "a", "original", "auroc", 0.75),
        MetricRow("v", "a", "shadow", "no_shadow", 1.0),
        MetricRow("w", "a", "original", "fpr", 0.5),
        MetricRow("w", "a", "noise", "no_shadow", 1.0),  # not the shadow's row: no mark
    ]
    for kw in ({}, {"variant": "v", "attack": "a"}):
        with pytest.raises(ValueError, match=r"^give exactly one of variant and attack$"):
            set_table(rows, **kw)
    t = set_table(rows, variant="v")
    assert (t.key, t.title, t.missing, t.group) == ("", "", "no shadow", "v")
    assert set_table(rows, variant="w").missing == ""
    assert set_table(rows, variant="v", metric="auroc").missing == ""
    assert set_table(rows, attack="a").missing == "no shadow"  # some variant had no shadow
    assert set_table(rows[3:], attack="a").missing == ""


def test_rows_are_read_from_a_run_paths_object(tmp_path) -> None:
    from mistrust.present.tables import read_attack_rows, read_model_rows
    from mistrust.runtime.paths import RunPaths

    (tmp_path / "results.csv").write_text("variant,attack,dataset,metric,value\nv,a,d,m,0.5\n")
    (tmp_path / "model_metrics.csv").write_text("variant,role,dataset,metric,value\nv,t,d,m,1\n")
    assert read_attack_rows(RunPaths(tmp_path)) == [MetricRow("v", "a", "d", "m", 0.5)]
    assert read_model_rows(RunPaths(tmp_path))[0].value == 1.0


def test_the_shadow_threshold_keeps_its_digits_in_every_format() -> None:
    """A max-score threshold of 0.99996 is not "1.000", nor a loss of -1.2e-05 "-0.000":
    the operating-point table writes the threshold with six significant digits."""
    from mistrust.present.tables.build import operating_table

    rows = [
        MetricRow("base", "threshold", "original", "auroc", 0.6),
        MetricRow("base", "threshold", "shadow", "operating_score", 0.99996),
        MetricRow("base", "loss", "original", "auroc", 0.55),
        MetricRow("base", "loss", "shadow", "operating_score", -1.2e-05),
    ]
    t = operating_table(rows, "base")
    for text in (to_text(t), markdown(t), to_latex(t), to_html(t)):
        assert "0.99996" in text and "1.000" not in text
        assert "-1.2e-05" in text and "-0.000" not in text
        assert "0.600" in text  # every other column keeps three decimals
