"""The DP check: every empirical epsilon lower bound against the guaranteed epsilon, as
rows, the privacy table and the verdict text."""

from __future__ import annotations

import math

import numpy as np

from mistrust.checks.canary import CanaryAudit
from mistrust.checks.dp import (
    CANARY_KEYS,
    accounting_rows,
    canary_rows,
    dp_violation_rows,
    violation_text,
)
from mistrust.core.outputs import Outputs
from mistrust.io import atomic_savez
from mistrust.pipeline.privacy import Guarantee, privacy_rows
from mistrust.present.tables.privacy import privacy_findings, privacy_table
from mistrust.rows import MetricRow, ModelRow
from mistrust.runtime.paths import RunPaths
from mistrust.training.private import write_accounting


def _bounds(variant: str, **eps: float) -> list[MetricRow]:
    return [MetricRow(variant, a, "original", "epsilon_lower_bound", x) for a, x in eps.items()]


def test_a_bound_above_the_guarantee_raises_the_flag() -> None:
    rows = _bounds("dp", threshold=0.2, loss=1.5, salem=math.nan) + _bounds("base", loss=9.0)
    flags = dp_violation_rows(rows, "dp", 1.0)
    assert flags == [
        MetricRow("dp", "threshold", "original", "flag_dp_violation", 0.0),
        MetricRow("dp", "loss", "original", "flag_dp_violation", 1.0),
    ]  # a NaN bound (no decisions) certifies nothing; another variant is not this one's
    assert dp_violation_rows(_bounds("dp", loss=1.0), "dp", 1.0)[0].value == 0.0  # equal: fine


def test_canary_and_accounting_rows() -> None:
    audit = CanaryAudit(2.5, 100, 90)
    rows = canary_rows("dp", audit, 2.0)
    assert [(r.dataset, r.metric, r.value) for r in rows] == [
        ("canaries", "canary_epsilon_lower_bound", 2.5),
        ("canaries", "canary_guesses", 100.0),
        ("canaries", "canary_correct", 90.0),
        ("canaries", "flag_dp_violation", 1.0),
    ]
    assert len(canary_rows("base", audit)) == 3  # no guarantee, no flag
    spent = {"dp_epsilon": 0.99, "dp_delta": 1e-5, "dp_noise_multiplier": 3.1, "accountant": "rdp"}
    assert [r.metric for r in accounting_rows("dp", "shadow", spent)] == [
        "dp_epsilon",
        "dp_delta",
        "dp_noise_multiplier",
    ]


def test_violation_text_names_the_bounds_above() -> None:
    assert violation_text("dp", 1.0, {"loss": 0.5, "canaries": 0.9}) == ""
    text = violation_text("dp", 1.0, {"loss": 1.25, "canaries": 0.9})
    assert text.startswith(
        "dp: the empirical epsilon lower bound exceeds the guaranteed epsilon 1.00"
    )
    assert "loss 1.25" in text and "canaries" not in text and "bug" in text


def test_privacy_table_and_findings() -> None:
    rows = _bounds("base", loss=0.4) + _bounds("dp", loss=0.3, threshold=0.1)
    model = accounting_rows("dp", "target", {"dp_epsilon": 1.0, "dp_delta": 1e-5})
    model += canary_rows("dp", CanaryAudit(1.6, 40, 39), 1.0) + canary_rows(
        "base", CanaryAudit(3.0, 100, 95)
    )
    table = privacy_table(rows + dp_violation_rows(rows, "dp", 1.0), model)
    assert table is not None and table.rows == ["dp", "base"]
    assert table.cells[("dp", "largest attack epsilon LB")] == "0.30 (loss)"
    assert table.cells[("dp", "delta")] == "1e-05" and table.cells[("dp", "canary guesses")] == "40"
    assert table.cells[("dp", "DP violation")] == "yes"  # the canaries' 1.6 > 1.0
    assert ("base", "DP violation") not in table.cells  # no guarantee, nothing to violate
    found = privacy_findings(rows, model)
    assert len(found) == 1 and "canaries 1.60" in found[0]
    assert privacy_table(rows, [ModelRow("base", "target", "test", "accuracy", 0.9)]) is None


def test_a_named_guarantee_covers_every_variant(tmp_path) -> None:
    rows = _bounds("base", loss=2.0) + _bounds("temperature", loss=0.5)
    paths, claimed = RunPaths(tmp_path), Guarantee(1.0)
    attack, model = [], []
    for v in ("base", "temperature"):  # as the shared scoring asks, variant by variant
        flags, private = privacy_rows(paths, v, ["target"], rows, delta=1e-5, claimed=claimed)
        attack, model = attack + flags, model + private
    flags = {(r.variant, r.value) for r in attack if r.metric == "flag_dp_violation"}
    assert flags == {("base", 1.0), ("temperature", 0.0)}
    assert {(r.variant, r.metric) for r in model} == {
        ("base", "dp_epsilon"),
        ("temperature", "dp_epsilon"),
    }
    # no claim, no accountant's record, no canaries: nothing
    assert privacy_rows(paths, "base", ["target", "shadow"], rows, delta=1e-5) == ([], [])


def test_privacy_rows_of_a_run_read_the_accountant_and_the_canaries(tmp_path) -> None:
    """What ``mistrust run`` leaves in the run directory: each role's accountant's record
    and the target's outputs on the canaries; every IN canary fitted, every OUT one not."""
    paths = RunPaths(tmp_path)
    for role, eps in (("target", 0.5), ("shadow", 0.6)):
        paths.privacy("dp", role).parent.mkdir(parents=True, exist_ok=True)
        write_accounting(paths.privacy("dp", role), {"dp_epsilon": eps, "dp_delta": 1e-5})
    included = np.arange(200) % 2 == 0
    atomic_savez(paths.canaries, index=np.arange(200), label=np.zeros(200), included=included)
    logits = np.zeros((200, 3), np.float32)
    logits[included, 0] = 8.0  # the (wrong) label 0 memorised by the IN canaries only
    Outputs(logits, np.zeros(200, np.int64)).save(paths.outputs("dp", "target", "canaries"))
    rows = _bounds("dp", loss=0.3) + _bounds("base", loss=2.0)
    flags, model = privacy_rows(paths, "dp", ["target", "shadow"], rows, delta=1e-5)
    assert [(r.attack, r.value) for r in flags] == [("loss", 0.0)]  # 0.3 <= 0.5; base: none
    got = {(r.role, r.dataset, r.metric): r.value for r in model}
    assert got[("target", "train", "dp_epsilon")] == 0.5
    assert got[("shadow", "train", "dp_epsilon")] == 0.6
    # 200 correct guesses at alpha / 7 certify far more than the accountant's 0.5: flagged
    assert got[("target", "canaries", "canary_epsilon_lower_bound")] > 2.0
    assert (
        got[("target", "canaries", "canary_correct")]
        == got[("target", "canaries", "canary_guesses")]
    )
    assert got[("target", "canaries", "flag_dp_violation")] == 1.0
    # a variant without an accountant's record: its canaries, but nothing to violate
    Outputs(logits, np.zeros(200, np.int64)).save(paths.outputs("base", "target", "canaries"))
    flags, model = privacy_rows(paths, "base", ["target", "shadow"], rows, delta=1e-5)
    assert flags == [] and {r.metric for r in model} == set(CANARY_KEYS)
