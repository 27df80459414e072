"""The strongest attack of each variant in one sentence, from its ``strongest`` rows
(:mod:`mistrust.checks.ranking`, docs/CHECKS.md): the console and the report say the same."""

from __future__ import annotations

import math
from collections.abc import Sequence

from mistrust.checks.ranking import GAP_KEYS, RUNNER_UP, STRONGEST
from mistrust.rows import MetricRow

__all__ = ["SIGNIFICANCE", "strongest_line", "strongest_lines"]

#: the one-sided p-value under which the strongest is called significantly stronger: half
#: of 5 %, so that the verdict agrees with the 95 % interval printed beside it (its lower
#: end above 0 exactly when p < 0.025)
SIGNIFICANCE = 0.025


def _decimals(*xs: float) -> int:
    """3, or more where the largest of ``xs`` needs them to show two significant digits
    (a gap of 0.00015 is not "0.000")."""
    top = max((abs(x) for x in xs if math.isfinite(x)), default=0.0)
    if top == 0.0 or top >= 0.01:
        return 3
    return min(8, 1 - math.floor(math.log10(top)))


def _num(x: float, decimals: int) -> str:
    # a typographic minus, as in the report's prose
    return f"{x:.{decimals}f}".replace("-", "−")


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def strongest_line(rows: Sequence[MetricRow], variant: str) -> str | None:
    """E.g. "Strongest attack (base): loss, AUROC 0.611; ahead of entropy by 0.004 (95 % CI
    −0.010 to 0.020, one-sided p = 0.31): not significantly stronger." None without a
    ranking."""
    own = [r for r in rows if r.variant == variant]
    best = next((r for r in own if r.metric == STRONGEST), None)
    if best is None:
        return None
    value = {(r.attack, r.dataset, r.metric): r.value for r in own}
    auroc = value.get((best.attack, best.dataset, "auroc"), math.nan)
    head = f"Strongest attack ({variant}): {best.attack}, AUROC {auroc:.3f}"
    second = next((r.attack for r in own if r.metric == RUNNER_UP), None)
    if second is None:
        return f"{head}; no other attack to compare with."
    d, low, high, p = (value.get((best.attack, best.dataset, k), math.nan) for k in GAP_KEYS)
    verdict = "significantly stronger" if p < SIGNIFICANCE else "not significantly stronger"
    n = _decimals(d, low, high)
    return (
        f"{head}; ahead of {second} by {_num(d, n)} (95 % CI {_num(low, n)} to "
        f"{_num(high, n)}, one-sided {_p(p)}): {verdict}."
    )


def strongest_lines(rows: Sequence[MetricRow], variants: Sequence[str]) -> list[str]:
    """:func:`strongest_line` of each of ``variants`` that has a ranking."""
    return [line for v in variants if (line := strongest_line(rows, v)) is not None]
