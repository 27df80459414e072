"""Last-layer Laplace in the paper's construction, on cached penultimate features.

The paper calibrated with Kristiadi et al.'s LLLA code (``calibration/llla.py``
of its repository, BackPACK's ``KFAC`` extension underneath). For a linear head
``f = W phi + b`` (``W: (C, D)``) that construction is:

* **Curvature**: K-FAC of a Monte-Carlo Fisher. Per batch of ``batch_size``
  training features (in a seeded random order), one label is sampled from the model's own predictive,
  ``y~ ~ Cat(softmax(f))``, and with ``g = softmax(f) - onehot(y~)`` the factors
  are ``G = mean_n g g^T`` ``(C, C)`` and ``A = mean_n phi phi^T`` ``(D, D)``.
  Batches are combined by the running average ``F <- rho F + (1 - rho) F_i``,
  ``rho = min(1 - 1 / (i + 1), 0.95)`` (the mean of the first 20 batches, then an
  exponential average), and scaled by the training set size ``N``:
  ``U = sqrt(N) G``, ``V = sqrt(N) A``, bias ``B = N G``.
* **Prior** of precision ``tau = 1 / variance``, added *per factor*:
  ``W`` precision ``(U + sqrt(tau) I) (x) (V + sqrt(tau) I)``, bias precision
  ``B + tau I`` (weights and bias independent).
* **Predictive**: logits ``N(W phi + b, (phi^T (V + sqrt(tau) I)^-1 phi)
  (U + sqrt(tau) I)^-1 + (B + tau I)^-1)``, softmax averaged over Monte-Carlo
  samples (100 for predictions).
* **Prior variance** on a log grid (the paper: ``logspace(0, 3, 100)``) minimising
  ``NLL(val) + lambda * mean(-log p(ood))`` with 10 samples per evaluation, the
  log taken of ``p + 1e-8``; lambda = 0.25, the validation set the attack
  non-members, the OOD set uniform noise.

Differences from the paper's run, all numerical: float64 instead of float32
(the covariance is badly conditioned under a weak prior), a seeded generator
instead of the global RNG, and sampling through the eigenvectors of ``G``
instead of a Cholesky factor (``U`` and ``B`` are both multiples of ``G``, so
one eigendecomposition diagonalises every logit covariance: same distribution,
no per-sample factorisation).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["KronFactors", "PaperLaplace", "mc_fisher_factors"]

logger = logging.getLogger(__name__)

_DTYPE = torch.float64
_LOG_EPS = 1e-8  # the paper's objective takes log(p + 1e-8)
_MIN_PROB = 1e-12  # predictions are clamped here before the log, as LastLayerLaplace


@dataclass(frozen=True)
class KronFactors:
    """Running-average K-FAC factors of one linear layer, before the ``N`` scaling.

    out: ``(C, C)`` mean of ``g g^T``; inp: ``(D, D)`` mean of ``phi phi^T``;
    n: the number of training samples ``N``.
    """

    out: torch.Tensor
    inp: torch.Tensor
    n: int


def mc_fisher_factors(
    weight: torch.Tensor,
    bias: torch.Tensor,
    feats: torch.Tensor,
    *,
    batch_size: int = 128,
    generator: torch.Generator,
) -> KronFactors:
    """K-FAC factors of the Monte-Carlo Fisher of ``f = feats @ weight.T + bias``.

    Args:
        weight: ``(C, D)``; bias: ``(C,)``; feats: ``(N, D)`` training features.
        batch_size: rows per batch of the running average (the paper: twice the
            training batch size, 128).
        generator: draws the sampled labels, one per row.

    Returns:
        The running averages of ``mean g g^T`` and ``mean phi phi^T`` over batches.
    """
    out = inp = None
    for i, phi in enumerate(feats.split(batch_size)):
        probs = torch.softmax(phi @ weight.T + bias, dim=1)
        sampled = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        g = probs - torch.nn.functional.one_hot(sampled, probs.shape[1]).to(probs.dtype)
        g_out, g_inp = g.T @ g / len(phi), phi.T @ phi / len(phi)
        rho = min(1.0 - 1.0 / (i + 1), 0.95)
        out = g_out if out is None else rho * out + (1.0 - rho) * g_out
        inp = g_inp if inp is None else rho * inp + (1.0 - rho) * g_inp
    if out is None or inp is None:
        raise ValueError("mc_fisher_factors needs at least one training feature")
    return KronFactors(out, inp, len(feats))


class PaperLaplace:
    """The paper's K-FAC last-layer Laplace of a linear head (see the module docstring).

    ``__init__`` stores settings; :meth:`fit` learns ``factors_``, ``prior_variance_``,
    ``prior_precision_`` and ``grid_`` (searched variances and objective values).

    Args:
        head: ``nn.Linear(D, C)`` (MAP weights); copied into float64, never modified.
        grid: prior variances to search (the paper: ``np.logspace(0, 3, 100)``).
        ood_weight: lambda of the OOD term (0.25).
        search_samples: Monte-Carlo samples per objective evaluation (10).
        n_samples: Monte-Carlo samples of predictions (100).
        batch_size: rows per batch of the K-FAC running average (128).
        seed: seeds the sampled labels, the search and the predictions.
        device: where the computation runs.
    """

    def __init__(
        self,
        head: torch.nn.Linear,
        *,
        grid: np.ndarray | list[float],
        ood_weight: float = 0.25,
        search_samples: int = 10,
        n_samples: int = 100,
        batch_size: int = 128,
        seed: int = 42,
        device: str | torch.device = "cpu",
    ) -> None:
        self.head = head
        self.grid = grid
        self.ood_weight = ood_weight
        self.search_samples = search_samples
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.seed = seed
        self.device = device

    # ------------------------------------------------------------------ inputs
    def _feats(self, feats: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
        t = torch.as_tensor(feats).detach().to(device=self.device, dtype=_DTYPE)
        d = self.head.in_features
        if t.ndim != 2 or t.shape[1] != d or len(t) == 0:
            raise ValueError(f"{name} must be (N, {d}) with N >= 1, got {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return t

    def _labels(self, labels: np.ndarray | torch.Tensor, n: int) -> torch.Tensor:
        t = torch.as_tensor(labels).to(self.device)
        c = self.head.out_features
        if t.shape != (n,) or t.dtype.is_floating_point or t.dtype == torch.bool:
            raise ValueError(f"val_labels must be ({n},) integers, got {tuple(t.shape)} {t.dtype}")
        if len(t) and (t.min() < 0 or t.max() >= c):
            raise ValueError(f"val_labels must lie in [0, {c})")
        return t.long()

    def _check_settings(self) -> np.ndarray:
        grid = np.asarray(self.grid, dtype=np.float64)
        if grid.ndim != 1 or len(grid) == 0 or not (np.isfinite(grid) & (grid > 0)).all():
            raise ValueError(f"grid must be positive finite variances, got {self.grid!r}")
        for name in ("search_samples", "n_samples", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (math.isfinite(self.ood_weight) and self.ood_weight >= 0):
            raise ValueError(f"ood_weight must be a finite number >= 0, got {self.ood_weight!r}")
        return grid

    # --------------------------------------------------------------- posterior
    def fit(
        self,
        train_feats: np.ndarray | torch.Tensor,
        *,
        val_feats: np.ndarray | torch.Tensor,
        val_labels: np.ndarray | torch.Tensor,
        ood_feats: np.ndarray | torch.Tensor | None = None,
    ) -> PaperLaplace:
        """Curvature from ``train_feats (N, D)``; prior variance by the grid search.

        The Fisher samples its own labels, so training labels are not needed.
        ``val_feats (M, D)`` / ``val_labels (M,)``: the validation set (the paper:
        the attack non-members); ``ood_feats (K, D)``: noise, needed when
        ``ood_weight > 0``.
        """
        grid = self._check_settings()
        x = self._feats(train_feats, "train_feats")
        xv = self._feats(val_feats, "val_feats")
        yv = self._labels(val_labels, len(xv))
        xo = None
        if self.ood_weight > 0:
            if ood_feats is None:
                raise ValueError("ood_feats are needed when ood_weight > 0")
            xo = self._feats(ood_feats, "ood_feats")
        self.weight_ = self.head.weight.detach().to(device=self.device, dtype=_DTYPE)
        self.bias_ = self.head.bias.detach().to(device=self.device, dtype=_DTYPE)
        gen = torch.Generator(device=self.device).manual_seed(self.seed)
        # Shuffled first: the running average weights the last ~20 batches most, and cached
        # features come in dataset order (image folders: sorted by class); the paper's
        # loaders met the training images in the random order of its splits.
        order = torch.randperm(len(x), generator=gen, device=self.device)
        self.factors_ = mc_fisher_factors(
            self.weight_, self.bias_, x[order], batch_size=self.batch_size, generator=gen
        )
        # one eigendecomposition each: every prior on the grid reuses them
        self._l_out, self._q_out = torch.linalg.eigh(self.factors_.out)
        self._l_inp, self._q_inp = torch.linalg.eigh(self.factors_.inp)
        objective = np.empty(len(grid))
        val = self._project(xv)
        ood = None if xo is None else self._project(xo)
        for i, var in enumerate(grid):
            p_val = self._probs(val, float(var), self.search_samples, gen)
            obj = -float(torch.log(p_val.gather(1, yv[:, None]) + _LOG_EPS).mean())
            if ood is not None:
                p_ood = self._probs(ood, float(var), self.search_samples, gen)
                obj -= self.ood_weight * float(torch.log(p_ood + _LOG_EPS).mean())
            objective[i] = obj
            logger.debug("paper LLLA grid: prior variance %.4g -> objective %.5f", var, obj)
        self.prior_variance_ = float(grid[int(np.argmin(objective))])
        self.prior_precision_ = 1.0 / self.prior_variance_
        self.grid_: dict[str, np.ndarray] = {"variance": grid, "objective": objective}
        logger.info("paper LLLA: prior variance %.4g", self.prior_variance_)
        return self

    def _project(self, phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prior-independent parts: logit mean ``(B, C)`` and ``(phi^T Q_V)^2`` ``(B, D)``."""
        return phi @ self.weight_.T + self.bias_, (phi @ self._q_inp).square()

    def covariance(self, phi: torch.Tensor, prior_variance: float) -> torch.Tensor:
        """Logit covariance ``(B, C, C)`` for features ``phi (B, D)`` (float64, fitted)."""
        _, psi2 = self._project(phi.to(device=self.device, dtype=_DTYPE))
        q, d = self._q_out, self._variances(psi2, prior_variance)
        return (q * d[:, None, :]) @ q.T

    def _variances(self, psi2: torch.Tensor, prior_variance: float) -> torch.Tensor:
        """Eigenvalues ``(B, C)`` of each row's logit covariance, in the eigenbasis of ``G``.

        ``phi^T (sqrt(N) A + sqrt(tau) I)^-1 phi`` times ``(sqrt(N) G + sqrt(tau) I)^-1``
        plus the bias part ``(N G + tau I)^-1``.
        """
        tau, n = 1.0 / prior_variance, self.factors_.n
        rn, rt = math.sqrt(n), math.sqrt(tau)
        quad = psi2 @ (1.0 / (rn * self._l_inp + rt))  # (B,)
        return quad[:, None] / (rn * self._l_out + rt) + 1.0 / (n * self._l_out + tau)

    def _probs(
        self,
        parts: tuple[torch.Tensor, torch.Tensor],
        prior_variance: float,
        n_samples: int,
        gen: torch.Generator,
        chunk: int = 1024,
    ) -> torch.Tensor:
        """Monte-Carlo predictive ``(B, C)``: mean softmax over Gaussian logit samples."""
        mean, psi2 = parts
        out = []
        for m, p in zip(mean.split(chunk), psi2.split(chunk), strict=True):
            sd = self._variances(p, prior_variance).clamp_min(0).sqrt()  # (b, C)
            z = torch.randn((n_samples, *m.shape), generator=gen, device=m.device, dtype=_DTYPE)
            f = m + (z * sd) @ self._q_out.T  # (S, b, C)
            out.append(torch.softmax(f, dim=-1).mean(dim=0))
        return torch.cat(out)

    def predict_logprobs(
        self, feats: np.ndarray | torch.Tensor, *, n_samples: int | None = None
    ) -> np.ndarray:
        """``(N, C)`` float32 log of the predictive (``n_samples`` draws, seeded by ``seed``).

        Probabilities are clamped at 1e-12 before the log; usable wherever logits are.
        """
        if not hasattr(self, "prior_variance_"):
            raise RuntimeError("PaperLaplace is not fitted; call fit() first")
        n = self.n_samples if n_samples is None else n_samples
        gen = torch.Generator(device=self.device).manual_seed(self.seed)
        probs = self._probs(
            self._project(self._feats(feats, "feats")), self.prior_variance_, n, gen
        )
        return probs.clamp_min(_MIN_PROB).log().cpu().numpy().astype(np.float32)
