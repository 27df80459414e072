"""ML-Leaks adversary 1 (Salem et al.): an MLP on the top-k softmax scores."""

from __future__ import annotations

import logging

import numpy as np
from scipy.special import expit

from mistrust.attacks import float32, signals
from mistrust.attacks._mlp import (
    check_settings,
    fit_rows,
    mlp_logits,
    stratified_sample,
    train_settings_mlp,
)
from mistrust.attacks.base import Attack
from mistrust.attacks.set_signals import SetSignals

__all__ = ["FIT_ROWS", "SalemAttack", "stratified_sample"]

logger = logging.getLogger(__name__)

#: what the attack scores with (``attacks.salem_score``): its logit or its probability
OUTPUTS: tuple[str, ...] = ("logit", "sigmoid")

#: most shadow rows the attack model trains on (``attacks.salem_rows``). The paper's
#: recipe (batch 16, early stopping on whole epochs) costs ~1.6 us per row and epoch,
#: a minute or more on a million rows; on a sample of 16,384 rows it takes a few
#: seconds whatever the shadow's size, and three features are learned as well from
#: them: held-out AUROC within 6e-4 of the fit on every row at 1e5 and 1e6 rows
#: (benchmarks/bench_salem.py). Smaller shadow sets (every preset's) are used whole,
#: so their numbers do not move.
FIT_ROWS = 16_384


class SalemAttack(Attack):
    """Attack model ``k -> hidden -> ReLU -> 1`` on the ``top_k`` softmax scores (descending).

    Trained on the shadow outputs with BCE-with-logits and Adam (``lr``,
    ``batch_size``); stops when the mean epoch loss has not improved by
    ``min_delta`` for ``patience`` epochs (or after ``max_epochs``). Fully
    determined by ``seed`` (init and shuffling use ``np.random.default_rng(seed)``).
    A shadow set of more than ``salem_rows`` rows is first cut to a seeded sample of
    ``salem_rows`` rows with the same share of members (drawn from the same
    generator); ``salem_rows=None`` trains on every row, as the paper did.

    Score (``salem_score``): ``"logit"``, the attack model's logit (higher = member;
    the sigmoid is monotone, so ROC/AUROC are those of the sigmoid without its
    saturation ties), or ``"sigmoid"``, its probability as the paper scored it.
    Decision: member iff sigmoid >= 0.5, i.e. ``score >= operating_score_``
    (0 for the logit, 0.5 for the sigmoid). ``score_precision="float32"`` takes the
    top-k input scores from the paper's float32 torch softmax (saturated samples
    see exactly ``[1, ...]``) and scores with float32 torch's sigmoid of the logit
    rounded to float32 (exactly 1.0 from logits of about 16.6); the attack model
    itself still runs in float64.

    Learned: ``params_`` (flat float64 weights), ``loss_history_`` (per epoch),
    ``n_epochs_``, ``n_fit_rows_`` (rows trained on), ``operating_score_``.
    """

    name = "salem"

    def __init__(
        self,
        *,
        top_k: int = 3,
        seed: int = 42,
        hidden: int = 64,
        lr: float = 0.01,
        batch_size: int = 16,
        patience: int = 15,
        min_delta: float = 5e-4,
        max_epochs: int = 500,
        salem_score: str = "logit",
        score_precision: str = "float64",
        salem_rows: int | None = FIT_ROWS,
    ) -> None:
        self.top_k = top_k
        self.seed = seed
        self.hidden = hidden
        self.lr = lr
        self.batch_size = batch_size
        self.patience = patience
        self.min_delta = min_delta
        self.max_epochs = max_epochs
        self.salem_score = salem_score
        self.score_precision = score_precision
        self.salem_rows = salem_rows

    def _fit(self, sig: SetSignals, is_member: np.ndarray) -> None:
        check_settings(self, "top_k")
        if self.salem_score not in OUTPUTS:
            raise ValueError(f"salem_score must be 'logit' or 'sigmoid', got {self.salem_score!r}")
        rng = np.random.default_rng(self.seed)
        rows = fit_rows(is_member, self.salem_rows, rng, "salem_rows")
        if rows is not None:
            sig, is_member = sig.rows(rows), is_member[rows]
        self.n_fit_rows_ = len(sig)
        features = sig.top_k(int(self.top_k), self.score_precision)  # (N, k)
        self.params_, self.loss_history_ = train_settings_mlp(
            self, features, is_member.astype(np.float64), rng
        )
        self.n_epochs_ = len(self.loss_history_)
        if self.n_epochs_ == self.max_epochs:
            logger.warning("salem: stopped at max_epochs=%d before converging", self.max_epochs)
        logger.debug("salem: %d epochs, final loss %.4f", self.n_epochs_, self.loss_history_[-1])
        self.operating_score_ = 0.0 if self.salem_score == "logit" else 0.5

    def _score(self, sig: SetSignals) -> np.ndarray:
        if int(self.top_k) > sig.n_classes:
            raise ValueError(f"top_k={self.top_k} exceeds the {sig.n_classes} classes")
        features = sig.top_k(int(self.top_k), self.score_precision)
        out = signals.at_precision(
            mlp_logits(self.params_, features, hidden=int(self.hidden)), self.score_precision
        )
        if self.salem_score == "sigmoid":
            # float32 torch's sigmoid saturates at 1.0 where float64's rounded would not yet
            out = float32.sigmoid(out) if self.score_precision == "float32" else expit(out)
        return out
