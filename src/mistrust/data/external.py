"""Data a user brings: image arrays, labelled folders, index files, files of model outputs.

Everything returns the same types as the registry sources (an :class:`ImageSet` of
uint8 pixels, or float32 pixels in [0, 1] where the user's arrays are float, or arrays
of logits), so the evaluation sets, the perturbations and the audit treat it like any
other data. Labels are optional, but a file that gives them gives a class index for
every sample: -1 is how a missing label is held in memory, never a label a file may
hold. Every problem with a file is a :class:`~mistrust.errors.DataError` whose message
names the file and the fix.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import torch

from mistrust.data.images import ImageSet
from mistrust.errors import DataError

__all__ = [
    "LABEL_HEADERS",
    "OUTPUT_KINDS",
    "content_hashes",
    "load_dataset_subset",
    "load_image_arrays",
    "load_labelled_folder",
    "read_index",
    "read_outputs_file",
]

#: what a file of model outputs holds: ``logits`` or ``probs`` (probabilities, rows sum to 1)
OUTPUT_KINDS = ("logits", "probs")

#: headers that name the label column of a ``.csv`` of outputs (compared in lower case);
#: every other column is a class
LABEL_HEADERS = ("label", "labels")


def _existing(path: Path | str, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} {path} does not exist; check the path")
    return path


def _npz(path: Path, what: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(
            f"{path}: cannot read {what} as .npz ({exc}); save it with numpy.savez"
        ) from None


def _labels(raw: np.ndarray | None, n: int, path: Path) -> torch.Tensor:
    """``(n,)`` int64 class indices; all -1 when the file gives none (the attacks then
    take the predicted class). Labels that are all -1 are none: that is how mistrust's own
    output files (``RUN/outputs/...``) mark an unlabelled set."""
    if raw is None:
        return torch.full((n,), -1, dtype=torch.long)
    if raw.shape != (n,) or not np.issubdtype(raw.dtype, np.integer):
        raise DataError(
            f"{path}: 'labels' must be integers of shape ({n},), got {raw.dtype} {raw.shape}; "
            "one class index per image"
        )
    if not (raw == -1).all():
        _no_negative(raw, path)
    return torch.from_numpy(raw.astype(np.int64))


def _no_negative(labels: np.ndarray, path: Path | str) -> None:
    # a -1 would be read as "no label" and silently replaced by the predicted class
    if len(labels) and labels.min() < 0:
        row = int(np.argmax(labels < 0))
        raise DataError(
            f"{path}: a label is {int(labels[row])} (sample {row}); labels are class indices "
            "0, 1, ...; give a label for every sample or leave the labels out"
        )


def load_image_arrays(path: Path | str, *, name: str = "") -> ImageSet:
    """Images from an ``.npz`` holding ``images`` and optionally ``labels (N,)``.

    ``images``: uint8 (or float in [0, 1]) ``(N, H, W)``, ``(N, H, W, C)`` or
    ``(N, C, H, W)`` with ``C`` 1 or 3. Float pixels are kept as float32, not rounded to
    8 bits. Without ``labels`` every label is -1 (no class applies: the attacks use the
    predicted class).
    """
    path = _existing(path, "image arrays")
    data = _npz(path, "image arrays")
    if "images" not in data:
        raise DataError(
            f"{path}: no array named 'images' (found {', '.join(sorted(data)) or 'none'}); "
            "save with numpy.savez(path, images=..., labels=...)"
        )
    x = data["images"]
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3) or len(x) == 0:
        raise DataError(
            f"{path}: 'images' must be (N, H, W), (N, H, W, C) or (N, C, H, W) with C 1 or 3 "
            f"and N > 0, got shape {data['images'].shape}"
        )
    if np.issubdtype(x.dtype, np.floating):
        bad = int((~np.isfinite(x)).sum())
        if bad:  # NaN would pass for "outside [0, 1]" in the message below: name it
            raise DataError(
                f"{path}: float 'images' hold {bad} NaN or infinite value(s); they must lie "
                "in [0, 1], or save uint8 pixels"
            )
        if not (x.min() >= 0.0 and x.max() <= 1.0):
            raise DataError(f"{path}: float 'images' must lie in [0, 1]; or save uint8 pixels")
        x = x.astype(np.float32)  # the model's precision; no other change
    elif x.dtype != np.uint8:
        raise DataError(f"{path}: 'images' must be uint8 or float in [0, 1], got {x.dtype}")
    images = torch.from_numpy(np.ascontiguousarray(x))
    return ImageSet(images, _labels(data.get("labels"), len(x), path), [], name or path.stem)


def _label_file(path: Path) -> dict[str, int]:
    """``file,label`` lines (a header line without a number is skipped)."""
    out: dict[str, int] = {}
    with open(_existing(path, "labels file"), newline="") as fh:
        for i, row in enumerate(csv.reader(fh)):
            if not row or not "".join(row).strip():
                continue
            try:
                label = int(row[1])
            except (IndexError, ValueError):
                if i == 0:
                    continue  # a header
                raise DataError(
                    f"{path}, line {i + 1}: expected 'file,label' with an integer label, got {row}"
                ) from None
            if label < 0:
                raise DataError(
                    f"{path}, line {i + 1}: the label is {label}; labels are class indices "
                    "0, 1, ...; give every image its class or leave the labels file out"
                )
            out[row[0].strip()] = label
    return out


def load_labelled_folder(
    root: Path | str,
    *,
    size: int,
    channels: int,
    labels: Path | str | None = None,
    name: str = "",
    fit: str = "squash",
) -> ImageSet:
    """An image folder: ``ROOT/<class>/*`` (labels = sorted class folders) or flat
    ``ROOT/*`` with ``labels``, a CSV of ``file,label`` lines (file relative to ROOT).

    Images are decoded at ``size x size`` with ``channels`` channels.
    """
    from mistrust.data.folders import list_images, load_folder

    root = _existing(root, "image folder")
    images = load_folder(root, size=size, channels=channels, name=name or root.name, fit=fit)
    if labels is None:
        return images
    table = _label_file(Path(labels))
    files = list_images(root)[0]
    y = []
    for f in files:
        key = f.relative_to(root).as_posix()
        if key not in table and f.name not in table:
            raise DataError(
                f"{labels}: no label for {key}; add a line '{key},<class>' or remove the image"
            )
        y.append(table.get(key, table.get(f.name)))
    return ImageSet(images.images, torch.tensor(y, dtype=torch.long), [], images.name)


def read_index(path: Path | str, n: int) -> np.ndarray:
    """Row indices ``(K,)`` int64 into a split of ``n`` images, from ``.npy`` or a text
    file of integers (one per line, or separated by commas or spaces)."""
    path = _existing(path, "index file")
    try:
        if path.suffix == ".npy":
            index = np.load(path, allow_pickle=False)
        else:
            index = np.array(path.read_text().replace(",", " ").split(), dtype=np.int64)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read indices ({exc}); one integer per line") from None
    if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer) or len(index) == 0:
        raise DataError(f"{path}: expected a non-empty 1-D list of integers, got {index.shape}")
    if index.min() < 0 or index.max() >= n:
        raise DataError(
            f"{path}: indices must lie in 0..{n - 1} (the split has {n} images), "
            f"got {int(index.min())}..{int(index.max())}"
        )
    if len(np.unique(index)) != len(index):
        raise DataError(f"{path}: an index appears twice; list each image once")
    return index.astype(np.int64)


def load_dataset_subset(
    dataset: str,
    *,
    split: str,
    index: Path | str | None,
    root: str | None,
    size: int,
    channels: int,
    download: bool = True,
) -> tuple[ImageSet, np.ndarray]:
    """Images of a registry dataset's ``split`` at the rows of ``index`` (all rows if None);
    returns the set and the row indices."""
    from mistrust.data.sources import load_source

    if split not in ("train", "test"):
        raise DataError(f"split must be train or test, got {split!r}")
    full = load_source(
        dataset, split=split, root=root, download=download, size=size, channels=channels
    )
    rows = np.arange(len(full)) if index is None else read_index(index, len(full))
    return full.subset(torch.from_numpy(rows)), rows


def content_hashes(images: torch.Tensor) -> list[str]:
    """SHA-256 of each image ``(N, C, H, W)`` (shape included): equal images, equal hash.

    Float images in [0, 1] that lie on the 8-bit grid (``x = k / 255`` in float32) hash
    as those uint8 pixels, so a set saved as uint8 and the same set as float still match.
    """
    x = images.contiguous().numpy()
    shape = repr(x.shape[1:]).encode()
    if x.dtype == np.uint8:
        return [hashlib.sha256(shape + row.tobytes()).hexdigest() for row in x]
    as8 = np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
    on_grid = (as8.astype(np.float32) / np.float32(255.0) == x).reshape(len(x), -1).all(1)
    return [
        hashlib.sha256(shape + (q.tobytes() if grid else b"float32" + row.tobytes())).hexdigest()
        for row, q, grid in zip(x, as8, on_grid, strict=True)
    ]


def read_outputs_file(path: Path | str, *, kind: str = "logits") -> tuple[np.ndarray, np.ndarray]:
    """A model's outputs on a set: ``logits (N, C)`` float64 and ``labels (N,)`` int64
    (-1 where the file gives none).

    ``.npz``: an array ``logits`` or ``probs`` ``(N, C)``, optionally ``labels (N,)``.
    ``.csv``: a header line, a label column (optional; its header is one of
    :data:`LABEL_HEADERS`, in any case) and one column per class, holding ``kind``
    (``logits`` or ``probs``). Probabilities become log-probabilities, which every
    attack reads as logits.
    """
    from mistrust.attacks.signals import probs_to_logits

    path = _existing(path, "outputs file")
    labels: np.ndarray | None = None
    if path.suffix == ".npz":
        data = _npz(path, "model outputs")
        found = [k for k in OUTPUT_KINDS if k in data]
        if len(found) != 1:
            raise DataError(
                f"{path}: expected one array named 'logits' or 'probs', found "
                f"{', '.join(sorted(data)) or 'none'}; save with numpy.savez(path, logits=...)"
            )
        kind, values, labels = found[0], data[found[0]], data.get("labels")
    elif path.suffix == ".csv":
        values, labels = _read_csv(path)
    else:
        raise DataError(f"{path}: outputs must be a .npz or .csv file, got {path.suffix!r}")
    if values.ndim != 2 or values.shape[1] < 2 or len(values) == 0:
        raise DataError(
            f"{path}: {kind} must be (N, C) with N > 0 and C >= 2 classes, got shape {values.shape}"
        )
    if not np.issubdtype(values.dtype, np.number) or not np.isfinite(values).all():
        raise DataError(f"{path}: {kind} must be finite numbers")
    values = values.astype(np.float64)
    if kind == "probs":
        rows = values.sum(1)
        if values.min() < 0 or values.max() > 1 or not np.allclose(rows, 1.0, atol=1e-3):
            raise DataError(
                f"{path}: probabilities must lie in [0, 1] and each row sum to 1 (a row sums "
                f"to {rows[np.argmax(np.abs(rows - 1))]:.4g}); or give logits"
            )
        values = probs_to_logits(values)
    out_labels = _labels(labels, len(values), path).numpy()
    if out_labels.max(initial=-1) >= values.shape[1]:
        raise DataError(
            f"{path}: a label is {int(out_labels.max())} but there are only {values.shape[1]} "
            "output columns; the outputs and the labels must belong to the same classes"
        )
    return values, out_labels


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r]
    if len(rows) < 2:
        raise DataError(f"{path}: expected a header line and one line per sample")
    header = [h.strip() for h in rows[0]]
    try:
        table = np.array(rows[1:], dtype=np.float64)
    except ValueError:
        raise DataError(f"{path}: every value after the header must be a number") from None
    if table.ndim != 2 or table.shape[1] != len(header):
        raise DataError(f"{path}: every line must have {len(header)} values, as the header")
    found = [j for j, h in enumerate(header) if h.lower() in LABEL_HEADERS]
    if not found:
        return table, None
    if len(found) > 1:
        raise DataError(
            f"{path}: {len(found)} label columns ({', '.join(header[j] for j in found)}); keep one"
        )
    j = found[0]
    labels = table[:, j]
    if not np.array_equal(labels, np.round(labels)):
        raise DataError(f"{path}: the {header[j]!r} column must hold integers")
    _no_negative(labels, path)
    return np.delete(table, j, axis=1), labels.astype(np.int64)
