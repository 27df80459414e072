"""The attack interface: fit on the shadow model's outputs, score the target's.

Conventions (scikit-learn style):

* ``__init__`` only stores its arguments; everything learned ends in ``_``.
* ``fit(logits, labels, is_member)`` sees the SHADOW model's outputs only and
  returns ``self``; refitting replaces all learned state.
* ``score(logits, labels)`` is float64 ``(N,)`` and HIGHER always means MORE
  LIKELY MEMBER, for every attack.
* Subclasses read their inputs from a :class:`~mistrust.attacks.set_signals.SetSignals`
  (``_fit(signals, is_member)``, ``_score(signals)``): ``signals.logits``,
  ``signals.labels`` and each signal computed once per set, shared by every attack of an
  audit (``fit_signals``, ``score_signals``); ``fit`` and ``score`` build it themselves.
* ``predict(logits, labels)`` applies the learned operating point:
  ``predict == decide(score)``. ``operating_score_`` is the score at which the
  decision flips (a point to mark on the ROC curve).
* Using an attack before ``fit`` raises :class:`NotFittedError`.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from mistrust.attacks._checks import check_labels, check_logits, check_membership
from mistrust.attacks.set_signals import SetSignals
from mistrust.errors import InputError

__all__ = ["Attack", "NotFittedError"]


class NotFittedError(ValueError, AttributeError):
    """Raised when an attack is used before ``fit`` (as scikit-learn's NotFittedError)."""


class Attack(ABC):
    """Base class of all membership inference attacks on model outputs.

    Subclasses implement ``_fit`` and ``_score``; they may override ``decide``.
    The default decision is ``member iff score >= operating_score_``.
    """

    #: registry key; subclasses set it (or derive it from their arguments)
    name: str = ""
    operating_score_: float | None
    #: whether ``score`` needs what ``fit`` learns (a trained model such as Salem's); an
    #: attack on a fixed signal can score without a shadow model (:meth:`shadow_free_score`)
    score_needs_fit: bool = True
    #: the signals of :data:`mistrust.attacks.signals.SHIFT_SIGNALS` the attack reads: an
    #: audit computes them for each set in one pass shared by every attack (a hint; others
    #: are computed when read)
    reads: tuple[str, ...] = ()

    # ---- public API -------------------------------------------------------
    def fit(self, logits: np.ndarray, labels: np.ndarray, is_member: np.ndarray) -> Attack:
        """Learn the attack from the shadow model's outputs.

        Args:
            logits: ``(N, C)`` shadow-model logits (or ``probs_to_logits(p)``).
            labels: ``(N,)`` integer true labels.
            is_member: ``(N,)`` bool, True for the shadow model's training samples;
                needs at least one member and one non-member.

        Returns:
            ``self``.
        """
        return self.fit_signals(SetSignals(logits, labels), is_member)

    def fit_signals(self, signals: SetSignals, is_member: np.ndarray) -> Attack:
        """:meth:`fit` on the shadow's :class:`SetSignals`, which other attacks may share."""
        is_member = check_membership(is_member, len(signals), require_both=True)
        self.n_classes_ = signals.n_classes
        self._fit(signals, is_member)
        return self

    def score(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Membership score ``(N,)`` float64 of logits ``(N, C)`` with labels ``(N,)``;
        higher means more likely member."""
        logits, labels = self._check_inputs(logits, labels)
        out = self.score_signals(SetSignals(logits, labels))
        return out if out.flags.writeable else out.copy()  # the caller's own array

    def score_signals(self, signals: SetSignals) -> np.ndarray:
        """:meth:`score` of a set's :class:`SetSignals`; may be a read-only array the
        set's signals hold (the threshold attack's max score is the set's)."""
        self._check_fitted()
        self._check_classes(signals.n_classes)
        return np.asarray(self._score(signals), dtype=np.float64)

    def shadow_free_score(self, signals: SetSignals) -> np.ndarray:
        """The score ``(N,)`` of a set's :class:`SetSignals` without any shadow model: the
        attack's signal alone (no per-class thresholds), for attacks with
        ``score_needs_fit`` False. Threshold-free metrics (AUROC, TPR at a fixed FPR) can
        use it; a decision cannot (no threshold).
        """
        if self.score_needs_fit:
            raise NotFittedError(f"attack {self.name!r} learns its score from a shadow model")
        return np.asarray(self._score(signals), dtype=np.float64)

    def predict(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Membership decisions ``(N,)`` bool at the operating point learned in ``fit``."""
        return self.decide(self.score(logits, labels))

    def decide(self, score: np.ndarray) -> np.ndarray:
        """Decisions ``(N,)`` bool from scores already computed by :meth:`score`.

        ``predict(logits, labels)`` equals ``decide(score(logits, labels))``; use
        this to avoid computing the signal twice.
        """
        self._check_fitted()
        return np.asarray(score) >= self.operating_score_

    def __repr__(self) -> str:
        params = inspect.signature(type(self).__init__).parameters
        args = [f"{p}={getattr(self, p)!r}" for p in params if p != "self" and hasattr(self, p)]
        return f"{type(self).__name__}({', '.join(args)})"

    # ---- for subclasses ---------------------------------------------------
    @abstractmethod
    def _fit(self, signals: SetSignals, is_member: np.ndarray) -> None:
        """Learn from the shadow's signals (validated outputs: ``signals.logits``,
        ``signals.labels``); must set ``operating_score_``."""

    @abstractmethod
    def _score(self, signals: SetSignals) -> np.ndarray:
        """Scores ``(N,)`` of a set's signals for a fitted attack; never changes an array
        that ``signals`` hands out (they are shared with the other attacks)."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "operating_score_"):
            raise NotFittedError(
                f"this {type(self).__name__} ({self.name!r}) is not fitted yet: call "
                "fit(shadow_logits, shadow_labels, shadow_is_member) first"
            )

    def _check_classes(self, n_classes: int) -> None:
        if n_classes != self.n_classes_:
            raise InputError(
                f"attack was fitted on {self.n_classes_} classes but logits have "
                f"{n_classes} columns"
            )

    def _check_inputs(self, logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        logits = check_logits(logits)
        self._check_classes(logits.shape[1])
        return logits, check_labels(labels, logits.shape[0], logits.shape[1])
