"""The report: one self-contained, escaped, deterministic HTML page plus Markdown and LaTeX."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import numpy as np
import pytest
from fake_run import EVIL, EVIL_PATH, make_fake_run, shared_report

from mistrust.present.report import build_report
from mistrust.present.report.plots import load_scores, operating_point
from mistrust.present.tables import read_attack_rows
from mistrust.present.tables.findings import headline
from mistrust.present.tables.formats import tex_escape
from mistrust.present.tables.model import lookup
from mistrust.rows import MetricRow


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_report(tmp_path_factory.mktemp("shared"))


@pytest.fixture(scope="module")
def page(run: Path) -> str:
    return (run / "report.html").read_text()


def test_report_is_one_self_contained_file(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert 'src="http' not in page and "<script src" not in page and "<link" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", page)
    assert "@import" not in page and "url(" not in page
    imgs = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(imgs) >= 8  # 3 ROC, per-variant ROC, 2 histograms, reliability, trade-off, galleries
    assert all(src.startswith("data:image/png;base64,") for src in imgs)


def test_summary_states_the_computed_headline(run: Path, page: str) -> None:
    rows = read_attack_rows(run)
    html, text = headline(rows)
    assert html in page
    # the fake run makes "scaled" the OOD set with the highest FPR
    val = lookup(rows)
    worst = max(
        (val[("base", a, s, "fpr")], s)
        for a in ("threshold", "entropy", "salem")
        for s in ("permuted", "scaled", "noise", EVIL)
    )
    assert worst[1] == "scaled" and text.endswith("on scaled inputs.")
    assert f"FPR {worst[0]:.2f}" in text


def test_tables_and_sections_present(page: str) -> None:
    for title in (
        "False-positive rate per evaluation set (base)",
        "AUROC, members vs each set",
        "In-distribution operating points",
        "threshold: FPR per variant",
        "Target models",
        "Earth mover",
        "ROC curves",
        "Max-score distributions",
        "False-positive galleries",
        "Reliability diagrams",
        "Over-confidence vs leakage",
        "Configuration and software",
        "torch",
        "Per-sample view",
        "Most vulnerable members (base)",
        "Agreement: false positives on scaled (base)",
    ):
        assert title in page, title
    assert "background:hsl(" in page  # colour-graded cells
    assert "omitted" not in page


def test_user_strings_are_escaped(page: str, run: Path) -> None:
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert EVIL_PATH not in page and escape(EVIL_PATH, quote=False) in page
    tex = (run / "tables" / "fpr_v0.tex").read_text()
    assert EVIL not in tex and r"\textless{}script\textgreater{}alert(1)" in tex


def test_rebuild_is_byte_identical(run: Path) -> None:
    files = ["report.html", "report.md", *(f"tables/{p.name}" for p in (run / "tables").iterdir())]
    before = {f: (run / f).read_bytes() for f in files}
    build_report(run)
    assert {f: (run / f).read_bytes() for f in files} == before


def test_markdown_and_latex_tables(run: Path) -> None:
    md = (run / "report.md").read_text()
    assert "| set \\ attack | threshold | entropy | salem |" in md
    assert "| members (TPR) |" in md
    tex = sorted((run / "tables").glob("*.tex"))
    assert {"fpr_v0.tex", "fpr_v1.tex", "auroc_v0.tex", "fpr_a0.tex", "models.tex", "all.tex"} <= {
        p.name for p in tex
    }
    for p in tex:
        if p.name != "all.tex":
            text = p.read_text()
            assert "\\toprule" in text and "\\midrule" in text and "\\bottomrule" in text
    assert "\\input{tables/fpr_v0}" in (run / "tables" / "all.tex").read_text()
    assert "\\textbf{" in (run / "tables" / "fpr_v0.tex").read_text()  # column maximum


def test_operating_point_is_exact(run: Path) -> None:
    val = lookup(read_attack_rows(run))
    for s in ("original", "scaled"):
        fpr, tpr = operating_point(load_scores(run, "base", "threshold", s))
        assert fpr == pytest.approx(val[("base", "threshold", s, "fpr")], abs=1e-12)
        assert tpr == pytest.approx(val[("base", "threshold", s, "tpr")], abs=1e-12)


def test_scores_outside_the_run_are_not_read(run: Path) -> None:
    assert load_scores(run, "base", "threshold", "../../../results") is None


def test_missing_pieces_degrade_gracefully(tmp_path: Path) -> None:
    path = make_fake_run(
        tmp_path / "small",
        variants=("base",),
        sets=("original",),
        n=60,
        galleries=False,
        outputs=False,
    )
    (path / "model_metrics.csv").unlink()
    (path / "config.yaml").unlink()
    from mistrust.cli import main

    assert main(["report", str(path)]) == 0
    page = (path / "report.html").read_text()
    assert "galleries omitted" in page and "reliability diagrams omitted" in page
    assert "trade-off plot omitted" in page and "FPR per variant" not in page
    assert "on in-distribution non-members (AUROC" in page  # headline without OOD sets
    assert (path / "report.md").is_file()


def test_missing_results_names_the_run_dir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        build_report(tmp_path)


def test_headline_when_no_ood_set_beats_original() -> None:
    rows = [
        MetricRow("v", "a", d, m, x)
        for d, m, x in (("original", "tpr", 0.9), ("original", "fpr", 0.5), ("scaled", "fpr", 0.2))
    ]
    _, text = headline(rows)
    assert text == (
        "a attack (v): TPR 0.90 on members and FPR 0.50 on in-distribution "
        "non-members; no out-of-distribution set is flagged more often "
        "(highest: FPR 0.20 on scaled)."
    )


def test_tex_escape() -> None:
    assert tex_escape("a_b & 50% $x$ #1 {y} <z>") == (
        r"a\_b \& 50\% \$x\$ \#1 \{y\} \textless{}z\textgreater{}"
    )


def test_png_is_deterministic_and_small() -> None:
    from matplotlib.figure import Figure

    from mistrust.present.report.plots import data_uri, label, png_bytes

    def draw() -> str:
        fig = Figure(figsize=(3, 2))
        ax = fig.add_subplot()
        ax.plot(np.arange(5), np.arange(5) ** 2, label=label("odd $name_with^tex"))
        ax.legend()
        return data_uri(png_bytes(fig))

    first = draw()
    assert first == draw()
    assert len(first) < 60_000
