"""Dataset sources behind one registry.

Every source returns an in-memory ``ImageSet`` (uint8 pixels). Small datasets
are read whole; image folders are decoded once at the resolution asked for.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mistrust.data.images import ImageSet
from mistrust.errors import DataError

log = logging.getLogger(__name__)

#: datasets Debian packages (``apt-cache search``: MNIST itself is not packaged) -> folder
DEBIAN_ROOTS = {
    "fashion-mnist": Path("/usr/share/datasets/fashion-mnist"),
}
DEBIAN_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}
#: the two pools of every dataset (``eval.ood_split`` chooses one for other datasets' sets)
SPLITS: tuple[str, ...] = ("train", "test")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class SourceSpec:
    name: str
    channels: int
    size: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    loader: Callable[..., ImageSet]
    help: str  # where the data comes from / how to install it
    # "train" and "test" are mistrust's own seeded random split of one pool, so a run's
    # members and in-distribution non-members are i.i.d. by construction (docs/CHECKS.md);
    # False for a published split, whose two halves mistrust cannot vouch for
    one_pool: bool = False
    # train / test pool sizes where torchvision downloads the dataset: the plan counts them
    # before the download (classes assumed balanced, which CIFAR, STL-10 and the MNISTs
    # are; SVHN is not); None: no download
    download_sizes: tuple[int, int] | None = None


_SOURCES: dict[str, SourceSpec] = {}


def register_source(spec: SourceSpec) -> None:
    if spec.name in _SOURCES:
        raise ValueError(f"dataset source {spec.name!r} is already registered")
    _SOURCES[spec.name] = spec


#: dataset name -> one split's labels ``(N,)`` and where they are, read without the images
#: (for the plan check); datasets without a reader are loaded whole instead
LABEL_READERS: dict[str, Callable[[str, str | None], tuple[np.ndarray, str]]] = {}


def source_labels(name: str, split: str, root: str | None) -> tuple[np.ndarray, str] | None:
    """Labels of ``split`` of ``name`` and their folder, without decoding images; ``None``
    when the dataset has no label reader. Raises ``DataError`` when it is not found."""
    reader = LABEL_READERS.get(name)
    return None if reader is None else reader(split, root)


def source_names() -> list[str]:
    return sorted(_SOURCES)


def get_source(name: str) -> SourceSpec:
    if name not in _SOURCES:
        raise DataError(f"unknown dataset {name!r}; choose from {', '.join(source_names())}")
    return _SOURCES[name]


def default_cache() -> Path:
    return Path(os.environ.get("MISTRUST_CACHE", Path.home() / ".cache" / "mistrust"))


def download_lock(name: str) -> AbstractContextManager[None]:
    """Serialise downloads of dataset ``name`` into the shared cache across processes.

    torchvision writes and extracts archives in place, so two runs downloading
    the same dataset into one ``MISTRUST_CACHE`` at once would corrupt it; the
    second waits and then finds the finished files.
    """
    from mistrust.io import exclusive

    return exclusive(default_cache() / "data" / f".{name}.lock", what=f"download of {name}")


def candidate_roots(name: str, root: str | None) -> list[Path]:
    """Search order: explicit root, ``MISTRUST_DATA``, the Debian location, the download cache."""
    roots: list[Path] = []
    if root:
        roots.append(Path(root))
    if os.environ.get("MISTRUST_DATA"):
        roots.append(Path(os.environ["MISTRUST_DATA"]))
    if name in DEBIAN_ROOTS:
        roots.append(DEBIAN_ROOTS[name])
    roots.append(default_cache() / "data")
    return roots


def load_source(
    name: str,
    *,
    split: str = "train",
    root: str | None = None,
    download: bool = False,
    size: int | None = None,
    channels: int | None = None,
    fit: str = "squash",
) -> ImageSet:
    """Load ``split`` ("train" or "test") of a registered dataset as uint8 tensors.

    ``fit`` tells image-folder sources how to make non-square images square
    (``"squash"`` or ``"center-crop"``); in-memory datasets keep their own size.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    spec = get_source(name)
    return spec.loader(
        split=split, root=root, download=download, size=size, channels=channels, fit=fit
    )


def _first_line(exc: BaseException) -> str:
    """An exception in a few words (download errors can run over many lines)."""
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


# ---------------------------------------------------------------- IDX (MNIST family)


def _reinstall(path: Path) -> str:
    """How to replace a damaged dataset file: the package command for Debian's copy."""
    for name, root in DEBIAN_ROOTS.items():
        if path.parent == root:
            return f"reinstall the package (apt-get install --reinstall {DEBIAN_PACKAGES[name]})"
    return "delete it and reinstall the dataset"


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (optionally gzipped) into a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    fix = _reinstall(path)
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc}); {fix}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not a uint8 IDX file (bad magic number); {fix}")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header; {fix}")
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    expected = int(np.prod(dims))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != expected:
        raise DataError(f"{path}: truncated IDX file ({data.size} of {expected} values); {fix}")
    return data.reshape(dims)


def _idx_pair(img: Path, lab: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, H, W)`` and labels ``(N,)`` of one split, checked against each other."""
    x, y = read_idx(img), read_idx(lab)
    fix = "the two files belong to different datasets or one is damaged; reinstall the dataset"
    if x.ndim != 3 or y.ndim != 1:
        raise DataError(
            f"{img.parent}: expected images (N, H, W) and labels (N,), got shapes "
            f"{x.shape} and {y.shape}; {fix}"
        )
    if len(x) != len(y):
        raise DataError(f"{img}: {len(x)} images but {lab.name} has {len(y)} labels; {fix}")
    if y.size and int(y.max()) >= n_classes:
        raise DataError(f"{lab}: label {int(y.max())} outside 0..{n_classes - 1}; {fix}")
    return x, y


_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find_idx(root: Path, stem: str) -> Path | None:
    for sub in ("", "raw", "FashionMNIST/raw", "MNIST/raw"):
        for suffix in (".gz", ""):
            p = root / sub / (stem + suffix)
            if p.is_file():
                return p
    return None


def _idx_loader(name: str, tv_class: str, classes: list[str]) -> Callable[..., ImageSet]:
    def load(*, split: str, root: str | None, download: bool, **_: object) -> ImageSet:
        img_stem, lab_stem = _IDX_FILES[split]
        roots = candidate_roots(name, root)
        for r in roots:
            img, lab = _find_idx(r, img_stem), _find_idx(r, lab_stem)
            if img and lab:
                log.debug("reading %s %s from %s", name, split, img.parent)
                xs, ys = _idx_pair(img, lab, len(classes))
                x = torch.from_numpy(xs.copy()).unsqueeze(1)
                y = torch.from_numpy(ys.astype(np.int64))
                return ImageSet(x, y, classes, name)
        failed = ""
        if download:
            target = default_cache() / "data"
            try:
                import torchvision.datasets as tvd

                with download_lock(name):  # torchvision writes its files in place
                    getattr(tvd, tv_class)(str(target), train=split == "train", download=True)
            except Exception as exc:  # noqa: BLE001 - any download failure means "not available"
                log.debug("download of %s failed: %s", name, exc)
                failed = _first_line(exc)
            else:
                return load(split=split, root=str(target), download=False)
        fixes = []
        if name in DEBIAN_PACKAGES:
            fixes.append(f"install it with apt-get install {DEBIAN_PACKAGES[name]}")
        fixes.append(
            f"put {img_stem}.gz, {lab_stem}.gz and the other split's two files in a folder and "
            "pass --data-root or set MISTRUST_DATA"
        )
        if failed:
            fixes.append(f"run where torchvision can download it (here it failed: {failed})")
        else:
            fixes.append("let torchvision download it (--set data.download=true, needs network)")
        raise DataError(
            f"{name} not found: looked in {', '.join(str(r) for r in roots)}; "
            + ", or ".join(fixes)
        )

    def labels(split: str, root: str | None) -> tuple[np.ndarray, str]:
        img_stem, lab_stem = _IDX_FILES[split]
        for r in candidate_roots(name, root):
            img, lab = _find_idx(r, img_stem), _find_idx(r, lab_stem)
            if img and lab:
                y = read_idx(lab)
                n_images = _idx_count(img)
                if y.ndim != 1 or n_images != len(y):
                    _idx_pair(img, lab, len(classes))  # raises with the full diagnosis
                return y.astype(np.int64), str(img.parent)
        load(split=split, root=root, download=False)  # raises "not found" with the fixes
        raise AssertionError("unreachable")  # pragma: no cover

    LABEL_READERS[name] = labels
    return load


def _idx_count(path: Path) -> int:
    """The first dimension of an IDX file, from its header alone."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(8)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc}); {_reinstall(path)}") from None
    if len(head) < 8 or head[:3] != b"\x00\x00\x08":
        return read_idx(path).shape[0]  # raises with the precise problem
    return int.from_bytes(head[4:8], "big")


FASHION_CLASSES = [
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
]
register_source(
    SourceSpec(
        "fashion-mnist",
        1,
        28,
        10,
        (0.2860,),
        (0.3530,),
        _idx_loader("fashion-mnist", "FashionMNIST", FASHION_CLASSES),
        "Debian package dataset-fashion-mnist, or torchvision download",
        download_sizes=(60000, 10000),
    )
)
register_source(
    SourceSpec(
        "mnist",
        1,
        28,
        10,
        (0.1307,),
        (0.3081,),
        _idx_loader("mnist", "MNIST", [str(i) for i in range(10)]),
        "torchvision download, or IDX files under --data-root",
        download_sizes=(60000, 10000),
    )
)


def _load_digits(*, split: str, **_: object) -> ImageSet:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(np.round(d.images * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(d.target.astype(np.int64))
    # scikit-learn ships one set; a fixed half each keeps "train" and "test" disjoint
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(x)))
    half = len(x) // 2
    idx = order[:half] if split == "train" else order[half:]
    return ImageSet(x[idx], y[idx], [str(i) for i in range(10)], "digits")


register_source(
    SourceSpec(
        "digits",
        1,
        8,
        10,
        (0.3,),
        (0.4,),
        _load_digits,
        "bundled with scikit-learn (always available)",
        one_pool=True,
    )
)
