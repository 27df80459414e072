"""Input validation shared by the signal functions and the attacks.

Every check raises :class:`~mistrust.errors.InputError` (a ``ValueError``) with a
message that names the offending argument and, for length mismatches, both sizes.
"""

from __future__ import annotations

import numpy as np

from mistrust.errors import InputError

__all__ = ["check_labels", "check_logits", "check_membership"]


def check_logits(logits: np.ndarray, *, name: str = "logits") -> np.ndarray:
    """Return ``logits`` as a real 2-D array ``(N, C)`` with ``C >= 2``, all finite.

    The dtype is kept (float32 stays float32); signal functions convert to
    float64 chunk by chunk, which is faster than one big copy.
    """
    arr = np.asarray(logits)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise InputError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D (n_samples, n_classes), got shape {arr.shape}")
    if arr.shape[1] < 2:
        raise InputError(f"{name} must have at least 2 classes (columns), got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating) and arr.size:
        # fast path: a contiguous sum is finite unless some entry is NaN/Inf (or it overflows)
        if not np.isfinite(arr.sum(dtype=np.float64)) and not np.isfinite(arr).all():
            bad = int(np.count_nonzero(~np.isfinite(arr).all(axis=1)))
            raise InputError(f"{name} contains NaN or Inf in {bad} of {arr.shape[0]} rows")
    return arr


def check_labels(labels: np.ndarray, n_samples: int, n_classes: int) -> np.ndarray:
    """Return ``labels`` as a 1-D int64 array of length ``n_samples`` in ``[0, n_classes)``.

    Float arrays are accepted when every value is integral (e.g. labels read from CSV).
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise InputError(f"labels must be 1-D (n_samples,), got shape {arr.shape}")
    if len(arr) != n_samples:
        raise InputError(f"logits have {n_samples} rows but labels have {len(arr)} entries")
    if np.issubdtype(arr.dtype, np.floating):
        if not (np.isfinite(arr).all() and np.array_equal(arr, np.round(arr))):
            raise InputError("labels must be integers (class indices)")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"labels must be integers (class indices), got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise InputError(
            f"labels must lie in [0, {n_classes}) for {n_classes} classes, "
            f"got range [{arr.min()}, {arr.max()}]"
        )
    return arr


def check_membership(is_member: np.ndarray, n_samples: int, *, require_both: bool) -> np.ndarray:
    """Return ``is_member`` as a 1-D bool array of length ``n_samples``.

    Accepts bool or 0/1 integer arrays. With ``require_both`` the array must
    contain at least one member and one non-member.
    """
    arr = np.asarray(is_member)
    if arr.ndim != 1:
        raise InputError(f"is_member must be 1-D (n_samples,), got shape {arr.shape}")
    if len(arr) != n_samples:
        raise InputError(f"logits have {n_samples} rows but is_member has {len(arr)} entries")
    if arr.dtype != bool:
        if not (np.issubdtype(arr.dtype, np.number) and np.isin(arr, (0, 1)).all()):
            raise InputError("is_member must be boolean (or 0/1)")
        arr = arr.astype(bool)
    if require_both:
        n_in = int(arr.sum())
        if n_in == 0 or n_in == len(arr):
            raise InputError(
                f"is_member needs both members and non-members, got {n_in} members "
                f"and {len(arr) - n_in} non-members"
            )
    return arr
