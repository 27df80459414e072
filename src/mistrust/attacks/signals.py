"""Membership signals: pure, vectorised functions of a model's logits.

All functions take logits ``(N, C)`` (any real dtype) and, where the signal
depends on the true class, integer labels ``(N,)``; they return float64.

Numerics: each row is shifted by its maximum, so ``exp`` never overflows, and
the sum of the *non-maximal* terms ``rest = sum_{j != argmax} exp(z_j - z_max)``
is kept separately. Then ``log sum exp = z_max + log1p(rest)`` keeps full
relative precision even for saturated softmax rows (the loss of a confident,
correct prediction is ``log1p(rest)``, not ``0``), and ``log(1 - p_max)`` is
``log(rest) - log1p(rest)`` instead of a catastrophic ``log(1 - p)``. When
``rest`` underflows (logit gaps above ~700), ``log(rest)`` is recomputed for
those rows as a log-sum-exp over the other classes.

Several signals of the same logits: :func:`shift_signals` computes them in one pass, the
row-max shift once per chunk, with the bytes of each function here
(:class:`mistrust.attacks.set_signals.SetSignals` keeps them for every attack of an audit).

Saved probabilities instead of logits? Pass ``probs_to_logits(p)``
(``np.log`` clipped at a tiny epsilon): ``softmax(log p) == p``.

``precision="float32"`` (the ``paper-*`` presets) computes the signals the paper's
attacks used (max score, top-k scores, entropy) in its float32 PyTorch arithmetic
instead (:mod:`mistrust.attacks.float32`); signals the paper did not use have no
such arithmetic to follow and are rounded to float32 (:func:`at_precision`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import NamedTuple

import numpy as np

from mistrust.attacks import float32
from mistrust.attacks._checks import check_labels, check_logits

__all__ = [
    "PRECISIONS",
    "SHIFT_SIGNALS",
    "at_precision",
    "entropy",
    "log_softmax",
    "logit_confidence",
    "loss",
    "max_score",
    "modified_entropy",
    "probs_to_logits",
    "shift_signals",
    "softmax",
    "top_k_scores",
]

_CHUNK_ELEMENTS = 327_680  # logits per chunk (32,768 rows of 10): work arrays stay in cache
_TINY = np.finfo(np.float64).tiny

#: score precisions: float64, or the float32 arithmetic of the paper's code
PRECISIONS: tuple[str, ...] = ("float64", "float32")


def _is_float32(precision: str) -> bool:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    return precision == "float32"


def at_precision(values: np.ndarray, precision: str) -> np.ndarray:
    """``values`` (float64, any shape) rounded to ``precision``, returned as float64.

    For scores float32 code would hold but that have no float32 computation here
    (signals the paper did not use, an attack model's logit). It is not the paper's
    arithmetic: a float32 softmax saturates at 1.0 where the rounded float64 one
    does not yet (:mod:`mistrust.attacks.float32`). ``"float64"``: unchanged.
    """
    if _is_float32(precision):
        return np.asarray(values, dtype=np.float32).astype(np.float64)
    return np.asarray(values, dtype=np.float64)


class Shift(NamedTuple):
    """The row-max shift of a chunk of logits, which every float64 signal starts from.

    ``z = x - rowmax`` (float64, ``z == 0`` exactly at the maxima), ``e = exp(z)`` with
    every maximal entry set to 0, ``rest = sum_{j != one argmax} exp(z_j)`` and ``n_top``
    (how many entries tie for the max; 1 unless tied), all ``(n,)`` but ``z``, ``e``. The
    softmax is ``exp(z) / (1 + rest)``. The signals only read it, so one shift serves all.
    """

    z: np.ndarray
    e: np.ndarray
    rest: np.ndarray
    n_top: np.ndarray


def _shifted(x: np.ndarray) -> Shift:
    """The :class:`Shift` of a chunk ``x (n, C)``."""
    # the row max in the input's dtype (float32 work is narrower), then widened: the cast to
    # float64 is monotone, so this is the max of the widened row, bit for bit
    if x.shape[1] <= 64:  # column-wise max: much faster than a reduction over short rows
        m = x[:, 0].copy()
        for j in range(1, x.shape[1]):
            np.maximum(m, x[:, j], out=m)
    else:
        m = x.max(axis=1)
    z = x.astype(np.float64)
    z -= m.astype(np.float64)[:, None]
    e = np.exp(z)
    total = np.einsum("ij->i", e)
    e -= z == 0.0  # exp(0) - 1 == 0 exactly at the maxima
    rest = np.einsum("ij->i", e)
    n_top = np.rint(total - rest)  # exact: the rounding error of total is << 0.5
    return Shift(z, e, rest + (n_top - 1.0), n_top)


def _log_rest(z: np.ndarray, rest: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``log(rest[rows])``, recomputed as a log-sum-exp where ``rest`` underflowed.

    ``rows``: a bool mask of the rows wanted. ``z`` is read only at the underflowed rows,
    so the (n, C) matrix is not copied for the others.
    """
    rest = rest[rows]
    with np.errstate(divide="ignore"):
        out = np.log(rest)
    bad = np.flatnonzero(rest < _TINY)  # then the max is unique (a tie makes rest >= 1)
    if bad.size:
        zz = z[np.flatnonzero(rows)[bad]]
        zz[zz == 0.0] = -np.inf
        m2 = zz.max(axis=1)
        out[bad] = m2 + np.log(np.exp(zz - m2[:, None]).sum(axis=1))
    return out


def _per_row(
    fn: Callable[..., np.ndarray], logits: np.ndarray, *cols: np.ndarray, width: int = 0
) -> np.ndarray:
    """Apply ``fn(logits_chunk, *col_chunks)`` over row chunks; output ``(N,)`` or ``(N, width)``."""
    n = len(logits)
    out = np.empty((n, width) if width else n, dtype=np.float64)
    rows = max(1, _CHUNK_ELEMENTS // logits.shape[1])
    for a in range(0, n, rows):
        sl = slice(a, a + rows)
        out[sl] = fn(logits[sl], *(c[sl] for c in cols))
    return out


def _labelled(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits = check_logits(logits)
    return logits, check_labels(labels, logits.shape[0], logits.shape[1])


def probs_to_logits(probs: np.ndarray, *, eps: float = _TINY) -> np.ndarray:
    """Log-probabilities ``(N, C)`` float64 usable wherever logits are expected.

    probs: ``(N, C)`` in ``[0, 1]``; zeros are clipped to ``eps`` before the log.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be 2-D (n_samples, n_classes), got shape {p.shape}")
    if not (np.isfinite(p).all() and p.min(initial=0.0) >= 0.0 and p.max(initial=0.0) <= 1.0):
        raise ValueError("probs must be finite and lie in [0, 1]")
    return np.log(np.clip(p, eps, 1.0))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax probabilities ``(N, C)`` float64 of logits ``(N, C)``."""
    z = check_logits(logits).astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities ``(N, C)`` float64; ``log p_max = -log1p(rest)`` keeps precision."""
    logits = check_logits(logits)

    def f(x: np.ndarray) -> np.ndarray:
        z, _, rest, _ = _shifted(x)
        return z - np.log1p(rest)[:, None]

    return _per_row(f, logits, width=logits.shape[1])


def max_score(logits: np.ndarray, *, precision: str = "float64") -> np.ndarray:
    """Maximum softmax probability ``(N,)`` float64 (``"float32"``: the paper's)."""
    if _is_float32(precision):
        return float32.max_score(logits)
    return _per_row(lambda x: _max_score(_shifted(x)), check_logits(logits))


def _max_score(sh: Shift) -> np.ndarray:
    return 1.0 / (1.0 + sh.rest)


def _entropy(sh: Shift) -> np.ndarray:
    z, e, rest, _ = sh
    # H = log s - sum_j p_j z_j with s = 1 + rest, z <= 0: a sum of two non-negative terms
    return np.log1p(rest) - np.einsum("ij,ij->i", e, z) / (1.0 + rest)


def entropy(logits: np.ndarray, *, precision: str = "float64") -> np.ndarray:
    """Shannon entropy of the softmax, in nats, ``(N,)`` float64 (``log C`` when uniform).

    ``"float32"``: the paper's, whose saturated rows all tie at about 1.19e-7.
    """
    if _is_float32(precision):
        return float32.entropy(logits)
    return _per_row(lambda x: _entropy(_shifted(x)), check_logits(logits))


def _sort_desc(a: np.ndarray) -> np.ndarray:
    """Sort the rows of ``a (n, k)`` descending; a min/max network for small ``k``."""
    k = a.shape[1]
    if k > 8:
        return np.sort(a, axis=1)[:, ::-1]
    a = a.copy()
    for r in range(k):  # odd-even transposition sort on columns: elementwise, no per-row calls
        for j in range(r % 2, k - 1, 2):
            hi = np.maximum(a[:, j], a[:, j + 1])
            np.minimum(a[:, j], a[:, j + 1], out=a[:, j + 1])
            a[:, j] = hi
    return a


def top_k_scores(logits: np.ndarray, k: int, *, precision: str = "float64") -> np.ndarray:
    """The ``k`` largest softmax probabilities per row, sorted descending: ``(N, k)`` float64.

    ``"float32"``: the paper's (``torch.topk`` of its float32 softmax).
    """
    if _is_float32(precision):
        return float32.top_k_scores(logits, k)
    logits = check_logits(logits)
    n_classes = logits.shape[1]
    if not (isinstance(k, int | np.integer) and 1 <= k <= n_classes):
        raise ValueError(f"k must be an integer in [1, {n_classes}], got {k!r}")

    def f(x: np.ndarray) -> np.ndarray:
        top = np.partition(x, n_classes - k, axis=1)[:, n_classes - k :] if k < n_classes else x
        top = _sort_desc(top.astype(np.float64))  # (n, k); column 0 is the row max
        z = x - top[:, :1]
        s = np.einsum("ij->i", np.exp(z, out=z))
        top -= top[:, :1]
        return np.exp(top, out=top) / s[:, None]

    return _per_row(f, logits, width=int(k))


def _loss(sh: Shift, y: np.ndarray) -> np.ndarray:
    z, _, rest, _ = sh
    return np.log1p(rest) - z[np.arange(len(z)), y]


def loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy of the true label, ``-log p_y``, ``(N,)`` float64 (>= 0)."""
    return _per_row(lambda x, y: _loss(_shifted(x), y), *_labelled(logits, labels))


def _logit_confidence(sh: Shift, y: np.ndarray) -> np.ndarray:
    z, e, rest, _ = sh
    rows = np.arange(len(z))
    z_y = z[rows, y]
    top = z_y == 0.0
    # log sum_{j != y} exp(z_j): log(rest) if y is a max, else log(s - e_y) with s - e_y >= 1
    log_other = np.log(np.where(top, 1.0, 1.0 + rest - e[rows, y]))
    log_other[top] = _log_rest(z, rest, top)
    return z_y - log_other


def logit_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Logit-scaled confidence ``log p_y - log sum_{y' != y} p_y'`` ``(N,)`` float64 (LiRA's)."""
    return _per_row(lambda x, y: _logit_confidence(_shifted(x), y), *_labelled(logits, labels))


def _modified_entropy(sh: Shift, y: np.ndarray) -> np.ndarray:
    z, e, rest, n_top = sh
    rows = np.arange(len(z))
    s = 1.0 + rest
    log_s = np.log1p(rest)
    q = 1.0 / s  # p of each maximal class
    p = e / s[:, None]  # 0 at the maxima
    # t = sum_i p_i log(1 - p_i) over all classes but one max (each term <= 0); with
    # ties the other maxima have p = q <= 1/2 (the min only guards the n_top == 1 rows)
    t = np.einsum("ij,ij->i", p, np.log1p(-p))
    t += (n_top - 1.0) * q * np.log1p(-np.minimum(q, 0.5))
    z_y = z[rows, y]
    top = z_y == 0.0
    out = np.empty(len(z))
    # y is a max: -(1 - p_y) log p_y = (rest / s) log s, the other classes give -t
    out[top] = (rest[top] * q[top]) * log_s[top] - t[top]
    o = ~top  # y is not a max: every term below is >= 0, so nothing cancels
    p_y, q_o = p[rows, y][o], q[o]
    out[o] = (
        -((1.0 + rest[o] - e[rows, y][o]) * q_o) * (z_y[o] - log_s[o])
        - (t[o] - p_y * np.log1p(-p_y))
        - q_o * (_log_rest(z, rest, o) - log_s[o])
    )
    return out


def modified_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Song & Mittal's modified entropy ``(N,)`` float64; LOWER means more likely member.

    ``Mentr = -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i)``.
    """
    return _per_row(lambda x, y: _modified_entropy(_shifted(x), y), *_labelled(logits, labels))


#: the float64 signals computed from the row-max shift, by name: ``f(shift, labels)``
_FROM_SHIFT: dict[str, Callable[[Shift, np.ndarray], np.ndarray]] = {
    "max_score": lambda sh, y: _max_score(sh),
    "entropy": lambda sh, y: _entropy(sh),
    "loss": _loss,
    "modified_entropy": _modified_entropy,
    "logit_confidence": _logit_confidence,
}
#: the signals :func:`shift_signals` computes together (each equal to its own function's)
SHIFT_SIGNALS: tuple[str, ...] = tuple(_FROM_SHIFT)


def shift_signals(
    logits: np.ndarray, labels: np.ndarray, names: Collection[str]
) -> dict[str, np.ndarray]:
    """Several float64 signals of the same outputs in one pass: ``{name: (N,)}``.

    ``names`` from :data:`SHIFT_SIGNALS`. Each chunk's row-max shift is computed once and
    read by every signal, which then has the bytes of its own function (:func:`loss`, ...).
    """
    unknown = sorted(set(names) - set(_FROM_SHIFT))
    if unknown:
        raise ValueError(f"unknown signals {unknown}; choose from {list(SHIFT_SIGNALS)}")
    logits, labels = _labelled(logits, labels)
    out = {name: np.empty(len(logits)) for name in names}
    rows = max(1, _CHUNK_ELEMENTS // logits.shape[1])
    for a in range(0, len(logits), rows):
        sl = slice(a, a + rows)
        sh, y = _shifted(logits[sl]), labels[sl]
        for name, values in out.items():
            values[sl] = _FROM_SHIFT[name](sh, y)
    return out
