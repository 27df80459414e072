import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

from mistrust.present.report.gallery import DPI, gallery_figsize, save_gallery, top_scored


def test_top_scored_picks_highest_descending():
    score = np.array([0.1, 0.9, 0.5, 0.99, 0.3])
    assert top_scored(score, 3).tolist() == [3, 1, 2]
    assert top_scored(score, 10).tolist() == [3, 1, 2, 4, 0]
    assert top_scored(score, 0).tolist() == []


def test_top_scored_ties_keep_lower_index_first():
    score = np.array([1.0, 0.5, 1.0, 1.0, 0.5])
    assert top_scored(score, 4).tolist() == [0, 2, 3, 1]


def test_top_scored_nan_last_and_bad_input():
    assert top_scored(np.array([np.nan, 0.2, 0.7]), 3).tolist() == [2, 1, 0]
    with pytest.raises(ValueError):
        top_scored(np.zeros((2, 2)), 1)
    with pytest.raises(ValueError):
        top_scored(np.zeros(3), -1)


@pytest.mark.parametrize(("k", "channels", "columns"), [(10, 1, 4), (3, 3, 8)])
def test_gallery_png_written_with_expected_size(tmp_path, k, channels, columns):
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (k, channels, 12, 12), dtype=np.uint8))
    path = tmp_path / "sub" / "gallery.png"
    save_gallery(images, rng.random(k), path, title="False positives", columns=columns)
    png = mpimg.imread(path)
    w, h = gallery_figsize(k, columns=columns)
    assert png.shape[:2] == (round(h * DPI), round(w * DPI))
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


def test_gallery_is_reproducible_and_accepts_numpy(tmp_path):
    images = np.full((2, 1, 8, 8), 200, dtype=np.uint8)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    kw = dict(title="t", captions=["scaled", "noise"], is_member=np.array([True, False]))
    save_gallery(images, np.array([1.0, 0.99995]), a, **kw)
    save_gallery(images, np.array([1.0, 0.99995]), b, **kw)
    assert a.read_bytes() == b.read_bytes()


def test_gallery_rejects_bad_input(tmp_path):
    images = np.zeros((2, 1, 8, 8), dtype=np.uint8)
    with pytest.raises(ValueError, match="2 images but 3 scores"):
        save_gallery(images, np.zeros(3), tmp_path / "x.png", title="t")
    with pytest.raises(ValueError, match="uint8"):
        save_gallery(images.astype(np.float32), np.zeros(2), tmp_path / "x.png", title="t")
