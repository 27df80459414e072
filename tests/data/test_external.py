"""Data and models a user brings: folders, arrays, index files, exported programs."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from mistrust.data.external import (
    content_hashes,
    load_dataset_subset,
    load_image_arrays,
    load_labelled_folder,
    read_index,
    read_outputs_file,
)
from mistrust.data.images import Preprocess, to_uint8
from mistrust.errors import CheckpointError, DataError, InputError
from mistrust.models.external import (
    check_export_archive,
    find_last_linear,
    load_exported,
    wrap_module,
)


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4), value, np.uint8), mode="L").save(path)


def test_folder_with_class_subfolders_and_flat_with_labels_file(tmp_path: Path) -> None:
    _png(tmp_path / "classes" / "cat" / "a.png", 10)
    _png(tmp_path / "classes" / "dog" / "b.png", 20)
    _png(tmp_path / "classes" / "dog" / "c.png", 30)
    s = load_labelled_folder(tmp_path / "classes", size=4, channels=1)
    assert s.labels.tolist() == [0, 1, 1] and s.images[:, 0, 0, 0].tolist() == [10, 20, 30]
    _png(tmp_path / "flat" / "x.png", 40)
    _png(tmp_path / "flat" / "y.png", 50)
    (tmp_path / "labels.csv").write_text("file,label\ny.png,3\nx.png,7\n")
    s = load_labelled_folder(tmp_path / "flat", size=4, channels=1, labels=tmp_path / "labels.csv")
    assert s.labels.tolist() == [7, 3] and s.images[:, 0, 0, 0].tolist() == [40, 50]
    (tmp_path / "labels.csv").write_text("x.png,7\n")
    with pytest.raises(DataError, match="no label for y.png"):
        load_labelled_folder(tmp_path / "flat", size=4, channels=1, labels=tmp_path / "labels.csv")


def test_image_arrays_every_layout(tmp_path: Path) -> None:
    x = np.arange(2 * 3 * 5 * 5, dtype=np.uint8).reshape(2, 3, 5, 5)  # (N, C, H, W)
    for name, arr in (("nchw", x), ("nhwc", x.transpose(0, 2, 3, 1))):
        np.savez(tmp_path / f"{name}.npz", images=arr, labels=np.array([1, 0]))
        s = load_image_arrays(tmp_path / f"{name}.npz")
        assert torch.equal(s.images, torch.from_numpy(x)) and s.labels.tolist() == [1, 0]
    np.savez(tmp_path / "gray.npz", images=np.full((3, 6, 6), 0.5))  # float in [0, 1], no labels
    s = load_image_arrays(tmp_path / "gray.npz")
    # float64 0.5 is float32 0.5, not 8-bit 128 (128 / 255 = 0.50196)
    assert s.images.shape == (3, 1, 6, 6) and s.images.dtype == torch.float32
    assert float(s.images[0, 0, 0, 0]) == 0.5
    assert s.labels.tolist() == [-1, -1, -1]
    np.savez(tmp_path / "bad.npz", images=np.zeros((3, 6, 6)), labels=np.zeros(2, np.int64))
    with pytest.raises(DataError, match="'labels' must be integers of shape"):
        load_image_arrays(tmp_path / "bad.npz")


def test_float_images_name_nan_apart_from_the_range(tmp_path: Path) -> None:
    x = np.full((3, 6, 6), 0.5)
    x[0, 0, :2] = np.nan
    np.savez(tmp_path / "nan.npz", images=x)
    with pytest.raises(DataError, match=r"hold 2 NaN or infinite value\(s\); they must lie in"):
        load_image_arrays(tmp_path / "nan.npz")
    np.savez(tmp_path / "wide.npz", images=np.full((3, 6, 6), 2.0))  # finite, out of range
    with pytest.raises(DataError, match=r"float 'images' must lie in \[0, 1\]; or save uint8"):
        load_image_arrays(tmp_path / "wide.npz")


def test_image_labels_are_class_indices_or_absent(tmp_path: Path) -> None:
    # -1 is "no label" in memory; in a file it is a mistake, never a silent "unlabelled"
    np.savez(tmp_path / "neg.npz", images=np.zeros((3, 4, 4), np.uint8), labels=[0, -1, 2])
    with pytest.raises(DataError, match=r"neg.npz: a label is -1 \(sample 1\)"):
        load_image_arrays(tmp_path / "neg.npz")
    _png(tmp_path / "flat" / "x.png", 40)
    (tmp_path / "labels.csv").write_text("file,label\nx.png,-2\n")
    with pytest.raises(DataError, match="line 2: the label is -2"):
        load_labelled_folder(tmp_path / "flat", size=4, channels=1, labels=tmp_path / "labels.csv")


def test_float_pixels_reach_the_transform_unrounded() -> None:
    pre = Preprocess(1, 2, (0.5,), (0.25,))
    x8 = torch.tensor([0, 1, 128, 255], dtype=torch.uint8).view(1, 1, 2, 2)
    # the same pixels as float32 k / 255: the very same model input, bit for bit
    x32 = torch.from_numpy(x8.numpy().astype(np.float32) / np.float32(255))
    assert torch.equal(pre(x8), pre(x32))
    # floats off the 8-bit grid are normalised as they are, by hand: (x - 0.5) / 0.25
    off = torch.tensor([0.0, 0.001, 0.5012, 1.0]).view(1, 1, 2, 2)
    want = torch.tensor([-2.0, -1.996, 0.0048, 2.0])
    assert torch.allclose(pre(off).flatten(), want, rtol=0, atol=1e-6)
    assert pre.to_unit(off) is not off  # a copy: nothing downstream changes the set
    # the 8-bit copy (the GAN's training images only) rounds; uint8 stays as it is
    assert to_uint8(off).flatten().tolist() == [0, 0, 128, 255] and to_uint8(x8) is x8


def test_index_files_and_registry_subset(tmp_path: Path) -> None:
    (tmp_path / "idx.txt").write_text("4\n0, 2\n")
    assert read_index(tmp_path / "idx.txt", 5).tolist() == [4, 0, 2]
    np.save(tmp_path / "idx.npy", np.array([5]))
    with pytest.raises(DataError, match=r"indices must lie in 0\.\.4"):
        read_index(tmp_path / "idx.npy", 5)
    (tmp_path / "dup.txt").write_text("1 1")
    with pytest.raises(DataError, match="appears twice"):
        read_index(tmp_path / "dup.txt", 5)
    from sklearn.datasets import load_digits

    (tmp_path / "rows.txt").write_text("3 1")
    s, rows = load_dataset_subset(
        "digits", split="train", index=tmp_path / "rows.txt", root=None, size=8, channels=1
    )
    full, _ = load_dataset_subset(
        "digits", split="train", index=None, root=None, size=8, channels=1
    )
    assert rows.tolist() == [3, 1] and torch.equal(s.images, full.images[[3, 1]])
    assert len(full) < len(load_digits().target)  # the registry's own train split


def test_content_hashes_equal_only_for_equal_pixels() -> None:
    x = torch.zeros((3, 1, 2, 2), dtype=torch.uint8)
    x[1, 0, 0, 0] = 1
    h = content_hashes(x)
    assert h[0] == h[2] != h[1]
    # the same pixels saved as float32 k / 255 match; a float off the 8-bit grid does not
    f = x.float() / 255
    assert content_hashes(f) == h
    f[2, 0, 0, 0] = 0.001
    assert content_hashes(f)[:2] == h[:2] and content_hashes(f)[2] not in h


def test_outputs_csv_with_label_column(tmp_path: Path) -> None:
    (tmp_path / "o.csv").write_text("a,label,b\n1.0,1,2.0\n3.0,0,-1.0\n")
    logits, labels = read_outputs_file(tmp_path / "o.csv")
    assert logits.tolist() == [[1.0, 2.0], [3.0, -1.0]] and labels.tolist() == [1, 0]
    # the label column's header in any case, spaces around it: not a class
    (tmp_path / "o.csv").write_text("a, Label ,b\n1.0,1,2.0\n3.0,0,-1.0\n")
    logits, labels = read_outputs_file(tmp_path / "o.csv")
    assert logits.tolist() == [[1.0, 2.0], [3.0, -1.0]] and labels.tolist() == [1, 0]
    (tmp_path / "o.csv").write_text("LABELS,a,b\n-1,1.0,2.0\n")
    with pytest.raises(DataError, match="o.csv: a label is -1"):
        read_outputs_file(tmp_path / "o.csv")
    (tmp_path / "o.csv").write_text("label,a,Label\n1,1.0,2.0\n")
    with pytest.raises(DataError, match="2 label columns"):
        read_outputs_file(tmp_path / "o.csv")
    np.savez(tmp_path / "p.npz", probs=np.array([[0.25, 0.75]]))
    logits, labels = read_outputs_file(tmp_path / "p.npz")
    assert logits == pytest.approx(np.log([[0.25, 0.75]])) and labels.tolist() == [-1]


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.ReLU())
        self.fc = nn.Linear(6, 3)
        self.unused = nn.Linear(2, 2)  # registered last but never called

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


def test_last_linear_found_or_named() -> None:
    net = _Net()
    assert find_last_linear(net)[0] == "unused"  # registration order: name it when it lies
    assert find_last_linear(net, "fc")[1] is net.fc
    with pytest.raises(InputError, match="no linear layer named 'head'"):
        find_last_linear(net, "head")
    model = wrap_module(net, last_layer="fc")
    x = torch.randn(5, 1, 2, 2)
    logits, feats = model.outputs(x)
    with torch.no_grad():
        assert np.allclose(logits, net(x).numpy()) and np.allclose(feats, net.body(x).numpy())
    assert model.head_is_output
    with pytest.raises(InputError, match="did not run"):
        wrap_module(net).outputs(x)


def test_exported_program_with_a_fixed_batch_is_padded(tmp_path: Path) -> None:
    net = _Net().eval()
    torch.export.save(torch.export.export(net, (torch.randn(4, 1, 2, 2),)), tmp_path / "n.pt2")
    model = load_exported(tmp_path / "n.pt2")
    assert model.batch == 4 and model.input_shape == (1, 2, 2) and model.head_name == "fc"
    x = torch.randn(10, 1, 2, 2)  # 4 + 4 + 2 (padded to 4)
    logits, feats = model.outputs(x)
    with torch.no_grad():
        assert np.allclose(logits, net(x).numpy(), atol=1e-6)
        assert np.allclose(feats, net.body(x).numpy(), atol=1e-6)
    with pytest.raises(InputError, match=r"takes inputs of shape \(1, 2, 2\)"):
        model.outputs(torch.randn(3, 1, 3, 3))


def test_export_archive_with_pickled_entries_is_refused(tmp_path: Path) -> None:
    net = _Net().eval()
    torch.export.save(torch.export.export(net, (torch.randn(4, 1, 2, 2),)), tmp_path / "n.pt2")
    check_export_archive(tmp_path / "n.pt2")  # tensors only: accepted
    with zipfile.ZipFile(tmp_path / "n.pt2") as z:
        files = {n: z.read(n) for n in z.namelist()}
    name = next(n for n in files if n.endswith("_weights_config.json"))
    config = json.loads(files[name])
    next(iter(config["config"].values()))["use_pickle"] = True
    files[name] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "evil.pt2", "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_exported(tmp_path / "evil.pt2")
    (tmp_path / "text.pt2").write_text("not a zip")
    with pytest.raises(CheckpointError, match="not a torch.export archive"):
        load_exported(tmp_path / "text.pt2")
