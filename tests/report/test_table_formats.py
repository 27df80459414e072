"""The renderers of one Table, checked against text written out by hand: every format
shows the same cells, and each writes an absent cell, a NaN cell and a text cell its
documented way."""

from __future__ import annotations

import math

from mistrust.rows import MetricRow
from mistrust.tables import MEMBERS, Table, set_table
from mistrust.tables.formats import markdown, to_csv, to_html, to_latex, to_text


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
    from mistrust.rows import MetricRow
    from mistrust.tables.model import lookup

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
