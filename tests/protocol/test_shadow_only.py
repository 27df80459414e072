"""Attacks learn from the shadow model's outputs only, and score the target's."""

from __future__ import annotations

import numpy as np
import torch
from protocol_helpers import run_model

from mistrust.config import load_config
from mistrust.core.outputs import Outputs
from mistrust.pipeline.evaluate import RoleOutputs, evaluate_attacks


def test_fit_sees_exactly_the_shadows_members_and_nonmembers(pipeline, data) -> None:
    """Recomputed from the shadow model file and the raw images of its attack splits."""
    from mistrust.study.train import load_model

    fits = [c for c in pipeline.rec.attack_calls if c[0] == "fit"]
    assert len(fits) == len(pipeline.cfg.variants.names)  # once per variant
    _, logits, labels, is_member = fits[0]  # the base variant comes first
    shadow, _ = load_model(pipeline.run_dir / "models/base/shadow.pt", pipeline.cfg.model)
    sp = data.splits
    members = data.train.subset(sp["shadow_members"])
    nonmembers = data.test.subset(sp["shadow_nonmembers"])
    x = data.preprocess(torch.cat([members.images, nonmembers.images]))
    np.testing.assert_allclose(logits, run_model(shadow, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(labels, torch.cat([members.labels, nonmembers.labels]).numpy())
    np.testing.assert_array_equal(is_member, np.r_[np.ones(40, bool), np.zeros(40, bool)])


def test_every_score_call_sees_the_targets_members(pipeline, data, target_model) -> None:
    scores = [c for c in pipeline.rec.attack_calls if c[0] == "score"]
    n_sets = len(pipeline.cfg.eval.sets)
    assert len(scores) == n_sets * len(pipeline.cfg.variants.names)
    members = data.train.subset(data.splits["target_members"])
    want = run_model(target_model, data.preprocess(members.images))
    for _, logits, labels, _ in scores[:n_sets]:  # base variant
        np.testing.assert_allclose(logits[:40], want, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(labels[:40], members.labels.numpy())


def _outputs(logits: np.ndarray, labels: np.ndarray) -> Outputs:
    return Outputs(logits.astype(np.float32), labels.astype(np.int64))


def _confident(rng: np.random.Generator, n: int, margin: float) -> np.ndarray:
    """Two-class logits whose max softmax is ``sigmoid(margin)`` (plus a little noise)."""
    m = margin + rng.uniform(-0.01, 0.01, n)
    return np.stack([m, np.zeros(n)], axis=1)


def test_threshold_comes_from_the_shadow_not_the_target(tmp_path) -> None:
    """Shadow: members at confidence sigmoid(3), non-members at sigmoid(1) -> threshold
    between them. Target: members sigmoid(0.5), non-members sigmoid(0.2) -> the shadow's
    threshold flags nobody (TPR 0, FPR 0); a target-fitted one would flag the members."""
    rng = np.random.default_rng(0)
    y = np.zeros(20, np.int64)
    shadow_m, shadow_n = _confident(rng, 20, 3.0), _confident(rng, 20, 1.0)
    target_m, target_n = _confident(rng, 20, 0.5), _confident(rng, 20, 0.2)

    def role(m: np.ndarray, n: np.ndarray) -> RoleOutputs:
        mem, non = _outputs(m, y), _outputs(n, y)
        return RoleOutputs(mem, non, mem, non, {"original": non, "copy": non})

    cfg = load_config("smoke", ["attacks.names=[threshold]"])
    rows, scores = evaluate_attacks(
        cfg.attacks, "base", role(target_m, target_n), role(shadow_m, shadow_n), tmp_path, seed=0
    )
    assert {(a, d) for _, a, d, _, _ in rows} == {
        ("threshold", "original"),
        ("threshold", "copy"),
        ("threshold", "shadow"),
    }
    saved = np.load(tmp_path / "threshold/copy.npz")
    assert saved["is_member"].dtype == bool and saved["predicted"].dtype == bool
    np.testing.assert_array_equal(saved["is_member"], np.arange(40) < 20)
    np.testing.assert_array_equal(saved["score"], scores["threshold"]["copy"])
    np.testing.assert_array_equal(saved["predicted"], np.zeros(40, bool))
    np.testing.assert_array_equal(saved["max_score"], saved["score"])  # the max-score attack
    val = {(a, d, m): x for _, a, d, m, x in rows}
    threshold = val[("threshold", "shadow", "operating_score")]
    assert 1 / (1 + np.exp(-1.02)) < threshold <= 1 / (1 + np.exp(-3.01))
    assert val[("threshold", "original", "tpr")] == 0.0
    assert val[("threshold", "original", "fpr")] == 0.0
    # the scores are the target's max softmax, members first
    want = 1 / (1 + np.exp(-np.r_[target_m[:, 0], target_n[:, 0]]))
    np.testing.assert_allclose(scores["threshold"]["original"], want, rtol=1e-6)


def test_attack_labels_replace_only_unknown_labels() -> None:
    from mistrust.pipeline.evaluate import attack_labels

    logits = np.array([[0.0, 5.0, 1.0], [3.0, 0.0, 9.0], [0.0, 0.0, 7.0], [1.0, 0.0, 0.0]])
    out = Outputs(logits, np.array([-1, 0, 1, -1]))
    np.testing.assert_array_equal(attack_labels(out), [1, 0, 1, 0])
    np.testing.assert_array_equal(out.labels, [-1, 0, 1, -1])  # the outputs stay as they were


def test_attack_options_reach_every_attack(tmp_path, monkeypatch) -> None:
    import mistrust.core.audit as auditing

    seen = []
    real = auditing.create_attack

    def spy(name, **kwargs):
        seen.append((name, kwargs))
        return real(name, **kwargs)

    monkeypatch.setattr(auditing, "create_attack", spy)
    cfg = load_config(
        "smoke",
        [
            "attacks.names=[loss, salem]",
            "attacks.top_k=2",
            "attacks.class_thresholds=true",
            "attacks.strict_threshold=true",
            "attacks.score_precision=float32",
            "attacks.salem_score=sigmoid",
            "attacks.salem_rows=20",
            "seed=5",
        ],
    )
    rng = np.random.default_rng(1)
    o = _outputs(rng.normal(size=(30, 3)), rng.integers(0, 3, 30))
    r = RoleOutputs(o, o, o, o, {"original": o})
    evaluate_attacks(cfg.attacks, "base", r, r, tmp_path, seed=cfg.seed)
    want = {
        "top_k": 2,
        "class_thresholds": True,
        "seed": 5,
        "strict_threshold": True,
        "score_precision": "float32",
        "salem_score": "sigmoid",
        "salem_rows": 20,
    }
    assert seen == [("loss", want), ("salem", want)]
