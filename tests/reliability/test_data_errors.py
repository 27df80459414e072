"""Bad data: missing or damaged files fail with one line and exit 2; odd but valid images work."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reliability_helpers import assert_user_error, run_tiny

from mistrust.data import sources
from mistrust.io import load_npz

IDX = {
    "train-images-idx3-ubyte": ("images", "train"),
    "train-labels-idx1-ubyte": ("labels", "train"),
    "t10k-images-idx3-ubyte": ("images", "test"),
    "t10k-labels-idx1-ubyte": ("labels", "test"),
}
MNIST = ["data.dataset=mnist", "data.download=false", "data.image_size=null"]


def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.tobytes()


def make_mnist(root: Path, mutate: Callable[[str, bytes], bytes | None] | None = None) -> Path:
    """A fake MNIST (160 random images per split) as gzipped IDX files; ``mutate`` damages one."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for stem, (kind, _) in IDX.items():
        raw = idx_bytes(
            rng.integers(0, 256, (160, 28, 28)) if kind == "images" else np.arange(160) % 10
        )
        raw = mutate(stem, raw) if mutate else raw
        if raw is not None:
            (root / f"{stem}.gz").write_bytes(gzip.compress(raw))
    return root


def _only(stem: str, fn: Callable[[bytes], bytes | None]) -> Callable[[str, bytes], bytes | None]:
    return lambda s, raw: fn(raw) if s == stem else raw


def _run_mnist(capsys, out: Path, root: Path):
    return run_tiny(capsys, out, *MNIST, f"data.root={root}")


def test_dataset_missing(capsys, tmp_path: Path, expect_untouched) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    res = expect_untouched(lambda out: _run_mnist(capsys, out, empty))
    assert_user_error(
        res, "mnist not found: looked in", str(empty), "--data-root", "--set data.download=true"
    )
    assert "apt-get" not in res.stderr  # Debian has no MNIST package


def test_dataset_missing_after_a_failed_download(
    capsys, tmp_path: Path, monkeypatch, expect_untouched
) -> None:
    import torchvision.datasets as tvd

    def offline(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(tvd, "MNIST", offline)
    monkeypatch.setenv("MISTRUST_CACHE", str(tmp_path / "cache"))
    empty = tmp_path / "empty"
    empty.mkdir()
    res = expect_untouched(
        lambda out: run_tiny(
            capsys, out, "data.dataset=mnist", "data.image_size=null", f"data.root={empty}"
        )
    )
    assert_user_error(
        res,
        "run where torchvision can download it (here it failed: RuntimeError: Error downloading",
    )


def test_debian_dataset_missing_names_its_package(
    capsys, tmp_path: Path, monkeypatch, expect_untouched
) -> None:
    monkeypatch.setitem(sources.DEBIAN_ROOTS, "fashion-mnist", tmp_path / "nowhere")
    monkeypatch.setenv("MISTRUST_CACHE", str(tmp_path / "cache"))
    empty = tmp_path / "empty"
    empty.mkdir()
    res = expect_untouched(
        lambda out: run_tiny(
            capsys,
            out,
            "data.dataset=fashion-mnist",
            "data.download=false",
            "data.image_size=null",
            f"data.root={empty}",
        )
    )
    assert_user_error(res, "fashion-mnist not found", "apt-get install dataset-fashion-mnist")


def test_dataset_file_missing(capsys, tmp_path: Path, expect_untouched) -> None:
    root = make_mnist(tmp_path / "m", _only("t10k-labels-idx1-ubyte", lambda raw: None))
    res = expect_untouched(lambda out: _run_mnist(capsys, out, root))
    assert_user_error(res, "mnist not found", "t10k-labels-idx1-ubyte.gz")


DAMAGE = {
    # id: (file to damage, damage to the raw IDX bytes, words of the error line)
    "truncated-idx": (
        "train-images-idx3-ubyte",
        lambda raw: raw[: len(raw) // 2],
        ["train-images-idx3-ubyte.gz: truncated IDX file", "reinstall"],
    ),
    "truncated-idx-header": (
        "train-images-idx3-ubyte",
        lambda raw: raw[:6],
        ["truncated IDX header", "reinstall"],
    ),
    "bad-idx-magic": (
        "train-images-idx3-ubyte",
        lambda raw: b"\x01" + raw[1:],
        ["not a uint8 IDX file (bad magic number)", "reinstall"],
    ),
    "labels-do-not-match-images": (
        "train-labels-idx1-ubyte",
        lambda raw: idx_bytes(np.arange(100) % 10),
        ["160 images but train-labels-idx1-ubyte.gz has 100 labels", "reinstall"],
    ),
    "labels-file-holds-images": (
        "t10k-labels-idx1-ubyte",
        lambda raw: idx_bytes(np.zeros((160, 28, 28))),
        ["expected images (N, H, W) and labels (N,)", "reinstall"],
    ),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_idx(case: str, capsys, tmp_path: Path, expect_untouched) -> None:
    stem, damage, needles = DAMAGE[case]
    root = make_mnist(tmp_path / "m", _only(stem, damage))
    res = expect_untouched(lambda out: _run_mnist(capsys, out, root))
    assert_user_error(res, *needles)


GZ_DAMAGE = {
    "truncated-gz": (lambda gz: gz[: len(gz) // 2], "Compressed file ended"),
    "not-gzip": (lambda gz: b"this is not gzip" * 8, "Not a gzipped file"),
    "corrupt-gz-crc": (
        lambda gz: gz[:-8] + bytes(b ^ 0xFF for b in gz[-8:-4]) + gz[-4:],
        "CRC check failed",
    ),
    "corrupt-gz-stream": (
        lambda gz: gz[:12] + bytes(b ^ 0x5A for b in gz[12:40]) + gz[40:],
        "decompressing data",
    ),
}


@pytest.mark.parametrize("case", list(GZ_DAMAGE))
def test_damaged_gz_archive(case: str, capsys, tmp_path: Path, expect_untouched) -> None:
    damage, reason = GZ_DAMAGE[case]
    root = make_mnist(tmp_path / "m")
    gz = root / "train-images-idx3-ubyte.gz"
    gz.write_bytes(damage(gz.read_bytes()))
    res = expect_untouched(lambda out: _run_mnist(capsys, out, root))
    assert_user_error(res, "train-images-idx3-ubyte.gz: cannot read IDX file", reason, "reinstall")


# ---------------------------------------------------------------- image folders


def _image(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    rgb = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(rgb).convert(mode)


def mixed_folder(root: Path) -> Path:
    """Images of many sizes and modes (1, L, P, RGB, RGBA, LA, CMYK, 16-bit), some in class
    sub-folders, one with an upper-case extension."""
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    _image("RGB", (10, 14), 0).save(root / "a" / "rgb.png")
    _image("L", (40, 30), 1).save(root / "a" / "grey.jpg")
    _image("RGBA", (20, 20), 2).save(root / "b" / "alpha.png")
    _image("P", (9, 9), 3).save(root / "b" / "palette.gif")
    _image("1", (33, 7), 4).save(root / "bits.bmp")
    _image("LA", (12, 12), 5).save(root / "grey-alpha.PNG")
    _image("CMYK", (16, 16), 6).save(root / "cmyk.tiff")
    deep = np.random.default_rng(7).integers(0, 65535, (11, 13), dtype=np.uint16)
    Image.fromarray(deep).save(root / "sixteen-bit.tif")
    (root / "notes.txt").write_text("not an image, ignored by extension")
    return root


def test_folder_with_mixed_sizes_and_modes_works(capsys, tmp_path: Path) -> None:
    folder = mixed_folder(tmp_path / "mixed")
    out = tmp_path / "run"
    res = run_tiny(capsys, out, "eval.sets=[original, mine]", f"eval.folders={{mine: {folder}}}")
    assert res.code == 0, res.stderr[-2000:]
    logits = load_npz(out / "outputs/base/target/mine.npz")["logits"]
    assert logits.shape == (8, 10) and np.isfinite(logits).all()
    assert (out / "figures/gallery_mine.png").is_file()


def test_grayscale_data_for_rgb_model_works(capsys, tmp_path: Path) -> None:
    """An RGB model (CIFAR-10 shaped) audited on grayscale sets: channels are replicated."""
    grey = tmp_path / "grey"
    grey.mkdir()
    for i in range(5):
        _image("L", (28, 28), i).save(grey / f"{i}.png")
    out = tmp_path / "run"
    res = run_tiny(
        capsys,
        out,
        "data.dataset=cifar10",
        "data.stand_in=true",
        "data.image_size=null",
        "eval.sets=[original, digits, grey]",
        f"eval.folders={{grey: {grey}}}",
    )
    assert res.code == 0, res.stderr[-2000:]
    for name, n in (("digits", 32), ("grey", 5)):
        logits = load_npz(out / f"outputs/base/target/{name}.npz")["logits"]
        assert logits.shape == (n, 10) and np.isfinite(logits).all()


def _folder_run(capsys, out: Path, folder: Path):
    return run_tiny(capsys, out, "eval.sets=[original, mine]", f"eval.folders={{mine: {folder}}}")


def test_folder_missing(capsys, tmp_path: Path, expect_untouched) -> None:
    res = expect_untouched(lambda out: _folder_run(capsys, out, tmp_path / "nowhere"))
    assert_user_error(res, "image folder", "nowhere does not exist", "check the path")


def test_folder_empty(capsys, tmp_path: Path, expect_untouched) -> None:
    empty = tmp_path / "empty"
    (empty / "class-a").mkdir(parents=True)
    (empty / "readme.txt").write_text("no images here")
    res = expect_untouched(lambda out: _folder_run(capsys, out, empty))
    assert_user_error(res, "holds no images", "put images in it")


@pytest.mark.parametrize("damage", ["not-an-image", "truncated-jpeg", "empty-file"])
def test_folder_with_undecodable_file(
    damage: str, capsys, tmp_path: Path, expect_untouched
) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    _image("RGB", (16, 16), 0).save(folder / "good.png")
    _image("RGB", (64, 64), 1).save(tmp_path / "big.jpg")
    jpeg = (tmp_path / "big.jpg").read_bytes()
    bad = {
        "not-an-image": b"plain text, not a JPEG",
        "truncated-jpeg": jpeg[: len(jpeg) // 3],
        "empty-file": b"",
    }[damage]
    (folder / "zz-bad.jpg").write_bytes(bad)
    res = expect_untouched(lambda out: _folder_run(capsys, out, folder))
    assert_user_error(res, "zz-bad.jpg: cannot decode image", "remove or replace the file")
