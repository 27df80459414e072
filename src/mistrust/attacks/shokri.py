"""Shokri et al.'s learned attack (S&P 2017): attack models on the full softmax vector."""

from __future__ import annotations

import logging

import numpy as np

from mistrust.attacks import signals
from mistrust.attacks._mlp import check_settings, fit_rows, mlp_logits, train_settings_mlp
from mistrust.attacks.base import Attack
from mistrust.attacks.salem import FIT_ROWS
from mistrust.attacks.set_signals import SetSignals

__all__ = [
    "FEATURES",
    "LOG_FLOOR",
    "MIN_CLASS_ROWS",
    "ShokriAttack",
    "ShokriLogAttack",
    "shokri_features",
]

logger = logging.getLogger(__name__)

#: what the attack models see (``features``)
FEATURES: tuple[str, ...] = ("probs", "log-probs")

#: a class gets its own attack model when the shadow has at least this many members of it
#: and as many non-members; a class with fewer is scored by the model of every row
MIN_CLASS_ROWS = 20

#: log-probabilities are clipped here: past it a softmax entry is 0 in float32 anyway, and
#: an unbounded feature (log p of -700) would dominate the standardised inputs
LOG_FLOOR = -50.0


def shokri_features(logits: np.ndarray, labels: np.ndarray, features: str) -> np.ndarray:
    """The attack models' inputs ``(N, C)`` or ``(N, C + 1)`` float64.

    ``"probs"``: the softmax vector sorted descending (the paper's input; sorting lets
    one model serve every class). ``"log-probs"``: the sorted log-softmax clipped at
    :data:`LOG_FLOOR`, then the label's logit-confidence ``log p_y - log(1 - p_y)``
    (:func:`mistrust.attacks.signals.logit_confidence`, clipped at ``+-50``): the log
    scale resolves the near-1 scores where members and non-members differ, and the
    label's column says whether the top score is the right class.
    """
    if features == "probs":
        return signals.top_k_scores(logits, logits.shape[1])
    log_p = -np.sort(-signals.log_softmax(logits), axis=1)
    np.maximum(log_p, LOG_FLOOR, out=log_p)
    conf = np.clip(signals.logit_confidence(logits, labels), LOG_FLOOR, -LOG_FLOOR)
    return np.column_stack([log_p, conf])


class ShokriAttack(Attack):
    """Per-class attack models ``d -> hidden -> ReLU -> 1`` on the full sorted softmax vector.

    As Shokri et al.: one attack model per true class, each trained on the shadow
    rows of its class to tell members from non-members, and a row scored by the
    model of its label (for a set without labels, the audit passes the predicted
    class). A class with fewer than ``min_class_rows`` shadow members or non-members
    would train a model on a handful of rows; it is scored by the shared model,
    trained on every shadow row, instead. ``per_class=False`` scores every row with
    the shared model; with ``features="probs"`` that is ML-Leaks' label-free variant,
    one model on the sorted vector.

    Each model is Salem's (:mod:`mistrust.attacks._mlp`: BCE-with-logits, Adam,
    early stopping on the epoch loss) on features standardised by the mean and
    standard deviation of its own training rows; ``features`` picks them
    (:func:`shokri_features`). A shadow set above ``max_rows`` rows is cut to a
    seeded sample with the members' share first, as Salem's. Fully determined by
    ``seed``: one generator draws the sample, then trains the shared model, then
    the class models in class order.

    Score: the logit of the row's model (higher = member); decision: its sigmoid
    >= 0.5, i.e. ``score >= operating_score_ = 0``, a fixed operating point as
    Salem's. The scores are float64 whatever ``attacks.score_precision`` says: the
    paper did not run this attack, so there is no float32 arithmetic of its to follow.
    Learned: ``models_`` (class -> ``(mean, scale, params)``; key -1 is the
    shared model), ``class_models_`` (the classes with their own model),
    ``n_fit_rows_``, ``n_epochs_`` (per model, same keys).
    """

    name = "shokri"

    def __init__(
        self,
        *,
        seed: int = 42,
        features: str = "probs",
        per_class: bool = True,
        min_class_rows: int = MIN_CLASS_ROWS,
        hidden: int = 64,
        lr: float = 0.01,
        batch_size: int = 16,
        patience: int = 15,
        min_delta: float = 5e-4,
        max_epochs: int = 500,
        max_rows: int | None = FIT_ROWS,
    ) -> None:
        self.seed = seed
        self.features = features
        self.per_class = per_class
        self.min_class_rows = min_class_rows
        self.hidden = hidden
        self.lr = lr
        self.batch_size = batch_size
        self.patience = patience
        self.min_delta = min_delta
        self.max_epochs = max_epochs
        self.max_rows = max_rows

    def _fit(self, sig: SetSignals, is_member: np.ndarray) -> None:
        logits, labels = sig.logits, sig.labels
        check_settings(self, "min_class_rows")
        if self.features not in FEATURES:
            raise ValueError(f"features must be one of {list(FEATURES)}, got {self.features!r}")
        rng = np.random.default_rng(self.seed)
        rows = fit_rows(is_member, self.max_rows, rng, "max_rows")
        if rows is not None:
            logits, labels, is_member = logits[rows], labels[rows], is_member[rows]
        self.n_fit_rows_ = len(logits)
        x = shokri_features(logits, labels, self.features)
        y = is_member.astype(np.float64)
        groups = {-1: np.ones(len(x), dtype=bool)}
        if self.per_class:
            need = int(self.min_class_rows)
            for c in range(logits.shape[1]):
                rows = labels == c
                n_in = int(np.count_nonzero(is_member[rows]))
                if min(n_in, int(np.count_nonzero(rows)) - n_in) >= need:
                    groups[c] = rows
        self.models_: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.n_epochs_: dict[int, int] = {}
        for key, rows in groups.items():
            mean, scale = _standardiser(x[rows])
            params, losses = train_settings_mlp(self, (x[rows] - mean) / scale, y[rows], rng)
            self.models_[key] = (mean, scale, params)
            self.n_epochs_[key] = len(losses)
            if len(losses) == self.max_epochs:
                logger.warning("shokri: model %d stopped at max_epochs before converging", key)
        self.class_models_ = sorted(k for k in self.models_ if k >= 0)
        logger.debug("shokri: own models for classes %s", self.class_models_)
        self.operating_score_ = 0.0

    def _score(self, sig: SetSignals) -> np.ndarray:
        logits, labels = sig.logits, sig.labels
        x = shokri_features(logits, labels, self.features)
        model = np.full(len(x), -1)
        for c in self.class_models_:
            model[labels == c] = c
        out = np.empty(len(x))
        for key in np.unique(model):
            rows = model == key
            mean, scale, params = self.models_[int(key)]
            out[rows] = mlp_logits(params, (x[rows] - mean) / scale, hidden=int(self.hidden))
        return out


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and scales ``(d,)``; a constant column keeps scale 1 (it stays 0)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    return mean, scale


class ShokriLogAttack(ShokriAttack):
    """``shokri-log``: one attack model on the sorted log-softmax and the label's
    logit-confidence (``features="log-probs"``, ``per_class=False``, ``lr=0.001``).

    Measured on the default preset's outputs (BENCHMARKS.md, "Learned attacks on the
    full vector"), this is the strongest score-based attack: the log scale and the
    label's column carry what the paper's per-class models on probabilities miss,
    and with some 50 shadow members per class one model on every row generalises
    better than a model per class. The smaller step (Salem's recipe uses 0.01)
    because training stops on the training loss alone: at 0.01 the model fits
    the shadow's noise before it stops.
    """

    name = "shokri-log"

    def __init__(
        self,
        *,
        seed: int = 42,
        features: str = "log-probs",
        per_class: bool = False,
        min_class_rows: int = MIN_CLASS_ROWS,
        hidden: int = 64,
        lr: float = 0.001,
        batch_size: int = 16,
        patience: int = 15,
        min_delta: float = 5e-4,
        max_epochs: int = 500,
        max_rows: int | None = FIT_ROWS,
    ) -> None:
        super().__init__(
            seed=seed,
            features=features,
            per_class=per_class,
            min_class_rows=min_class_rows,
            hidden=hidden,
            lr=lr,
            batch_size=batch_size,
            patience=patience,
            min_delta=min_delta,
            max_epochs=max_epochs,
            max_rows=max_rows,
        )
