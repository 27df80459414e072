"""The membership signals of one set of outputs, each computed once for every attack.

An audit fits every attack on the shadow's outputs and scores every evaluation set with
every attack; most attacks read a signal of the same softmax (max score, entropy, loss,
...). A :class:`SetSignals` holds one set's logits and labels and computes what the
attacks ask of it on first use, then hands out the same array to each:

* the float64 signals of :data:`mistrust.attacks.signals.SHIFT_SIGNALS` share the row-max
  shift of the softmax: the first one asked for is computed together with every signal
  named in ``wanted`` (the union of the attacks' :attr:`~mistrust.attacks.base.Attack.reads`)
  in one chunked pass (:func:`~mistrust.attacks.signals.shift_signals`);
* the paper's float32 signals (``precision="float32"``) share one float32 torch softmax
  (:mod:`mistrust.attacks.float32`);
* the top-k scores are kept per ``(k, precision)``.

Every value has the bytes of the signal function it stands for (``signals.loss(logits,
labels)``, ...). The arrays handed out are read-only: an attack that changes a score
makes a new array, so no attack sees another's changes.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import numpy as np

from mistrust.attacks import float32, signals
from mistrust.attacks._checks import check_labels, check_logits

if TYPE_CHECKING:
    import torch

__all__ = ["FLOAT32_SIGNALS", "SetSignals"]

#: the signals with a float32 computation of their own, the paper's (``precision="float32"``)
FLOAT32_SIGNALS: tuple[str, ...] = ("max_score", "entropy")
_FLOAT32_OF = {"max_score": float32.max_score_of, "entropy": float32.entropy_of}


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class SetSignals:
    """The signals of ``logits (N, C)`` with integer ``labels (N,)``, each computed once.

    Args:
        logits: one set's logits (or ``signals.probs_to_logits(p)``), any real dtype.
        labels: ``(N,)`` class indices in ``[0, C)``.
        wanted: names from :data:`~mistrust.attacks.signals.SHIFT_SIGNALS` to compute in
            the same pass as the first of them asked for (a hint; a signal not named is
            computed in a pass of its own when asked for).
    """

    def __init__(
        self, logits: np.ndarray, labels: np.ndarray, *, wanted: Collection[str] = ()
    ) -> None:
        self.logits = check_logits(logits)
        self.labels = check_labels(labels, self.logits.shape[0], self.logits.shape[1])
        unknown = sorted(set(wanted) - set(signals.SHIFT_SIGNALS))
        if unknown:
            raise ValueError(
                f"unknown signals {unknown}; choose from {list(signals.SHIFT_SIGNALS)}"
            )
        self.wanted = frozenset(wanted)
        self._values: dict[Any, np.ndarray] = {}
        self._softmax32: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.logits)

    @property
    def n_classes(self) -> int:
        return int(self.logits.shape[1])

    def get(self, name: str, precision: str = "float64") -> np.ndarray:
        """The signal ``name`` (of ``SHIFT_SIGNALS``) ``(N,)`` float64, read-only.

        ``precision="float32"``: the paper's float32 arithmetic, for the signals of
        :data:`FLOAT32_SIGNALS` only (an attack rounds the others itself,
        :func:`~mistrust.attacks.signals.at_precision`).
        """
        if name not in signals.SHIFT_SIGNALS:
            raise ValueError(f"unknown signal {name!r}; choose from {list(signals.SHIFT_SIGNALS)}")
        if precision not in signals.PRECISIONS:
            raise ValueError(
                f"precision must be one of {list(signals.PRECISIONS)}, got {precision!r}"
            )
        if precision == "float32":
            if name not in FLOAT32_SIGNALS:
                raise ValueError(f"{name} has no float32 arithmetic of its own")
            key = (name, precision)
            if key not in self._values:
                self._values[key] = _frozen(_FLOAT32_OF[name](self.softmax32()))
            return self._values[key]
        if name not in self._values:
            names = {name} | (self.wanted - self._values.keys())
            for k, v in signals.shift_signals(self.logits, self.labels, names).items():
                self._values[k] = _frozen(v)
        return self._values[name]

    def top_k(self, k: int, precision: str = "float64") -> np.ndarray:
        """:func:`~mistrust.attacks.signals.top_k_scores` ``(N, k)``, read-only."""
        key = ("top_k", k, precision)
        if key not in self._values:
            if precision == "float32":  # the shared softmax (top_k_scores would make its own)
                value = float32.top_k_scores_of(self.softmax32(), k)
            else:
                value = signals.top_k_scores(self.logits, k, precision=precision)
            self._values[key] = _frozen(value)
        return self._values[key]

    def softmax32(self) -> torch.Tensor:
        """The float32 torch softmax (:func:`mistrust.attacks.float32.softmax`), once."""
        if self._softmax32 is None:
            self._softmax32 = float32.softmax(self.logits)
        return self._softmax32

    def rows(self, index: np.ndarray) -> SetSignals:
        """The signals of a subset of the rows (``index``: positions), computed afresh."""
        return SetSignals(self.logits[index], self.labels[index], wanted=self.wanted)
