"""RMIA, the relative membership inference attack of Zarifzadeh et al. (ICML 2024): pure math,
and the attack object :class:`RMIA`, which registers the family ``rmia``.

For a query ``x`` with label ``y`` and the target model ``theta``::

    ratio(x) = Pr(x | theta) / Pr(x),      Pr(x | theta) = p_theta(y | x)
    score(x) = fraction of population samples z with ratio(x) / ratio(z) > gamma

``Pr(x)`` is the mean of ``p_ref(y | x)`` over reference models: all of them
(online: about half trained on ``x``), or, offline, only the OUT models with
the paper's linear correction for the missing IN models
(``Pr(x | theta_in) ~ a * Pr(x)_OUT + (1 - a)``)::

    Pr(x) = ((1 + a) * Pr(x)_OUT + (1 - a)) / 2

(:func:`rmia_prior` with ``a``; ``a = 1`` trusts the OUT models alone.) The
same is done for every population sample ``z``. Higher score = more likely
member; the score lies in ``[0, 1]``.

Two equal implementations of the score:

* :func:`rmia_scores_dense` builds the ``(N, Z)`` comparison matrix (in row
  chunks): ``O(N Z)`` time, the paper's definition, the test oracle;
* :func:`rmia_scores` sorts the ``z`` ratios once and binary-searches each
  ``x``: ``O((N + Z) log Z)`` time and ``O(N + Z)`` memory. The search runs on
  the exact predicate ``fl(ratio_x / ratio_z) > gamma`` (monotone in
  ``ratio_z``), not on ``ratio_z < ratio_x / gamma``, which differs from the
  dense comparison in the last bit; so both agree exactly, ties included.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from mistrust.attacks import signals
from mistrust.attacks.reference.base import ReferenceAttack
from mistrust.attacks.reference.registry import register_family

__all__ = ["RMIA", "RmiaPooled", "rmia_prior", "rmia_ratio", "rmia_scores", "rmia_scores_dense"]

_TINY = np.finfo(np.float64).tiny


def rmia_prior(
    ref_probs: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    a: float | None = None,
    fallback: float | None = None,
) -> np.ndarray:
    """``Pr(x)`` ``(N,)`` float64 from reference probabilities ``p_ref(y | x)``.

    Args:
        ref_probs: ``(N, M)`` probability of each example's label under each reference model.
        mask: ``(N, M)`` bool, the models to average over (None: all). Offline, pass the
            OUT mask. A row with no selected model uses ``fallback``.
        a: offline correction ``((1 + a) * mean + (1 - a)) / 2``; None (online): the plain mean.
        fallback: the mean of a row with no selected model, e.g. the mean of all OUT values
            of the reference population (:class:`RMIA`
            passes it, so a row's prior does not depend on the rows scored with it); None:
            the mean of all selected values here.
    """
    p = np.asarray(ref_probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"ref_probs must be 2-D (N, M), got shape {p.shape}")
    if not (np.isfinite(p).all() and p.min(initial=0.0) >= 0.0 and p.max(initial=0.0) <= 1.0):
        raise ValueError("ref_probs must be probabilities in [0, 1]")
    m = np.ones(p.shape, bool) if mask is None else np.asarray(mask)
    if m.shape != p.shape or m.dtype != bool:
        raise ValueError(f"mask must be boolean of shape {p.shape}, got {m.dtype} {m.shape}")
    if fallback is None:
        if not m.any():
            raise ValueError("mask selects no reference model for any example")
        fallback = float(p[m].mean())
    elif not 0.0 <= fallback <= 1.0:
        raise ValueError(f"fallback must be a probability in [0, 1], got {fallback}")
    count = m.sum(axis=1)
    total = np.where(m, p, 0.0).sum(axis=1)
    mean = np.full(len(p), fallback)
    np.divide(total, count, out=mean, where=count > 0)
    if a is not None:
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"a must lie in [0, 1], got {a}")
        mean = ((1.0 + a) * mean + (1.0 - a)) / 2.0
    return mean


def rmia_ratio(target_prob: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """``Pr(x | theta) / Pr(x)`` ``(N,)``; both floored at the smallest positive float."""
    t = np.asarray(target_prob, dtype=np.float64)
    p = np.asarray(prior, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(
            f"target_prob and prior must be 1-D of equal length, got {t.shape}, {p.shape}"
        )
    return np.maximum(t, _TINY) / np.maximum(p, _TINY)


def _check(ratio_x: np.ndarray, ratio_z: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(ratio_x, dtype=np.float64)
    z = np.asarray(ratio_z, dtype=np.float64)
    if x.ndim != 1 or z.ndim != 1:
        raise ValueError(f"ratio_x and ratio_z must be 1-D, got shapes {x.shape} and {z.shape}")
    if len(z) == 0:
        raise ValueError("ratio_z is empty: RMIA needs population samples")
    for name, r in (("ratio_x", x), ("ratio_z", z)):
        if np.isnan(r).any() or r.min(initial=0.0) < 0:
            raise ValueError(f"{name} must be non-negative and not NaN")
    if not gamma > 0:
        raise ValueError(f"gamma must be positive, got {gamma}")
    return x, z


def rmia_scores_dense(
    ratio_x: np.ndarray, ratio_z: np.ndarray, *, gamma: float = 1.0, chunk: int = 1024
) -> np.ndarray:
    """``mean_z [ratio_x / ratio_z > gamma]`` ``(N,)`` via the ``(N, Z)`` matrix, ``chunk`` rows
    at a time (peak memory ``chunk * Z`` float64)."""
    x, z = _check(ratio_x, ratio_z, gamma)
    out = np.empty(len(x))
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(0, len(x), chunk):
            out[i : i + chunk] = (x[i : i + chunk, None] / z[None, :] > gamma).mean(axis=1)
    return out


def rmia_scores(ratio_x: np.ndarray, ratio_z: np.ndarray, *, gamma: float = 1.0) -> np.ndarray:
    """The same as :func:`rmia_scores_dense` in ``O(N + Z)`` memory (sort + binary search).

    ``fl(x / z) > gamma`` is non-increasing in ``z`` for ``x, z >= 0`` (IEEE division is
    monotone; ``x / 0`` is ``inf``, ``0 / 0`` NaN and never counted), so the ``z`` that count
    form a prefix of the sorted ratios; its length is found per ``x`` by a vectorised
    bisection on that predicate.
    """
    x, z = _check(ratio_x, ratio_z, gamma)
    zs = np.sort(z)
    lo = np.zeros(len(x), dtype=np.int64)  # invariant: pred(zs[:lo]) all True
    hi = np.full(len(x), len(zs), dtype=np.int64)  # invariant: pred(zs[hi:]) all False
    with np.errstate(divide="ignore", invalid="ignore"):
        while True:
            open_ = lo < hi
            if not open_.any():
                break
            idx = np.flatnonzero(open_)
            mid = (lo[idx] + hi[idx]) // 2
            yes = x[idx] / zs[mid] > gamma
            lo[idx[yes]] = mid[yes] + 1
            hi[idx[~yes]] = mid[~yes]
    return lo / len(zs)


class RmiaPooled(NamedTuple):
    """What RMIA keeps of the reference population: the reference signals on the ``z`` rows
    ``(Z, M)``, their IN mask ``(Z, M)`` and, offline, the prior of a row without OUT
    models, the mean of all OUT values (None online, which averages every model)."""

    ref_z: np.ndarray
    in_z: np.ndarray
    out_mean: float | None


@register_family
class RMIA(ReferenceAttack):
    """RMIA as an attack object (:mod:`mistrust.attacks.reference.base`): the fraction of
    population samples ``z`` whose likelihood ratio the query's beats by ``rmia_gamma``;
    offline corrects the OUT-only prior with ``rmia_a``. Both have the names of their keys
    in the config's ``reference`` section."""

    family = "rmia"
    needs_z = True

    def __init__(self, *, online: bool, rmia_a: float = 0.3, rmia_gamma: float = 1.0) -> None:
        super().__init__(online=online)
        self.rmia_a = rmia_a
        self.rmia_gamma = rmia_gamma

    @staticmethod
    def signal(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Probability of the label ``p(y | x)`` ``(N,)``."""
        return np.exp(-signals.loss(logits, labels))

    def _pool(self, ref: np.ndarray, in_mask: np.ndarray, z: np.ndarray) -> RmiaPooled:
        if self.online:
            return RmiaPooled(ref[z], in_mask[z], None)
        if in_mask.all():
            raise ValueError(
                f"{self.name} needs OUT reference values: every reference model trained on "
                "every population row"
            )
        return RmiaPooled(ref[z], in_mask[z], float(ref[~in_mask].mean()))

    def _for_target(
        self, pooled: RmiaPooled, t_z: Any
    ) -> tuple[RmiaPooled, Callable[[], np.ndarray]]:
        # the z rows' ratios, computed once per target and shared by its row blocks; at the
        # first block's call, after that block's prior (the order the inputs are checked in)
        return pooled, functools.cache(lambda: self._ratio_z(pooled, t_z))

    def _ratio_z(self, pooled: RmiaPooled, t_z: Any) -> np.ndarray:
        ref_z, in_z, out_mean = pooled
        if self.online:
            prior_z = rmia_prior(ref_z)
        else:
            prior_z = rmia_prior(ref_z, ~in_z, a=self.rmia_a, fallback=out_mean)
        return rmia_ratio(t_z, prior_z)

    def _score(
        self,
        t_x: np.ndarray,
        ref_x: np.ndarray,
        in_x: np.ndarray,
        pooled: RmiaPooled,
        ratio_z: Callable[[], np.ndarray],
    ) -> np.ndarray:
        if self.online:
            prior_x = rmia_prior(ref_x)
        else:
            prior_x = rmia_prior(ref_x, ~in_x, a=self.rmia_a, fallback=pooled.out_mean)
        return rmia_scores(rmia_ratio(t_x, prior_x), ratio_z(), gamma=self.rmia_gamma)
