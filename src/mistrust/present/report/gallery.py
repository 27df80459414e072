"""Gallery of the highest-scored false positives (the paper's Figure 1).

``top_scored`` picks the images to show; ``save_gallery`` draws each image
with its maximum prediction score below it. matplotlib is imported lazily and
only through ``matplotlib.figure.Figure`` (no pyplot, no global state).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from mistrust.io import atomic_write_bytes

DPI = 120
PANEL = 1.5  # inches per image
LABEL = 0.35  # inches below each image for its score
CAPTION = 0.3  # inches above each image for its caption, when captions are given
TITLE = 0.45  # inches for the figure title
MARGIN = 0.08  # inches around each image inside its panel
MEMBER, NON_MEMBER = "#1a9641", "#d7191c"  # frame colours (green / red, as the paper)


def top_scored(score: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, descending; ties keep the lower index first.

    score: ``(N,)``. Returns ``(min(k, N),)`` int64. NaN scores come last.
    """
    score = np.asarray(score, dtype=np.float64)
    if score.ndim != 1:
        raise ValueError(f"score must be 1-D, got shape {score.shape}")
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    return np.argsort(-score, kind="stable")[:k].astype(np.int64)


def gallery_figsize(k: int, *, columns: int = 8, captions: bool = False) -> tuple[float, float]:
    """Figure size in inches of a gallery of ``k`` images."""
    cols = max(1, min(columns, k))
    rows = max(1, math.ceil(k / cols))
    return cols * PANEL, TITLE + rows * (PANEL + LABEL + (CAPTION if captions else 0.0))


def _to_hwc(images: torch.Tensor | np.ndarray) -> np.ndarray:
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise ValueError(
            f"images must be uint8 (K, C, H, W) with C in (1, 3), got {arr.dtype} {arr.shape}"
        )
    return arr.transpose(0, 2, 3, 1)  # (K, H, W, C)


def save_gallery(
    images: torch.Tensor | np.ndarray,
    max_scores: np.ndarray,
    path: Path,
    *,
    title: str,
    columns: int = 8,
    captions: Sequence[str] | None = None,
    is_member: np.ndarray | None = None,
) -> None:
    """Draw ``images`` (uint8 ``(K, C, H, W)``) with their max scores ``(K,)`` printed below.

    Scores are written to 4 decimals ("0.9999"); one-channel images use a gray
    colour map. captions: optional ``K`` strings shown above the images (e.g.
    the data set). is_member: optional ``(K,)`` bool; frames members green and
    non-members red as in the paper. The file (format from the suffix, PNG by
    default) is written atomically and is byte-identical for identical input.
    """
    save_galleries([Gallery(images, max_scores, path, title, columns, captions, is_member)])


@dataclass
class Gallery:
    """One gallery to draw (the arguments of :func:`save_gallery`)."""

    images: torch.Tensor | np.ndarray
    max_scores: np.ndarray
    path: Path
    title: str
    columns: int = 8
    captions: Sequence[str] | None = None
    is_member: np.ndarray | None = None


def nonmember_gallery(
    display: torch.Tensor,
    score: np.ndarray,
    max_score: np.ndarray,
    path: Path,
    *,
    k: int,
    title: str,
) -> Gallery:
    """The ``k`` top-scored non-members of one evaluation set.

    display: the set's images ``(N, C, H, W)``; score and max_score: ``(M + N,)`` per scored
    sample, the ``M`` members first (as ``scores/<variant>/<attack>/<set>.npz`` holds them).
    """
    n_members = len(score) - len(display)
    top = top_scored(score[n_members:], k)
    return Gallery(display[torch.from_numpy(top)], max_score[n_members:][top], path, title)


def save_galleries(galleries: Sequence[Gallery]) -> None:
    """Draw and write every gallery, in forked processes, one per free core
    (:func:`mistrust.runtime.executors.run_calls`), with the same bytes as drawn here."""
    from mistrust.runtime.executors import run_calls

    draws = [partial(_gallery_bytes, g) for g in galleries]
    datas = run_calls(draws, inherit=("matplotlib.figure", "matplotlib.patches"))
    for g, data in zip(galleries, datas, strict=True):
        atomic_write_bytes(Path(g.path), data)


def _gallery_bytes(g: Gallery) -> bytes:
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    images, max_scores, path, title = g.images, g.max_scores, g.path, g.title
    columns, captions, is_member = g.columns, g.captions, g.is_member

    hwc = _to_hwc(images)
    scores = np.asarray(max_scores, dtype=np.float64).reshape(-1)
    k = len(hwc)
    if len(scores) != k:
        raise ValueError(f"{k} images but {len(scores)} scores")
    if captions is not None and len(captions) != k:
        raise ValueError(f"{k} images but {len(captions)} captions")
    if is_member is not None and len(is_member) != k:
        raise ValueError(f"{k} images but {len(is_member)} membership flags")
    if columns < 1:
        raise ValueError(f"columns must be positive, got {columns}")

    width, height = gallery_figsize(k, columns=columns, captions=captions is not None)
    cols = max(1, min(columns, k))
    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.suptitle(title, fontsize=13, fontweight="bold", y=1 - 0.08 / height, va="top")
    # one axes in inches, y down, holding every image: one set of axes per image cost
    # 20 ms each in axis set-up and layout
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    cell = PANEL + LABEL + (CAPTION if captions is not None else 0.0)
    side = PANEL - 2 * MARGIN
    for i in range(k):
        r, c = divmod(i, cols)
        x0 = c * PANEL + MARGIN
        y0 = TITLE + r * cell + (CAPTION if captions is not None else 0.0) + MARGIN / 2
        box = (x0, x0 + side, y0 + side, y0)  # extent: left, right, bottom, top
        img = hwc[i]
        if img.shape[-1] == 1:
            ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest",
                      extent=box)  # fmt: skip
        else:
            ax.imshow(img, interpolation="nearest", extent=box)
        color = "0.6" if is_member is None else (MEMBER if is_member[i] else NON_MEMBER)
        frame = 0.8 if is_member is None else 3.0
        ax.add_patch(Rectangle((x0, y0), side, side, fill=False, ec=color, lw=frame))
        ax.text(x0 + side / 2, y0 + side + 0.06, f"{scores[i]:.4f}", ha="center", va="top",
                fontsize=11, fontweight="bold")  # fmt: skip
        if captions is not None:
            ax.text(x0 + side / 2, y0 - 0.06, str(captions[i]), ha="center", va="bottom",
                    fontsize=10)  # fmt: skip
    ax.set_aspect("auto")
    if k == 0:
        fig.text(0.5, 0.5, "no images", ha="center", va="center", fontsize=11)

    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    buf = io.BytesIO()
    metadata = {"Software": None} if fmt == "png" else None
    fig.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)
    return buf.getvalue()
