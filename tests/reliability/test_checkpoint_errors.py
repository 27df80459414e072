"""Damaged or foreign model files in RUN/models: one line telling to delete the file, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from reliability_helpers import TINY, assert_user_error, run_tiny

from mistrust.cli import main
from mistrust.config import load_config
from mistrust.errors import CheckpointError, MistrustError
from mistrust.models import create_model
from mistrust.study.train import load_model, read_checkpoint

TARGET = Path("models/base/target.pt")


def _mlp_checkpoint(meta_arch: str) -> dict:
    """A valid checkpoint of an MLP (digits at 28x28) whose metadata names ``meta_arch``."""
    model = create_model("mlp", channels=1, num_classes=10, size=28, width=32)
    meta = {"arch": meta_arch, "width": 32, "channels": 1, "size": 28, "num_classes": 10}
    return {"state_dict": model.state_dict(), "meta": meta}


DAMAGE = {
    # id: (damage applied to RUN/models/base/target.pt, words of the error line)
    "truncated": (
        lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
        ["target.pt: cannot read model file", "delete the file to retrain"],
    ),
    "empty": (lambda p: p.write_bytes(b""), ["model file is empty", "delete the file to retrain"]),
    "not-a-torch-file": (
        lambda p: p.write_bytes(b"GIF89a" + bytes(500)),
        ["not a torch model file", "delete the file to retrain"],
    ),
    "no-metadata": (
        lambda p: torch.save({"weights": torch.zeros(3)}, p),
        ["not a mistrust model file", "delete the file to retrain"],
    ),
    "another-architecture": (
        lambda p: torch.save(_mlp_checkpoint("mlp"), p),
        [
            "holds a 'mlp' (width 32) model but the config asks for 'salem-cnn' (width 32)",
            "delete the file to retrain, or use another --out",
        ],
    ),
    "weights-of-another-architecture": (
        lambda p: torch.save(_mlp_checkpoint("salem-cnn"), p),
        ["its weights do not fit model 'salem-cnn'", "missing", "delete the file to retrain"],
    ),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_model_file(case: str, capsys, run_copy: Path, expect_untouched) -> None:
    damage, needles = DAMAGE[case]
    damage(run_copy / TARGET)
    res = expect_untouched(lambda out: run_tiny(capsys, out))
    assert_user_error(res, str(run_copy / TARGET), *needles)


def test_changed_width_is_another_architecture(capsys, expect_untouched) -> None:
    res = expect_untouched(lambda out: run_tiny(capsys, out, "model.width=16"))
    assert_user_error(res, "(width 32) model but the config asks for 'salem-cnn' (width 16)")


def test_debug_shows_the_traceback(run_copy: Path) -> None:
    (run_copy / TARGET).write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        main(["--debug", "run", *TINY, "--out", str(run_copy)])


def test_library_raises_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    path.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert isinstance(info.value, MistrustError) and isinstance(info.value, RuntimeError)
    torch.save(_mlp_checkpoint("mlp"), path)
    with pytest.raises(CheckpointError, match="another --out"):
        load_model(path, load_config("smoke").model)
