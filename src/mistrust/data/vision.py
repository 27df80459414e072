"""torchvision datasets (CIFAR, SVHN, STL-10): downloaded where there is network."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch

from mistrust.data.images import ImageSet
from mistrust.data.sources import (
    DataError,
    SourceSpec,
    candidate_roots,
    download_lock,
    register_source,
)

log = logging.getLogger(__name__)

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
STL_MONKEY = 7  # STL-10 class "monkey": the paper removes it (no CIFAR-10 counterpart)
#: what torchvision reads under a root folder (as its download leaves it)
TORCHVISION_FILES = {
    "cifar10": "folder cifar-10-batches-py/",
    "cifar100": "folder cifar-100-python/",
    "svhn": "files train_32x32.mat and test_32x32.mat",
    "stl10": "folder stl10_binary/",
}


def _open(
    name: str, factory: Callable[[str, bool], object], root: str | None, download: bool
) -> object:
    roots = candidate_roots(name, root)
    for r in roots:
        try:
            return factory(str(r), False)
        except (RuntimeError, FileNotFoundError, OSError):
            continue
    failed = ""
    if download:
        try:
            with download_lock(name):  # torchvision writes its files in place
                return factory(str(roots[-1]), True)
        except Exception as exc:  # noqa: BLE001 - report below with the fix
            log.debug("download of %s failed: %s", name, exc)
            failed = " ".join(f"{type(exc).__name__}: {exc}".split())[:120]
    how = (
        f"run where torchvision can download it (here it failed: {failed})"
        if failed
        else "let torchvision download it (--set data.download=true, needs network)"
    )
    raise DataError(
        f"{name} not found (or its files failed torchvision's checksum): looked in "
        f"{', '.join(str(r) for r in roots)}; put torchvision's {TORCHVISION_FILES[name]} "
        f"in a folder and pass --data-root or set MISTRUST_DATA, or {how}"
    )


def _to_set(
    data: np.ndarray, labels: object, classes: list[str], name: str, channels_last: bool
) -> ImageSet:
    x = torch.from_numpy(np.ascontiguousarray(data))
    if channels_last:
        x = x.permute(0, 3, 1, 2).contiguous()
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    return ImageSet(x, y, classes, name)


def _cifar(name: str, cls_name: str) -> Callable[..., ImageSet]:
    def load(*, split: str, root: str | None, download: bool, **_: object) -> ImageSet:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        ds = _open(name, lambda r, d: cls(r, train=split == "train", download=d), root, download)
        return _to_set(ds.data, ds.targets, list(ds.classes), name, channels_last=True)

    return load


def _svhn(*, split: str, root: str | None, download: bool, **_: object) -> ImageSet:
    import torchvision.datasets as tvd

    ds = _open("svhn", lambda r, d: tvd.SVHN(r, split=split, download=d), root, download)
    return _to_set(ds.data, ds.labels, [str(i) for i in range(10)], "svhn", channels_last=False)


def _stl10(*, split: str, root: str | None, download: bool, **_: object) -> ImageSet:
    import torchvision.datasets as tvd

    ds = _open("stl10", lambda r, d: tvd.STL10(r, split=split, download=d), root, download)
    keep = ds.labels != STL_MONKEY
    return _to_set(ds.data[keep], ds.labels[keep], list(ds.classes), "stl10", channels_last=False)


register_source(
    SourceSpec(
        "cifar10",
        3,
        32,
        10,
        CIFAR_MEAN,
        CIFAR_STD,
        _cifar("cifar10", "CIFAR10"),
        "torchvision download",
        download_sizes=(50000, 10000),
    )
)
register_source(
    SourceSpec(
        "cifar100",
        3,
        32,
        100,
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
        _cifar("cifar100", "CIFAR100"),
        "torchvision download",
        download_sizes=(50000, 10000),
    )
)
register_source(
    SourceSpec(
        "svhn",
        3,
        32,
        10,
        (0.4377, 0.4438, 0.4728),
        (0.1980, 0.2010, 0.1970),
        _svhn,
        "torchvision download",
        download_sizes=(73257, 26032),
    )
)
register_source(
    SourceSpec(
        "stl10",
        3,
        96,
        9,
        (0.4467, 0.4398, 0.4066),
        (0.2603, 0.2566, 0.2713),
        _stl10,
        "torchvision download (monkeys removed)",
        download_sizes=(4500, 7200),
    )
)
