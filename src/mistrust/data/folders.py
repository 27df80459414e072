"""Image-folder sources: AFHQ, Stanford Dogs, or any folder of images.

Layouts accepted: ``ROOT/<class>/*.jpg`` (labels from sub-folders) or a flat
``ROOT/*.png`` (labels -1). Images of any size or mode are converted to the
channel count and resolution asked for.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import torch

from mistrust.data.images import ImageSet
from mistrust.data.sources import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LABEL_READERS,
    DataError,
    SourceSpec,
    candidate_roots,
    register_source,
)

log = logging.getLogger(__name__)
EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def list_images(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """Files and class indices under ``root`` (sorted, so order is reproducible)."""
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist; check the path")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files: list[Path] = []
    labels: list[int] = []
    if subdirs:
        for i, sub in enumerate(subdirs):
            found = sorted(p for p in sub.rglob("*") if p.suffix.lower() in EXTENSIONS)
            files += found
            labels += [i] * len(found)
    files_flat = sorted(p for p in root.iterdir() if p.suffix.lower() in EXTENSIONS)
    files += files_flat
    labels += [-1] * len(files_flat)
    if not files:
        raise DataError(
            f"image folder {root} holds no images ({', '.join(sorted(EXTENSIONS))}); "
            "put images in it (or in one sub-folder per class) or point to another folder"
        )
    return files, labels, [p.name for p in subdirs]


#: ``data.fit`` choices: how a non-square image is made square
FITS: tuple[str, ...] = ("squash", "center-crop")


def _fit_square(im: object, size: int, fit: str) -> object:
    """A PIL image as ``size x size``: squashed, or (``center-crop``) its short side
    resized to ``size`` and the centre cropped, as torchvision's ``Resize(size)`` +
    ``CenterCrop(size)`` (same rounding)."""
    from PIL import Image

    if fit == "squash":
        return im.resize((size, size), Image.Resampling.BILINEAR)  # type: ignore[attr-defined]
    w, h = im.size  # type: ignore[attr-defined]
    if w <= h:
        ow, oh = size, int(size * h / w)
    else:
        ow, oh = int(size * w / h), size
    im = im.resize((ow, oh), Image.Resampling.BILINEAR)  # type: ignore[attr-defined]
    left, top = int(round((ow - size) / 2.0)), int(round((oh - size) / 2.0))
    return im.crop((left, top, left + size, top + size))  # type: ignore[attr-defined]


def load_folder(
    root: Path | str,
    *,
    size: int,
    channels: int = 3,
    name: str = "",
    limit: int | None = None,
    seed: int = 0,
    fit: str = "squash",
) -> ImageSet:
    """Decode every image (or a seeded sample of ``limit``) to uint8 ``(N, channels, size, size)``.

    ``fit``: ``"squash"`` resizes to the square regardless of aspect ratio;
    ``"center-crop"`` keeps the aspect ratio and crops the centre (the paper's
    Stanford Dogs evaluation transform).
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {list(FITS)}, got {fit!r}")
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    files, labels, classes = list_images(root)
    index = np.arange(len(files))
    if limit is not None and limit < len(files):
        index = np.sort(np.random.default_rng(seed).choice(len(files), limit, replace=False))
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(index), size, size, channels), dtype=np.uint8)
    for j, i in enumerate(index):
        try:
            with Image.open(files[i]) as im:
                im = _fit_square(im.convert(mode), size, fit)
                out[j] = np.asarray(im).reshape(size, size, channels)
        except (
            UnidentifiedImageError,
            Image.DecompressionBombError,
            OSError,
            ValueError,
            SyntaxError,  # some PIL plugins signal a broken file this way
        ) as exc:
            raise DataError(
                f"{files[i]}: cannot decode image ({exc}); remove or replace the file"
            ) from None
    x = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
    y = torch.as_tensor(np.asarray(labels)[index], dtype=torch.long)
    return ImageSet(x, y, classes, name or root.name)


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, size: int, channels: int, name: str, fit: str) -> ImageSet:
    return load_folder(path, size=size, channels=channels, name=name, fit=fit)


def _folder_source(
    name: str, subpath: str, hint: str, *, num_classes: int = 0, test_fraction: float = 0.0
) -> SourceSpec:
    """A folder dataset; with ``test_fraction`` one pool is split (stratified, seed 42).

    ``subpath`` may contain ``{split}``: ``train`` or ``val`` (for the test split),
    the folders AFHQ ships.
    """

    def find(root: str | None, split: str) -> Path:
        tried = []
        for r in candidate_roots(name, root):
            cand = r / subpath.format(split="train" if split == "train" else "val")
            tried.append(str(cand))
            if cand.is_dir():
                return cand
        raise DataError(f"{name} not found (looked in {', '.join(tried)}). {hint}")

    def load(
        *,
        split: str,
        root: str | None,
        size: int | None = None,
        channels: int | None = None,
        fit: str = "squash",
        **_: object,
    ) -> ImageSet:
        full = _load_cached(str(find(root, split)), size or 224, channels or 3, name, fit)
        if not test_fraction:
            return full
        return full.subset(_split_index(full.labels, test_fraction, split))

    def listing(split: str, root: str | None) -> tuple[np.ndarray, str]:
        """Labels from the file listing alone: no image decoded."""
        path = find(root, split)
        labels = torch.as_tensor(list_images(path)[1], dtype=torch.long)
        if test_fraction:
            labels = labels[_split_index(labels, test_fraction, split)]
        return labels.numpy(), str(path)

    LABEL_READERS[name] = listing
    one_pool = bool(test_fraction)  # mistrust splits the folder: one pool
    return SourceSpec(
        name, 3, 224, num_classes, IMAGENET_MEAN, IMAGENET_STD, load, hint, one_pool=one_pool
    )


def _split_index(labels: torch.Tensor, test_fraction: float, split: str) -> torch.Tensor:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    train, test = train_test_split(
        idx, test_size=test_fraction, random_state=42, stratify=labels.numpy()
    )
    return torch.from_numpy(np.sort(train if split == "train" else test))


_AFHQ_HINT = (
    "Download AFHQ (github.com/clovaai/stargan-v2) and pass --data-root holding "
    "afhq/train/{cat,dog,wild} (and afhq/val/... for eval.ood_split: test)."
)
for _animal in ("cat", "dog", "wild"):
    register_source(_folder_source(f"afhq-{_animal}", f"afhq/{{split}}/{_animal}", _AFHQ_HINT))
register_source(
    _folder_source(
        "stanford-dogs",
        "stanford-dogs/Images",
        "Download Stanford Dogs (vision.stanford.edu/aditya86/ImageNetDogs) and pass --data-root "
        "holding stanford-dogs/Images/<breed>/*.jpg.",
        num_classes=120,
        test_fraction=0.2,
    )
)
