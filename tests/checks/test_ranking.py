"""The strongest attack and its paired test against the runner-up (``strongest`` rows):
which attacks compete, ties and NaN, DeLong's gap by hand and by brute force, the rows of
``mistrust.audit``, and the sentence the console and the report print from them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

import mistrust
from mistrust.checks.ranking import GAP_KEYS, strongest_rows
from mistrust.metrics.persample import attack_ranking
from mistrust.present.tables.strongest import strongest_line
from mistrust.rows import MetricRow

Z = norm.ppf(0.975)
MEMBER = np.array([True, True, False, False])
# members 3, 2 vs non-members 1, 2.5: AUROC 3/4, placements a10 = [1, 1/2], a01 = [1, 1/2]
A = np.array([3.0, 2.0, 1.0, 2.5])
# members 2, 3 vs non-members 1, 4: AUROC 1/2, b10 = [1/2, 1/2], b01 = [1, 0]
B = np.array([2.0, 3.0, 1.0, 4.0])


def _rows(auroc: dict[str, float], *, no_threshold=(), flagged=()) -> list[MetricRow]:
    rows = []
    for a, x in auroc.items():
        rows.append(MetricRow("base", a, "original", "auroc", x))
        rows.append(MetricRow("base", a, "original", "flag_ties", float(a in flagged)))
        if a not in no_threshold:
            rows.append(MetricRow("base", a, "shadow", "operating_score", 0.5))
    return rows


def _by_metric(rows: list[MetricRow]) -> dict[str, MetricRow]:
    return {r.metric: r for r in rows}


def test_gap_to_the_runner_up_by_hand() -> None:
    # c is higher but flagged, d has no threshold, e no AUROC: a and b compete
    rows = _rows(
        {"b": 0.5, "c": 0.9, "a": 0.75, "d": 0.95, "e": math.nan},
        no_threshold=("d",),
        flagged=("c",),
    )
    scores = {x: (s, MEMBER) for x, s in zip("bcade", (B, A, A, A, A), strict=True)}
    got = _by_metric(strongest_rows("base", rows, scores))
    assert got["strongest"] == MetricRow("base", "a", "original", "strongest", 1.0)
    assert got["runner_up"] == MetricRow("base", "b", "original", "runner_up", 1.0)
    # d = 3/4 - 1/2; var = var([1/2, 0]) / 2 + var([0, 1/2]) / 2 = 1/16 + 1/16 (ddof 1)
    se = math.sqrt(0.125)
    want = (0.25, 0.25 - Z * se, 0.25 + Z * se, norm.sf(0.25 / se))
    assert [got[k].value for k in GAP_KEYS] == pytest.approx(want)
    assert {got[k].attack for k in GAP_KEYS} == {"a"}
    assert got["auroc_gap_p"].value == pytest.approx(0.23975, abs=1e-5)


def _brute_gap(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> tuple[float, float]:
    """AUROC difference and DeLong's paired variance from the full kernel matrices."""

    def parts(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = s[m], s[~m]
        psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
        return psi.mean(1), psi.mean(0)

    (a10, a01), (b10, b01) = parts(a), parts(b)
    s10, s01 = np.cov(np.stack([a10, b10])), np.cov(np.stack([a01, b01]))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / len(a10)
    var += (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / len(a01)
    return a10.mean() - b10.mean(), var


def test_the_audit_ranks_its_score_attacks_on_original() -> None:
    rng = np.random.default_rng(3)

    def role(n: int = 150) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y = rng.integers(0, 4, 2 * n)
        z = rng.normal(size=(2 * n, 4))
        z[np.arange(2 * n), y] += np.r_[np.full(n, 2.5), np.full(n, 1.5)]
        return z, y, np.arange(2 * n) < n

    result = mistrust.audit(role(), role(), eval_sets={"noise": rng.normal(size=(80, 4))})
    ranking = [r for r in result.rows if r.metric in ("strongest", "runner_up", *GAP_KEYS)]
    assert len(ranking) == 6 and {r.dataset for r in ranking} == {"original"}
    got = _by_metric(ranking)
    # the strongest recomputed with scikit-learn from the saved scores (no attack is
    # degenerate here; the first listed wins a tie, as strongest_attack)
    auc = {
        a: roc_auc_score(s["original"].is_member, s["original"].score)
        for a, s in result.scores.items()
    }
    order = sorted(auc, key=lambda a: -auc[a])  # stable: the listed order on a tie
    assert got["strongest"].attack == order[0] and got["runner_up"].attack == order[1]
    best, second = (result.scores[a]["original"] for a in order[:2])
    d, var = _brute_gap(best.score, second.score, best.is_member)
    se = math.sqrt(var)
    want = [d, d - Z * se, d + Z * se, norm.sf(d / se) if se > 0 else (0.0 if d > 0 else 1.0)]
    assert [got[k].value for k in GAP_KEYS] == pytest.approx(want, abs=1e-12)
    assert got["auroc_gap_to_runner_up"].value >= 0  # the strongest is never behind


def test_ties_go_to_the_first_listed_and_nan_never_wins() -> None:
    rows = _rows({"x": math.nan, "a": 0.75, "b": 0.75})
    scores = {"x": (B, MEMBER), "a": (A, MEMBER), "b": (A, MEMBER)}
    got = _by_metric(strongest_rows("base", rows, scores))
    assert (got["strongest"].attack, got["runner_up"].attack) == ("a", "b")
    # the same scores: no gap, a zero-width interval, nothing shown
    assert [got[k].value for k in GAP_KEYS] == [0.0, 0.0, 0.0, 1.0]
    assert attack_ranking({}, ["a"], "original") == []


def test_one_or_no_competitor() -> None:
    alone = strongest_rows(
        "base",
        _rows({"a": 0.75, "b": 0.6}, flagged=("b",)),
        {
            "a": (A, MEMBER),
            "b": (B, MEMBER),
        },
    )
    assert alone == [MetricRow("base", "a", "original", "strongest", 1.0)]
    assert strongest_rows("base", _rows({"a": math.nan}), {"a": (A, MEMBER)}) == []
    # other variants' rows are not read
    assert strongest_rows("other", _rows({"a": 0.75}), {"a": (A, MEMBER)}) == []


def test_no_shadow_no_ranking() -> None:
    # without a shadow model no attack has a threshold to rank members by
    rng = np.random.default_rng(0)
    z = rng.normal(size=(40, 3))
    target = (z, rng.integers(0, 3, 40), np.arange(40) < 20)
    result = mistrust.audit(None, target, attacks=["threshold", "loss"])
    assert not [r for r in result.rows if r.metric in ("strongest", "runner_up")]


def test_the_sentence_from_the_rows() -> None:
    rows = _rows({"b": 0.5, "a": 0.75}) + strongest_rows(
        "base", _rows({"b": 0.5, "a": 0.75}), {"b": (B, MEMBER), "a": (A, MEMBER)}
    )
    assert strongest_line(rows, "base") == (
        "Strongest attack (base): a, AUROC 0.750; ahead of b by 0.250 "
        "(95 % CI −0.443 to 0.943, one-sided p = 0.24): not significantly stronger."
    )

    def with_gap(d: float, low: float, high: float, p: float) -> str | None:
        new = dict(zip(GAP_KEYS, (d, low, high, p), strict=True))
        return strongest_line([r._replace(value=new.get(r.metric, r.value)) for r in rows], "base")

    # the verdict agrees with the printed interval: one-sided p < 0.025 <=> low end above 0
    assert with_gap(0.04, -0.005, 0.085, 0.039).endswith(
        "by 0.040 (95 % CI −0.005 to 0.085, one-sided p = 0.039): not significantly stronger."
    )
    # a gap of a few ten-thousandths keeps two significant digits
    assert with_gap(0.0034, 0.00115, 0.0056, 0.0014).endswith(
        "by 0.0034 (95 % CI 0.0011 to 0.0056, one-sided p = 0.0014): significantly stronger."
    )
    assert with_gap(0.00015, -0.00034, 0.00064, 0.27).endswith(
        "by 0.00015 (95 % CI −0.00034 to 0.00064, one-sided p = 0.27): not significantly stronger."
    )
    alone = [r for r in rows if r.metric not in ("runner_up", *GAP_KEYS)]
    assert strongest_line(alone, "base") == (
        "Strongest attack (base): a, AUROC 0.750; no other attack to compare with."
    )
    assert strongest_line(rows, "other") is None
