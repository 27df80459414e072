"""Temperature scaling (Guo et al. 2017) on cached logits.

The paper's tables use a fixed ``T = 10``; :func:`fit_temperature` is the
standard alternative that picks ``T`` by minimising the NLL on held-out data.
:class:`TemperatureScaling` wraps both as a fit/transform object, shaped like
:class:`~mistrust.calibration.laplace.LastLayerLaplace`.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["TemperatureScaling", "fit_temperature", "scale_logits"]

logger = logging.getLogger(__name__)

# log T is clamped to this range: separable data would otherwise drive T -> 0.
_LOG_T_MIN, _LOG_T_MAX = math.log(1e-3), math.log(1e3)


def scale_logits(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Divide logits by a temperature.

    Args:
        logits: ``(N, C)``.
        temperature: ``T > 0``; ``T > 1`` softens, ``T < 1`` sharpens the softmax.

    Returns:
        ``(N, C)`` float32 ``logits / T``.
    """
    if not (isinstance(temperature, (int, float, np.floating)) and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number, got {temperature!r}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, C), got shape {logits.shape}")
    return (logits.astype(np.float64) / float(temperature)).astype(np.float32)


def fit_temperature(logits: np.ndarray, labels: np.ndarray, *, max_iter: int = 100) -> float:
    """Fit ``T`` minimising the NLL of ``softmax(logits / T)`` with LBFGS over ``log T``.

    Use held-out data (e.g. the model's test split), never its training data.

    Args:
        logits: ``(N, C)`` finite.
        labels: ``(N,)`` integer classes in ``[0, C)``.
        max_iter: LBFGS iteration budget.

    Returns:
        The fitted temperature (a python float, > 0).
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] < 2:
        raise ValueError(f"logits must be (N, C) with N >= 1, C >= 2, got {logits.shape}")
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"labels must be ({logits.shape[0]},) to match logits, got {labels.shape}")
    if not np.isfinite(logits).all():
        raise ValueError("logits contain NaN or infinite values")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(
            f"labels must lie in [0, {logits.shape[1]}), got {labels.min()}..{labels.max()}"
        )
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")

    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.clamp(_LOG_T_MIN, _LOG_T_MAX).exp(), y)
        loss.backward()
        return loss

    with torch.enable_grad():
        nll_before = float(F.cross_entropy(z, y))
        opt.step(closure)
    temperature = float(log_t.detach().clamp(_LOG_T_MIN, _LOG_T_MAX).exp())
    if not math.isfinite(temperature):
        raise RuntimeError("temperature fit diverged")
    if not _LOG_T_MIN < math.log(temperature) < _LOG_T_MAX:
        logger.warning("fitted temperature %.3g hit the search bound", temperature)
    nll_after = float(F.cross_entropy(z / temperature, y))
    if nll_after > nll_before:  # never return something worse than the identity
        temperature = 1.0
        nll_after = nll_before
    logger.debug("fitted temperature T=%.4g (NLL %.4f -> %.4f)", temperature, nll_before, nll_after)
    return temperature


class TemperatureScaling:
    """Temperature scaling as a fit/transform object.

    ``__init__`` only stores settings; :meth:`fit` sets ``temperature_``.

    Args:
        temperature: a fixed ``T > 0`` (the paper's tables: 10), kept by :meth:`fit`
            without looking at data; ``None``: :meth:`fit` picks ``T`` by NLL
            (:func:`fit_temperature`) on held-out logits and labels.
        max_iter: LBFGS iteration budget of the NLL fit.
    """

    def __init__(self, temperature: float | None = None, *, max_iter: int = 100) -> None:
        self.temperature = temperature
        self.max_iter = max_iter

    def fit(
        self, logits: np.ndarray | None = None, labels: np.ndarray | None = None
    ) -> TemperatureScaling:
        """Learn ``temperature_`` from held-out ``logits (N, C)`` and ``labels (N,)``, or
        take the fixed temperature (then both may be omitted). Returns ``self``."""
        if self.temperature is not None:
            scale_logits(np.zeros((1, 2)), self.temperature)  # the same check as transform's
            self.temperature_ = float(self.temperature)
            return self
        if logits is None or labels is None:
            raise ValueError("fitting a temperature needs held-out logits and labels")
        self.temperature_ = fit_temperature(logits, labels, max_iter=self.max_iter)
        return self

    def transform(self, logits: np.ndarray) -> np.ndarray:
        """``(N, C)`` float32 ``logits / temperature_``."""
        if not hasattr(self, "temperature_"):
            raise RuntimeError("TemperatureScaling is not fitted; call fit() first")
        return scale_logits(logits, self.temperature_)
