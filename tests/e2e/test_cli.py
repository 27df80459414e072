"""End to end through the console script on the smoke preset (real digits data)."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mistrust.io import load_npz

CLI = [sys.executable, "-m", "mistrust.cli"]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smoke") / "run"
    proc = _run("run", "--preset", "smoke", "--out", str(out))  # stderr is a pipe: no bars
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out.parent / "stderr.txt").write_text(proc.stderr)
    (out.parent / "stdout.txt").write_text(proc.stdout)
    return out


def test_the_summary_groups_verdicts_and_names_epsilon_per_attack(smoke_run: Path) -> None:
    out = (smoke_run.parent / "stdout.txt").read_text()
    verdicts = out[out.index("Verdicts, variant 'base'") :]
    lines = verdicts.split("\n\n")[0].splitlines()[1:]
    # one line per rule that decided some cells, not one per attack and set
    assert 1 <= len(lines) <= 6 and all(": " in ln for ln in lines), verdicts
    head = "Epsilon lower bound per attack (base): on the original set, at the threshold"
    assert head in out
    table = out[out.index(head) :].splitlines()
    assert table[1].split() == ["attack", "verdict", "AUROC", "epsilon", ">="]
    attacks = ["threshold", "entropy", "salem", "loss", "modified-entropy", "logit-confidence"]
    assert [ln.split()[0] for ln in table[3:9]] == attacks
    results = {
        (r["attack"], r["metric"]): r["value"]
        for r in csv.DictReader(open(smoke_run / "results.csv"))
        if r["variant"] == "base" and r["dataset"] == "original"
    }
    for ln, a in zip(table[3:9], attacks, strict=True):
        assert ln.split()[-1] == f"{float(results[(a, 'epsilon_lower_bound')]):.3f}"
    assert f"Results in {smoke_run}/ (results.csv, results.json, tables.md, report.html, " in out


def test_console_shows_one_line_per_stage(smoke_run: Path) -> None:
    err = (smoke_run.parent / "stderr.txt").read_text()
    assert "\r" not in err, "no progress-bar redraws when stderr is not a terminal"
    lines = err.strip().splitlines()
    # the calibration runs beside the blind baseline and the trained variants' attacks;
    # its line says how long the loop then waited for it
    stages = ["data", "evaluation sets", "models", "blind baseline", "calibration"]
    stages += ["attacks and metrics"]
    stages += ["false-positive galleries", "report"]
    assert [ln.split(":")[0].split(" (")[0] for ln in lines] == stages, err
    assert all(re.search(r"\(\d+\.\d s\)$", ln) for ln in lines), err
    # the per-epoch detail (--verbose on the console) is always in log.txt
    log = (smoke_run / "log.txt").read_text()
    assert "base/target: epoch 2/2 loss" in log
    # other libraries only from INFO up: no matplotlib font search, no PIL chunk dumps
    assert not re.search(r"^\S+ \S+ DEBUG (?!mistrust)", log, re.MULTILINE), log[:3000]


def test_run_directory_contract(smoke_run: Path) -> None:
    for rel in (
        "config.yaml",
        "splits.npz",
        "results.csv",
        "results.json",
        "model_metrics.csv",
        "log.txt",
        "models/base/target.pt",
        "models/base/shadow.pt",
        "models/label-smoothing/target.pt",
        "outputs/base/target/train.npz",
        "outputs/base/target/test.npz",
        "outputs/base/target/scaled.npz",
        "outputs/laplace/shadow/train.npz",
        "scores/base/threshold/original.npz",
        "figures/gallery_scaled.png",
    ):
        assert (smoke_run / rel).is_file(), rel
    out = load_npz(smoke_run / "outputs/base/target/test.npz")
    assert out["logits"].dtype == np.float32 and out["logits"].shape == (200, 10)
    assert not list(smoke_run.rglob("*.ckpt.pt")), "checkpoints are removed after training"


def test_results_agree_with_the_saved_decisions(smoke_run: Path) -> None:
    """Rates, AUROC and the operating point of results.csv, recomputed here from the saved
    scores and decisions with plain counting and scikit-learn (not the project's metrics)."""
    from sklearn.metrics import roc_auc_score

    rows = list(csv.DictReader(open(smoke_run / "results.csv")))
    assert {r["variant"] for r in rows} == {
        "base",
        "label-smoothing",
        "temperature",
        "temperature-fit",
        "laplace",
    }
    val = {(r["variant"], r["attack"], r["dataset"], r["metric"]): float(r["value"]) for r in rows}
    for attack in ("threshold", "loss", "logit-confidence"):
        threshold = val[("laplace", attack, "shadow", "operating_score")]
        for ds in ("original", "scaled", "gan"):
            s = load_npz(smoke_run / "scores" / "laplace" / attack / f"{ds}.npz")
            member = s["is_member"]
            assert member.sum() == 100 and (~member).sum() == 100  # smoke: 100 + 100
            np.testing.assert_array_equal(s["predicted"], s["score"] >= threshold)
            key = ("laplace", attack, ds)
            assert val[(*key, "tpr")] == s["predicted"][member].mean()
            assert val[(*key, "fpr")] == s["predicted"][~member].mean()
            auc = roc_auc_score(member, s["score"])
            assert abs(val[(*key, "auroc")] - auc) < 1e-9, (attack, ds)


def test_per_sample_view_matches_the_saved_scores(smoke_run: Path) -> None:
    """vulnerable.csv and agreement.csv recomputed from splits.npz, results.csv and the
    saved scores with plain NumPy: the strongest attack, its margins, dataset indices and
    classes, and the Jaccard index of the flagged members."""
    rows = list(csv.DictReader(open(smoke_run / "results.csv")))
    val = {(r["variant"], r["attack"], r["dataset"], r["metric"]): float(r["value"]) for r in rows}
    attacks = list(dict.fromkeys(r["attack"] for r in rows if r["variant"] == "base"))
    # attacks with a threshold and no degenerate flag on the original set may rank members
    degenerate = ("flag_constant", "flag_ties", "flag_polarity")
    rankers = [
        a
        for a in attacks
        if ("base", a, "shadow", "operating_score") in val
        and not any(val.get(("base", a, "original", f)) == 1.0 for f in degenerate)
    ]
    auroc = [val[("base", a, "original", "auroc")] for a in rankers]
    strongest = rankers[auroc.index(max(auroc))]
    splits = load_npz(smoke_run / "splits.npz")
    member_index = splits["target_members"].tolist()
    d = load_npz(smoke_run / f"scores/base/{strongest}/original.npz")
    member_score = d["score"][d["is_member"]]
    ranked = [
        r for r in csv.DictReader(open(smoke_run / "vulnerable.csv")) if r["variant"] == "base"
    ]
    assert len(ranked) == 8 and {r["ranked_by"] for r in ranked} == {strongest}
    threshold = val[("base", strongest, "shadow", "operating_score")]
    margins = [float(r["margin"]) for r in ranked]
    assert margins == sorted(margins, reverse=True)
    assert margins[0] == pytest.approx(member_score.max() - threshold)
    labels = load_npz(smoke_run / "outputs/base/target/train.npz")["labels"]
    train_pos = {int(i): p for p, i in enumerate(splits["target_train"])}
    for r in ranked:
        pos = member_index.index(int(r["index"]))
        assert float(r[strongest]) == member_score[pos]
        assert float(r["margin"]) == pytest.approx(member_score[pos] - threshold)
        assert int(r["class"]) == labels[train_pos[int(r["index"])]]
    flags = {}
    for a in attacks:
        d = load_npz(smoke_run / f"scores/base/{a}/original.npz")
        flags[a] = set(np.flatnonzero(d["predicted"][d["is_member"]]).tolist())
    agree = {
        (r["attack_a"], r["attack_b"]): r
        for r in csv.DictReader(open(smoke_run / "agreement.csv"))
        if (r["variant"], r["samples"]) == ("base", "members")
    }
    a, b = attacks[0], attacks[3]
    union = flags[a] | flags[b]
    assert float(agree[(a, b)]["jaccard"]) == len(flags[a] & flags[b]) / len(union)
    assert (smoke_run / "figures/vulnerable.png").is_file()
    assert "Per-sample view" in (smoke_run / "report.html").read_text()


def test_second_run_reuses_models_and_is_identical(smoke_run: Path, tmp_path: Path) -> None:
    before = (smoke_run / "results.csv").read_bytes()
    stamp = (smoke_run / "models/base/target.pt").stat().st_mtime_ns
    # --no-report: rebuilding the report in place is tests/report's test_rebuild_is_byte_identical
    proc = _run("run", "--preset", "smoke", "--out", str(smoke_run), "--quiet", "--no-report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (smoke_run / "models/base/target.pt").stat().st_mtime_ns == stamp
    assert (smoke_run / "results.csv").read_bytes() == before
    # the console summary (on stdout; the stage lines go to stderr)
    assert "False-positive rate per evaluation set" in proc.stdout
    assert "members (TPR)" in proc.stdout and "scaled" in proc.stdout
    assert "evaluation sets:" in proc.stderr and "evaluation sets:" not in proc.stdout


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """The console script's exit status and stderr for a user mistake. Each kind of mistake
    (unknown key, oversized split, missing file, weights that do not exist, ...) is checked
    in-process by tests/reliability/test_config_errors.py; one process start suffices here."""
    proc = _run("run", "--preset", "smoke", "--set", "train.epoch=3", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert "unknown key train.epoch" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_listing_commands(capsys: pytest.CaptureFixture[str]) -> None:
    from mistrust.cli import main

    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and "fashion-mnist" in out
    assert main(["presets"]) == 0
    assert "paper-stanford-dogs-resnet50" in capsys.readouterr().out


def test_a_reader_that_goes_away_ends_the_listing_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    """`mistrust presets | head -1`: status 141 (128 + SIGPIPE), no traceback."""
    from mistrust.cli import main

    class ClosedPipe:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["presets"]) == 141


def test_malloc_tuning_and_its_opt_out() -> None:
    import os
    import platform

    code = "from mistrust.cli import tune_malloc; print(tune_malloc())"

    def tuned(**env: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}
        )
        return proc.stdout.strip()

    assert tuned(MISTRUST_MALLOC="default") == "False"
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert tuned(MISTRUST_MALLOC="") == str(glibc)


def test_help_is_plain_text_and_names_every_command(capsys: pytest.CaptureFixture) -> None:
    from mistrust.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "``" not in out  # no reStructuredText markup on a terminal
    words = " ".join(out.split())  # argparse wraps the description
    assert "mistrust run | audit | check | compare | diff | report | datasets | presets" in words
