"""The audit core: arrays of model outputs in, a typed table of attack metrics out.

This is the one code path behind both ``mistrust run`` (:func:`mistrust.pipeline.evaluate.
evaluate_attacks` calls it once per variant) and the public :func:`audit`.
It never runs a model and writes nothing unless asked (:meth:`Audit.save_scores`;
the public :class:`mistrust.api.AuditResult` adds the result files and the report).

Protocol (the paper's): every attack is fitted on the SHADOW model's member /
non-member outputs only, then applied unchanged to the TARGET's members paired
with each evaluation set of non-members: the target's own non-members
(``"original"``) and any out-of-distribution sets. A false positive on an OOD
set is a non-member the attack calls "member".
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mistrust.attacks import SCORE_BASED_ATTACKS, create_attack
from mistrust.attacks._checks import check_logits, check_membership
from mistrust.attacks.salem import FIT_ROWS
from mistrust.attacks.set_signals import SetSignals
from mistrust.checks import blind_scores, feature_dtype, pixel_features
from mistrust.checks.assemble import add_verdicts, check_rows
from mistrust.checks.ranking import strongest_rows
from mistrust.errors import InputError
from mistrust.io import atomic_savez
from mistrust.metrics import attack_metrics
from mistrust.metrics.rates import Ranked
from mistrust.rows import MetricRow, find_value
from mistrust.runtime.paths import score_file

log = logging.getLogger(__name__)

__all__ = [
    "NO_SHADOW",
    "SHADOW_METRICS",
    "Audit",
    "MetricRow",
    "ScoreSet",
    "audit",
    "labels_or_predicted",
]

#: metrics of a decision at the threshold fitted on the shadow model: without a shadow
#: they are not computable and are written as NaN ("no shadow" in the tables)
SHADOW_METRICS: tuple[str, ...] = (
    "precision",
    "tpr",
    "fpr",
    "accuracy",
    "advantage",
    "tpr_ci_low",
    "tpr_ci_high",
    "fpr_ci_low",
    "fpr_ci_high",
    "mmps_tp",
    "mmps_fp",
    "mmps_fn",
    "mmps_tn",
)
#: the metric of the row ``(variant, attack, "shadow", NO_SHADOW, 1.0)`` that marks an
#: attack audited without a shadow model
NO_SHADOW = "no_shadow"

#: ``(logits (N, C), labels (N,), is_member (N,) bool)``
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class ScoreSet:
    """Per-sample results of one attack on one evaluation set: members first, then the set."""

    score: np.ndarray  # (N,) float64, higher = more likely member
    is_member: np.ndarray  # (N,) bool, the truth
    predicted: np.ndarray  # (N,) bool, the attack's decision at its shadow operating point
    max_score: np.ndarray  # (N,) the target's max softmax probability


def labels_or_predicted(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``labels (N,)`` with every negative entry (no class applies, e.g. OOD images)
    replaced by the predicted class ``argmax logits (N, C)``; a copy, int64."""
    out = np.array(labels, dtype=np.int64)
    unknown = out < 0
    out[unknown] = np.asarray(logits)[unknown].argmax(1)
    return out


@dataclass
class Audit:
    """What :func:`audit` returns: tidy metric rows and the per-sample scores behind them.

    ``rows``: per attack, every :data:`mistrust.metrics.METRIC_KEYS` metric on every
    evaluation set, then ``(variant, attack, "shadow", "operating_score", t)`` for attacks
    with a threshold, then the trust checks and ``verdict`` of every set
    (:func:`mistrust.checks.assemble.check_rows`, docs/CHECKS.md), then the ``strongest``
    attack on ``original`` and its gap to the ``runner_up``
    (:func:`mistrust.checks.ranking.strongest_rows`).
    ``scores[attack][set]``: the :class:`ScoreSet` of that pair.
    """

    rows: list[MetricRow] = field(default_factory=list)
    scores: dict[str, dict[str, ScoreSet]] = field(default_factory=dict)

    def value(self, *key: str, variant: str | None = None) -> float:
        """``value(attack, dataset, metric, variant=None)``: the value of one metric (of
        the first variant without ``variant``), as ``RunResult.value``; ``KeyError`` if the
        result has no such row."""
        return find_value(self.rows, key, variant)

    def to_frame(self) -> Any:
        """The rows as a ``pandas.DataFrame`` (columns variant, attack, dataset, metric, value).

        Pivot it into the paper's table with
        ``df[df.metric == "fpr"].pivot(index="dataset", columns="attack", values="value")``.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_frame needs pandas: pip install pandas") from None
        return pd.DataFrame(self.rows, columns=list(MetricRow._fields))

    def save_scores(self, directory: Path | str) -> None:
        """Write ``<directory>/<attack>/<set>.npz`` (score, is_member, predicted, max_score)."""
        for attack, per_set in self.scores.items():
            for name, s in per_set.items():
                atomic_savez(
                    score_file(directory, attack, name),
                    score=s.score,
                    is_member=s.is_member,
                    predicted=s.predicted,
                    max_score=s.max_score,
                )


def _arrays(value: Any, what: str) -> Arrays:
    try:
        logits, labels, is_member = value
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a tuple (logits, labels, is_member)") from None
    logits = check_logits(logits, name=f"{what} logits")
    labels = np.asarray(labels)
    if labels.shape != (len(logits),):
        raise InputError(
            f"{what}: logits have {len(logits)} rows but labels have shape {labels.shape}"
        )
    return logits, labels, check_membership(is_member, len(logits), require_both=False)


def _nonmember_set(value: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(value, np.ndarray):  # logits only: no class applies
        value = (value, np.full(len(value), -1, dtype=np.int64))
    try:
        logits, labels = value
    except (TypeError, ValueError):
        raise InputError(
            f"eval_sets[{name!r}] must be logits or a tuple (logits, labels)"
        ) from None
    logits = check_logits(logits, name=f"eval_sets[{name!r}] logits")
    labels = np.asarray(labels)
    if labels.shape != (len(logits),):
        raise InputError(
            f"eval_sets[{name!r}]: logits have {len(logits)} rows but labels have shape "
            f"{labels.shape}"
        )
    return logits, labels


def audit(
    shadow: Arrays | None,
    target: Arrays,
    *,
    eval_sets: Mapping[str, Any] | None = None,
    attacks: Sequence[str] = SCORE_BASED_ATTACKS,
    original: str | None = "original",
    top_k: int = 3,
    class_thresholds: bool = False,
    seed: int = 42,
    variant: str = "base",
    strict_threshold: bool = False,
    score_precision: str = "float64",
    salem_score: str = "logit",
    salem_rows: int | None = FIT_ROWS,
    aupr: str = "average-precision",
    baseline_scores: Mapping[str, np.ndarray] | None = None,
    inputs: Mapping[str, Any] | None = None,
    iid_sets: Collection[str] = (),
) -> Audit:
    """Fit each attack on the shadow model's outputs and audit the target's on every set.

    Example (arrays of logits, e.g. from your own models)::

        import mistrust
        result = mistrust.audit(
            shadow=(shadow_logits, shadow_labels, shadow_is_member),
            target=(target_logits, target_labels, target_is_member),
            eval_sets={"scaled": ood_logits},  # non-members the model never saw
        )
        print(result.value("threshold", "scaled", "fpr"))  # OOD false-positive rate
        result.to_frame()  # tidy table (pandas); result.report("audit/") for HTML

    Args:
        shadow: ``(logits (N, C), labels (N,), is_member (N,) bool)`` of the shadow
            model on its own members (training samples) and non-members; both needed.
            ``None``: no shadow model. Then no attack has a threshold: the metrics of
            a decision (:data:`SHADOW_METRICS`: TPR, FPR, precision, ...) are NaN, the
            threshold-free ones (AUROC, AUPR, TPR at a fixed FPR, the oracle point)
            are computed, attacks that learn their score (Salem) are left out, and a
            row ``(variant, attack, "shadow", "no_shadow", 1.0)`` marks each attack.
        target: the same for the target model; needs members, and non-members
            unless ``original`` is None.
        eval_sets: more non-member sets of the target, by name: ``logits (M, C)``
            or ``(logits, labels (M,))``. Each is paired with the target's members.
            A label ``< 0`` (or logits alone) means no class applies: the target's
            predicted class is used instead, as for every label-dependent attack.
        attacks: names from :func:`mistrust.attacks.attack_names`.
        original: the set name of the target's own non-members (first in the
            result, scored in the target's row order); None leaves them out.
        top_k, class_thresholds, seed: attack options, see
            :func:`mistrust.attacks.create_attack`.
        variant: the ``variant`` column of every row.
        strict_threshold: threshold attacks decide ``score > threshold`` (the paper's
            rule) instead of ``>=``.
        score_precision: ``"float64"``, or ``"float32"`` to compute the scores (and the
            max scores behind MMPS) in the paper's float32 torch arithmetic.
        salem_score: ``"logit"`` or ``"sigmoid"`` (the paper): what Salem scores with.
        salem_rows: most shadow rows Salem's attack model trains on, a seeded sample
            with the shadow's share of members when there are more; None: every row
            (the paper; ~60 s on a million rows).
        aupr: ``"average-precision"`` or ``"trapezoid"`` (the paper) for the AUPR metric.
        baseline_scores: the blind baseline's scores per set name, each ``(N,)`` in the
            set's row order (for ``original``: the target's rows; for an eval set: the
            target's members, then the set), e.g. from :func:`mistrust.checks.blind_scores`.
        inputs: instead of ``baseline_scores``, the inputs the models saw, ``(N, C, H, W)``:
            ``"target"`` (the target's rows) and any eval set by name; the blind baseline
            is then fitted here (cross-fitted, seeded by ``seed``). Without either, the
            verdicts say that the baseline was not run.
        iid_sets: the sets (``original`` and / or eval sets) whose non-members were drawn
            with the target's members from one pool by a seeded random split, e.g. your
            own ``train_test_split`` of one dataset. Their inputs can differ only by chance,
            so the verdicts never blame distribution shift there (docs/CHECKS.md). Leave
            a set out when its members and non-members came from different sources.

    Every audit also runs the trust checks of :mod:`mistrust.checks` (docs/CHECKS.md):
    per attack and set the AUROC's interval, TPR at low FPR with intervals where the
    non-members resolve it, degenerate-attack flags, the blind baseline's AUROC beside
    the attack's, on the in-distribution set (``original``) the null test, the polarity
    flag and the epsilon lower bound, and a ``verdict`` per set. The checks follow each
    attack's ``operating_score`` row; the verdicts, decided for all the attacks on a set
    together (Holm's adjustment of their p-values), follow; last, on ``original``, the
    ``strongest`` attack with its paired AUROC gap to the ``runner_up``
    (:func:`mistrust.checks.ranking.strongest_rows`).

    Returns:
        An :class:`Audit` (:class:`mistrust.api.AuditResult` through ``mistrust.audit``). Scores: higher = more likely member, for every attack.

    Raises:
        mistrust.errors.InputError: arrays of the wrong shape, or a missing side.
        ValueError: an unknown attack name.
    """
    if shadow is not None:
        sh_logits, sh_labels, sh_member = _arrays(shadow, "shadow")
        sh_labels = labels_or_predicted(sh_logits, sh_labels)
    t_logits, t_labels, t_member = _arrays(target, "target")
    if not t_member.any():
        raise InputError("target needs members (is_member True) to audit")
    sets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if original is not None:
        if t_member.all():
            raise InputError("target has no non-members for the 'original' set; pass original=None")
        sets[original] = (t_logits, t_labels)
    members = (t_logits[t_member], t_labels[t_member])
    for name, value in (eval_sets or {}).items():
        if name in sets:
            raise InputError(f"eval_sets has a set named {name!r} twice (original={original!r})")
        logits, labels = _nonmember_set(value, name)
        sets[name] = (np.concatenate([members[0], logits]), np.concatenate([members[1], labels]))
    n_members = len(members[0])
    ind = original if original is not None else "original"
    truth = {
        ds: t_member if ds == original else np.arange(len(lg)) < n_members
        for ds, (lg, _) in sets.items()
    }
    blind = _baseline(baseline_scores, inputs, truth, t_member, original, seed=seed)
    unknown = sorted(set(iid_sets) - set(sets))
    if unknown:
        raise InputError(f"iid_sets names {unknown}, which are not evaluation sets")

    made = [
        create_attack(
            name,
            top_k=top_k,
            class_thresholds=class_thresholds,
            seed=seed,
            strict_threshold=strict_threshold,
            score_precision=score_precision,
            salem_score=salem_score,
            salem_rows=salem_rows,
        )
        for name in attacks
    ]
    # each set's signals computed once and read by every attack (and the max scores of MMPS):
    # the float64 ones every attack reads in one pass over the set
    wanted = {s for attack in made for s in attack.reads}
    if score_precision == "float64":
        wanted.add("max_score")
    set_signals = {
        ds: SetSignals(lg, labels_or_predicted(lg, lb), wanted=wanted)
        for ds, (lg, lb) in sets.items()
    }
    tops = {ds: sig.get("max_score", score_precision) for ds, sig in set_signals.items()}
    if shadow is not None:
        shadow_signals = SetSignals(sh_logits, sh_labels, wanted=wanted)
    result = Audit()
    for name, attack in zip(attacks, made, strict=True):
        if shadow is not None:
            attack.fit_signals(shadow_signals, sh_member)
        elif attack.score_needs_fit:
            log.warning("%s: learns its score from a shadow model; left out (no shadow)", name)
            continue
        result.scores[name] = {}
        ranked: dict[str, Ranked] = {}  # one sort per set, read by its metrics and checks
        for ds, sig in set_signals.items():
            is_member, top = truth[ds], tops[ds]
            if shadow is None:
                score = attack.shadow_free_score(sig)
                predicted = np.zeros(len(score), dtype=bool)  # no threshold: no decision
                ranked[ds] = Ranked(score, is_member)
                metrics = attack_metrics(
                    score, is_member, predicted, max_score=top, aupr=aupr, ranked=ranked[ds]
                )
                metrics.update(dict.fromkeys(SHADOW_METRICS, math.nan))
            else:
                score = attack.score_signals(sig)
                predicted = attack.decide(score)
                ranked[ds] = Ranked(score, is_member)
                metrics = attack_metrics(
                    score, is_member, predicted, max_score=top, aupr=aupr, ranked=ranked[ds]
                )
            result.rows += [MetricRow(variant, name, ds, k, float(v)) for k, v in metrics.items()]
            result.scores[name][ds] = ScoreSet(score, is_member, predicted, top)
        threshold = getattr(attack, "operating_score_", None)
        if shadow is None:
            result.rows.append(MetricRow(variant, name, "shadow", NO_SHADOW, 1.0))
        elif threshold is not None:
            result.rows.append(
                MetricRow(variant, name, "shadow", "operating_score", float(threshold))
            )
        scored = {
            ds: (s.score, s.is_member, None if shadow is None else s.predicted)
            for ds, s in result.scores[name].items()
        }
        result.rows += check_rows(
            variant,
            name,
            scored,
            seed=seed,
            baseline=blind,
            in_distribution=ind,
            iid_sets=iid_sets,
            ranked=ranked,
        )
        log.debug("%s: audited %d sets", name, len(sets))
    result.rows = add_verdicts(result.rows, in_distribution=ind)
    # the strongest score attack and its paired test against the runner-up, on the same
    # in-distribution rows (docs/CHECKS.md); reference attacks are scored in another stage
    ranked_scores = {
        a: (per_set[ind].score, per_set[ind].is_member)
        for a, per_set in result.scores.items()
        if ind in per_set
    }
    result.rows += strongest_rows(variant, result.rows, ranked_scores, dataset=ind)
    return result


def _features(x: Any, name: str, dtype: type[np.floating] | None = None) -> np.ndarray:
    try:
        return pixel_features(x, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise InputError(f"inputs[{name!r}]: {e}") from None


def _baseline(
    scores: Mapping[str, np.ndarray] | None,
    inputs: Mapping[str, Any] | None,
    truth: Mapping[str, np.ndarray],
    t_member: np.ndarray,
    original: str | None,
    *,
    seed: int,
) -> dict[str, np.ndarray] | None:
    """The blind baseline's scores per set, checked against each set's rows; None if absent."""
    if scores is not None and inputs is not None:
        raise InputError("pass baseline_scores or inputs, not both")
    if inputs is not None:
        if "target" not in inputs:
            raise InputError("inputs needs the target's inputs under the key 'target'")
        # the dtype of the members' rows: float64 while a fit with them can be below the
        # switch (their scores keep their bytes), float32 once every fit is above it
        target = _features(inputs["target"], "target", feature_dtype(int(t_member.sum())))
        if len(target) != len(t_member):
            raise InputError(
                f"inputs['target'] has {len(target)} rows but the target has {len(t_member)}"
            )
        scores = {}
        for ds, is_member in truth.items():
            if min(is_member.sum(), (~is_member).sum()) < 2:
                log.warning("blind baseline: %s has fewer than 2 members or non-members", ds)
            elif ds == original:  # the target's own rows
                scores[ds] = blind_scores(target, is_member, seed=seed)
            elif ds in inputs:
                f = _features(inputs[ds], ds)
                # the dtype of all the rows the fit sees: float64 up to the switch, as always
                dtype = feature_dtype(int(t_member.sum()) + len(f))
                f = np.concatenate([target[t_member], f], dtype=dtype)
                scores[ds] = blind_scores(f, is_member, seed=seed)
    if scores is None:
        return None
    out = {}
    for ds, s in scores.items():
        if ds not in truth:
            raise InputError(f"baseline scores for {ds!r}, which is not an evaluation set")
        s = np.asarray(s, dtype=np.float64)
        if s.shape != truth[ds].shape:
            raise InputError(
                f"baseline scores of {ds!r} have shape {s.shape}; the set has "
                f"{len(truth[ds])} rows (members first)"
            )
        out[ds] = s
    return out
