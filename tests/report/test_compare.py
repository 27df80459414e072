"""``mistrust compare``: a paper-preset run's numbers beside the paper's published tables."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from mistrust.cli import main
from mistrust.present.compare import compare_run, paper_tables


def _run_dir(tmp_path: Path, config: dict, rows: list[tuple], model_rows=()) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    with (run / "results.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("variant", "attack", "dataset", "metric", "value"))
        w.writerows(rows)
    with (run / "model_metrics.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("variant", "role", "dataset", "metric", "value"))
        w.writerows(model_rows)
    return run


def _read(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_values_beside_the_published_ones(tmp_path: Path) -> None:
    """Paper values read off resnet18_cifar10_attack_results.csv (base, threshold attack):
    Original FPR 0.4476, Recall 0.9232; No Normalization AUROC 0.9739."""
    rows = [
        ("base", "threshold", "original", "fpr", 0.45),
        ("base", "threshold", "original", "fpr_ci_low", 0.43),
        ("base", "threshold", "original", "fpr_ci_high", 0.47),
        ("base", "threshold", "original", "tpr", 0.90),
        ("base", "threshold", "original", "tpr_ci_low", 0.89),
        ("base", "threshold", "original", "tpr_ci_high", 0.92),  # 0.9232 lies above
        ("base", "threshold", "unnormalized", "auroc", 0.95),
        ("base", "threshold", "unnormalized", "precision", float("nan")),  # ours undefined
        ("base", "lira-online", "original", "fpr", 0.1),  # the paper has no LiRA
    ]
    run = _run_dir(tmp_path, {"name": "paper-cifar10-resnet18"}, rows)
    compare_run(run)
    got = {(r["dataset"], r["metric"]): r for r in _read(run / "compare.csv")}
    assert set(got) == {("original", "fpr"), ("original", "tpr"), ("unnormalized", "auroc")}
    fpr = got[("original", "fpr")]
    assert (fpr["variant"], fpr["attack"]) == ("base", "threshold")
    assert float(fpr["paper"]) == 0.4476 and float(fpr["difference"]) == pytest.approx(0.0024)
    assert fpr["paper_in_ci"] == "1"
    assert got[("original", "tpr")]["paper_in_ci"] == "0"
    auroc = got[("unnormalized", "auroc")]
    assert float(auroc["paper"]) == 0.9739 and auroc["paper_in_ci"] == ""
    assert float(auroc["difference"]) == pytest.approx(0.95 - 0.9739)
    md = (run / "compare.md").read_text()
    assert "| threshold | original | fpr | 0.4500 | 0.4476 | +0.0024 | yes |" in md


def test_dogs_model_metrics_and_a_run_recognised_by_its_model(tmp_path: Path) -> None:
    """resnet50_stanford_dogs_LS_0.1_performance_results.csv; the run keeps another name."""
    perf = next(
        t
        for t in paper_tables("paper-stanford-dogs-resnet50")
        if t.variant == "label-smoothing" and ("target model", "test", "accuracy") in t.values
    )
    config = {
        "name": "my-dogs",
        "data": {"dataset": "stanford-dogs"},
        "model": {"arch": "resnet50"},
        "variants": {"label_smoothing": 0.2},
    }
    model_rows = [("label-smoothing", "shadow", "test", "ece", 0.1)]
    run = _run_dir(
        tmp_path, config, [("label-smoothing", "salem", "afhq-wild", "fpr", 0.3)], model_rows
    )
    compare_run(run)
    got = {(r["attack"], r["dataset"], r["metric"]): r for r in _read(run / "compare.csv")}
    # the sixth row of the performance file (labelled "ECE Target") is the shadow's ECE
    shadow_ece = got[("shadow model", "test", "ece")]
    assert float(shadow_ece["paper"]) == perf.values[("shadow model", "test", "ece")]
    assert ("salem", "afhq-wild", "fpr") in got  # "AFHQ-Wilds"
    assert "label_smoothing = 0.1, this run 0.2" in (run / "compare.md").read_text()


def test_compare_refuses_a_run_of_another_preset(tmp_path: Path, capsys) -> None:
    config = {"name": "smoke", "data": {"dataset": "digits"}, "model": {"arch": "salem-cnn"}}
    run = _run_dir(tmp_path, config, [("base", "threshold", "original", "fpr", 0.5)])
    assert main(["compare", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a paper-preset run" in err[0]
    assert not (run / "compare.csv").exists()


def test_every_published_table_is_read() -> None:
    tables = [
        t
        for p in (
            "paper-cifar10-efficientnet",
            "paper-cifar10-resnet18",
            "paper-cifar10-salemcnn",
            "paper-stanford-dogs-resnet50",
        )
        for t in paper_tables(p)
    ]
    assert len(tables) == 25  # every file shipped
    # 11 sets x 3 attacks x 10 metrics (CIFAR-10), 9 x 3 x 10 (Stanford Dogs), 6 model rows
    assert sorted({len(t.values) for t in tables}) == [6, 270, 330]
