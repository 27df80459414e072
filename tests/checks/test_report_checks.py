"""The report's trust-check tables and summary lines, on constructed audits."""

from __future__ import annotations

import numpy as np

import mistrust
from mistrust.present.tables import build_tables
from mistrust.present.tables.findings import verdict_lines
from mistrust.present.tables.formats import to_markdown
from mistrust.rows import MetricRow


def _logits(margins: np.ndarray) -> np.ndarray:
    return np.stack([margins, np.zeros_like(margins)], axis=1)


def _rows() -> list[MetricRow]:
    rng = np.random.default_rng(0)
    n = 200
    member = np.arange(2 * n) < n
    shadow = (_logits(np.r_[rng.normal(4, 1, n), rng.normal(1, 1, n)]), np.zeros(2 * n), member)
    # threshold: every target sample far above the shadow's threshold -> constant decisions
    target = (_logits(rng.normal(12, 1, 2 * n)), np.zeros(2 * n), member)
    shifted = _logits(rng.normal(0, 0.3, n))
    images = rng.normal(size=(2 * n, 1, 8, 8))
    inputs = {"target": images, "shifted": rng.normal(0.5, 1, size=(n, 1, 8, 8))}
    result = mistrust.audit(
        shadow, target, eval_sets={"shifted": shifted}, attacks=["threshold"], inputs=inputs
    )
    return list(result.rows)


def test_tables_and_summary_name_the_flag_and_the_shift() -> None:
    rows = _rows()
    tables = {t.key: t for t in build_tables(rows, [])}
    assert tables["fpr_v0"].note.endswith("; flagged: threshold (constant)")  # in-distribution
    assert tables["auroc_v0"].cols == ["threshold", "blind baseline"]
    checks = tables["checks_v0"]
    assert checks.cells[("threshold", "flags")] == "constant"
    assert checks.cells[("threshold", "TPR@1%FPR CI low")] == "n/r"  # 200 non-members
    assert tables["operating_v0"].cells[("threshold", "TPR@1%FPR")] == "n/r"
    assert tables["verdicts_v0"].cells == {
        ("original", "threshold"): "inconclusive",
        ("shifted", "threshold"): "inconclusive",
    }
    assert (
        tables["reasons_v0"]
        .cells[("threshold", "reason")]
        .startswith("degenerate attack: constant decisions (TPR 1.000, FPR 1.000)")
    )
    [(attack, label, reason, notes)] = verdict_lines(rows)
    assert (attack, label) == ("threshold", "inconclusive")
    # same label as the in-distribution set, and no "distribution shift, not membership":
    # the attack separates the shifted set better than the baseline (the model's own
    # response to the shift), so it is inconclusive there and not listed
    assert notes == []
    values = {r[:4]: r[4] for r in rows}
    assert values[("base", "threshold", "shifted", "auroc_minus_baseline_ci_low")] > 0
    assert values[("base", "threshold", "shifted", "baseline_auroc_ci_low")] > 0.5
    md = to_markdown(tables["verdicts_v0"])
    assert "| shifted | inconclusive |" in md


def test_a_run_without_checks_keeps_its_tables() -> None:
    rows = [r for r in _rows() if r[3] in ("tpr", "fpr", "auroc")]
    keys = [t.key for t in build_tables(rows, [])]
    assert keys == ["fpr_v0", "auroc_v0", "operating_v0"]
    assert verdict_lines(rows) == []
