"""The rest of the run's protocol: GAN data, model metrics, labels of unlabelled sets."""

from __future__ import annotations

import csv

import numpy as np
import torch
from protocol_helpers import SETS, run_model

from mistrust.study.data import gan_training_images

UNLABELLED = ["noise", "gan", "held-out"]


def _rows(images: torch.Tensor) -> set[bytes]:
    return {bytes(x.numpy().tobytes()) for x in images}


def test_gan_never_sees_the_targets_training_images_nor_the_audited_nonmembers(
    pipeline, data
) -> None:
    (seen,) = pipeline.rec.gan_images
    sp = data.splits
    assert len(seen) == pipeline.cfg.eval.gan_images
    forbidden = _rows(data.train.images[sp["target_train"]]) | _rows(
        data.test.images[sp["target_nonmembers"]]
    )
    allowed = _rows(data.train.images[np.setdiff1d(np.arange(len(data.train)), sp["target_train"])])
    got = _rows(seen)
    # digits has a few exact duplicates; only images that exist solely in forbidden sets count
    assert not (got & (forbidden - allowed))
    assert got <= allowed


def test_gan_training_images_are_drawn_outside_the_target_train_split(data) -> None:
    pick = gan_training_images(data, 10_000, seed=0)
    n_pool = int((data.train.labels >= 0).sum())
    assert len(pick) == n_pool - len(data.splits["target_train"])
    assert not (_rows(pick.images) - _rows(data.train.images))
    small = gan_training_images(data, 30, seed=0)
    assert len(small) == 30 and (small.labels >= 0).all()
    assert not torch.equal(small.images, gan_training_images(data, 30, seed=1).images)


def _ece(logits: np.ndarray, labels: np.ndarray, n_bins: int) -> float:
    """Expected calibration error with ``n_bins`` equal-width bins, written out."""
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    conf, pred = p.max(1), p.argmax(1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        inside = (conf >= lo) & (conf < hi) if b < n_bins - 1 else (conf >= lo)
        if inside.any():
            total += inside.mean() * abs(
                (pred[inside] == labels[inside]).mean() - conf[inside].mean()
            )
    return total


def _oe(logits: np.ndarray, labels: np.ndarray, n_bins: int) -> float:
    """Over-confidence error: ``sum_b w_b * conf_b * max(conf_b - acc_b, 0)``, written out."""
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    conf, pred = p.max(1), p.argmax(1)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        c, a = conf[bins == b].mean(), (pred[bins == b] == labels[bins == b]).mean()
        total += (bins == b).mean() * c * max(c - a, 0.0)
    return total


def _model_rows(pipeline) -> dict[tuple[str, str, str, str], float]:
    with open(pipeline.run_dir / "model_metrics.csv") as fh:
        return {
            (r["variant"], r["role"], r["dataset"], r["metric"]): float(r["value"])
            for r in csv.DictReader(fh)
        }


def test_model_metrics_use_the_documented_bins_and_splits(pipeline, data) -> None:
    from mistrust.study.train import load_model

    rows = _model_rows(pipeline)
    sp = data.splits
    for role in ("target", "shadow"):
        model, _ = load_model(pipeline.run_dir / f"models/base/{role}.pt", pipeline.cfg.model)
        test = data.test.subset(sp[f"{role}_test"])
        train = data.train.subset(sp[f"{role}_train"])
        t_logits = run_model(model, data.preprocess(test.images))
        y = test.labels.numpy()
        want = _ece(t_logits, y, 15)
        assert abs(rows[("base", role, "test", "ece")] - want) < 1e-5, role
        assert abs(_ece(t_logits, y, 10) - want) > 1e-4, "15 and 10 bins must differ here"
        acc = (t_logits.argmax(1) == y).mean()
        assert rows[("base", role, "test", "accuracy")] == acc
        tr_logits = run_model(model, data.preprocess(train.images))
        tr_acc = (tr_logits.argmax(1) == train.labels.numpy()).mean()
        assert rows[("base", role, "train", "accuracy")] == tr_acc
        members = run_model(model, data.preprocess(data.train.images[sp[f"{role}_members"]]))
        p = np.exp(members - members.max(1, keepdims=True))
        mmps = (p / p.sum(1, keepdims=True)).max(1).mean()
        assert abs(rows[("base", role, "members", "mmps")] - mmps) < 1e-5


def test_model_metrics_cover_every_set_of_the_target(pipeline) -> None:
    rows = _model_rows(pipeline)
    for v in pipeline.cfg.variants.names:
        for ds in SETS:
            assert (v, "target", ds, "emd_max_score") in rows
            assert ((v, "target", ds, "mmps") in rows) == (ds != "original")
        for metric in ("ece", "overconfidence_error", "nll"):
            assert (v, "shadow", "test", metric) in rows


def test_unlabelled_sets_are_attacked_with_the_targets_predicted_class(
    pipeline, data, target_model
) -> None:
    scores = [c for c in pipeline.rec.attack_calls if c[0] == "score"]
    nonmembers = data.test.labels[data.splits["target_nonmembers"]].numpy()
    for ds, (_, logits, labels, _) in zip(SETS, scores, strict=False):  # base variant
        if ds in UNLABELLED:
            np.testing.assert_array_equal(labels[40:], logits[40:].argmax(1), err_msg=ds)
        else:
            np.testing.assert_array_equal(labels[40:], nonmembers, err_msg=ds)
    # the reference attacks label OOD rows with the TARGET's argmax, for every model
    keys = pipeline.rec.signal_keys
    for ds in UNLABELLED:
        out = np.load(pipeline.run_dir / f"outputs/base/target/{ds}.npz")
        np.testing.assert_array_equal(keys[ds], out["logits"].argmax(1), err_msg=ds)
        assert (out["labels"] == -1).all()
    np.testing.assert_array_equal(keys["scaled"], nonmembers)


def test_scores_on_disk_pair_target_members_with_each_set(pipeline) -> None:
    for ds in SETS:
        f = np.load(pipeline.run_dir / f"scores/base/recording/{ds}.npz")
        n = len(f["score"])
        np.testing.assert_array_equal(f["is_member"], np.arange(n) < 40)
        np.testing.assert_array_equal(f["predicted"], f["score"] >= _operating(pipeline))


def _operating(pipeline) -> float:
    return pipeline.result.value("base", "recording", "shadow", "operating_score")


def test_model_metrics_rows_by_hand() -> None:
    """``model_metrics`` on hand-made outputs: which split feeds which row, 15 bins."""
    from mistrust.core.outputs import Outputs
    from mistrust.pipeline.evaluate import RoleOutputs, model_metrics

    rng = np.random.default_rng(0)

    def outs(n: int, scale: float) -> Outputs:
        logits = rng.normal(size=(n, 4)) * scale
        # right on the confident half, random elsewhere: bins err both ways, so the
        # number of bins changes the ECE
        conf = logits.max(1) - np.median(logits.max(1))
        labels = np.where(conf > 0, logits.argmax(1), rng.integers(0, 4, n))
        return Outputs(logits.astype(np.float32), labels)

    train, test, members, nonmembers = outs(50, 3), outs(60, 2), outs(20, 4), outs(30, 1)
    sets = {"original": nonmembers, "noise": outs(25, 0.5)}
    rows = model_metrics("v", "target", RoleOutputs(members, nonmembers, train, test, sets))
    got = {(d, m): x for v, r, d, m, x in rows if (v, r) == ("v", "target")}
    assert len(got) == len(rows) == 10
    want_ece = _ece(test.logits, test.labels, 15)
    assert abs(got[("test", "ece")] - want_ece) < 1e-12
    assert abs(_ece(test.logits, test.labels, 10) - want_ece) > 1e-5

    def acc(o: Outputs) -> float:
        return float((o.logits.argmax(1) == o.labels).mean())

    def mmps(o: Outputs) -> float:
        z = o.logits.astype(np.float64)
        p = np.exp(z - z.max(1, keepdims=True))
        return float((p / p.sum(1, keepdims=True)).max(1).mean())

    assert got[("train", "accuracy")] == acc(train)
    assert got[("test", "accuracy")] == acc(test)
    assert abs(got[("members", "mmps")] - mmps(members)) < 1e-6
    assert abs(got[("nonmembers", "mmps")] - mmps(nonmembers)) < 1e-6
    assert abs(got[("noise", "mmps")] - mmps(sets["noise"])) < 1e-6
    assert ("original", "mmps") not in got
    z = test.logits.astype(np.float64)
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    assert abs(got[("test", "nll")] - (-logp[np.arange(60), test.labels].mean())) < 1e-6
    from scipy.stats import wasserstein_distance

    for ds, o in sets.items():
        p = np.exp(o.logits - o.logits.max(1, keepdims=True))
        top = (p / p.sum(1, keepdims=True)).max(1)
        pm = np.exp(members.logits - members.logits.max(1, keepdims=True))
        want = wasserstein_distance((pm / pm.sum(1, keepdims=True)).max(1), top)
        assert abs(got[(ds, "emd_max_score")] - want) < 1e-5, ds
    assert abs(got[("test", "overconfidence_error")] - _oe(test.logits, test.labels, 15)) < 1e-12
    assert all(isinstance(x, float) for *_, x in rows)
