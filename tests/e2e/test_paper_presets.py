"""Each paper preset runs end to end on tiny stand-in data (no downloads, seconds)."""

from __future__ import annotations

import pytest

from mistrust.config import load_config
from mistrust.experiment import run_experiment

TINY = [
    "data.stand_in=true",
    "data.stratified_pool=null",
    "data.train_size=24",
    "data.test_size=20",
    "data.members=12",
    "data.nonmembers=10",
    "train.epochs=1",
    "train.batch_size=8",
    "device=cpu",
    "variants.names=[base, temperature, laplace]",
    "variants.laplace_grid=3",
    "variants.laplace_samples=5",
    "eval.sets=[original, scaled, noise]",
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset, extra",
    [
        (
            "paper-cifar10-salemcnn",
            ["variants.names=[base, label-smoothing, weight-decay, temperature, laplace]"],
        ),
        ("paper-cifar10-resnet18", ["model.width=8"]),
        ("paper-cifar10-efficientnet", []),
        ("paper-stanford-dogs-resnet50", ["model.pretrained=false", "data.image_size=32"]),
    ],
)
def test_paper_preset_on_stand_in_data(
    tmp_path, monkeypatch: pytest.MonkeyPatch, preset: str, extra: list[str]
) -> None:
    # the report has its own tests (tests/report, tests/e2e/test_cli.py); here it would
    # only redraw the same figures four times
    monkeypatch.setattr("mistrust.report.build_report", lambda run_dir: run_dir / "report.html")
    base = load_config(preset)
    cfg = load_config(preset, TINY + extra)
    assert cfg.model.arch == base.model.arch and cfg.train.lr == base.train.lr
    result = run_experiment(cfg, tmp_path / "run")
    variants = {row[0] for row in result.attack_rows}
    assert variants == set(cfg.variants.names)
    assert (tmp_path / "run" / "results.csv").is_file()
    assert result.value("base", "threshold", "scaled", "fpr") >= 0.0
