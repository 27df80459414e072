"""A one-hidden-layer MLP binary classifier, trained by hand in NumPy.

It computes exactly what ``nn.Sequential(nn.Linear(k, h), nn.ReLU(),
nn.Linear(h, 1))`` trained with ``BCEWithLogitsLoss`` and ``torch.optim.Adam``
computes (same init distribution, same update formulas; the test suite checks
an epoch against torch). It exists because the attack model is tiny and the
batch is 16: a PyTorch step costs far more in per-op dispatch than in maths,
while this loop does ~30 small NumPy calls per step.

All parameters live in one flat float64 vector (views give W1, b1, W2, b2), so
the Adam update is a handful of whole-vector operations.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import expit

__all__ = [
    "check_settings",
    "fit_rows",
    "init_params",
    "mlp_logits",
    "stratified_sample",
    "train_mlp",
    "train_settings_mlp",
    "unpack",
]

_CHUNK = 2_048


def unpack(flat: np.ndarray, k: int, hidden: int) -> tuple[np.ndarray, ...]:
    """Views ``W1 (k, h), b1 (h,), W2 (h, 1), b2 (1,)`` into a flat parameter vector."""
    a, b = k * hidden, k * hidden + hidden
    return (
        flat[:a].reshape(k, hidden),
        flat[a:b],
        flat[b : b + hidden].reshape(hidden, 1),
        flat[b + hidden :],
    )


def init_params(k: int, hidden: int, rng: np.random.Generator) -> np.ndarray:
    """torch.nn.Linear's default init: weights and biases ~ U(+-1/sqrt(fan_in))."""
    flat = np.empty(k * hidden + 2 * hidden + 1)
    w1, b1, w2, b2 = unpack(flat, k, hidden)
    lim1, lim2 = 1.0 / np.sqrt(k), 1.0 / np.sqrt(hidden)
    w1[:] = rng.uniform(-lim1, lim1, size=(hidden, k)).T  # torch stores (out, in)
    b1[:] = rng.uniform(-lim1, lim1, size=hidden)
    w2[:] = rng.uniform(-lim2, lim2, size=(hidden, 1))
    b2[:] = rng.uniform(-lim2, lim2, size=1)
    return flat


def mlp_logits(flat: np.ndarray, x: np.ndarray, *, hidden: int) -> np.ndarray:
    """Logits ``(n,)`` of inputs ``x (n, k)``.

    Works in chunks of ``_CHUNK`` rows: small matrix products stay on one BLAS
    thread; multithreaded BLAS on a busy 2-core machine was ~10x slower.
    """
    w1, b1, w2, b2 = unpack(flat, x.shape[1], hidden)
    out = np.empty(len(x))
    for a in range(0, len(x), _CHUNK):
        h = x[a : a + _CHUNK] @ w1
        h += b1
        np.maximum(h, 0.0, out=h)
        out[a : a + _CHUNK] = (h @ w2)[:, 0]
    out += b2[0]
    return out


def train_mlp(
    x: np.ndarray,
    y: np.ndarray,
    *,
    hidden: int,
    lr: float,
    batch_size: int,
    patience: int,
    min_delta: float,
    max_epochs: int,
    rng: np.random.Generator,
    init: np.ndarray | None = None,
) -> tuple[np.ndarray, list[float]]:
    """Mini-batch Adam on the mean BCE-with-logits loss.

    Each epoch visits the samples in a fresh ``rng.permutation``. Training stops
    once the epoch's mean loss (over the batches, before each update, as a
    PyTorch loop's running loss) has not improved by ``min_delta`` for
    ``patience`` epochs, or after ``max_epochs``. The last weights are kept.

    Args:
        x: ``(n, k)`` float features; y: ``(n,)`` targets in {0, 1}.
        init: initial flat parameters; default ``init_params(k, hidden, rng)``.

    Returns:
        ``(flat_params, epoch_losses)``.
    """
    n, k = x.shape
    flat = init_params(k, hidden, rng) if init is None else np.array(init, dtype=np.float64)
    grad = np.zeros_like(flat)
    w1, b1, w2, b2 = unpack(flat, k, hidden)
    g_w1, g_b1, g_w2, g_b2 = unpack(grad, k, hidden)
    m, v, tmp = np.zeros_like(flat), np.zeros_like(flat), np.empty_like(flat)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    x = np.asarray(x, dtype=np.float64)
    y2 = np.asarray(y, dtype=np.float64).reshape(n, 1)
    z_all = np.empty((n, 1))
    losses: list[float] = []
    best, since, step = np.inf, 0, 0
    for _ in range(max_epochs):
        perm = rng.permutation(n)
        xs, ys = x[perm], y2[perm]
        for a in range(0, n, batch_size):
            xb, yb = xs[a : a + batch_size], ys[a : a + batch_size]
            # forward: h = relu(x W1 + b1), z = h W2 + b2
            h = xb @ w1
            h += b1
            np.maximum(h, 0.0, out=h)
            z = h @ w2
            z += b2
            z_all[a : a + batch_size] = z
            # backward of mean BCE-with-logits: dL/dz = (sigmoid(z) - y) / batch
            dz = expit(z)
            dz -= yb
            dz /= len(xb)
            np.matmul(h.T, dz, out=g_w2)
            g_b2[0] = dz.sum()
            dh = dz @ w2.T
            dh *= h > 0
            np.matmul(xb.T, dh, out=g_w1)
            dh.sum(axis=0, out=g_b1)
            # Adam, as torch.optim.Adam (lerp form of the first moment)
            step += 1
            np.subtract(grad, m, out=tmp)
            tmp *= 1.0 - beta1
            m += tmp
            v *= beta2
            np.multiply(grad, grad, out=tmp)
            tmp *= 1.0 - beta2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp /= math.sqrt(1.0 - beta2**step)
            tmp += eps
            np.divide(m, tmp, out=tmp)
            tmp *= lr / (1.0 - beta1**step)
            flat -= tmp
        epoch_loss = float(np.mean(np.logaddexp(0.0, z_all) - ys * z_all))
        losses.append(epoch_loss)
        if best - epoch_loss >= min_delta:
            best, since = epoch_loss, 0
        else:
            since += 1
            if since >= patience:
                break
    return flat, losses


# ---- what the learned attacks (Salem's, Shokri's) share --------------------------------
def check_settings(attack: Any, *counts: str) -> None:
    """One clear ``ValueError`` for an attack's MLP settings (and its ``counts``) below 1."""
    for arg in (*counts, "hidden", "batch_size", "patience", "max_epochs"):
        if int(getattr(attack, arg)) < 1:
            raise ValueError(f"{arg} must be >= 1, got {getattr(attack, arg)}")


def fit_rows(
    is_member: np.ndarray, cap: int | None, rng: np.random.Generator, name: str
) -> np.ndarray | None:
    """The shadow rows a learned attack trains on: ``None`` (every row) up to ``cap`` rows,
    else a seeded :func:`stratified_sample` of ``cap``; ``name``: the option, for its error."""
    if cap is not None and int(cap) < 2:
        raise ValueError(f"{name} must be >= 2 or None, got {cap}")
    if cap is None or len(is_member) <= int(cap):
        return None
    return stratified_sample(is_member, int(cap), rng)


def train_settings_mlp(
    attack: Any, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, list[float]]:
    """:func:`train_mlp` with the attack's ``hidden``, ``lr``, ``batch_size``, ``patience``,
    ``min_delta`` and ``max_epochs``."""
    return train_mlp(
        x,
        y,
        hidden=int(attack.hidden),
        lr=float(attack.lr),
        batch_size=int(attack.batch_size),
        patience=int(attack.patience),
        min_delta=float(attack.min_delta),
        max_epochs=int(attack.max_epochs),
        rng=rng,
    )


def stratified_sample(is_member: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``size`` rows, members and non-members in their shares of the set.

    Each side keeps at least one row where it has any, so a rare side is not lost.
    """
    is_member = np.asarray(is_member, dtype=bool)
    n_in = int(is_member.sum())
    n_out = len(is_member) - n_in
    take_in = round(size * n_in / len(is_member))
    take_in = min(max(take_in, int(n_in > 0)), size - int(n_out > 0))
    take_in = min(max(take_in, size - n_out), n_in)  # no more than either side has
    take_out = size - take_in
    picks = [
        rng.permutation(np.flatnonzero(side))[:take]
        for side, take in ((is_member, take_in), (~is_member, take_out))
    ]
    return np.sort(np.concatenate(picks))
