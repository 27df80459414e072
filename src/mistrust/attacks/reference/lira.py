"""LiRA, the likelihood-ratio attack of Carlini et al. (S&P 2022): pure functions on arrays,
and the attack object :class:`LiRA`, which registers the family ``lira``.

Inputs are logit-scaled confidences ``phi = log p_y - log sum_{y' != y} p_y'``
(:func:`mistrust.attacks.signals.logit_confidence`) of the TARGET model
(``target_phi``) and of ``M`` REFERENCE models (``ref_phi``), with a mask
saying which reference models trained on each example.

* online: fit one Gaussian to the IN values and one to the OUT values of each
  example; ``score = log N(phi; mu_in, s_in^2) - log N(phi; mu_out, s_out^2)``
  (the log-likelihood ratio; ``> 0`` means "member" is the likelier hypothesis).
* offline: one-sided test against the OUT Gaussian;
  ``score = -log P(Z > (phi - mu_out) / s_out)``, the negative log upper-tail
  p-value (``>= 0``; computed with ``log_ndtr``, so no ``log(0)`` in the tail).

Higher score = more likely member in both. Gaussian fits are maximum
likelihood: ``mu`` the mean, ``s^2`` the mean squared deviation (Carlini's
code uses the median and ``np.std``; the mean is the Gaussian MLE).
``fixed_variance=True`` replaces each example's variance by one pooled
within-example variance (IN and OUT separately), which is what makes LiRA
work with few reference models.

Missing statistics (fallbacks, so any mask gives a finite score):

* an example with fewer than 2 values on a side uses the pooled variance;
* online, an example with no IN (no OUT) value gets ``mu_in = mu_out + shift``
  (``mu_out = mu_in - shift``), ``shift`` the median IN-OUT gap of the examples
  that have both (the mean IN minus mean OUT value if none has);
* offline, an example with no OUT value gets the mean of all OUT values.

Pooled statistics (the pooled variances, ``shift``, the mean of all OUT values) are
:class:`Pooled`, made by :func:`pool` from a set of examples. Pass ``pooled=`` to score
with statistics estimated once on the reference population
(:class:`LiRA` does): then an example's score depends on
that example alone, not on the other rows scored with it. Without it they are pooled
over the rows being scored. :func:`leave_one_out` is the attack object's fit: each
reference model scored against the others, their statistics pooled over the population.

Several queries per example (e.g. the image and its horizontal flip): pass
``target_phi (N, Q)`` and ``ref_phi (N, M, Q)``; each query gets its own
Gaussians and the score is the mean of the per-query scores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from scipy.special import log_ndtr

from mistrust.attacks import signals
from mistrust.attacks.reference.base import ReferenceAttack
from mistrust.attacks.reference.blocks import row_blocks
from mistrust.attacks.reference.registry import register_family

__all__ = [
    "LiRA",
    "Pooled",
    "fit_gaussian",
    "leave_one_out",
    "lira_offline",
    "lira_online",
    "pool",
    "pooled_variance",
    "row_blocks",
]

#: variance floor: keeps the log-density finite when all reference values coincide
VAR_FLOOR = 1e-8


def _check(
    target_phi: np.ndarray, ref_phi: np.ndarray, mask: np.ndarray, mask_name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate; return target ``(N, Q)``, ref ``(N, M, Q)`` float64 and mask ``(N, M)`` bool."""
    t = np.asarray(target_phi, dtype=np.float64)
    r = np.asarray(ref_phi, dtype=np.float64)
    m = np.asarray(mask)
    if t.ndim not in (1, 2):
        raise ValueError(f"target_phi must be (N,) or (N, Q), got shape {t.shape}")
    if t.ndim == 1:
        t, r = t[:, None], (r[..., None] if r.ndim == 2 else r)
    if r.ndim != 3 or r.shape[0] != t.shape[0] or r.shape[2] != t.shape[1]:
        raise ValueError(
            f"ref_phi must be (N, M) or (N, M, Q) matching target_phi {t.shape}, "
            f"got shape {np.shape(ref_phi)}"
        )
    if m.shape != r.shape[:2]:
        raise ValueError(f"{mask_name} must have shape {r.shape[:2]} (N, M), got {m.shape}")
    if m.dtype != bool:
        raise ValueError(f"{mask_name} must be boolean, got dtype {m.dtype}")
    if not (np.isfinite(t).all() and np.isfinite(r).all()):
        raise ValueError("target_phi and ref_phi must be finite")
    return t, r, m


def _moments(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per example: ``mean`` (``nan`` without values), summed squared deviation, count."""
    count = mask.sum(axis=1)
    total = np.where(mask, values, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore"):  # 0 / 0 where no value is selected
        mean = total / count
    dev2 = np.where(mask, (values - np.nan_to_num(mean)[:, None]) ** 2, 0.0).sum(axis=1)
    return mean, dev2, count


def pooled_variance(values: np.ndarray, mask: np.ndarray) -> float:
    """The within-example variance pooled over the examples with >= 2 masked values of
    ``values (N, M)``; the variance of all masked values if none has two; 1 if none is masked."""
    _, dev2, count = _moments(values, mask)
    return _pooled_from(dev2, count, lambda: values[mask])


def _pooled_from(dev2: np.ndarray, count: np.ndarray, masked: Callable[[], np.ndarray]) -> float:
    """:func:`pooled_variance` from the per-example moments; ``masked()`` gives the masked
    values, needed only where no example has two of them."""
    two = count >= 2
    if two.any():
        return float(dev2[two].sum() / count[two].sum())
    if count.any():  # no example has two values: the spread across examples is all there is
        return float(masked().var())
    return 1.0


def fit_gaussian(
    values: np.ndarray,
    mask: np.ndarray,
    *,
    fixed_variance: bool = False,
    pooled_var: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-example Gaussian of the masked values.

    Args:
        values: ``(N, M)`` reference values.
        mask: ``(N, M)`` bool, which values belong to the fit.
        fixed_variance: one pooled within-example variance for every example.
        pooled_var: the pooled variance to use (e.g. estimated on the reference
            population); None: :func:`pooled_variance` of ``values`` and ``mask``.

    Returns:
        ``mean (N,)`` (``nan`` where no value is selected), ``var (N,)`` (per
        example where it has >= 2 values, else the pooled variance; floored at
        ``VAR_FLOOR``) and ``count (N,)``.
    """
    mean, dev2, count = _moments(values, mask)
    if pooled_var is None:
        pooled_var = _pooled_from(dev2, count, lambda: values[mask])
    return _gaussian(mean, dev2, count, pooled_var, fixed_variance)


def _gaussian(
    mean: np.ndarray, dev2: np.ndarray, count: np.ndarray, pooled_var: float, fixed: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`fit_gaussian` from the per-example moments of :func:`_moments`."""
    var = np.full(len(mean), float(pooled_var))
    if not fixed:
        two = count >= 2
        var[two] = dev2[two] / count[two]
    return mean, np.maximum(var, VAR_FLOOR), count


class Pooled(NamedTuple):
    """LiRA's statistics pooled over examples, one value per query ``(Q,)`` float64.

    ``var_in`` / ``var_out``: :func:`pooled_variance` of the IN / OUT values; ``shift``:
    the median IN - OUT gap of the per-example means where an example has both (the mean
    IN minus the mean OUT value if none has; ``nan`` without IN or OUT values);
    ``out_mean``: the mean of all OUT values (``nan`` without any).
    """

    var_in: np.ndarray
    var_out: np.ndarray
    shift: np.ndarray
    out_mean: np.ndarray


def pool(ref_phi: np.ndarray, in_mask: np.ndarray) -> Pooled:
    """:class:`Pooled` of reference values ``(N, M)`` or ``(N, M, Q)`` with IN mask ``(N, M)``.

    Called on the reference population by the attack's ``fit``, so that every set is
    scored with the same statistics.
    """
    r = np.asarray(ref_phi, dtype=np.float64)
    m = np.asarray(in_mask)
    if r.ndim == 2:
        r = r[..., None]
    if r.ndim != 3 or m.shape != r.shape[:2] or m.dtype != bool:
        raise ValueError(
            f"pool needs ref_phi (N, M[, Q]) and a boolean in_mask (N, M), "
            f"got shapes {np.shape(ref_phi)} and {m.shape} ({m.dtype})"
        )
    if not np.isfinite(r).all():
        raise ValueError("ref_phi must be finite")
    stats = [_pool_q(r, q, slice(None), m)[0] for q in range(r.shape[2])]
    return Pooled(*(np.array(v, dtype=np.float64) for v in zip(*stats, strict=True)))


def _pool_q(
    r: np.ndarray, q: int, cols: np.ndarray | slice, in_mask: np.ndarray, *, out_mean: bool = True
) -> tuple[tuple[float, float, float, float], _Moments, _Moments]:
    """Query ``q``'s :class:`Pooled` values over the columns ``cols`` of ``r (N, M, Q)`` and
    ``in_mask (N, M)``, and the per-example IN and OUT moments they were pooled from.
    ``out_mean=False`` leaves the mean of all OUT values ``nan`` (it costs a gather of them).
    """
    width = len(np.arange(r.shape[1])[cols])
    mom_in, mom_out = _block_moments(
        len(r), width, lambda i, j: (r[i:j, cols, q], in_mask[i:j, cols])
    )
    (mu_in, dev_in, n_in), (mu_out, dev_out, n_out) = mom_in, mom_out

    def masked(inside: bool) -> np.ndarray:  # only for the fallbacks below
        m = in_mask[:, cols]
        return r[:, cols, q][m if inside else ~m]

    var_in = _pooled_from(dev_in, n_in, lambda: masked(True))
    var_out = _pooled_from(dev_out, n_out, lambda: masked(False))
    both = (n_in > 0) & (n_out > 0)
    if both.any():
        shift = float(np.median(mu_in[both] - mu_out[both]))
    elif n_in.any() and n_out.any():
        shift = float(masked(True).mean() - masked(False).mean())
    else:
        shift = np.nan
    mean_out = float(masked(False).mean()) if out_mean and n_out.any() else np.nan
    return (var_in, var_out, shift, mean_out), mom_in, mom_out


class _Moments(NamedTuple):
    """Per example, of one side (IN or OUT): what :func:`_moments` returns."""

    mean: np.ndarray
    dev2: np.ndarray
    count: np.ndarray


def _block_moments(
    n: int, width: int, part: Callable[[int, int], tuple[np.ndarray, np.ndarray]]
) -> tuple[_Moments, _Moments]:
    """:func:`_moments` of the IN and of the OUT values of ``n`` examples, ``width`` values
    each, in blocks of about ``BLOCK_VALUES`` values: ``part(i, j)`` gives the values and the
    IN mask of examples ``i:j``. Each example's sums run over its own row, so the blocks give
    the bits of one pass without its ``(n, width)`` temporaries, provided every block has the
    memory layout the one pass would have had (NumPy sums a row-major row pairwise, a
    column-major one value after value)."""
    sides = [_Moments(np.empty(n), np.empty(n), np.empty(n, np.int64)) for _ in range(2)]
    for i, j in row_blocks(n, width):
        values, m = part(i, j)
        for side, mask in zip(sides, (m, ~m), strict=True):
            for out, moment in zip(side, _moments(values, mask), strict=True):
                out[i:j] = moment
    return sides[0], sides[1]


def _check_pooled(pooled: Pooled, n_queries: int) -> Pooled:
    for name in ("var_in", "var_out", "shift", "out_mean"):
        if np.shape(getattr(pooled, name)) != (n_queries,):
            raise ValueError(
                f"pooled.{name} must have one value per query ({n_queries},), "
                f"got shape {np.shape(getattr(pooled, name))}"
            )
    return pooled


def _log_normal(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var)


def lira_online(
    target_phi: np.ndarray,
    ref_phi: np.ndarray,
    in_mask: np.ndarray,
    *,
    fixed_variance: bool = False,
    pooled: Pooled | None = None,
) -> np.ndarray:
    """Online LiRA score ``(N,)`` float64, higher = member (``> 0``: likelihood ratio > 1).

    Args:
        target_phi: ``(N,)`` or ``(N, Q)`` target confidences.
        ref_phi: ``(N, M)`` or ``(N, M, Q)`` reference confidences.
        in_mask: ``(N, M)`` bool, True where reference model ``m`` trained on example ``n``
            (IN); the rest are OUT.
        fixed_variance: pooled variances instead of per-example ones.
        pooled: the pooled statistics (:func:`pool` of the reference population); None:
            pooled over these rows.
    """
    t, r, m = _check(target_phi, ref_phi, in_mask, "in_mask")
    p = pool(r, m) if pooled is None else _check_pooled(pooled, t.shape[1])
    score = np.zeros(len(t))
    for q in range(t.shape[1]):
        g_in = fit_gaussian(r[:, :, q], m, fixed_variance=fixed_variance, pooled_var=p.var_in[q])
        g_out = fit_gaussian(r[:, :, q], ~m, fixed_variance=fixed_variance, pooled_var=p.var_out[q])
        score += _online_q(t[:, q], g_in, g_out, p.shift[q])
    return score / t.shape[1]


def _online_q(t: np.ndarray, g_in: tuple, g_out: tuple, shift: float) -> np.ndarray:
    """One query's online score from the IN and OUT Gaussians of :func:`fit_gaussian`."""
    (mu_in, var_in, n_in), (mu_out, var_out, n_out) = g_in, g_out
    if np.isnan(shift) and not ((n_in > 0) & (n_out > 0)).all():
        raise ValueError(
            "online LiRA needs IN and OUT reference values; in_mask is all True or all False"
        )
    mu_in = np.where(n_in > 0, mu_in, mu_out + shift)
    mu_out = np.where(n_out > 0, mu_out, mu_in - shift)
    return _log_normal(t, mu_in, var_in) - _log_normal(t, mu_out, var_out)


def lira_offline(
    target_phi: np.ndarray,
    ref_phi: np.ndarray,
    out_mask: np.ndarray,
    *,
    fixed_variance: bool = False,
    pooled: Pooled | None = None,
) -> np.ndarray:
    """Offline LiRA score ``(N,)`` float64: ``-log`` of the upper-tail p-value under OUT.

    Args:
        target_phi: ``(N,)`` or ``(N, Q)`` target confidences.
        ref_phi: ``(N, M)`` or ``(N, M, Q)`` reference confidences.
        out_mask: ``(N, M)`` bool, True where reference model ``m`` did NOT train on
            example ``n`` (only those values are used).
        fixed_variance: one pooled OUT variance instead of per-example ones.
        pooled: the pooled statistics (:func:`pool` of the reference population; only
            ``var_out`` and ``out_mean`` are used); None: pooled over these rows.
    """
    t, r, m = _check(target_phi, ref_phi, out_mask, "out_mask")
    if pooled is None:
        if not m.any():
            raise ValueError("offline LiRA needs OUT reference values; out_mask is all False")
        var_out = [pooled_variance(r[:, :, q], m) for q in range(t.shape[1])]
        out_mean = [float(r[:, :, q][m].mean()) for q in range(t.shape[1])]
    else:
        _check_pooled(pooled, t.shape[1])
        var_out, out_mean = list(pooled.var_out), list(pooled.out_mean)
    score = np.zeros(len(t))
    for q in range(t.shape[1]):
        g = fit_gaussian(r[:, :, q], m, fixed_variance=fixed_variance, pooled_var=var_out[q])
        score -= _offline_q(t[:, q], g, out_mean[q])
    return score / t.shape[1]


def _offline_q(t: np.ndarray, g_out: tuple, out_mean: float) -> np.ndarray:
    """One query's ``log`` upper-tail p-value under the OUT Gaussian of :func:`fit_gaussian`."""
    mu, var, n = g_out
    if np.isnan(out_mean) and not (n > 0).all():
        raise ValueError("offline LiRA needs OUT reference values; out_mask is all False")
    mu = np.where(n > 0, mu, out_mean)
    return log_ndtr(-(t - mu) / np.sqrt(var))


def leave_one_out(
    ref_phi: np.ndarray,
    in_mask: np.ndarray,
    rows: np.ndarray,
    k: int,
    *,
    online: bool,
    fixed_variance: bool = False,
) -> np.ndarray:
    """Scores ``(len(rows),)`` of population rows ``rows`` with reference model ``k`` as the
    target, the other models as references and their :func:`pool` as the pooled statistics:
    the same bits as ``pool`` and :func:`lira_online` / :func:`lira_offline` on
    ``ref_phi[:, others]``, but each example's moments are computed once, in row blocks, for
    both the pooled statistics and the scores.

    Args:
        ref_phi: ``(P, M, Q)`` float64 reference confidences on the population.
        in_mask: ``(P, M)`` bool IN mask.
        rows: population rows to score.
        k: the reference model that plays the target.
        online: online or offline LiRA.
        fixed_variance: pooled variances instead of per-example ones.
    """
    others = np.delete(np.arange(in_mask.shape[1]), k)
    score = np.zeros(len(rows))
    for q in range(ref_phi.shape[2]):
        # pooled over the population as pool(ref_phi[:, others]) does: fancy indexing lays
        # the values and the mask out column-major, as it does each block here
        (var_in, var_out, shift, out_mean), _, _ = _pool_q(
            ref_phi, q, others, in_mask, out_mean=False
        )
        # scored as lira_online(ref_phi[rows][:, others], in_mask[:, others][rows]): its
        # mask is row-major, so are the sums of each example (pairwise, other bits)
        mom_in, mom_out = _block_moments(
            len(rows),
            len(others),
            lambda i, j, q=q: (
                ref_phi[rows[i:j]][:, others, q],
                np.ascontiguousarray(in_mask[rows[i:j]][:, others]),
            ),
        )
        t = ref_phi[rows, k, q]
        g_out = _gaussian(*mom_out, var_out, fixed_variance)
        if online:
            g_in = _gaussian(*mom_in, var_in, fixed_variance)
            score += _online_q(t, g_in, g_out, shift)
            continue
        # the mean of all OUT values, a gather of them all, serves only a row whose OUT model was k
        if (g_out[2] == 0).any() and (~in_mask[:, others]).any():
            out_mean = float(ref_phi[:, others, q][~in_mask[:, others]].mean())
        score -= _offline_q(t, g_out, out_mean)
    return score / ref_phi.shape[2]


@register_family
class LiRA(ReferenceAttack):
    """LiRA as an attack object (:mod:`mistrust.attacks.reference.base`): online compares the
    IN and OUT Gaussians of each example, offline the one-sided OUT tail.
    ``fixed_variance``: one pooled variance."""

    family = "lira"
    queries = True

    def __init__(self, *, online: bool, fixed_variance: bool = False) -> None:
        super().__init__(online=online)
        self.fixed_variance = fixed_variance

    @staticmethod
    def signal(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Logit-scaled confidence ``log p_y - log sum_{y' != y} p_y'`` ``(N,)``."""
        return signals.logit_confidence(logits, labels)

    def _pool(self, ref: np.ndarray, in_mask: np.ndarray, z: np.ndarray) -> Pooled:
        return pool(ref, in_mask)

    def _leave_one_out(
        self, ref: np.ndarray, in_mask: np.ndarray, rows: np.ndarray, z: np.ndarray, k: int
    ) -> np.ndarray:
        # the same bits as the base class's, each example's moments computed once per model
        r = np.asarray(ref, dtype=np.float64)
        r = r[..., None] if r.ndim == 2 else r
        fv = self.fixed_variance
        return leave_one_out(r, in_mask, rows, k, online=self.online, fixed_variance=fv)

    def _score(
        self, t_x: np.ndarray, ref_x: np.ndarray, in_x: np.ndarray, pooled: Pooled, t_z: Any
    ) -> np.ndarray:
        fv = self.fixed_variance
        if self.online:
            return lira_online(t_x, ref_x, in_x, fixed_variance=fv, pooled=pooled)
        return lira_offline(t_x, ref_x, ~in_x, fixed_variance=fv, pooled=pooled)
