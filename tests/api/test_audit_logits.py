"""``mistrust audit`` on files of logits / probabilities: no model, same run directory."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

import mistrust
from mistrust.cli import main
from mistrust.io import load_npz


def _synthetic(n: int, margin: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, n)
    logits = rng.normal(scale=1.5, size=(n, 5))
    logits[np.arange(n), labels] += margin
    return logits, labels


def _softmax_max(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(1, keepdims=True))
    return (z / z.sum(1, keepdims=True)).max(1)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """target / shadow members (margin 5) and non-members (margin 3), an OOD set, a CSV."""
    for name, margin, seed in (("t_mem", 5, 1), ("t_non", 3, 2), ("s_mem", 5, 3), ("s_non", 3, 4)):
        logits, labels = _synthetic(200, margin, seed)
        np.savez(tmp_path / f"{name}.npz", logits=logits, labels=labels)
    ood, _ = _synthetic(150, 3, 5)
    np.savez(tmp_path / "scaled.npz", logits=20 * ood)  # no labels: predicted class
    probs = np.exp(ood) / np.exp(ood).sum(1, keepdims=True)
    with open(tmp_path / "probs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([f"p{i}" for i in range(5)])
        w.writerows(probs.tolist())
    (tmp_path / "audit.yaml").write_text(
        "name: logits\n"
        "logits:\n"
        "  target: {members: t_mem.npz, nonmembers: t_non.npz}\n"
        "  shadow: {members: s_mem.npz, nonmembers: s_non.npz}\n"
        "  sets: {scaled: scaled.npz, soft: probs.csv}\n"
        "  kind: probs\n"
        "attacks: {names: [threshold, loss, salem]}\n"
        "variants: {names: [base, temperature]}\n"
    )
    return tmp_path


def _rows(run: Path) -> dict[tuple[str, str, str, str], float]:
    with open(run / "results.csv", newline="") as fh:
        return {tuple(r[:4]): float(r[4]) for r in list(csv.reader(fh))[1:]}


def test_logits_only_run_directory_and_values(files: Path, capsys: pytest.CaptureFixture) -> None:
    run = files / "run"
    assert main(["audit", str(files / "audit.yaml"), "--out", str(run)]) == 0
    for rel in ("results.csv", "model_metrics.csv", "results.json", "tables.md", "report.html"):
        assert (run / rel).is_file(), rel
    assert (run / "config.yaml").is_file() and (run / "scores/base/threshold/scaled.npz").is_file()
    rows = _rows(run)
    t_mem, t_non = load_npz(files / "t_mem.npz"), load_npz(files / "t_non.npz")
    s_mem, s_non = load_npz(files / "s_mem.npz"), load_npz(files / "s_non.npz")
    # threshold attack: max softmax score; AUROC members vs original, by scikit-learn
    members, nonmembers = _softmax_max(t_mem["logits"]), _softmax_max(t_non["logits"])
    y = np.r_[np.ones(200), np.zeros(200)]
    want = roc_auc_score(y, np.r_[members, nonmembers])
    assert rows[("base", "threshold", "original", "auroc")] == pytest.approx(want, abs=1e-6)
    # its threshold from the shadow's ROC (max TPR - FPR), applied to the scaled set
    shadow = np.r_[_softmax_max(s_mem["logits"]), _softmax_max(s_non["logits"])]
    fpr, tpr, thr = roc_curve(y, shadow)
    t = thr[np.argmax(tpr - fpr)]
    scaled = _softmax_max(load_npz(files / "scaled.npz")["logits"].astype(np.float32))
    assert rows[("base", "threshold", "scaled", "fpr")] == pytest.approx((scaled >= t).mean())
    assert rows[("base", "threshold", "original", "tpr")] == pytest.approx((members >= t).mean())
    # probabilities become log-probabilities: the same max score as the logits they came from
    assert rows[("base", "threshold", "soft", "n_nonmembers")] == 150
    out = capsys.readouterr().out
    assert "False-positive rate per evaluation set, variant 'temperature'" in out
    # the command line's log.txt, each line once (run_audit adds no second handler)
    assert (run / "log.txt").read_text().count("mistrust.own.run: outputs: original") == 1
    # the report names what was audited: saved outputs, the members' file
    html = (run / "report.html").read_text()
    assert "saved outputs on t_mem.npz · 2 variant(s)" in html
    assert "<dt>model</dt><dd>saved outputs</dd><dt>data</dt><dd>t_mem.npz</dd>" in html


def test_rerun_and_python_api_give_the_same_bytes(files: Path) -> None:
    # results.csv is what is compared; the reports of logits audits: the tests above, below
    audit = ["audit", str(files / "audit.yaml"), "--out", str(files / "a"), "--no-report"]
    assert main(audit) == 0
    first = (files / "a" / "results.csv").read_bytes()
    assert main(audit) == 0
    assert (files / "a" / "results.csv").read_bytes() == first
    result = mistrust.run_audit(files / "audit.yaml", files / "b", report=False)
    assert (files / "b" / "results.csv").read_bytes() == first
    assert (
        result.value("base", "salem", "scaled", "fpr")
        == _rows(files / "a")[("base", "salem", "scaled", "fpr")]
    )


def test_the_python_api_writes_log_txt_and_value_takes_the_variant_as_keyword(
    files: Path,
) -> None:
    import logging

    seen: list[logging.LogRecord] = []
    mine = logging.Handler(logging.WARNING)  # a program's own handler, on the root logger
    mine.emit = seen.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(mine)
    try:
        result = mistrust.run_audit(files / "audit.yaml", files / "b", report=False)
    finally:
        logging.getLogger().removeHandler(mine)
    log = (files / "b" / "log.txt").read_text()
    assert "INFO mistrust.own.run: outputs: original, scaled, soft" in log
    assert " DEBUG " in log  # every record, as the command line's log.txt
    assert all(r.levelno >= logging.WARNING for r in seen)  # the program sees no more
    assert logging.getLogger("mistrust").handlers == []  # and nothing is left attached
    want = _rows(files / "b")[("temperature", "salem", "scaled", "fpr")]
    assert result.value("salem", "scaled", "fpr", variant="temperature") == want
    assert result.value("temperature", "salem", "scaled", "fpr") == want  # the older form
    # the first variant's value without one, as AuditResult.value
    assert (
        result.value("salem", "scaled", "fpr")
        == _rows(files / "b")[("base", "salem", "scaled", "fpr")]
    )


def test_no_report_says_so_on_the_console(files: Path, capsys: pytest.CaptureFixture) -> None:
    run = files / "run"
    assert main(["audit", str(files / "audit.yaml"), "--out", str(run), "--no-report"]) == 0
    out = capsys.readouterr().out
    assert f"Results in {run}/ (results.csv, results.json, tables.md)\n" in out
    assert f"No report.html (--no-report): mistrust report {run} builds it" in out


def test_without_a_shadow_only_threshold_free_metrics(files: Path) -> None:
    text = (
        (files / "audit.yaml")
        .read_text()
        .replace("  shadow: {members: s_mem.npz, nonmembers: s_non.npz}\n", "")
    )
    (files / "audit.yaml").write_text(text)
    run = files / "run"
    assert main(["audit", str(files / "audit.yaml"), "--out", str(run)]) == 0
    rows = _rows(run)
    assert np.isnan(rows[("base", "threshold", "original", "fpr")])
    assert np.isnan(rows[("base", "loss", "scaled", "tpr")])
    assert rows[("base", "threshold", "shadow", "no_shadow")] == 1.0
    assert not any(k[1] == "salem" for k in rows)  # Salem learns its score: left out
    t_mem, t_non = load_npz(files / "t_mem.npz"), load_npz(files / "t_non.npz")
    want = roc_auc_score(
        np.r_[np.ones(200), np.zeros(200)],
        np.r_[_softmax_max(t_mem["logits"]), _softmax_max(t_non["logits"])],
    )
    assert rows[("base", "threshold", "original", "auroc")] == pytest.approx(want, abs=1e-6)
    assert "| original | no shadow | no shadow |" in (run / "tables.md").read_text()
    html = (run / "report.html").read_text()
    assert "<td>no shadow</td>" in html and "No shadow model" in html
    headline = (run / "report.md").read_text().splitlines()[2]
    assert "no shadow model: AUROC" in headline and "no TPR or FPR" in headline


def _probs_csv(path: Path, logits: np.ndarray, labels: np.ndarray | None = None) -> None:
    """Softmax of ``logits``, one column per class; a ``Label`` column first if given."""
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*(["Label"] if labels is not None else []), *(f"p{i}" for i in range(5))])
        for i, row in enumerate(probs.tolist()):
            w.writerow([*([int(labels[i])] if labels is not None else []), *row])


def test_unlabelled_outputs_take_the_predicted_class(
    files: Path, capsys: pytest.CaptureFixture
) -> None:
    # every file without labels (.npz, and the target's non-members as .csv) against the
    # same files labelled with the predicted class (the .csv's column headed "Label")
    runs = {}
    for kind in ("unlabelled", "predicted"):
        args = []
        for key, name in (("target.members", "t_mem"), ("shadow.members", "s_mem")):
            logits = load_npz(files / f"{name}.npz")["logits"]
            extra = {"labels": logits.argmax(1)} if kind == "predicted" else {}
            np.savez(files / f"{name}_{kind}.npz", logits=logits, **extra)
            args += ["--set", f"logits.{key}={name}_{kind}.npz"]
        for key, name in (("target.nonmembers", "t_non"), ("shadow.nonmembers", "s_non")):
            logits = load_npz(files / f"{name}.npz")["logits"]
            labels = logits.argmax(1) if kind == "predicted" else None
            _probs_csv(files / f"{name}_{kind}.csv", logits, labels)
            args += ["--set", f"logits.{key}={name}_{kind}.csv"]
        run = files / kind
        args += ["--set", "variants.names=[base]", "--no-report"]
        assert main(["audit", str(files / "audit.yaml"), "--out", str(run), *args]) == 0
        assert "mistrust: error" not in capsys.readouterr().err
        runs[kind] = run
    # the attacks saw the same labels: the same rows, byte for byte
    want = (runs["predicted"] / "results.csv").read_bytes()
    assert (runs["unlabelled"] / "results.csv").read_bytes() == want
    assert _rows(runs["unlabelled"])[("base", "threshold", "original", "n_nonmembers")] == 200
    # model metrics that need true labels are left out, the others agree
    with open(runs["unlabelled"] / "model_metrics.csv", newline="") as fh:
        unlabelled = list(csv.reader(fh))[1:]
    with open(runs["predicted"] / "model_metrics.csv", newline="") as fh:
        predicted = list(csv.reader(fh))[1:]
    assert not any(r[3] == "accuracy" for r in unlabelled) and unlabelled
    assert all(r in predicted for r in unlabelled)


def _error(files: Path, capsys: pytest.CaptureFixture, *extra: str) -> str:
    out = files / f"err{len(list(files.glob('err*')))}"
    code = main(["audit", str(files / "audit.yaml"), "--out", str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("mistrust: error: "), err
    return err


def test_bad_inputs_one_line_exit_2(files: Path, capsys: pytest.CaptureFixture) -> None:
    err = _error(files, capsys, "--set", "logits.sets.scaled=missing.npz")
    assert "missing.npz does not exist" in err
    np.savez(files / "wide.npz", logits=np.zeros((10, 7)))
    err = _error(files, capsys, "--set", "logits.sets.scaled=wide.npz")
    assert "7 output columns" in err and "5" in err
    np.savez(files / "flat.npz", logits=np.zeros(10))
    assert "must be (N, C)" in _error(files, capsys, "--set", "logits.sets.scaled=flat.npz")
    np.savez(files / "bad_labels.npz", logits=np.zeros((10, 5)), labels=np.full(10, 9))
    err = _error(files, capsys, "--set", "logits.target.nonmembers=bad_labels.npz")
    assert "a label is 9 but there are only 5 output columns" in err
    # -1 is no class index: a mistake, not "no label" (labels are given for all or none)
    np.savez(files / "neg.npz", logits=np.zeros((10, 5)), labels=np.r_[np.zeros(9, int), -1])
    err = _error(files, capsys, "--set", "logits.target.members=neg.npz")
    assert "neg.npz: a label is -1 (sample 9)" in err
    _probs_csv(files / "neg.csv", np.zeros((3, 5)), np.array([1, -3, 0]))
    err = _error(files, capsys, "--set", "logits.shadow.members=neg.csv")
    assert "neg.csv: a label is -3 (sample 1)" in err
    with open(files / "probs.csv", "a") as fh:
        fh.write(",".join(["0.5"] * 5) + "\n")  # sums to 2.5
    assert "sum to 1" in _error(files, capsys)
    assert "laplace needs" in _error(files, capsys, "--set", "variants.names=[base,laplace]")
    assert "unknown key" in _error(files, capsys, "--set", "logits.bogus=1")
    err = _error(files, capsys, "--set", "variants.names=[base,label-smoothing]")
    assert "label-smoothing trains its own models" in err
