"""``mistrust run --seeds 2`` end to end on the smoke preset (shrunk: one variant, two sets,
no report): two complete sub-runs, and the aggregate recomputed from their results.csv."""

from __future__ import annotations

import csv
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CLI = [sys.executable, "-m", "mistrust.cli"]
SMALL = ["--preset", "smoke", "--no-report", "--set", "variants.names=[base]"]
SMALL += ["--set", "eval.sets=[original,scaled]", "--set", "attacks.names=[threshold,loss]"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seeds") / "run"
    proc = _run("run", *SMALL, "--seeds", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out.parent / "stdout.txt").write_text(proc.stdout)
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_two_complete_sub_runs_that_differ(seeds_run: Path) -> None:
    for seed in (42, 43):
        sub = seeds_run / f"seed-{seed}"
        for rel in ("results.csv", "model_metrics.csv", "splits.npz", "config.yaml"):
            assert (sub / rel).is_file(), (seed, rel)
        cfg = yaml.safe_load((sub / "config.yaml").read_text())
        assert (cfg["seed"], cfg["seeds"]) == (seed, 1)
    assert yaml.safe_load((seeds_run / "config.yaml").read_text())["seeds"] == 2
    a, b = (seeds_run / f"seed-{s}" / "results.csv" for s in (42, 43))
    assert a.read_bytes() != b.read_bytes()
    assert (seeds_run / "seed-42/splits.npz").read_bytes() != (
        seeds_run / "seed-43/splits.npz"
    ).read_bytes()
    assert not (seeds_run / "results.csv").exists()  # the top level holds the aggregate only


def test_aggregate_is_mean_and_sd_of_the_sub_runs(seeds_run: Path) -> None:
    per_seed = [_rows(seeds_run / f"seed-{s}" / "results.csv") for s in (42, 43)]
    key = ("variant", "attack", "dataset", "metric")
    values: dict[tuple, list[float]] = {}
    for rows in per_seed:
        for r in rows:
            values.setdefault(tuple(r[k] for k in key), []).append(float(r["value"]))
    got = _rows(seeds_run / "results_seeds.csv")
    assert [tuple(r[k] for k in key) for r in got] == list(values)
    for r in got:
        xs = [x for x in values[tuple(r[k] for k in key)] if x == x]  # NaN left out
        assert int(r["n"]) == len(xs)
        if xs:
            assert float(r["mean"]) == pytest.approx(statistics.fmean(xs), abs=1e-12)
        if len(xs) == 2:
            assert float(r["sd"]) == pytest.approx(statistics.stdev(xs), abs=1e-12)
    fpr = [r for r in got if (r["attack"], r["dataset"], r["metric"]) == ("loss", "scaled", "fpr")]
    assert len(fpr) == 1 and fpr[0]["n"] == "2"
    assert (seeds_run / "model_metrics_seeds.csv").is_file()
    out = (seeds_run.parent / "stdout.txt").read_text()
    assert "mean ± sd over 2 seeds" in out and f"{float(fpr[0]['mean']):.3f} ± " in out


def test_rerun_resumes_and_is_identical(seeds_run: Path) -> None:
    before = (seeds_run / "results_seeds.csv").read_bytes()
    stamp = (seeds_run / "seed-43/models/base/target.pt").stat().st_mtime_ns
    proc = _run("run", *SMALL, "--seeds", "2", "--out", str(seeds_run))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (seeds_run / "seed-43/models/base/target.pt").stat().st_mtime_ns == stamp
    assert (seeds_run / "results_seeds.csv").read_bytes() == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "0"], "seeds must be a positive integer, got 0"),
        (["--set", "seeds=-3"], "seeds must be a positive integer, got -3"),
        (["--set", "seeds=two"], "seeds: expected an integer, got 'two'"),
    ],
)
def test_bad_seeds_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    # in-process: the console script's own exit path is tests/e2e/test_cli.py's
    from mistrust.cli import main

    code = main(["run", "--preset", "smoke", *args, "--out", str(tmp_path / "r")])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"mistrust: error: {message}"
    assert not (tmp_path / "r").exists()
