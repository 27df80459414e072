"""Every number of ``tables.md``, ``report.md``, the LaTeX and the HTML tables equals the
value in ``results.csv`` / ``model_metrics.csv`` it claims to show.

The tables are parsed back from the written files; which tidy row a cell shows is
written out here from the documented table layout (first row: TPR on the members;
other rows: that set's FPR; operating points: one column per metric; ...), not taken
from the code that builds the tables.
"""

from __future__ import annotations

import csv
import math
import re
from html import unescape
from pathlib import Path

import numpy as np
import pytest

from mistrust.rows import MetricRow, ModelRow

MEMBERS = "members (TPR)"
OPERATING = {
    "TPR": "tpr",
    "TPR CI low": "tpr_ci_low",
    "TPR CI high": "tpr_ci_high",
    "FPR": "fpr",
    "precision": "precision",
    "accuracy": "accuracy",
    "AUROC": "auroc",
    "AUPR": "aupr",
    "TPR@0.1%FPR": "tpr_at_0.1fpr",
    "TPR@1%FPR": "tpr_at_1fpr",
    "FPR@95%TPR": "fpr_at_95tpr",
    "oracle accuracy": "oracle_accuracy",
}
MODEL = {
    "train acc.": ("train", "accuracy"),
    "test acc.": ("test", "accuracy"),
    "ECE": ("test", "ece"),
    "OE": ("test", "overconfidence_error"),
    "NLL": ("test", "nll"),
    "MMPS members": ("members", "mmps"),
    "MMPS non-members": ("nonmembers", "mmps"),
}

#: the in-distribution trust checks table: column -> metric of the "original" set
CHECKS = {
    "AUROC": "auroc",
    "AUROC CI low": "auroc_ci_low",
    "AUROC CI high": "auroc_ci_high",
    "blind baseline AUROC": "baseline_auroc",
    "null AUROC": "null_auroc",
    "null CI low": "null_auroc_ci_low",
    "null CI high": "null_auroc_ci_high",
    "TPR@1%FPR CI low": "tpr_at_1fpr_ci_low",
    "TPR@1%FPR CI high": "tpr_at_1fpr_ci_high",
    "epsilon lower bound": "epsilon_lower_bound",
}
#: results.csv verdict codes, as docs/CHECKS.md defines them
VERDICTS = {1.0: "leakage shown", 0.0: "not shown", -1.0: "inconclusive"}
FLAGS = {
    "flag_constant": "constant",
    "flag_ties": "ties",
    "flag_polarity": "polarity",
    "flag_null": "null test",
}
LOW_FPR = {"TPR@0.1%FPR": 0.001, "TPR@1%FPR": 0.01}

Parsed = dict[str, tuple[list[str], list[str], dict[tuple[str, str], str]]]


# --- parsers -------------------------------------------------------------------------------


def parse_markdown(text: str) -> Parsed:
    """``{title: (rows, cols, {(row, col): cell text})}`` of every ``#``-titled pipe table."""
    out: Parsed = {}
    title = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            title = line.lstrip("#").strip()
        elif line.startswith("|") and title is not None:
            cols = [c.strip() for c in line.strip("|").split("|")][1:]
            rows, cells = [], {}
            i += 2  # header and rule
            while i < len(lines) and lines[i].startswith("|"):
                parts = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                rows.append(parts[0])
                cells.update({(parts[0], c): x for c, x in zip(cols, parts[1:], strict=True)})
                i += 1
            out[title] = (rows, cols, cells)
            title = None
            continue
        i += 1
    return out


_TEX = {
    r"\textbackslash{}": "\\",
    r"\&": "&",
    r"\%": "%",
    r"\_": "_",
    r"\#": "#",
    r"\$": "$",
    r"\textless{}": "<",
    r"\textgreater{}": ">",
}


def _untex(s: str) -> str:
    s = re.sub(r"\\textbf\{(.*)\}", r"\1", s.strip())
    for k, v in _TEX.items():
        s = s.replace(k, v)
    return s


def parse_latex(text: str) -> Parsed:
    title = _untex(re.search(r"\\caption\{(.*)\}", text).group(1))
    body = text.split(r"\toprule")[1].split(r"\bottomrule")[0]
    lines = [x for x in body.splitlines() if x.strip() and x.strip() != r"\midrule"]
    cols = [_untex(c) for c in lines[0].rstrip("\\ ").split(" & ")][1:]
    rows, cells = [], {}
    for line in lines[1:]:
        parts = [_untex(c) for c in line.rstrip().removesuffix(r"\\").split(" & ")]
        rows.append(parts[0])
        cells.update({(parts[0], c): x for c, x in zip(cols, parts[1:], strict=True)})
    return {title: (rows, cols, cells)}


def parse_html(page: str) -> Parsed:
    out: Parsed = {}
    for m in re.finditer(r"<table><caption>(.*?)</caption>(.*?)</table>", page, re.S):
        title, body = unescape(m.group(1)), m.group(2)
        head = re.search(r"<thead><tr>(.*?)</tr></thead>", body, re.S)
        if head is None:  # the configuration's key-value list
            continue
        head = head.group(1)
        cols = [unescape(c) for c in re.findall(r"<th>(.*?)</th>", head)][1:]
        rows, cells = [], {}
        for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body.split("</thead>")[1], re.S):
            name = unescape(re.search(r"<th[^>]*>(.*?)</th>", tr).group(1))
            vals = [unescape(v) for v in re.findall(r"<td[^>]*>(.*?)</td>", tr)]
            rows.append(name)
            cells.update({(name, c): x for c, x in zip(cols, vals, strict=True)})
        out[title] = (rows, cols, cells)
    return out


# --- what each table must show --------------------------------------------------------------


def read_csv(path: Path) -> dict[tuple[str, str, str, str], float]:
    with open(path, newline="") as fh:
        r = csv.reader(fh)
        next(r)
        return {tuple(row[:4]): float(row[4]) for row in r}


def _flags(res: dict, v: str, a: str) -> str:
    """The flags column: each raised flag, with the sets where it is raised unless that is
    only the in-distribution set; "none" when no flag is raised."""
    out = []
    for key, name in FLAGS.items():
        where = [k[2] for k, x in res.items() if (k[0], k[1], k[3]) == (v, a, key) and x == 1]
        if where:
            out.append(name if where == ["original"] else f"{name} ({', '.join(where)})")
    return ", ".join(out) or "none"


def _reason_numbers_are_results(reason: str, res: dict, v: str, a: str) -> None:
    """Every number in a verdict's reason is one of the attack's in-distribution values."""
    own = [x for k, x in res.items() if k[:3] == (v, a, "original")]
    shown = {f"{x:.3f}" for x in own} | {f"{x:+.3f}" for x in own} | {f"{x:.0%}" for x in own}
    shown |= {"0.5", "1e-5"}
    for number in re.findall(r"[+-]?\d+\.\d+%?|\d+%", reason):
        assert number in shown, (v, a, number, reason)


def expected(title: str, row: str, col: str, res: dict, mod: dict) -> float | str | None:
    """The tidy value that cell ``(row, col)`` of the table titled ``title`` shows."""
    m = re.fullmatch(r"Trust checks on the in-distribution set \((.+)\)", title)
    if m:
        v = m.group(1)
        if col == "flags":
            return _flags(res, v, row)
        x = res.get((v, row, "original", CHECKS[col]))
        return "n/r" if col.startswith("TPR@1%FPR") and x is not None and math.isnan(x) else x
    m = re.fullmatch(r"Verdict per evaluation set \((.+)\)", title)
    if m:
        return VERDICTS[res[(m.group(1), col, row, "verdict")]]
    m = re.fullmatch(r"Verdict per attack and set \((.+)\)", title)  # the summary's matrix
    if m:
        return VERDICTS[res[(m.group(1), row, col, "verdict")]]
    m = re.fullmatch(r"Verdict per attack \((.+)\)", title)
    if m:
        label = VERDICTS[res[(m.group(1), row, "original", "verdict")]]
        return label if col == "verdict" else None  # the reason: see check_tables
    m = re.fullmatch(r"(?:False-positive rate|FPR) per evaluation set \((.+)\)", title)
    if m:
        v = m.group(1)
        key = (v, col, "original", "tpr") if row == MEMBERS else (v, col, row, "fpr")
        return res.get(key)
    m = re.fullmatch(r"(.+): FPR per variant", title)
    if m:
        a = m.group(1)
        key = (col, a, "original", "tpr") if row == MEMBERS else (col, a, row, "fpr")
        return res.get(key)
    m = re.fullmatch(r"AUROC, members vs each set \((.+)\)", title)
    if m:
        if col == "blind baseline":  # model-free: the same beside every attack
            same = {
                x
                for k, x in res.items()
                if (k[0], k[2], k[3]) == (m.group(1), row, "baseline_auroc")
            }
            assert len(same) == 1, (row, same)
            return same.pop()
        return res.get((m.group(1), col, row, "auroc"))
    m = re.fullmatch(r"In-distribution operating points \((.+)\)", title)
    if m:
        if col == "threshold":
            return res.get((m.group(1), row, "shadow", "operating_score"))
        lowest = res.get((m.group(1), row, "original", "min_resolvable_fpr"))
        if col in LOW_FPR and lowest is not None and LOW_FPR[col] < lowest:
            return "n/r"  # fewer than 5 false positives at that FPR
        return res.get((m.group(1), row, "original", OPERATING[col]))
    if title == "Target models":
        return mod.get((row, "target", *MODEL[col]))
    if title.startswith("Earth mover"):
        return mod.get((col, "target", row, "emd_max_score"))
    raise AssertionError(f"unexpected table {title!r}")


def _shown(x: float | str | None, style: str, spec: str = ".3f") -> set[str]:
    if isinstance(x, str):
        return {x}
    if x is None:
        return {""} if style == "md" else {"–", "--", ""}
    if math.isnan(x):
        return {"–", "--", "nan"}
    return {format(x, spec)}


def check_tables(parsed: Parsed, res: dict, mod: dict, style: str) -> int:
    """Assert every cell of every parsed table; return how many numbers were checked."""
    n = 0
    for title, (rows, cols, cells) in parsed.items():
        if title.startswith("At a glance") or title.startswith("mistrust audit"):
            continue
        if title.startswith(PER_SAMPLE):  # against their own CSVs: check_per_sample
            continue
        for r in rows:
            for c in cols:
                if title.startswith("Verdict per attack") and c == "reason":
                    _reason_numbers_are_results(cells[(r, c)], res, title[20:-1], r)
                    n += 1
                    continue
                x = expected(title, r, c, res, mod)
                # the shadow-fitted threshold keeps six significant digits
                threshold = c == "threshold" and title.startswith("In-distribution operating")
                spec = ".6g" if threshold else ".3f"
                assert cells[(r, c)] in _shown(x, style, spec), (title, r, c, cells[(r, c)], x)
                n += x is not None
    return n


PER_SAMPLE = ("Most vulnerable members", "Agreement: ")


def check_per_sample(parsed: Parsed, run_dir: Path, style: str) -> int:
    """Every cell of the per-sample tables against ``vulnerable.csv`` / ``agreement.csv``;
    return how many were checked."""
    with open(run_dir / "vulnerable.csv", newline="") as fh:
        vul = {(r["variant"], r["rank"]): r for r in csv.DictReader(fh)}
    with open(run_dir / "agreement.csv", newline="") as fh:
        agr = {tuple(list(r.values())[:4]): r for r in csv.DictReader(fh)}
    n = 0
    for title, (rows, cols, cells) in parsed.items():
        m = re.fullmatch(r"Most vulnerable members \((.+)\), ranked by (.+)", title)
        if m:
            for r in rows:
                src = vul[(m.group(1), r)]
                assert src["ranked_by"] == m.group(2)
                shown = {
                    "index": src["index"],
                    "class": src["class"],
                    "margin": f"{float(src['margin']):.3f}",
                    "max score": f"{float(src['max_score']):.4f}",
                    "flagged by": f"{src['flagged_by']} / {src['n_attacks']}",
                }
                for c in cols:
                    assert cells[(r, c)] == shown.get(c, f"{float(src.get(c) or 'nan'):.3f}")
                    n += 1
        m = re.fullmatch(r"Agreement: (?:members .+|false positives on (.+)) \((.+)\)", title)
        if m:
            for r in rows:
                a, count = re.fullmatch(r"(.+) \((\d+)\)", r).groups()
                for c in cols:
                    src = agr[(m.group(2), m.group(1) or "members", a, c)]
                    assert src["n_a"] == count
                    assert cells[(r, c)] in _shown(float(src["jaccard"]), style), (title, r, c)
                    n += 1
    return n


def check_completeness(parsed: Parsed, res: dict) -> None:
    """Each variant's FPR table lists every attack and every set of ``results.csv``."""
    for v in {k[0] for k in res}:
        rows, cols, _ = next(
            t for title, t in parsed.items() if re.search(rf"per evaluation set \({v}\)", title)
        )
        assert set(cols) == {k[1] for k in res if k[0] == v}
        assert rows[0] == MEMBERS
        assert set(rows[1:]) == {k[2] for k in res if k[0] == v and k[2] != "shadow"}


# --- on the shared run's files ---------------------------------------------------------------


@pytest.fixture(scope="module")
def truth(pipeline):
    return read_csv(pipeline.run_dir / "results.csv"), read_csv(
        pipeline.run_dir / "model_metrics.csv"
    )


def test_tables_md(pipeline, truth) -> None:
    parsed = parse_markdown((pipeline.run_dir / "tables.md").read_text())
    res, mod = truth
    assert len(parsed) == 2 + len(pipeline.cfg.attacks.names)  # per variant, per attack
    assert check_tables(parsed, res, mod, "md") > 100
    check_completeness(parsed, res)


def test_report_md(pipeline, truth) -> None:
    parsed = parse_markdown((pipeline.run_dir / "report.md").read_text())
    res, mod = truth
    assert check_tables(parsed, res, mod, "md") > 200
    check_completeness(parsed, res)
    assert "Target models" in parsed and any(t.startswith("Earth mover") for t in parsed)
    _has_check_tables(parsed, pipeline.cfg.variants.names)


def _has_check_tables(parsed: Parsed, variants: list[str]) -> None:
    """Every variant's report shows its trust checks and verdicts (docs/CHECKS.md)."""
    for v in variants:
        for title in (
            f"Trust checks on the in-distribution set ({v})",
            f"Verdict per evaluation set ({v})",
            f"Verdict per attack ({v})",
        ):
            assert title in parsed, title
        rows, cols, _ = parsed[f"AUROC, members vs each set ({v})"]
        assert cols[-1] == "blind baseline"


def test_per_sample_tables(pipeline) -> None:
    """The per-sample tables of report.md and report.html equal their CSVs' rows."""
    run = pipeline.run_dir
    md = parse_markdown((run / "report.md").read_text())
    html = parse_html((run / "report.html").read_text())
    attacks = len(pipeline.cfg.attacks.names) + len(pipeline.cfg.reference.attacks)
    assert check_per_sample(md, run, "md") > 8 * attacks  # ranking of the first variant
    assert check_per_sample(html, run, "html") > check_per_sample(md, run, "md")  # + max score
    agreement = [t for t in html if t.startswith("Agreement: ")]
    assert len(agreement) == 1 + len(pipeline.cfg.eval.sets)  # members, then each set


def test_latex_tables(pipeline, truth) -> None:
    res, mod = truth
    parsed: Parsed = {}
    files = sorted((pipeline.run_dir / "tables").glob("*.tex"))
    for f in files:
        if f.name != "all.tex":
            parsed.update(parse_latex(f.read_text()))
    assert len(parsed) == len(files) - 1
    assert check_tables(parsed, res, mod, "tex") > 200
    check_completeness(parsed, res)
    _has_check_tables(parsed, pipeline.cfg.variants.names)


def test_html_tables(pipeline, truth) -> None:
    res, mod = truth
    parsed = parse_html((pipeline.run_dir / "report.html").read_text())
    assert check_tables(parsed, res, mod, "html") > 200
    check_completeness(parsed, res)
    _has_check_tables(parsed, pipeline.cfg.variants.names)
    rows, cols, cells = next(t for title, t in parsed.items() if title.startswith("At a glance"))
    for v in rows:
        assert cells[(v, "train acc.")] == f"{mod[(v, 'target', 'train', 'accuracy')]:.2f}"
        assert cells[(v, "ECE")] == f"{mod[(v, 'target', 'test', 'ece')]:.3f}"


def test_member_row_really_is_the_tpr(pipeline, truth) -> None:
    """The member row against the saved scores and decisions: TPR = decided members / members."""
    parsed = parse_markdown((pipeline.run_dir / "tables.md").read_text())
    _, cols, cells = parsed["FPR per evaluation set (base)"]
    for a in cols:
        f = np.load(pipeline.run_dir / f"scores/base/{a}/original.npz")
        tpr = f["predicted"][f["is_member"]].mean()
        fpr = f["predicted"][~f["is_member"]].mean()
        assert cells[(MEMBERS, a)] == f"{tpr:.3f}", a
        assert cells[("original", a)] == f"{fpr:.3f}", a


def test_csv_tables(pipeline, truth) -> None:
    res, _ = truth
    for v in pipeline.cfg.variants.names:
        with open(pipeline.run_dir / f"tables/fpr_{v}.csv", newline="") as fh:
            r = list(csv.reader(fh))
        cols = r[0][1:]
        assert r[1][0] == MEMBERS
        for row in r[1:]:
            for c, x in zip(cols, row[1:], strict=True):
                want = (
                    res[(v, c, "original", "tpr")]
                    if row[0] == MEMBERS
                    else res[(v, c, row[0], "fpr")]
                )
                assert float(x) == want


# --- the same checks on hand-made rows (fast; no run) -----------------------------------------


def _synthetic() -> tuple[list[MetricRow], list[ModelRow]]:
    rng = np.random.default_rng(7)
    rows, model_rows = [], []
    metrics = ["tpr", "fpr", *OPERATING.values(), "oracle_tpr", "advantage"]
    for v in ("base", "temp_&"):
        for a in ("threshold", "loss", "odd_%name"):
            for ds in ("original", "scaled", "noise"):
                for m in dict.fromkeys(metrics):
                    x = float(rng.uniform())
                    if (v, a, ds, m) == ("temp_&", "loss", "noise", "fpr"):
                        x = math.nan
                    rows.append(MetricRow(v, a, ds, m, x))
            if a != "loss":
                rows.append(MetricRow(v, a, "shadow", "operating_score", float(rng.uniform(2, 3))))
        for role in ("target", "shadow"):
            for d, m in MODEL.values():
                model_rows.append(ModelRow(v, role, d, m, float(rng.uniform())))
            for ds in ("original", "scaled", "noise"):
                model_rows.append(ModelRow(v, role, ds, "emd_max_score", float(rng.uniform())))
    return rows, model_rows


def _as_dicts(rows, model_rows):
    return {r[:4]: r[4] for r in rows}, {r[:4]: r[4] for r in model_rows}


def test_rendered_tables_match_rows_by_hand() -> None:
    from mistrust.present.tables import build_tables
    from mistrust.present.tables.formats import to_html, to_latex, to_markdown

    rows, model_rows = _synthetic()
    res, mod = _as_dicts(rows, model_rows)
    tables = build_tables(rows, model_rows)
    titles = [t.title for t in tables]
    assert titles == [
        "False-positive rate per evaluation set (base)",
        "AUROC, members vs each set (base)",
        "In-distribution operating points (base)",
        "False-positive rate per evaluation set (temp_&)",
        "AUROC, members vs each set (temp_&)",
        "In-distribution operating points (temp_&)",
        "threshold: FPR per variant",
        "loss: FPR per variant",
        "odd_%name: FPR per variant",
        "Target models",
        "Earth mover's distance of max scores, members vs each set",
    ]
    md = parse_markdown("\n".join(to_markdown(t) for t in tables))
    tex: Parsed = {}
    for t in tables:
        tex.update(parse_latex(to_latex(t)))
    html = parse_html("".join(to_html(t) for t in tables))
    for parsed, style in ((md, "md"), (tex, "tex"), (html, "html")):
        assert len(parsed) == len(tables)
        assert check_tables(parsed, res, mod, style) == 162  # 2 x (12 + 9 + 38) + 24 + 14 + 6
        check_completeness(parsed, res)
        # the operating-point table has a threshold column only for attacks that have one
        _, cols, cells = parsed["In-distribution operating points (base)"]
        assert cols[-1] == "threshold" and cols[:-1] == list(OPERATING)
        assert cells[("loss", "threshold")] in {"", "–", "--"}


def _names(cfg) -> dict:
    """What ``write_results`` takes from a run's config."""
    return {"variants": cfg.variants.names, "attacks": cfg.attacks.names, "config": cfg.to_dict()}


def test_written_results_match_rows_by_hand(tmp_path: Path) -> None:
    from mistrust.config import load_config
    from mistrust.present.results import RunResult, write_results

    rows, model_rows = _synthetic()
    cfg = load_config(
        "smoke", ["variants.names=[base, temperature]", "attacks.names=[threshold, loss]"]
    )
    rows = [r._replace(variant="temperature") if r.variant == "temp_&" else r for r in rows]
    rows = [r for r in rows if r[1] != "odd_%name"]
    write_results(RunResult(tmp_path, rows, model_rows, {}, {}, {}), **_names(cfg))
    res = read_csv(tmp_path / "results.csv")
    assert res == {r[:4]: r[4] for r in rows if not math.isnan(r[4])} | {
        r[:4]: res[r[:4]] for r in rows if math.isnan(r[4])
    }
    assert all(math.isnan(res[r[:4]]) for r in rows if math.isnan(r[4]))
    parsed = parse_markdown((tmp_path / "tables.md").read_text())
    assert list(parsed) == [
        "FPR per evaluation set (base)",
        "FPR per evaluation set (temperature)",
        "threshold: FPR per variant",
        "loss: FPR per variant",
    ]
    assert check_tables(parsed, res, {}, "md") == 2 * 8 + 2 * 8
    check_completeness(parsed, res)
    mod = read_csv(tmp_path / "model_metrics.csv")
    assert mod == {r[:4]: r[4] for r in model_rows}
    import json

    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["attacks"]["base"]["loss"]["scaled"]["fpr"] == res[("base", "loss", "scaled", "fpr")]
    assert doc["attacks"]["temperature"]["loss"]["noise"]["fpr"] is None
    assert doc["models"]["base"]["target"]["test"]["ece"] == mod[("base", "target", "test", "ece")]
    for v in ("base", "temperature"):
        with open(tmp_path / f"tables/fpr_{v}.csv", newline="") as fh:
            r = list(csv.reader(fh))
        assert r[0] == ["set", "threshold", "loss"] and r[1][0] == MEMBERS
        assert float(r[1][2]) == res[(v, "loss", "original", "tpr")]
        assert float(r[3][1]) == res[(v, "threshold", "scaled", "fpr")]


# --- the headline, the trade-off points, reading and writing tables (fast) ---------------------


def _rows(fprs: dict[tuple[str, str], float], tprs: dict[str, float]) -> list[MetricRow]:
    rows = []
    for (a, ds), x in fprs.items():
        rows.append(MetricRow("base", a, ds, "fpr", x))
        rows.append(MetricRow("base", a, ds, "auroc", 0.5 + x / 10))
    for a, x in tprs.items():
        rows.append(MetricRow("base", a, "original", "tpr", x))
        rows.append(MetricRow("base", a, "original", "tpr_at_1fpr", x / 2))
    return rows


def test_headline_names_the_worst_ood_set() -> None:
    from mistrust.present.tables.findings import headline

    rows = _rows(
        {
            ("loss", "original"): 0.2,
            ("loss", "noise"): 0.7,
            ("loss", "scaled"): math.nan,
            ("salem", "original"): 0.1,
            ("salem", "noise"): 0.35,
            ("salem", "scaled"): 0.9,
        },
        {"loss": 0.6, "salem": 0.55},
    )
    html, text = headline(rows)
    assert text == (
        "salem attack (base): TPR 0.55 on members and FPR 0.10 on in-distribution "
        "non-members, but FPR 0.90 on scaled inputs."
    )
    assert "<strong>FPR 0.90</strong>" in html and "<strong>TPR 0.55</strong>" in html
    # ties: the first attack, then the first set, in order of appearance
    tie = _rows(
        {("loss", "original"): 0.2, ("loss", "noise"): 0.5, ("salem", "noise"): 0.5},
        {"loss": 0.6, "salem": 0.7},
    )
    assert headline(tie)[1].startswith("loss attack (base): TPR 0.60")


def test_headline_when_nothing_beats_the_original_or_no_ood_set() -> None:
    from mistrust.present.tables.findings import headline

    rows = _rows({("loss", "original"): 0.4, ("loss", "noise"): 0.4}, {"loss": 0.6})
    assert headline(rows)[1] == (
        "loss attack (base): TPR 0.60 on members and FPR 0.40 on in-distribution "
        "non-members; no out-of-distribution set is flagged more often (highest: FPR 0.40 "
        "on noise)."
    )
    only = _rows(
        {("loss", "original"): 0.3, ("salem", "original"): 0.1}, {"loss": 0.6, "salem": 0.8}
    )
    # AUROC 0.53 (loss) vs 0.51 (salem): the attack with the best in-distribution AUROC
    assert headline(only)[1] == (
        "loss attack (base): TPR 0.60, FPR 0.30 on in-distribution non-members (AUROC 0.53)."
    )
    nan = [r if r.metric != "auroc" else r._replace(value=math.nan) for r in only]
    assert headline(nan)[1].startswith("loss attack (base): TPR 0.60, FPR 0.30")
    assert headline(nan)[1].endswith("(AUROC –).")


def test_tradeoff_points_by_hand() -> None:
    from mistrust.present.tables.findings import tradeoff_points

    rows = _rows(
        {
            ("loss", "original"): 0.2,
            ("loss", "noise"): 0.6,
            ("loss", "scaled"): 0.9,
            ("salem", "original"): 0.1,
            ("salem", "noise"): 0.3,
        },
        {"loss": 0.6, "salem": 0.4},
    )
    rows.append(MetricRow("temp", "loss", "original", "auroc", 0.7))
    rows.append(MetricRow("temp", "loss", "noise", "fpr", 0.25))
    # a point needs both an OOD FPR and the in-distribution AUROC: neither pair below has one
    rows.append(MetricRow("temp", "entropy", "original", "auroc", 0.8))  # no OOD FPR
    rows.append(MetricRow("temp", "salem", "noise", "fpr", 0.5))  # no in-distribution AUROC
    pts = tradeoff_points(rows)
    assert pts[0] == pytest.approx(("base", "loss", 0.75, 0.52, 0.3))
    assert pts[1] == pytest.approx(("base", "salem", 0.3, 0.51, 0.2))
    assert pts[2][:4] == ("temp", "loss", 0.25, 0.7) and math.isnan(pts[2][4])
    assert len(pts) == 3


def test_tables_are_read_back_and_written_as_latex(tmp_path: Path) -> None:
    from mistrust.present.report.html import write_latex
    from mistrust.present.tables import build_tables, read_attack_rows, read_model_rows
    from mistrust.runtime.paths import RunPaths

    rows, model_rows = _synthetic()
    with pytest.raises(FileNotFoundError, match="no results.csv"):
        read_attack_rows(tmp_path)
    assert read_model_rows(tmp_path) == []
    with open(tmp_path / "results.csv", "w") as fh:
        fh.write("variant,attack,dataset,metric,value\n")
        fh.writelines(f"{v},{a},{d},{m},{x!r}\n" for v, a, d, m, x in rows[:5])
        fh.write("\n")
    got = read_attack_rows(tmp_path)
    assert got[:5] == [tuple(r) for r in rows[:5]] and len(got) == 5
    assert all(isinstance(r, MetricRow) and isinstance(r.value, float) for r in got)
    with open(tmp_path / "model_metrics.csv", "w") as fh:
        fh.write("variant,role,dataset,metric,value\nbase,target,test,ece,0.25\n")
    assert read_model_rows(tmp_path) == [ModelRow("base", "target", "test", "ece", 0.25)]
    assert read_model_rows(tmp_path)[0].role == "target"
    (tmp_path / "model_metrics.csv").write_text("a,b\nx,y\n")
    with pytest.raises(ValueError, match="expected 5 columns"):
        read_model_rows(tmp_path)
    (tmp_path / "model_metrics.csv").write_text("")
    with pytest.raises(ValueError, match="expected 5 columns"):
        read_model_rows(tmp_path)
    tables = build_tables(rows, model_rows)
    paths = write_latex(RunPaths(tmp_path), tables)
    assert [p.name for p in paths] == [f"{t.key}.tex" for t in tables]
    assert [t.key for t in tables][:3] == ["fpr_v0", "auroc_v0", "operating_v0"]
    index = (tmp_path / "tables/all.tex").read_text()
    assert index.splitlines()[1:] == [f"\\input{{tables/{t.key}}}" for t in tables]
    assert "booktabs" in index.splitlines()[0]
    for t, p in zip(tables, paths, strict=True):
        assert parse_latex(p.read_text()) == parse_latex(to_latex_of(t))


def to_latex_of(table) -> str:
    from mistrust.present.tables.formats import to_latex

    return to_latex(table)


def test_latex_marks_each_columns_largest_rate() -> None:
    from mistrust.present.tables import build_tables
    from mistrust.present.tables.formats import to_latex

    rows, model_rows = _synthetic()
    res = {r[:4]: r[4] for r in rows}
    t = build_tables(rows, model_rows)[0]  # FPR per set (base)
    tex = to_latex(t)
    assert r"\label{tab:fpr_v0}" in tex and "\\begin{tabular}{lrrr}" in tex
    for a in ("threshold", "loss", "odd_%name"):
        fprs = {ds: res[("base", a, ds, "fpr")] for ds in ("original", "scaled", "noise")}
        best = max(fprs.values())
        assert tex.count(rf"\textbf{{{best:.3f}}}") >= 1
        tpr = res[("base", a, "original", "tpr")]
        assert rf"\textbf{{{tpr:.3f}}}" not in tex or tpr in fprs.values()
    lines = tex.splitlines()
    assert lines[lines.index(r"\midrule") + 2] == r"\midrule"  # a rule under the member row
    assert "odd\\_\\%name" in tex and t.note in tex.replace("\\", "")


def test_run_result_value() -> None:
    from mistrust.present.results import RunResult

    r = RunResult(
        Path("."), [MetricRow("b", "a", "d", "m", 0.5), MetricRow("b", "a", "d", "n", 0.25)]
    )
    assert r.value("b", "a", "d", "n") == 0.25
    with pytest.raises(KeyError):
        r.value("b", "a", "d", "x")


def test_results_json_and_file_layout(tmp_path: Path) -> None:
    import json
    import platform

    import torch

    import mistrust
    from mistrust.config import load_config
    from mistrust.present.results import RunResult, write_results

    rows, model_rows = _synthetic()
    rows = [r for r in rows if r[0] == "base" and r[1] != "odd_%name"]
    cfg = load_config("smoke", ["variants.names=[base]", "attacks.names=[threshold, loss]"])
    info = {"temperature": {"target": {"where": tmp_path}}}
    write_results(
        RunResult(tmp_path, rows, model_rows, info, {"data": 1.5}, {"t": 2.0}), **_names(cfg)
    )
    text = (tmp_path / "results.json").read_text()
    assert text.startswith('{\n "config": {\n  "name"')  # indent 1
    doc = json.loads(text)
    assert list(doc) == [
        "config",
        "versions",
        "attacks",
        "models",
        "variants",
        "timings",
        "train_seconds",
    ]
    assert doc["config"] == json.loads(json.dumps(cfg.to_dict(), default=str))
    assert doc["versions"] == {
        "mistrust": mistrust.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    assert doc["variants"]["temperature"]["target"]["where"] == str(tmp_path)
    assert doc["timings"] == {"data": 1.5} and doc["train_seconds"] == {"t": 2.0}
    raw = (tmp_path / "results.csv").read_bytes()
    assert b"\r" not in raw and raw.startswith(b"variant,attack,dataset,metric,value\n")
    md = (tmp_path / "tables.md").read_text()
    assert md.startswith("## FPR per evaluation set (base)\n\n| set \\ attack | threshold | loss |")
    assert "per variant" not in md and not list(tmp_path.glob("tables/variants_*"))
    # NaN never reaches results.json as a bare NaN token
    bad = RunResult(tmp_path, rows, model_rows, {"x": math.nan}, {}, {})
    with pytest.raises(ValueError):
        write_results(bad, **_names(cfg))
    cfg2 = load_config("smoke", ["variants.names=[base, laplace]", "attacks.names=[loss]"])
    rows2 = rows + [r._replace(variant="laplace") for r in rows]
    write_results(RunResult(tmp_path, rows2, model_rows, {}, {}, {}), **_names(cfg2))
    assert "| set \\ variant | base | laplace |" in (tmp_path / "tables.md").read_text()
    assert (tmp_path / "tables/variants_loss.csv").read_text().startswith("set,base,laplace\n")
    with pytest.raises(KeyError, match="'nope'"):
        RunResult(tmp_path, rows).value("base", "loss", "nope", "fpr")


def test_table_layout_and_notes() -> None:
    """What a reader sees around the numbers: corners, shading, grouping and the notes
    that say what each table shows."""
    from mistrust.present.tables import build_tables

    rows, model_rows = _synthetic()
    rows += [
        MetricRow("solo", "entropy", ds, m, 0.25)
        for ds in ("original", "gan")
        for m in ("fpr", "tpr", "auroc")
    ]
    tables = {t.key: t for t in build_tables(rows, model_rows)}
    fpr_note = (
        "first row: TPR on the members; other rows: FPR on that set's non-members, at the "
        "shadow-calibrated threshold"
    )
    for i, v in enumerate(("base", "temp_&", "solo")):
        f, a, o = tables[f"fpr_v{i}"], tables[f"auroc_v{i}"], tables[f"operating_v{i}"]
        assert (f.corner, f.shade, f.note, f.group, f.bold_max) == (
            "set \\ attack",
            "rate",
            fpr_note,
            v,
            True,
        )
        assert (a.corner, a.shade, a.group, a.bold_max) == ("set \\ attack", "auroc", v, False)
        assert a.note == (
            "below 0.5: the set's non-members look more like members than the members do"
        )
        assert MEMBERS not in a.rows and a.rows == f.rows[1:]
        assert (o.corner, o.shade, o.group) == ("attack", "none", v)
        assert o.note == (
            "members vs original non-members; CI = exact 95% Clopper-Pearson; "
            "oracle = best threshold in hindsight; threshold: the attack's decision "
            "threshold fitted on the shadow model, in score units (results.csv: set shadow, "
            "metric operating_score)"
        )
    solo = tables["operating_v2"]
    assert solo.rows == ["entropy"] and "threshold" not in solo.cols
    assert tables["fpr_v2"].cols == ["entropy"] and tables["fpr_v2"].rows == [
        MEMBERS,
        "original",
        "gan",
    ]
    assert tables["operating_v0"].rows == ["threshold", "loss", "odd_%name"]
    for j, a in enumerate(("threshold", "loss", "odd_%name", "entropy")):
        t = tables[f"fpr_a{j}"]
        assert (t.title, t.corner, t.shade, t.group, t.bold_max) == (
            f"{a}: FPR per variant",
            "set \\ variant",
            "rate",
            "",
            True,
        )
        assert t.note == "first row: TPR on the members"
    m, e = tables["models"], tables["emd"]
    assert (m.title, m.corner, m.shade, m.group) == ("Target models", "variant", "none", "")
    assert m.note == (
        "ECE and OE: 15 equal-width bins on the target's test split; "
        "MMPS: mean max prediction score"
    )
    assert m.rows == ["base", "temp_&"] and m.cols == list(MODEL)
    assert (e.corner, e.shade, e.group) == ("set \\ variant", "none", "")
    assert e.note == "small: the set's max scores look like the members'"
    assert e.rows == ["original", "scaled", "noise"] and e.cols == ["base", "temp_&"]
    # the shadow's model metrics never reach the tables
    shadow_only = [r for r in model_rows if r[1] == "shadow"]
    assert not any(x == r[4] for t in (m, e) for x in t.cells.values() for r in shadow_only)


def test_emd_rows_are_the_targets_sets() -> None:
    """The EMD table lists the sets the target has an EMD for, in its order; the shadow's
    sets (here other ones, in another order) and values never reach it."""
    from mistrust.present.tables.build import model_tables

    model_rows = []
    for v in ("base", "temp"):
        for i, ds in enumerate(("original", "scaled", "noise")):
            model_rows.append(ModelRow(v, "target", ds, "emd_max_score", 0.1 * i + (v == "temp")))
        for ds in ("gan", "noise", "original"):
            model_rows.append(ModelRow(v, "shadow", ds, "emd_max_score", 9.0))
    emd = {t.key: t for t in model_tables(model_rows)}["emd"]
    assert emd.rows == ["original", "scaled", "noise"] and emd.cols == ["base", "temp"]
    assert emd.cells == {
        ("original", "base"): 0.0,
        ("scaled", "base"): 0.1,
        ("noise", "base"): 0.2,
        ("original", "temp"): 1.0,
        ("scaled", "temp"): 1.1,
        ("noise", "temp"): 1.2,
    }


def test_single_variant_has_no_cross_variant_tables_and_bold_only_where_asked() -> None:
    from mistrust.present.tables import build_tables
    from mistrust.present.tables.formats import to_latex

    rows, model_rows = _synthetic()
    rows = [r for r in rows if r[0] == "base"]
    tables = build_tables(rows, [r for r in model_rows if r[0] == "base"])
    assert [t.key for t in tables] == ["fpr_v0", "auroc_v0", "operating_v0", "models", "emd"]
    for t in tables:
        assert (r"\textbf" in to_latex(t)) == t.bold_max, t.key
