from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from mistrust.data import DataError, Preprocess, load_source, source_names
from mistrust.data.folders import load_folder
from mistrust.data.sources import read_idx


def _write_idx(path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_idx_round_trip_and_corruption(tmp_path) -> None:
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", arr)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), arr)
    with gzip.open(tmp_path / "t.gz", "wb") as fh:
        fh.write(struct.pack(">BBBB", 0, 0, 8, 1) + struct.pack(">I", 10) + b"abc")
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "t.gz")
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError):
        read_idx(tmp_path / "bad.gz")


def test_fashion_from_explicit_root(tmp_path) -> None:
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28)))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(5))
    s = load_source("fashion-mnist", split="test", root=str(tmp_path))
    assert s.images.shape == (5, 1, 28, 28) and s.labels.tolist() == [0, 1, 2, 3, 4]


def test_missing_data_names_the_fix(tmp_path, monkeypatch) -> None:
    import mistrust.data.sources as src

    monkeypatch.setitem(src.DEBIAN_ROOTS, "mnist", tmp_path / "nowhere")
    with pytest.raises(DataError, match="apt-get install dataset-mnist|--data-root"):
        load_source("mnist", split="train", root=str(tmp_path), download=False)


def test_digits_always_available_and_disjoint() -> None:
    tr = load_source("digits", split="train")
    te = load_source("digits", split="test")
    assert tr.images.dtype == torch.uint8 and tr.images.shape[1:] == (1, 8, 8)
    assert len(tr) + len(te) == 1797
    assert int(tr.images.max()) == 255


def test_registry_lists_the_issue_datasets() -> None:
    assert {
        "fashion-mnist",
        "digits",
        "mnist",
        "cifar10",
        "cifar100",
        "svhn",
        "stl10",
        "stanford-dogs",
        "afhq-cat",
        "afhq-dog",
        "afhq-wild",
    } <= set(source_names())


def test_preprocess_resizes_matches_channels_and_normalises() -> None:
    pre = Preprocess(3, 16, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    x = torch.full((2, 1, 8, 8), 255, dtype=torch.uint8)
    out = pre(x)
    assert out.shape == (2, 3, 16, 16) and torch.allclose(out, torch.ones_like(out))
    gray = Preprocess(1, 8, (0.0,), (1.0,))
    rgb = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    rgb[:, 0] = 255
    assert torch.allclose(gray(rgb), torch.full((1, 1, 8, 8), 0.299))


def test_image_folder_mixed_sizes_modes_and_empty(tmp_path) -> None:
    from PIL import Image

    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "cats" / "a.png")
    Image.new("L", (10, 10), 128).save(tmp_path / "dogs" / "b.jpg")
    Image.new("RGBA", (12, 20)).save(tmp_path / "dogs" / "c.png")
    s = load_folder(tmp_path, size=16, channels=3)
    assert s.images.shape == (3, 3, 16, 16) and s.labels.tolist() == [0, 1, 1]
    assert s.classes == ["cats", "dogs"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_folder(tmp_path / "empty", size=16)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot decode"):
        load_folder(tmp_path / "broken", size=16)


@pytest.mark.realdata
def test_real_fashion_mnist() -> None:
    tr = load_source("fashion-mnist", split="train")
    te = load_source("fashion-mnist", split="test")
    assert tr.images.shape == (60000, 1, 28, 28) and te.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(te.labels).tolist() == [1000] * 10
