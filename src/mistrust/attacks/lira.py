"""LiRA, the likelihood-ratio attack of Carlini et al. (S&P 2022): pure functions on arrays.

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

Several queries per example (e.g. the image and its horizontal flip): pass
``target_phi (N, Q)`` and ``ref_phi (N, M, Q)``; each query gets its own
Gaussians and the score is the mean of the per-query scores.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr

__all__ = ["fit_gaussian", "lira_offline", "lira_online"]

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


def fit_gaussian(
    values: np.ndarray, mask: np.ndarray, *, fixed_variance: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-example Gaussian of the masked values.

    Args:
        values: ``(N, M)`` reference values.
        mask: ``(N, M)`` bool, which values belong to the fit.
        fixed_variance: one pooled within-example variance for every example.

    Returns:
        ``mean (N,)`` (``nan`` where no value is selected), ``var (N,)`` (per
        example where it has >= 2 values, else the pooled variance; floored at
        ``VAR_FLOOR``) and ``count (N,)``.
    """
    count = mask.sum(axis=1)
    total = np.where(mask, values, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore"):  # 0 / 0 where no value is selected
        mean = total / count
    dev2 = np.where(mask, (values - np.nan_to_num(mean)[:, None]) ** 2, 0.0).sum(axis=1)
    two = count >= 2
    if two.any():
        pooled = dev2[two].sum() / count[two].sum()
    elif mask.any():  # no example has two values: the spread across examples is all there is
        pooled = values[mask].var()
    else:
        pooled = 1.0
    if fixed_variance:
        var = np.full(len(values), pooled)
    else:
        var = np.full(len(values), pooled)
        var[two] = dev2[two] / count[two]
    return mean, np.maximum(var, VAR_FLOOR), count


def _log_normal(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var)


def lira_online(
    target_phi: np.ndarray,
    ref_phi: np.ndarray,
    in_mask: np.ndarray,
    *,
    fixed_variance: bool = False,
) -> np.ndarray:
    """Online LiRA score ``(N,)`` float64, higher = member (``> 0``: likelihood ratio > 1).

    Args:
        target_phi: ``(N,)`` or ``(N, Q)`` target confidences.
        ref_phi: ``(N, M)`` or ``(N, M, Q)`` reference confidences.
        in_mask: ``(N, M)`` bool, True where reference model ``m`` trained on example ``n``
            (IN); the rest are OUT.
        fixed_variance: pooled variances instead of per-example ones.
    """
    t, r, m = _check(target_phi, ref_phi, in_mask, "in_mask")
    score = np.zeros(len(t))
    for q in range(t.shape[1]):
        mu_in, var_in, n_in = fit_gaussian(r[:, :, q], m, fixed_variance=fixed_variance)
        mu_out, var_out, n_out = fit_gaussian(r[:, :, q], ~m, fixed_variance=fixed_variance)
        both = (n_in > 0) & (n_out > 0)
        if both.any():
            shift = float(np.median(mu_in[both] - mu_out[both]))
        elif m.any() and (~m).any():
            shift = float(r[:, :, q][m].mean() - r[:, :, q][~m].mean())
        else:
            raise ValueError(
                "online LiRA needs IN and OUT reference values; in_mask is all True or all False"
            )
        mu_in = np.where(n_in > 0, mu_in, mu_out + shift)
        mu_out = np.where(n_out > 0, mu_out, mu_in - shift)
        score += _log_normal(t[:, q], mu_in, var_in) - _log_normal(t[:, q], mu_out, var_out)
    return score / t.shape[1]


def lira_offline(
    target_phi: np.ndarray,
    ref_phi: np.ndarray,
    out_mask: np.ndarray,
    *,
    fixed_variance: bool = False,
) -> np.ndarray:
    """Offline LiRA score ``(N,)`` float64: ``-log`` of the upper-tail p-value under OUT.

    Args:
        target_phi: ``(N,)`` or ``(N, Q)`` target confidences.
        ref_phi: ``(N, M)`` or ``(N, M, Q)`` reference confidences.
        out_mask: ``(N, M)`` bool, True where reference model ``m`` did NOT train on
            example ``n`` (only those values are used).
        fixed_variance: one pooled OUT variance instead of per-example ones.
    """
    t, r, m = _check(target_phi, ref_phi, out_mask, "out_mask")
    if not m.any():
        raise ValueError("offline LiRA needs OUT reference values; out_mask is all False")
    score = np.zeros(len(t))
    for q in range(t.shape[1]):
        mu, var, n = fit_gaussian(r[:, :, q], m, fixed_variance=fixed_variance)
        mu = np.where(n > 0, mu, r[:, :, q][m].mean())
        score -= log_ndtr(-(t[:, q] - mu) / np.sqrt(var))
    return score / t.shape[1]
