"""What a run found, in words: the report's headline, the verdict per attack, and the
points of the over-confidence vs leakage plot. Read from the typed rows, like the tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import NamedTuple

from mistrust.checks.assemble import verdict_of_rows
from mistrust.metrics.persample import strongest_attack
from mistrust.present.tables.build import IN_DISTRIBUTION
from mistrust.present.tables.formats import fmt
from mistrust.present.tables.model import (
    attacks_of,
    lookup,
    no_shadow,
    of_variant,
    sets_of,
    variants_of,
)
from mistrust.rows import MetricRow


class TradeoffPoint(NamedTuple):
    """One (variant, attack) of the over-confidence vs leakage plot."""

    variant: str
    attack: str
    ood_fpr: float  # mean FPR over the out-of-distribution sets
    auroc: float  # in-distribution AUROC
    tpr_at_1fpr: float  # in-distribution; NaN if the run has none


class VerdictLine(NamedTuple):
    """One attack's verdict on the in-distribution set, and the other sets worth a note."""

    attack: str
    label: str
    reason: str
    notes: list[tuple[str, str, str]]  # (set, label, reason)


def _best_by_auroc(val: dict, v: str, attacks: list[str]) -> str:
    """The attack with the highest in-distribution AUROC (the first listed on a tie, or
    when none has one)."""
    auroc = {a: val.get((v, a, "original", "auroc"), math.nan) for a in attacks}
    return strongest_attack(auroc) or attacks[0]


def headline(rows: Sequence[MetricRow]) -> tuple[str, str]:
    """The one-sentence finding for the first variant, as ``(html, plain text)``."""
    v = variants_of(rows)[0]
    val = lookup(rows)
    attacks = attacks_of(of_variant(rows, v))
    ood = [s for s in sets_of(of_variant(rows, v)) if s != "original"]
    cands = [
        (val[(v, a, s, "fpr")], -i, -j, a, s)
        for i, a in enumerate(attacks)
        for j, s in enumerate(ood)
        if (v, a, s, "fpr") in val
    ]
    cands = [c for c in cands if not math.isnan(c[0])]
    if cands:
        fpr, _, _, a, s = max(cands)
        tpr, base = val.get((v, a, "original", "tpr")), val.get((v, a, "original", "fpr"))
        parts = [(f"{a} attack ({v}): ", False), (f"TPR {fmt(tpr)}", True), (" on members", False)]
        if base is not None and not fpr > base:
            parts += [
                (" and ", False),
                (f"FPR {fmt(base)}", True),
                (
                    " on in-distribution "
                    "non-members; no out-of-distribution set is flagged more often (highest: ",
                    False,
                ),
                (f"FPR {fmt(fpr)}", True),
                (f" on {s}).", False),
            ]
        else:
            if base is not None:
                parts += [
                    (" and ", False),
                    (f"FPR {fmt(base)}", True),
                    (" on in-distribution non-members", False),
                ]
            parts += [(", but ", False), (f"FPR {fmt(fpr)}", True), (f" on {s} inputs.", False)]
    elif no_shadow(rows, v):  # no threshold: the threshold-free finding
        a = _best_by_auroc(val, v, attacks)
        parts = [
            (f"{a} attack ({v}), no shadow model: ", False),
            (f"AUROC {fmt(val.get((v, a, 'original', 'auroc')))}", True),
            (" on in-distribution non-members", False),
        ]
        low = [(val[(v, a, s, "auroc")], s) for s in ood if (v, a, s, "auroc") in val]
        low = [x for x in low if not math.isnan(x[0])]
        if low:
            x, s = min(low)
            parts += [(", ", False), (f"AUROC {fmt(x)}", True), (f" on {s} (lowest)", False)]
        parts.append(("; no threshold, so no TPR or FPR.", False))
    else:
        a = _best_by_auroc(val, v, attacks)
        parts = [
            (f"{a} attack ({v}): ", False),
            (f"TPR {fmt(val.get((v, a, 'original', 'tpr')))}", True),
            (", ", False),
            (f"FPR {fmt(val.get((v, a, 'original', 'fpr')))}", True),
            (
                f" on in-distribution non-members (AUROC "
                f"{fmt(val.get((v, a, 'original', 'auroc')))}).",
                False,
            ),
        ]
    html = "".join(f"<strong>{escape(t)}</strong>" if b else escape(t) for t, b in parts)
    return html, "".join(t for t, _ in parts)


def tradeoff_points(rows: Sequence[MetricRow]) -> list[TradeoffPoint]:
    """``(variant, attack, mean OOD FPR, in-distribution AUROC, TPR at 1% FPR)`` per pair."""
    val, points = lookup(rows), []
    for v in variants_of(rows):
        ood = [s for s in sets_of(of_variant(rows, v)) if s != "original"]
        for a in attacks_of(of_variant(rows, v)):
            fprs = [val[(v, a, s, "fpr")] for s in ood if (v, a, s, "fpr") in val]
            if fprs and (v, a, "original", "auroc") in val:
                points.append(
                    TradeoffPoint(
                        v,
                        a,
                        sum(fprs) / len(fprs),
                        val[(v, a, "original", "auroc")],
                        val.get((v, a, "original", "tpr_at_1fpr"), math.nan),
                    )
                )
    return points


def verdict_lines(rows: Sequence[MetricRow]) -> list[VerdictLine]:
    """The summary's verdicts, first variant: per attack ``(attack, label, reason, notes)``
    on the in-distribution set; ``notes`` = ``(set, label, reason)`` for every other set
    where the attack separates the members from the set (leakage, distribution shift) or
    the verdict is inconclusive."""
    variants = variants_of(rows)
    if not variants:
        return []
    v, val = variants[0], lookup(rows)
    out = []
    for a in attacks_of(of_variant(rows, v)):
        own = verdict_of_rows(val, v, a, IN_DISTRIBUTION)
        if own is None:
            continue
        notes = []
        for d in sets_of([r for r in of_variant(rows, v) if r.attack == a]):
            if d == IN_DISTRIBUTION:
                continue
            other = verdict_of_rows(val, v, a, d)
            if other is not None and (
                other.label != own.label or other.reason.startswith("distribution shift")
            ):
                notes.append((d, other.label, other.reason))
        out.append(VerdictLine(a, own.label, own.reason, notes))
    return out
