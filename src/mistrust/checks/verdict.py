"""The verdict on one attack and one evaluation set, as a pure function of the check values.

One of "leakage shown", "not shown" or "inconclusive", with the reason. The rules, in
order (docs/CHECKS.md):

1. **degenerate** -> inconclusive: constant decisions on the set, scores tied across most
   samples, or the in-distribution AUROC significantly below 0.5 (inverted polarity).
2. **null test** failed, or not run (no in-distribution non-members) -> inconclusive.
3. AUROC interval not above 0.5 -> not shown (the attack does no better than chance).
4. a split **i.i.d. by construction** (``iid_split``): no distribution shift is possible,
   so the blind baseline decides nothing; leakage shown when the attack's Holm-adjusted
   p-value is at most :data:`FAMILY_ALPHA`, else not shown.
5. **blind baseline** not run: on the in-distribution set as rule 4, and the reason says
   the baseline was not run; on any other set -> inconclusive (shift not ruled out).
6. the baseline itself separates the set (its interval above 0.5): the set's inputs
   differ from the members', so the attack's success there may be that difference ->
   inconclusive, whether or not the attack beats the baseline.
7. Holm-adjusted p-value at most :data:`FAMILY_ALPHA` (above chance and above the
   baseline) -> leakage shown; above the baseline at 95 % alone -> not shown (not at the
   family-wise level); otherwise -> inconclusive (above chance, not clearly above the
   baseline).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "INCONCLUSIVE",
    "LEAKAGE_SHOWN",
    "FAMILY_ALPHA",
    "NOT_SHOWN",
    "VERDICT_CODES",
    "Verdict",
    "label_of",
    "verdict",
]

LEAKAGE_SHOWN = "leakage shown"
NOT_SHOWN = "not shown"
INCONCLUSIVE = "inconclusive"
#: the ``verdict`` value of ``results.csv``
VERDICT_CODES = {LEAKAGE_SHOWN: 1.0, NOT_SHOWN: 0.0, INCONCLUSIVE: -1.0}
#: "leakage shown" needs a Holm-adjusted p-value at most this: over all the attacks of one
#: audit on one set, the chance of any false "leakage shown" stays at most 1 %
FAMILY_ALPHA = 0.01


#: which rule decided a verdict (:attr:`Verdict.rule`), so that the many cells one rule
#: decides can be told together (the report's summary, the console)
DEGENERATE, NULL_TEST, CHANCE, IID, NO_BASELINE, SHIFT, SHOWN, FAMILY, BASELINE = (
    "degenerate",
    "null test",
    "chance",
    "iid",
    "no baseline",
    "shift",
    "shown",
    "family level",
    "baseline",
)


@dataclass(frozen=True)
class Verdict:
    label: str  # a key of VERDICT_CODES
    reason: str
    rule: str = ""  # DEGENERATE, NULL_TEST, ...: the rule that decided it

    @property
    def code(self) -> float:
        return VERDICT_CODES[self.label]


def label_of(code: float) -> str:
    """The verdict label of a ``results.csv`` ``verdict`` value."""
    for label, c in VERDICT_CODES.items():
        if c == code:
            return label
    raise ValueError(f"no verdict has code {code!r}")


def _auc(cell: Mapping[str, float], prefix: str = "") -> str:
    return (
        f"AUROC {cell[prefix + 'auroc']:.3f} [{cell[prefix + 'auroc_ci_low']:.3f}, "
        f"{cell[prefix + 'auroc_ci_high']:.3f}]"
    )


def _flag(cell: Mapping[str, float] | None, key: str) -> bool:
    return cell is not None and cell.get(key, 0.0) == 1.0


def _p(cell: Mapping[str, float], family: int) -> str:
    x = cell["p_leakage_holm"]
    p = f"p {x:.3f}" if x >= 1e-3 else "p < 1e-3"  # 0.000 would read as certainty
    return p if family <= 1 else f"{p}, Holm-adjusted over {family} attacks"


def _shown(cell: Mapping[str, float]) -> bool:
    return cell.get("p_leakage_holm", math.nan) <= FAMILY_ALPHA


def _not_at_family_level(cell: Mapping[str, float], family: int, what: str) -> Verdict:
    return Verdict(
        NOT_SHOWN,
        f"{_auc(cell)} {what} at 95 %, but not at the 1 % family-wise level ({_p(cell, family)})",
        FAMILY,
    )


def verdict(
    cell: Mapping[str, float],
    in_dist: Mapping[str, float] | None,
    *,
    set_name: str,
    in_distribution: bool,
    family: int = 1,
) -> Verdict:
    """The verdict on one attack and one set.

    Args:
        cell: the set's metrics and checks (``results.csv`` metric -> value): at least
            ``auroc``, ``auroc_ci_low``, ``auroc_ci_high``, ``tpr``, ``fpr``,
            ``flag_constant``, ``flag_ties``, ``tied_fraction``, ``p_leakage_holm``
            (``p_leakage`` Holm-adjusted over the attacks of the audit on this set);
            ``iid_split``; the ``baseline_*`` and ``auroc_minus_baseline*`` keys where
            the blind baseline ran.
        in_dist: the same attack's in-distribution checks (``flag_null``, ``null_auroc*``,
            ``flag_polarity``, ``auroc*``), or None when the audit has no
            in-distribution non-members.
        set_name: the set, for the reason's wording.
        in_distribution: whether ``cell`` is the in-distribution set.
        family: how many attacks the Holm adjustment ran over, for the reason's wording.
    """
    degenerate = []
    if _flag(cell, "flag_constant"):
        degenerate.append(f"constant decisions (TPR {cell['tpr']:.3f}, FPR {cell['fpr']:.3f})")
    if _flag(cell, "flag_ties"):
        degenerate.append(f"{cell['tied_fraction']:.0%} of the scores tied")
    if _flag(in_dist, "flag_polarity"):
        degenerate.append(f"inverted polarity: in-distribution {_auc(in_dist)}")
    if degenerate:
        return Verdict(INCONCLUSIVE, "degenerate attack: " + "; ".join(degenerate), DEGENERATE)
    if in_dist is None or math.isnan(in_dist.get("flag_null", math.nan)):
        return Verdict(
            INCONCLUSIVE, "null test not run (too few in-distribution non-members)", NULL_TEST
        )
    if _flag(in_dist, "flag_null"):
        return Verdict(
            INCONCLUSIVE,
            "null test failed: two halves of the in-distribution non-members get "
            f"{_auc(in_dist, 'null_')}, which excludes 0.5",
            NULL_TEST,
        )
    if not cell["auroc_ci_low"] > 0.5:
        return Verdict(NOT_SHOWN, f"{_auc(cell)} is not above chance (0.5)", CHANCE)
    ran = "baseline_auroc" in cell and not math.isnan(cell["baseline_auroc"])
    if _flag(cell, "iid_split"):
        # members and non-members drawn from one pool: the inputs differ only by chance,
        # so a baseline interval that excludes 0.5 is one of its 1-in-20 misses, not shift
        if not _shown(cell):
            return _not_at_family_level(cell, family, "excludes chance")
        chance = ""
        if ran and cell["baseline_auroc_ci_low"] > 0.5:
            chance = f" (the blind baseline's {_auc(cell, 'baseline_')} is chance here)"
        return Verdict(
            LEAKAGE_SHOWN,
            f"{_auc(cell)} excludes chance ({_p(cell, family)}); the members and {set_name} "
            f"were split i.i.d. by construction, so no distribution shift{chance}",
            IID,
        )
    if not ran:
        if not in_distribution:
            return Verdict(
                INCONCLUSIVE,
                f"{_auc(cell)} excludes chance, but the blind baseline was not run (no "
                f"inputs given), so distribution shift between the members and {set_name} "
                "is not ruled out",
                NO_BASELINE,
            )
        if not _shown(cell):
            return _not_at_family_level(cell, family, "excludes chance")
        return Verdict(
            LEAKAGE_SHOWN,
            f"{_auc(cell)} excludes chance ({_p(cell, family)}); blind baseline not run "
            "(no inputs given)",
            NO_BASELINE,
        )
    diff = (
        f"difference {cell['auroc_minus_baseline']:+.3f} "
        f"[{cell['auroc_minus_baseline_ci_low']:+.3f}, {cell['auroc_minus_baseline_ci_high']:+.3f}]"
    )
    if cell["baseline_auroc_ci_low"] > 0.5 and cell["auroc_minus_baseline_ci_low"] > 0.0:
        return Verdict(
            INCONCLUSIVE,
            f"the inputs of {set_name} differ from the members' (blind baseline "
            f"{_auc(cell, 'baseline_')}); the attack separates them better ({diff}), which "
            "the model's own response to the shift explains as well as membership",
            SHIFT,
        )
    if cell["baseline_auroc_ci_low"] > 0.5:
        # not beating a model-free classifier rules membership out no more than in
        return Verdict(
            INCONCLUSIVE,
            f"distribution shift not ruled out: the blind baseline separates the members "
            f"from {set_name} without the model ({_auc(cell, 'baseline_')}), at least as "
            f"well as the attack ({cell['auroc']:.3f}; {diff}); membership is neither "
            "shown nor ruled out",
            SHIFT,
        )
    if _shown(cell):
        return Verdict(
            LEAKAGE_SHOWN,
            f"{_auc(cell)} excludes chance and beats the blind baseline's "
            f"{cell['baseline_auroc']:.3f} ({diff}; {_p(cell, family)})",
            SHOWN,
        )
    if cell["auroc_minus_baseline_ci_low"] > 0.0:
        return _not_at_family_level(cell, family, "beats chance and the blind baseline")
    return Verdict(
        INCONCLUSIVE,
        f"{_auc(cell)} excludes chance but not clearly the blind baseline's "
        f"{cell['baseline_auroc']:.3f} ({diff})",
        BASELINE,
    )
