"""The per-sample view of a run directory (``vulnerable.csv``, ``agreement.csv``) and its
report section, on hand-made scores whose ranking and overlaps are counted by hand."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from mistrust.io import atomic_savez
from mistrust.present.vulnerable import per_sample_view, write_per_sample
from mistrust.rows import MetricRow
from mistrust.runtime.paths import RunPaths

# 4 members, then the set's non-members; decisions as an attack at its threshold made them
MEMBER_SCORE = {"a": [0.4, 0.9, 0.6, 0.9], "b": [5.0, 1.0, 2.0, 6.0], "c": [0.0, 2.0, 0.5, 0.1]}
MEMBER_FLAG = {"a": [0, 1, 1, 1], "b": [1, 0, 0, 1], "c": [0, 1, 0, 0]}
NONMEMBER_FLAG = {
    "original": {"a": [1, 0, 0], "b": [0, 0, 0], "c": [0, 0, 0]},
    "scaled": {"a": [1, 1], "c": [0, 1]},  # b has no scores on this set
}
ROWS = [
    MetricRow("base", "a", "original", "auroc", 0.8),
    MetricRow("base", "b", "original", "auroc", 0.9),  # highest, but no threshold: cannot rank
    MetricRow("base", "c", "original", "auroc", 0.7),
    MetricRow("base", "a", "scaled", "auroc", 0.3),
    MetricRow("base", "a", "shadow", "operating_score", 0.5),
    MetricRow("base", "c", "shadow", "operating_score", 1.0),
    MetricRow("other", "c", "original", "auroc", 0.99),  # another variant: ignored
    MetricRow("other", "c", "shadow", "operating_score", 0.0),
]


def _write_scores(root: Path) -> None:
    for ds, flags in NONMEMBER_FLAG.items():
        for attack, nm in flags.items():
            n = len(nm)
            atomic_savez(
                root / attack / f"{ds}.npz",
                score=np.r_[MEMBER_SCORE[attack], np.zeros(n)],
                is_member=np.r_[np.ones(4, bool), np.zeros(n, bool)],
                predicted=np.r_[MEMBER_FLAG[attack], nm].astype(bool),
                max_score=np.r_[[0.91, 0.92, 0.93, 0.94], np.full(n, 0.5)],
            )


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    _write_scores(tmp_path / "scores" / "base")
    view = per_sample_view(
        tmp_path / "scores" / "base",
        ROWS,
        variant="base",
        k=3,
        member_index=np.array([10, 11, 12, 13]),
        member_label=np.array([7, 8, 9, 6]),
    )
    write_per_sample(RunPaths(tmp_path), [view])
    return tmp_path


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_ranking_by_the_strongest_thresholded_attack(run: Path) -> None:
    rows = _csv(run / "vulnerable.csv")
    # a (AUROC 0.8, threshold 0.5): margins -0.1, 0.4, 0.1, 0.4 -> rows 1, 3, then 2
    assert [(r["rank"], r["index"], r["class"]) for r in rows] == [
        ("1", "11", "8"),
        ("2", "13", "6"),
        ("3", "12", "9"),
    ]
    assert {r["ranked_by"] for r in rows} == {"a"}
    assert [float(r["margin"]) for r in rows] == pytest.approx([0.4, 0.4, 0.1])
    assert [float(r["max_score"]) for r in rows] == [0.92, 0.94, 0.93]
    # member 1: a and c flag it; member 3: a and b; member 2: a only
    assert [r["flagged_by"] for r in rows] == ["2", "2", "1"]
    assert {r["n_attacks"] for r in rows} == {"3"}
    assert [float(r["b"]) for r in rows] == [1.0, 6.0, 2.0]


def test_agreement_counted_by_hand(run: Path) -> None:
    rows = _csv(run / "agreement.csv")
    got = {(r["samples"], r["attack_a"], r["attack_b"]): r for r in rows}
    members = {k[1:]: float(r["jaccard"]) for k, r in got.items() if k[0] == "members"}
    assert members[("a", "b")] == members[("b", "a")] == 1 / 4  # {1,2,3} vs {0,3}
    assert members[("a", "c")] == 1 / 3  # {1,2,3} vs {1}
    assert members[("b", "c")] == 0.0
    assert members[("a", "a")] == 1.0
    assert (got[("members", "a", "b")]["n_a"], got[("members", "a", "b")]["n_both"]) == ("3", "1")
    # false positives: original flags {0} for a and nothing for b, c
    assert float(got[("original", "a", "b")]["jaccard"]) == 0.0
    assert math.isnan(float(got[("original", "b", "c")]["jaccard"]))
    # scaled: b has no scores there, so a 2 x 2 matrix; a {0,1} vs c {1}
    scaled = {k[1:]: float(r["jaccard"]) for k, r in got.items() if k[0] == "scaled"}
    assert set(scaled) == {("a", "a"), ("a", "c"), ("c", "a"), ("c", "c")}
    assert scaled[("a", "c")] == 0.5
    assert {r["variant"] for r in rows} == {"base"}
    assert len(rows) == 9 + 9 + 4


def test_no_scores_no_view(tmp_path: Path) -> None:
    view = per_sample_view(tmp_path / "scores" / "base", ROWS, variant="base", k=3)
    assert (view.attacks, view.vulnerable, view.agreement, view.strongest) == ([], [], [], None)


def test_unknown_index_and_class_are_minus_one(tmp_path: Path) -> None:
    _write_scores(tmp_path)
    view = per_sample_view(tmp_path, ROWS, variant="base", k=1)
    assert (view.vulnerable[0].index, view.vulnerable[0].label) == (-1, -1)
    with pytest.raises(ValueError, match="one per member"):
        per_sample_view(tmp_path, ROWS, variant="base", k=1, member_index=np.arange(3))


def test_report_shows_the_view(run: Path) -> None:
    from mistrust.present.report.figures import per_sample
    from mistrust.present.report.run import Run

    html = per_sample(Run(run, ROWS, []))
    assert "Most vulnerable members (base), ranked by a" in html
    assert "<td>11</td><td>8</td><td>0.400</td>" in html  # rank 1: index, class, margin
    assert "Agreement: members each attack calls member (base)" in html
    assert "Agreement: false positives on scaled (base)" in html
    assert "a (3)" in html  # a flags 3 members
    assert '%)">0.250</td>' in html  # a vs b on members, shaded
    empty = per_sample(Run(run / "nothing", ROWS, []))
    assert "per-sample view omitted" in empty


def test_an_attack_with_other_member_rows_is_left_out(tmp_path: Path) -> None:
    _write_scores(tmp_path)
    atomic_savez(  # "d" saw 3 members, not 4: its rows cannot be matched
        tmp_path / "d" / "original.npz",
        score=np.ones(6),
        is_member=np.r_[np.ones(3, bool), np.zeros(3, bool)],
        predicted=np.ones(6, bool),
        max_score=np.ones(6),
    )
    rows = [
        *ROWS,
        MetricRow("base", "d", "original", "auroc", 1.0),
        MetricRow("base", "d", "shadow", "operating_score", 0.0),
    ]
    view = per_sample_view(tmp_path, rows, variant="base", k=1)
    assert view.attacks == ["a", "b", "c"] and view.strongest == "a"


def test_a_degenerate_attack_does_not_rank_the_members(tmp_path: Path) -> None:
    # c is the strongest by AUROC but flagged (e.g. every decision "member"): a ranks instead
    _write_scores(tmp_path)
    rows = [r for r in ROWS if r[0] == "base"] + [
        MetricRow("base", "c", "original", "auroc", 0.95),
        MetricRow("base", "c", "original", "flag_constant", 1.0),
        MetricRow("base", "a", "original", "flag_constant", 0.0),
    ]
    rows = [r for r in rows if r[1:4] != ("c", "original", "auroc") or r[4] == 0.95]
    assert per_sample_view(tmp_path, rows, variant="base", k=2).strongest == "a"
    unflagged = [r for r in rows if r[3] != "flag_constant"]
    assert per_sample_view(tmp_path, unflagged, variant="base", k=2).strongest == "c"


def test_the_view_ranks_by_the_audits_strongest_row(tmp_path: Path) -> None:
    # the rows name c the strongest (the audit's choice): the view follows it, not a's AUROC
    _write_scores(tmp_path)
    rows = [*ROWS, MetricRow("base", "c", "original", "strongest", 1.0)]
    view = per_sample_view(tmp_path, rows, variant="base", k=2)
    assert view.strongest == "c" and [x.position for x in view.vulnerable] == [1, 2]


def test_per_sample_view_console_and_report_name_one_attack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through ``mistrust.audit``: vulnerable.csv is ranked by the audit's strongest row,
    and the report's summary and report.md print its sentence."""
    import mistrust
    from mistrust.present.tables.strongest import strongest_line

    rng = np.random.default_rng(5)

    def role(n: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y = rng.integers(0, 3, 2 * n)
        z = rng.normal(size=(2 * n, 3))
        z[np.arange(2 * n), y] += np.r_[np.full(n, 2.0), np.full(n, 1.0)]
        return z, y, np.arange(2 * n) < n

    result = mistrust.audit(role(), role(), attacks=["threshold", "entropy", "loss"])
    strongest = [r.attack for r in result.rows if r.metric == "strongest"]
    assert len(strongest) == 1
    result.report(tmp_path / "out")
    ranked_by = {r["ranked_by"] for r in _csv(tmp_path / "out" / "vulnerable.csv")}
    assert ranked_by == set(strongest)
    line = strongest_line(result.rows, "base")
    assert line is not None and line.startswith(f"Strongest attack (base): {strongest[0]},")
    assert line in (tmp_path / "out" / "report.md").read_text()
    assert f'<p class="strongest">{line}</p>' in (tmp_path / "out" / "report.html").read_text()
    from mistrust.present.results import RunResult
    from mistrust.present.summary import print_summary

    run = RunResult(tmp_path / "out", attack_rows=result.rows, timings={"attacks": 1.0})
    print_summary(run, variants=["base"], attacks=["threshold"], report=False)
    assert f"\n{line}\n" in capsys.readouterr().out
