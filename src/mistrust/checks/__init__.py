"""Trust checks: does an attack's "member" verdict show membership? (docs/CHECKS.md)

Pure functions, arrays and numbers in: the blind baseline (:mod:`.baseline`), the
statistics (:mod:`.stats`), the checks of one attack on one set (:mod:`.measure`) and
the verdict they add up to (:mod:`.verdict`).
"""

from __future__ import annotations

from mistrust.checks.baseline import blind_scores, feature_dtype, pixel_features
from mistrust.checks.measure import (
    BASELINE_KEYS,
    IN_DISTRIBUTION_KEYS,
    SET_CHECK_KEYS,
    in_distribution_checks,
    set_checks,
)
from mistrust.checks.verdict import (
    FAMILY_ALPHA,
    INCONCLUSIVE,
    LEAKAGE_SHOWN,
    NOT_SHOWN,
    VERDICT_CODES,
    Verdict,
    label_of,
    verdict,
)

__all__ = [
    "BASELINE_KEYS",
    "FAMILY_ALPHA",
    "INCONCLUSIVE",
    "IN_DISTRIBUTION_KEYS",
    "LEAKAGE_SHOWN",
    "NOT_SHOWN",
    "SET_CHECK_KEYS",
    "VERDICT_CODES",
    "Verdict",
    "blind_scores",
    "feature_dtype",
    "in_distribution_checks",
    "label_of",
    "pixel_features",
    "set_checks",
    "verdict",
]
