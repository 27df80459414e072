"""Fabricate a small but complete run directory (docs/ARCHITECTURE.md) without training anything.

Scores, logits and metrics are random but plausible and mutually consistent: the
metrics in ``results.csv`` are computed from the stored scores with the real
metric functions, so curves and tables in a report agree.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import yaml

from mistrust.config import Config
from mistrust.metrics import attack_metrics, emd, oracle_threshold
from mistrust.metrics.reliability import accuracy, ece, nll, overconfidence_error, softmax
from mistrust.metrics.reliability import mmps as model_mmps
from mistrust.rows import MetricRow, ModelRow

# logit scale per evaluation set (members use 6.0): the larger, the more confident
SET_SCALE = {
    "original": 3.5,
    "permuted": 4.0,
    "scaled": 60.0,
    "noise": 2.0,
    "unnormalized": 3.0,
    "digits": 2.5,
    "gan": 3.2,
}
VARIANT_TEMPERATURE = {
    "base": 1.0,
    "temperature": 4.0,
    "label-smoothing": 2.0,
    "weight-decay": 1.5,
    "laplace": 3.0,
}


def _logits(
    rng: np.random.Generator, n: int, c: int, scale: float, labels: np.ndarray | None
) -> np.ndarray:
    z = rng.normal(size=(n, c))
    top = labels if labels is not None else rng.integers(0, c, n)
    z[np.arange(n), top] += rng.gamma(2.0, 0.5, n) * 2.0
    return (z * scale / 3.0).astype(np.float32)


def _signal(attack: str, logits: np.ndarray) -> np.ndarray:
    p = softmax(logits)
    if attack == "entropy":
        return (p * np.log(np.clip(p, 1e-30, None))).sum(1)  # minus entropy: higher = member
    if attack == "salem":
        top = np.sort(p, 1)[:, ::-1][:, :3]
        return 1.0 / (1.0 + np.exp(-8.0 * (top[:, 0] - top[:, 1] - 0.6)))
    return p.max(1)


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[tuple]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        w.writerows([repr(x) if isinstance(x, float) else x for x in r] for r in rows)


def _nest(rows: list[tuple]) -> dict:
    out: dict = {}
    for a, b, c, m, x in rows:
        out.setdefault(a, {}).setdefault(b, {}).setdefault(c, {})[m] = None if x != x else x
    return out


def _gallery(path: Path, rng: np.random.Generator) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 1.2), dpi=60)
    for i in range(4):
        ax = fig.add_subplot(1, 4, i + 1)
        ax.imshow(rng.random((8, 8)), cmap="gray")
        ax.set_title("1.0000", fontsize=7)
        ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})


def make_fake_run(
    run_dir: Path,
    *,
    variants: tuple[str, ...] = ("base", "temperature"),
    attacks: tuple[str, ...] = ("threshold", "entropy", "salem"),
    sets: tuple[str, ...] = ("original", "permuted", "scaled", "noise"),
    n: int = 150,
    classes: int = 10,
    seed: int = 0,
    galleries: bool = True,
    outputs: bool = True,
    folders: dict[str, str] | None = None,
    per_sample: bool = True,
) -> Path:
    """Write a run directory with ``n`` members and ``n`` non-members per set; return it."""
    rng = np.random.default_rng(seed)
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    cfg = Config(name="fake")
    cfg.data.stand_in = True
    cfg.data.train_size, cfg.data.test_size, cfg.data.members, cfg.data.nonmembers = (
        2 * n,
        2 * n,
        n,
        n,
    )
    cfg.variants.names, cfg.attacks.names, cfg.eval.sets = list(variants), list(attacks), list(sets)
    cfg.eval.folders = dict(folders or {})
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    idx = np.arange(4 * n)
    np.savez(
        run / "splits.npz",
        target_train=idx[: 2 * n],
        target_test=idx[: 2 * n],
        target_members=idx[:n],
        target_nonmembers=idx[:n],
        shadow_train=idx[2 * n :],
        shadow_test=idx[2 * n :],
        shadow_members=idx[2 * n : 3 * n],
        shadow_nonmembers=idx[2 * n : 3 * n],
    )
    attack_rows: list[MetricRow] = []
    model_rows: list[ModelRow] = []
    info: dict = {}
    for v in variants:
        t = VARIANT_TEMPERATURE.get(v, 1.0 + len(v) % 3)
        info[v] = {"target": {"temperature": t, "seconds": 0.1}}
        y_train = rng.integers(0, classes, 2 * n)
        y_test = rng.integers(0, classes, 2 * n)
        train = _logits(rng, 2 * n, classes, 6.0, y_train) / t
        test = _logits(rng, 2 * n, classes, SET_SCALE["original"], y_test) / t
        members = train[:n]
        set_logits = {"original": test[:n]}
        for s in sets[1:] if sets[0] == "original" else sets:
            set_logits[s] = _logits(rng, n, classes, SET_SCALE.get(s, 3.0), None) / t
        if outputs:
            out = run / "outputs" / v / "target"
            out.mkdir(parents=True, exist_ok=True)
            np.savez(out / "train.npz", logits=train, labels=y_train)
            np.savez(out / "test.npz", logits=test, labels=y_test)
            for s, z in set_logits.items():
                if s != "original":
                    out_s = out / f"{s}.npz"
                    out_s.parent.mkdir(parents=True, exist_ok=True)
                    np.savez(out_s, logits=z, labels=np.full(n, -1, np.int64))
        for role in ("target", "shadow"):
            model_rows += [
                ModelRow(v, role, "train", "accuracy", accuracy(train, y_train)),
                ModelRow(v, role, "test", "accuracy", accuracy(test, y_test)),
                ModelRow(v, role, "test", "ece", ece(test, y_test)),
                ModelRow(
                    v, role, "test", "overconfidence_error", overconfidence_error(test, y_test)
                ),
                ModelRow(v, role, "test", "nll", nll(test, y_test)),
                ModelRow(v, role, "members", "mmps", model_mmps(members)),
                ModelRow(v, role, "nonmembers", "mmps", model_mmps(test[:n])),
            ]
        member_top = softmax(members).max(1)
        for s, z in set_logits.items():
            model_rows.append(
                ModelRow(v, "target", s, "emd_max_score", emd(member_top, softmax(z).max(1)))
            )
            if s != "original":
                model_rows.append(ModelRow(v, "target", s, "mmps", model_mmps(z)))
        for a in attacks:
            shadow_score = _signal(a, np.concatenate([members, test[n:]]))
            shadow_member = np.r_[np.ones(n, bool), np.zeros(n, bool)]
            tau = oracle_threshold(shadow_score, shadow_member)
            for s, z in set_logits.items():
                logits = np.concatenate([members, z])
                score = _signal(a, logits)
                is_member = np.r_[np.ones(n, bool), np.zeros(len(z), bool)]
                predicted = score >= tau
                top = softmax(logits).max(1)
                path = run / "scores" / v / a / f"{s}.npz"
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(path, score=score, is_member=is_member, predicted=predicted, max_score=top)
                met = attack_metrics(score, is_member, predicted, max_score=top)
                attack_rows += [MetricRow(v, a, s, k, float(x)) for k, x in met.items()]
            attack_rows.append(MetricRow(v, a, "shadow", "operating_score", float(tau)))
    _write_csv(
        run / "results.csv", ("variant", "attack", "dataset", "metric", "value"), attack_rows
    )
    _write_csv(
        run / "model_metrics.csv", ("variant", "role", "dataset", "metric", "value"), model_rows
    )
    doc = {
        "config": cfg.to_dict(),
        "versions": {
            "mistrust": "0.1.0",
            "python": "3.11.2",
            "torch": "2.3.0",
            "numpy": np.__version__,
            "platform": "Linux-fake",
        },
        "attacks": _nest(attack_rows),
        "models": _nest(model_rows),
        "variants": info,
        "timings": {"data": 1.0, "training": 12.5, "attacks": 0.5},
        "train_seconds": {f"{v}/target": 6.0 for v in variants},
    }
    (run / "results.json").write_text(json.dumps(doc, indent=1, default=str))
    if galleries:
        for s in sets:
            _gallery(run / "figures" / f"gallery_{s}.png", rng)
    (run / "tables.md").write_text("# fake\n")
    if per_sample:  # vulnerable.csv and agreement.csv, by the pipeline's own stage
        from mistrust.present.vulnerable import per_sample_view, write_per_sample
        from mistrust.runtime.paths import RunPaths

        views = [
            per_sample_view(run / "scores" / v, attack_rows, variant=v, k=8, member_index=idx[:n])
            for v in variants
        ]
        write_per_sample(RunPaths(run), views)
    return run


EVIL = "<script>alert(1)</script>"
EVIL_PATH = "/data/<img src=x onerror=alert(1)>"
_SHARED: dict[str, Path] = {}


def shared_report(base: Path) -> Path:
    """One fake run with hostile names and its built report, shared by the test modules."""
    if "run" not in _SHARED:
        from mistrust.present.report import build_report

        path = make_fake_run(
            Path(base) / "run",
            n=100,
            sets=("original", "permuted", "scaled", "noise", EVIL),
            folders={EVIL: EVIL_PATH},
        )
        build_report(path)
        _SHARED["run"] = path
    return _SHARED["run"]


#: the sets of the default preset, each with how confident the target is on it (members:
#: 3.2): the same summary shape as a default run, 6 attacks x 8 sets
AUDITED_SETS = {
    "held-out": 2.0,
    "digits": 1.5,
    "permuted": 1.0,
    "scaled": 9.0,
    "unnormalized": 1.2,
    "noise": 0.5,
    "gan": 2.4,
}
DEFAULT_VARIANTS = ("base", "label-smoothing", "weight-decay", "temperature", "laplace")


def make_audited_run(run_dir: Path, *, n: int = 300, seed: int = 1) -> Path:
    """A run directory whose rows come from :func:`mistrust.audit` with every trust check:
    the six score-based attacks on the default preset's eight sets, the original set
    leaking, a blind baseline that separates every other set from the members (scaled:
    the attacks fall below chance), and the rows repeated for the default's five
    variants (what the summary shows of them is their count). No training; ~1 s."""
    import mistrust
    from mistrust.attacks import SCORE_BASED_ATTACKS

    rng = np.random.default_rng(seed)

    def outputs(k: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, k)
        z = rng.normal(size=(k, 10))
        z[np.arange(k), y] += confidence
        return z.astype(np.float32), y

    def role() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        (a, ya), (b, yb) = outputs(n, 3.2), outputs(n, 2.6)
        return np.r_[a, b], np.r_[ya, yb], np.arange(2 * n) < n

    shadow, target = role(), role()
    sets = {name: outputs(n, c)[0] for name, c in AUDITED_SETS.items()}
    baseline = {"original": rng.normal(size=2 * n)}
    baseline |= {s: np.r_[rng.normal(size=n) + 2.0, rng.normal(size=n)] for s in sets}
    result = mistrust.audit(
        shadow,
        target,
        eval_sets=sets,
        baseline_scores=baseline,
        attacks=SCORE_BASED_ATTACKS,
        seed=seed,
    )
    rows = [r._replace(variant=v) for v in DEFAULT_VARIANTS for r in result.rows]
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    _write_csv(run / "results.csv", MetricRow._fields, rows)
    cfg = Config(name="audited")
    cfg.variants.names, cfg.eval.sets = list(DEFAULT_VARIANTS), ["original", *sets]
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return run
