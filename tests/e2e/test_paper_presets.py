"""Each paper preset runs end to end on tiny stand-in data (no downloads, seconds).

The sets are cut to a few (every preset's own sets are built, without training, by
tests/core/test_plan.py); the Stanford Dogs preset keeps one set it uses whole
(``eval.full_sets``): AFHQ-NonDogs, two stand-in datasets."""

from __future__ import annotations

import csv

import pytest

from mistrust.config import load_config
from mistrust.io import load_npz
from mistrust.present.compare import compare_run, paper_tables
from mistrust.present.tables import read_attack_rows
from mistrust.study.plan import check_plan
from mistrust.study.run import run_experiment

TINY = [
    "data.stand_in=true",
    "data.stratified_pool=null",
    "data.train_size=24",
    "data.test_size=20",
    "data.members=12",
    "data.nonmembers=10",
    "train.epochs=1",
    "train.batch_size=24",  # one step per epoch: the presets run end to end, not learn
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
        (
            "paper-stanford-dogs-resnet50",
            [
                "model.pretrained=false",
                "data.image_size=32",
                "eval.sets=[original, scaled, noise, afhq-nondog]",
            ],
        ),
    ],
)
def test_paper_preset_on_stand_in_data(
    tmp_path, monkeypatch: pytest.MonkeyPatch, preset: str, extra: list[str]
) -> None:
    # the report has its own tests (tests/report, tests/e2e/test_cli.py); here it would
    # only redraw the same figures four times
    monkeypatch.setattr(
        "mistrust.present.report.build_report", lambda run_dir: run_dir / "report.html"
    )
    base = load_config(preset)
    cfg = load_config(preset, TINY + extra)
    assert cfg.model.arch == base.model.arch and cfg.train.lr == base.train.lr
    planned = {e.name: e.size for e in check_plan(cfg).eval_sets}
    result = run_experiment(cfg, tmp_path / "run")
    variants = {row[0] for row in result.attack_rows}
    assert variants == set(cfg.variants.names)
    assert (tmp_path / "run" / "results.csv").is_file()
    # every set pairs the 12 members with its planned non-members (10; AFHQ-NonDogs used
    # whole: two stand-ins of 10), and the reported rates are the decided fractions of each
    # group in the saved decisions
    assert planned == {"original": 10, "scaled": 10, "noise": 10} | (
        {"afhq-nondog": 20} if "dogs" in preset else {}
    )
    for v in cfg.variants.names:
        for ds in cfg.eval.sets:
            f = load_npz(tmp_path / "run" / "scores" / v / "threshold" / f"{ds}.npz")
            member = f["is_member"]
            assert member.sum() == 12 and (~member).sum() == planned[ds], (v, ds)
            assert result.value(v, "threshold", ds, "tpr") == f["predicted"][member].mean()
            assert result.value(v, "threshold", ds, "fpr") == f["predicted"][~member].mean()
    # our numbers beside the paper's: every variant, every attack and set both have
    with_report = preset == "paper-cifar10-salemcnn"
    if with_report:  # one preset checks that the comparison reaches the real report
        monkeypatch.undo()
        from mistrust.present.report import build_report

        build_report(tmp_path / "run")
    compare_run(tmp_path / "run", report=with_report)
    rows = list(csv.DictReader((tmp_path / "run" / "compare.csv").open()))
    assert {r["variant"] for r in rows} == set(cfg.variants.names)
    models = [r for r in rows if r["attack"].endswith(" model")]  # Stanford Dogs only
    assert len(models) == (6 * len(cfg.variants.names) if "dogs" in preset else 0)
    rows = [r for r in rows if r not in models]
    label = {"original": "Original", "scaled": "Scaled", "afhq-nondog": "AFHQ-NonDogs"}
    assert {r["dataset"] for r in rows} == set(label) & set(cfg.eval.sets)  # noise: not in it
    published = {(t.variant, *key): v for t in paper_tables(preset) for key, v in t.values.items()}
    ours = {r[:4]: r[4] for r in read_attack_rows(tmp_path / "run")}
    for r in rows:
        key = (r["variant"], r["attack"], r["dataset"], r["metric"])
        assert (
            float(r["paper"])
            == published[(r["variant"], r["attack"], label[r["dataset"]], r["metric"])]
        )
        assert float(r["ours"]) == ours[key]
    if with_report:
        assert "Beside the paper" in (tmp_path / "run" / "report.html").read_text()
