"""Threshold attacks on one membership signal, calibrated on the shadow model.

:class:`ThresholdAttack` covers every attack of the form "member iff signal
beats a threshold": the paper's max-score ``threshold`` attack, ``loss``
(Yeom et al.), ``modified-entropy`` (Song & Mittal) and ``logit-confidence``.
One class parametrised by the signal, so the rule is implemented once:

* the threshold ``threshold_`` is the one maximising TPR - FPR on the shadow
  ROC (first maximum; :func:`mistrust.metrics.oracle_threshold`); if that is
  the ROC's ``inf`` point (no threshold beats predicting nothing), the next
  float above the largest shadow score, so thresholds and scores stay finite;
* decision: member iff ``score >= threshold_``. ROC thresholds follow
  scikit-learn (``thresholds[i]`` is the smallest score predicted positive at
  point ``i``), so ``predict`` on the shadow data reproduces the chosen ROC
  point exactly. ``strict_threshold=True`` is the paper's rule, ``score > threshold_``
  (same threshold), which moves samples tied with the threshold to the other
  side: with saturated max scores of exactly 1.0 that is a different operating
  point, and with a threshold of 1.0 nothing is predicted member.
* ``score_precision="float32"``: the paper's float32 arithmetic. The max score comes
  from a float32 torch softmax (:mod:`mistrust.attacks.float32`), so saturated
  samples tie at exactly 1.0; the signals the paper did not use are rounded to
  float32 (:func:`mistrust.attacks.signals.at_precision`).
* ``class_thresholds=True``: one threshold per true class (Song & Mittal),
  falling back to the global one for a class absent from the shadow data or
  lacking members or non-members. The score is then the margin
  ``signal - class_thresholds_[label]`` and ``operating_score_`` is 0.

``loss`` and ``logit-confidence`` are both monotone in ``p_y``, so with a
global threshold they rank and decide alike wherever ``loss`` is resolvable;
the logit keeps resolution where the loss of a confident correct prediction
underflows to 0 (logit gaps above ~700), and it is the statistic LiRA models.

:class:`EntropyAttack` is the paper's entropy attack, with its own rule
(10,000-point sweep, best shadow accuracy, member iff entropy < threshold).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np

from mistrust.attacks import signals
from mistrust.attacks.base import Attack
from mistrust.attacks.set_signals import FLOAT32_SIGNALS, SetSignals
from mistrust.metrics.rates import oracle_threshold, roc_point

__all__ = ["SIGNAL_SCORES", "EntropyAttack", "SignalScore", "ThresholdAttack"]

logger = logging.getLogger(__name__)


class SignalScore(NamedTuple):
    """How a threshold attack scores: the set signal it reads and whether it negates it."""

    reads: str  # a name of ``signals.SHIFT_SIGNALS`` (:meth:`SetSignals.get`)
    negate: bool  # lower signal = more likely member, so the score is ``-signal``


#: attack signal name -> its score, higher = member
SIGNAL_SCORES: dict[str, SignalScore] = {
    "threshold": SignalScore("max_score", negate=False),
    "loss": SignalScore("loss", negate=True),
    "modified-entropy": SignalScore("modified_entropy", negate=True),
    "logit-confidence": SignalScore("logit_confidence", negate=False),
}


def _threshold(s: np.ndarray, is_member: np.ndarray) -> float:
    """Max TPR - FPR threshold; when predicting nothing is best (``inf`` on the ROC), the
    next float above the largest score: same shadow decisions, but finite margins."""
    t = oracle_threshold(s, is_member)
    return t if np.isfinite(t) else float(np.nextafter(s.max(), np.inf))


class ThresholdAttack(Attack):
    """Shadow-calibrated threshold on one signal.

    Args:
        signal: one of ``SIGNAL_SCORES`` (also the attack's ``name``).
        class_thresholds: fit one threshold per true class.
        strict_threshold: decide ``score > threshold`` (the paper) instead of ``>=``.
        score_precision: ``"float64"`` or ``"float32"`` (the paper's float32 arithmetic).

    Learned: ``threshold_`` (global, in score units), ``class_thresholds_``
    (``(C,)`` or None), ``shadow_tpr_``, ``shadow_fpr_`` (the chosen ROC point),
    ``operating_score_``.
    """

    score_needs_fit = False  # the signal alone; fit learns only where to cut it

    def __init__(
        self,
        signal: str,
        *,
        class_thresholds: bool = False,
        strict_threshold: bool = False,
        score_precision: str = "float64",
    ) -> None:
        self.signal = signal
        self.class_thresholds = class_thresholds
        self.strict_threshold = strict_threshold
        self.score_precision = score_precision

    @property  # type: ignore[override]
    def name(self) -> str:
        return self.signal

    def _signal_score(self) -> SignalScore:
        try:
            return SIGNAL_SCORES[self.signal]
        except KeyError:
            raise ValueError(
                f"unknown signal {self.signal!r}; choose one of: {', '.join(SIGNAL_SCORES)}"
            ) from None

    def _float32_own(self, reads: str) -> bool:
        """Whether the signal comes in the paper's float32 arithmetic (else rounded)."""
        return self.score_precision == "float32" and reads in FLOAT32_SIGNALS

    @property  # type: ignore[override]
    def reads(self) -> tuple[str, ...]:
        reads = self._signal_score().reads
        return () if self._float32_own(reads) else (reads,)

    def _signal(self, sig: SetSignals) -> np.ndarray:
        reads, negate = self._signal_score()
        if self._float32_own(reads):
            return sig.get(reads, "float32")
        value = sig.get(reads)
        return signals.at_precision(-value if negate else value, self.score_precision)

    def _fit(self, sig: SetSignals, is_member: np.ndarray) -> None:
        labels = sig.labels
        s = self._signal(sig)
        self.threshold_ = _threshold(s, is_member)
        self.shadow_tpr_, self.shadow_fpr_ = roc_point(s, is_member, self.threshold_)
        self.class_thresholds_: np.ndarray | None = None
        self.operating_score_ = self.threshold_
        if self.class_thresholds:
            self.class_thresholds_ = self._per_class(s, labels, is_member)
            self.operating_score_ = 0.0
        logger.debug(
            "%s: threshold %.6g, shadow TPR %.4f FPR %.4f",
            self.name,
            self.threshold_,
            self.shadow_tpr_,
            self.shadow_fpr_,
        )

    def _per_class(self, s: np.ndarray, labels: np.ndarray, is_member: np.ndarray) -> np.ndarray:
        out = np.full(self.n_classes_, self.threshold_)
        for c in range(self.n_classes_):
            mask = labels == c
            n_in = int(is_member[mask].sum())
            if 0 < n_in < int(mask.sum()):
                out[c] = _threshold(s[mask], is_member[mask])
            else:
                logger.debug(
                    "%s: class %d lacks members or non-members: global threshold", self.name, c
                )
        return out

    def _score(self, sig: SetSignals) -> np.ndarray:
        s = self._signal(sig)  # may be the set's own (read-only) array: changed into a new one
        if getattr(self, "class_thresholds_", None) is not None:
            s = s - self.class_thresholds_[sig.labels]  # exact: a - b >= 0 iff a >= b (> iff >)
        return s

    def decide(self, score: np.ndarray) -> np.ndarray:
        """Member iff ``score >= operating_score_`` (``>`` with ``strict_threshold=True``)."""
        self._check_fitted()
        s = np.asarray(score)
        return s > self.operating_score_ if self.strict_threshold else s >= self.operating_score_


class EntropyAttack(Attack):
    """The paper's entropy attack: member iff the softmax entropy is below ``threshold_``.

    ``threshold_`` is the first of ``n_thresholds`` evenly spaced values between
    the smallest and largest shadow entropy that maximises shadow accuracy.
    Score: ``-entropy`` (so ``operating_score_ = -threshold_``, decision strict).

    ``score_precision="float32"``: the entropy as the paper's code computed it,
    ``Categorical(probs=softmax).entropy()`` in float32 torch; its clamp makes every
    saturated sample tie at about 1.19e-7 (:func:`mistrust.attacks.float32.entropy`).
    The thresholds are rounded to float32 too, as the paper's comparisons did.

    Learned: ``threshold_`` (nats), ``shadow_accuracy_``, ``operating_score_``.
    """

    name = "entropy"
    score_needs_fit = False

    def __init__(self, *, n_thresholds: int = 10_000, score_precision: str = "float64") -> None:
        self.n_thresholds = n_thresholds
        self.score_precision = score_precision

    @property  # type: ignore[override]
    def reads(self) -> tuple[str, ...]:
        return () if self.score_precision == "float32" else ("entropy",)

    def _fit(self, sig: SetSignals, is_member: np.ndarray) -> None:
        if int(self.n_thresholds) < 1:
            raise ValueError(f"n_thresholds must be >= 1, got {self.n_thresholds}")
        h = sig.get("entropy", self.score_precision)
        thetas = np.linspace(h.min(), h.max(), int(self.n_thresholds))
        if self.score_precision == "float32":
            # the paper compared its float32 entropies with each theta in float32 (NumPy 1's
            # value-based casting, then a torch float32 tensor), so theta was rounded first
            thetas = thetas.astype(np.float32).astype(np.float64)
        h_in, h_out = np.sort(h[is_member]), np.sort(h[~is_member])
        # correct = members with H < theta + non-members with H >= theta
        correct = np.searchsorted(h_in, thetas, side="left") + (
            len(h_out) - np.searchsorted(h_out, thetas, side="left")
        )
        best = int(np.argmax(correct))  # first maximum, as the paper's loop
        self.threshold_ = float(thetas[best])
        self.shadow_accuracy_ = float(correct[best] / len(h))
        self.operating_score_ = -self.threshold_

    def _score(self, sig: SetSignals) -> np.ndarray:
        return -sig.get("entropy", self.score_precision)

    def decide(self, score: np.ndarray) -> np.ndarray:
        """Member iff ``score > operating_score_`` (entropy strictly below ``threshold_``)."""
        self._check_fitted()
        return np.asarray(score) > self.operating_score_
