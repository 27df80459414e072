"""Cross-fitted logistic regressions on many rows and few features, in blocks of rows.

The blind baseline (:mod:`mistrust.checks.baseline`) fits one logistic regression per
fold, each on the other folds. scikit-learn copies each training part (and its
standardised copy) and runs L-BFGS on it, which on pooled pixels takes hundreds of
iterations: at a million rows, gigabytes and minutes. Here every fold's model
minimises exactly scikit-learn's objective (features standardised on the model's own
training rows, class-balanced sample weights, L2 penalty C = 1 on the coefficients, the
intercept free), but:

* the data are never copied: each pass reads the rows a block at a time and updates all
  fold models at once (a row of fold ``j`` counts for every model but ``j``'s);
* the standardisation is folded into the penalty: the models are fitted on features
  standardised once, globally, and a model's penalty on a coefficient is scaled by its
  training rows' standard deviation of that feature, which is the same minimiser in
  other coordinates (the scores, a linear function of the inputs, are the same);
* Newton's method, damped (a step that raises a model's objective is halved), first on
  evenly spaced rows weighted up to stand for all (:data:`_HESSIAN_ROWS`), then on all
  rows from there. Each step's gradient is exact, over all rows; the Hessians come from
  the spaced rows only and are renewed every other step: they set how fast the steps
  converge (linearly, by a factor of about ``sqrt(D / rows)`` a step), never to what.
  On a million rows that is about five passes over the data.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.special import expit

log = logging.getLogger(__name__)

__all__ = ["fit_folds"]

#: rows per block: a few MiB of float64 per pass, whatever N
_BLOCK = 16_384
#: the Hessians are summed over about this many evenly spaced rows (weighted up to all)
_HESSIAN_ROWS = 65_536
#: Newton steps between two Hessians, and in all
_STEPS_PER_HESSIAN = 2
_MAX_STEPS = 30
#: converged when no coefficient (of standardised features) moves more than this
_TOL = 1e-6


def fit_folds(f: np.ndarray, m: np.ndarray, fold: np.ndarray, folds: int) -> np.ndarray:
    """Cross-fitted decision values ``(N,)``: row ``i`` scored by the model of the other folds.

    Args:
        f: ``(N, D)`` float features, float32 or float64 (read a block of rows at a time,
            never copied whole; the arithmetic is float64 either way).
        m: ``(N,)`` bool, True for members (the positive class).
        fold: ``(N,)`` int in ``[0, folds)``, each row's fold.
        folds: the number of folds; an empty fold gets no model.
    """
    from threadpoolctl import threadpool_limits

    # the products are thin (D + 1 columns): a second BLAS thread buys little, and on a
    # busy machine 100,000 rows took 12-16 s with two against 1.3 s with one
    with threadpool_limits(1, user_api="blas"):
        return _fit_folds(f, m, fold, folds)


def _fit_folds(f: np.ndarray, m: np.ndarray, fold: np.ndarray, folds: int) -> np.ndarray:
    n, d = f.shape
    y = m.astype(np.int64)
    key = fold * 2 + y  # (fold, class) of every row
    mu, sd, cnt, mean, var = _moments(f, key, folds)
    models = np.flatnonzero(cnt.sum(1) > 0)
    # model k trains on every fold but models[k]
    n_tr = cnt.sum() - cnt[models].sum(1)  # (K,)
    n_cls = cnt.sum(0)[None, :] - cnt[models]  # (K, 2)
    if (n_cls == 0).any():
        raise ValueError("a training part has only one class; use fewer folds")
    total = (mean * cnt[:, :, None]).sum((0, 1))
    total2 = ((var + mean**2) * cnt[:, :, None]).sum((0, 1))
    tr_mean = (total - (mean[models] * cnt[models][:, :, None]).sum(1)) / n_tr[:, None]
    tr_sq = (total2 - ((var + mean**2)[models] * cnt[models][:, :, None]).sum(1)) / n_tr[:, None]
    # the penalty on a coefficient of a globally standardised feature that equals
    # scikit-learn's on the model's own standardisation (scale 1 where it is constant)
    ratio = np.sqrt(np.clip(tr_sq - tr_mean**2, 0.0, None))
    ratio = np.where(ratio > 1e-12, ratio, 1.0 / sd)
    penalty = np.concatenate([ratio**2, np.zeros((len(models), 1))], axis=1).T  # (D+1, K)
    # every row's weight in every model: class_weight="balanced", 0 in its own fold's
    weight = n_tr[:, None] / (2.0 * n_cls)  # (K, 2)
    row_w = np.broadcast_to(weight.T[None], (folds, 2, len(models))).copy()
    row_w[models, :, np.arange(len(models))] = 0.0
    row_w = row_w.reshape(2 * folds, len(models))

    def raw(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients of standardised features -> weights and intercepts on ``f``."""
        v = a[:d] / sd[:, None]
        return v, a[d] - mu @ v

    def pass_gradient(
        a: np.ndarray, rows: np.ndarray, keys: np.ndarray, w_of_key: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Objective ``(K,)`` and gradient ``(D+1, K)`` of every model at its coefficients."""
        v, b = raw(a)
        obj = 0.5 * (penalty * a**2).sum(0)
        ft_r = np.zeros((d, len(models)))
        r_sum = np.zeros(len(models))
        for s in range(0, len(rows), _BLOCK):
            kb = keys[s : s + _BLOCK]
            yb = (kb % 2)[:, None]
            w = w_of_key[kb]  # (B, K)
            xb = _float64(rows[s : s + _BLOCK])
            z = xb @ v + b
            obj += (w * (np.logaddexp(0.0, z) - yb * z)).sum(0)
            r = w * (expit(z) - yb)
            ft_r += xb.T @ r
            r_sum += r.sum(0)
        grad = penalty * a
        grad[:d] += (ft_r - mu[:, None] * r_sum) / sd[:, None]
        grad[d] += r_sum
        return obj, grad

    sub = np.arange(0, n, -(-n // _HESSIAN_ROWS))  # evenly spaced rows: every fold, class
    x_sub = np.empty((len(sub), d + 1))
    x_sub[:, :d] = (f[sub] - mu) / sd
    x_sub[:, d] = 1.0
    key_sub = key[sub]
    scale = cnt.reshape(-1) / np.maximum(np.bincount(key_sub, minlength=2 * folds), 1)

    def hessians(a: np.ndarray) -> np.ndarray:
        """Every model's Hessian ``(K, D+1, D+1)`` at its coefficients, on the rows ``sub``."""
        p = expit(x_sub @ a)
        w = p * (1.0 - p) * (row_w * scale[:, None])[key_sub]  # (S, K)
        hess = np.stack([(x_sub * w[:, k, None]).T @ x_sub for k in range(len(models))])
        hess[:, np.arange(d + 1), np.arange(d + 1)] += penalty.T
        return hess

    def newton(
        a: np.ndarray, rows: np.ndarray, keys: np.ndarray, w_of_key: np.ndarray
    ) -> np.ndarray:
        """Every model's minimiser on ``rows``, from ``a``: damped steps, lagged Hessians."""

        def grad_of(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return pass_gradient(a, rows, keys, w_of_key)

        obj, grad = grad_of(a)
        step = np.full_like(a, np.inf)
        for i in range(_MAX_STEPS):
            if np.abs(step).max() < _TOL:
                log.debug("blind baseline: %d Newton steps on %d rows", i, len(rows))
                return a
            if i % _STEPS_PER_HESSIAN == 0:
                hess = hessians(a)
            step = np.stack([np.linalg.solve(hess[k], grad[:, k]) for k in range(len(models))], 1)
            new_obj, new_grad = grad_of(a - step)
            for _ in range(30):  # damped: halve the steps that went uphill
                worse = new_obj > obj + 1e-12 * np.abs(obj)
                if not worse.any() or np.abs(step[:, worse]).max() < _TOL:
                    break  # (a rise within rounding at the minimum is not uphill)
                step[:, worse] *= 0.5
                new_obj, new_grad = grad_of(a - step)
            a = a - step
            obj, grad = new_obj, new_grad
        log.warning("blind baseline: Newton did not converge (last step %.2g)", np.abs(step).max())
        return a

    # first the rows `sub` alone, weighted up to stand for all: a start close to the
    # minimum, so that few passes over all rows are needed
    f_sub = np.ascontiguousarray(f[sub])
    a = np.zeros((d + 1, len(models)))
    a = newton(a, f_sub, key_sub, row_w * scale[:, None])
    if len(sub) < n:
        a = newton(a, f, key, row_w)

    v, b = raw(a)
    col = np.searchsorted(models, fold)  # the model that did not see the row
    out = np.empty(n, dtype=np.float64)
    for s in range(0, n, _BLOCK):
        z = _float64(f[s : s + _BLOCK]) @ v + b
        out[s : s + len(z)] = z[np.arange(len(z)), col[s : s + _BLOCK]]
    return out


def _float64(block: np.ndarray) -> np.ndarray:
    """A block of rows as float64 (itself if it is): every sum and product is float64
    whatever the features' dtype (float32 above the switch, :mod:`mistrust.checks.baseline`)."""
    return np.asarray(block, dtype=np.float64)


def _moments(
    f: np.ndarray, key: np.ndarray, folds: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Global mean and sd per feature (sd 1 where constant); per (fold, class): rows
    ``(folds, 2)``, and the mean and variance of the globally standardised features."""
    n, d = f.shape
    mu = sum(f[s : s + _BLOCK].sum(0, dtype=np.float64) for s in range(0, n, _BLOCK)) / n
    cnt = np.bincount(key, minlength=2 * folds).astype(np.float64)
    s1 = np.zeros((2 * folds, d))
    s2 = np.zeros((2 * folds, d))
    for s in range(0, n, _BLOCK):
        c = _float64(f[s : s + _BLOCK]) - mu
        onehot = np.zeros((len(c), 2 * folds))
        onehot[np.arange(len(c)), key[s : s + _BLOCK]] = 1.0
        s1 += onehot.T @ c
        s2 += onehot.T @ (c * c)
    sd = np.sqrt(s2.sum(0) / n - (s1.sum(0) / n) ** 2)
    sd = np.where(sd > 0, sd, 1.0)
    safe = np.maximum(cnt, 1.0)[:, None]
    mean = s1 / safe / sd
    var = s2 / safe / sd**2 - mean**2
    return mu, sd, cnt.reshape(folds, 2), mean.reshape(folds, 2, d), var.reshape(folds, 2, d)
