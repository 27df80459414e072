"""``mistrust.audit``: arrays in, a typed table out; known values computed by hand."""

from __future__ import annotations

import csv
import math
import pydoc

import numpy as np
import pytest

import mistrust
from mistrust.errors import InputError


def _two_class(margins: list[float]) -> np.ndarray:
    """Logits ``(N, 2)``: ``[m, 0]``, so the max softmax score is ``1 / (1 + exp(-m))``."""
    return np.array([[m, 0.0] for m in margins])


def _hand_case() -> tuple[tuple, tuple, np.ndarray]:
    # shadow: members margin 4 (max score 0.982), non-members margin 0 (0.5): any threshold
    # in (0.5, 0.982] separates them, so target members at margin 4 are all "member"
    shadow = (_two_class([4, 4, 4, 0, 0, 0]), np.zeros(6, int), np.r_[True, True, True, 0, 0, 0])
    target = (_two_class([0, 4, 0, 4]), np.zeros(4, int), np.array([False, True, False, True]))
    ood = _two_class([10, 10, 10])  # over-confident non-members: max score 0.99995
    return shadow, target, ood


def test_known_rates_on_original_and_ood_sets() -> None:
    shadow, target, ood = _hand_case()
    result = mistrust.audit(shadow, target, eval_sets={"ood": ood}, attacks=["threshold"])
    assert result.value("threshold", "original", "tpr") == 1.0
    assert result.value("threshold", "original", "fpr") == 0.0
    assert result.value("threshold", "ood", "fpr") == 1.0  # every OOD sample called member
    assert result.value("threshold", "ood", "n_members") == 2
    assert result.value("threshold", "ood", "n_nonmembers") == 3
    t = result.value("threshold", "shadow", "operating_score")
    assert 0.5 < t <= 1 / (1 + math.exp(-4))


def test_scores_keep_the_target_row_order_and_pair_members_first() -> None:
    shadow, target, ood = _hand_case()
    result = mistrust.audit(shadow, target, eval_sets={"ood": ood}, attacks=["threshold"])
    sig = lambda m: 1 / (1 + np.exp(-np.asarray(m, float)))  # noqa: E731  max softmax, 2 classes
    original = result.scores["threshold"]["original"]
    np.testing.assert_allclose(original.score, sig([0, 4, 0, 4]))
    np.testing.assert_array_equal(original.is_member, [False, True, False, True])
    pair = result.scores["threshold"]["ood"]
    np.testing.assert_allclose(pair.score, sig([4, 4, 10, 10, 10]))
    np.testing.assert_array_equal(pair.is_member, [True, True, False, False, False])
    np.testing.assert_array_equal(pair.predicted, [True] * 5)
    np.testing.assert_allclose(pair.max_score, sig([4, 4, 10, 10, 10]))


def test_rows_are_typed_and_ordered_per_attack() -> None:
    shadow, target, ood = _hand_case()
    result = mistrust.audit(
        shadow, target, eval_sets={"ood": ood}, attacks=["loss", "threshold"], variant="v"
    )
    assert all(isinstance(r, mistrust.MetricRow) for r in result.rows)
    assert {r.variant for r in result.rows} == {"v"}
    order = list(dict.fromkeys((r.attack, r.dataset) for r in result.rows))
    assert order == [
        ("loss", "original"),
        ("loss", "ood"),
        ("loss", "shadow"),
        ("threshold", "original"),
        ("threshold", "ood"),
        ("threshold", "shadow"),
    ]
    r = result.rows[0]
    assert (r[0], r[1], r[2]) == ("v", "loss", "original")  # still a plain tuple too


def test_ood_set_without_labels_uses_the_predicted_class() -> None:
    # the loss attack reads the label: a logits-only set must equal labels = argmax
    rng = np.random.default_rng(0)
    shadow = (rng.normal(size=(40, 3)), rng.integers(0, 3, 40), np.arange(40) < 20)
    target = (rng.normal(size=(30, 3)), rng.integers(0, 3, 30), np.arange(30) < 15)
    ood = rng.normal(scale=5, size=(10, 3))
    a = mistrust.audit(shadow, target, eval_sets={"x": ood}, attacks=["loss"])
    b = mistrust.audit(shadow, target, eval_sets={"x": (ood, ood.argmax(1))}, attacks=["loss"])
    c = mistrust.audit(shadow, target, eval_sets={"x": (ood, np.full(10, -1))}, attacks=["loss"])
    np.testing.assert_array_equal(a.scores["loss"]["x"].score, b.scores["loss"]["x"].score)
    np.testing.assert_array_equal(a.scores["loss"]["x"].score, c.scores["loss"]["x"].score)


def test_matches_the_attack_objects_used_by_hand() -> None:
    """The core adds no numerics of its own: same numbers as fit / score / attack_metrics."""
    from mistrust.attacks import create_attack, signals
    from mistrust.metrics import attack_metrics

    rng = np.random.default_rng(1)
    shadow = (rng.normal(size=(60, 4)), rng.integers(0, 4, 60), np.arange(60) % 2 == 0)
    target = (rng.normal(size=(50, 4)), rng.integers(0, 4, 50), np.arange(50) % 3 == 0)
    result = mistrust.audit(shadow, target, attacks=["entropy"], original="in-dist")
    attack = create_attack("entropy").fit(*shadow)
    score = attack.score(target[0], target[1])
    want = attack_metrics(
        score, target[2], attack.decide(score), max_score=signals.max_score(target[0])
    )
    got = {r.metric: r.value for r in result.rows if r.dataset == "in-dist"}
    assert {k: got[k] for k in want} == pytest.approx(want, nan_ok=True)
    # the rest are the trust checks (tested in tests/checks/)
    assert set(got) - set(want) >= {"auroc_ci_low", "flag_null", "epsilon_lower_bound", "verdict"}


def test_original_none_scores_only_the_given_sets() -> None:
    shadow, target, ood = _hand_case()
    members_only = (target[0][target[2]], target[1][target[2]], np.ones(2, bool))
    result = mistrust.audit(
        shadow, members_only, eval_sets={"ood": ood}, original=None, attacks=["threshold"]
    )
    assert {r.dataset for r in result.rows} == {"ood", "shadow"}


@pytest.mark.parametrize(
    ("shadow_member", "target_member", "message"),
    [
        ([True] * 6, [False, True, False, True], "both members and non-members"),
        ([1, 1, 1, 0, 0, 0], [False] * 4, "target needs members"),
        ([1, 1, 1, 0, 0, 0], [True] * 4, "no non-members"),
    ],
)
def test_missing_sides_are_input_errors(shadow_member, target_member, message) -> None:
    shadow, target, _ = _hand_case()
    with pytest.raises(InputError, match=message):
        mistrust.audit(
            (shadow[0], shadow[1], np.array(shadow_member)),
            (target[0], target[1], np.array(target_member)),
        )


def test_bad_inputs_name_the_problem() -> None:
    shadow, target, ood = _hand_case()
    with pytest.raises(InputError, match="labels have shape"):
        mistrust.audit(shadow, (target[0], target[1][:3], target[2]))
    with pytest.raises(InputError, match="twice"):
        mistrust.audit(shadow, target, eval_sets={"original": ood})
    with pytest.raises(InputError, match="tuple"):
        mistrust.audit(shadow, target[:2])
    with pytest.raises(ValueError, match="unknown attack"):
        mistrust.audit(shadow, target, attacks=["no-such-attack"])


def test_to_csv_writes_the_results_csv_format(tmp_path) -> None:
    shadow, target, ood = _hand_case()
    result = mistrust.audit(shadow, target, eval_sets={"ood": ood}, attacks=["threshold"])
    path = result.to_csv(tmp_path / "out.csv")
    with path.open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["variant", "attack", "dataset", "metric", "value"]
    assert len(rows) == len(result.rows) + 1
    for line, row in zip(rows[1:], result.rows, strict=True):
        assert tuple(line[:4]) == row[:4]
        value = float(line[4])  # floats written exactly
        assert value == row.value or (math.isnan(value) and math.isnan(row.value))


@pytest.mark.slow
def test_report_builds_the_run_report(tmp_path) -> None:
    shadow, target, ood = _hand_case()
    result = mistrust.audit(shadow, target, eval_sets={"ood": ood}, attacks=["threshold"])
    html = result.report(tmp_path / "rep")
    assert html == tmp_path / "rep" / "report.html" and html.is_file()
    assert (tmp_path / "rep" / "scores" / "base" / "threshold" / "ood.npz").is_file()
    assert "FPR 1.00 on ood" in (tmp_path / "rep" / "report.md").read_text()
    ranked = (tmp_path / "rep" / "vulnerable.csv").read_text().splitlines()
    assert ranked[1].startswith("base,1,") and ",threshold," in ranked[1]
    assert "Agreement: false positives on ood" in (tmp_path / "rep" / "report.md").read_text()


def test_to_frame_pivots_into_the_paper_table() -> None:
    pytest.importorskip("pandas")
    shadow, target, ood = _hand_case()
    df = mistrust.audit(shadow, target, eval_sets={"ood": ood}, attacks=["threshold"]).to_frame()
    assert list(df.columns) == ["variant", "attack", "dataset", "metric", "value"]
    table = df[df.metric == "fpr"].pivot(index="dataset", columns="attack", values="value")
    assert table.loc["ood", "threshold"] == 1.0
    assert table.loc["original", "threshold"] == 0.0


def test_every_default_attack_runs_and_writes_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(2)
    shadow = (rng.normal(size=(80, 5)), rng.integers(0, 5, 80), np.arange(80) < 40)
    target = (rng.normal(size=(60, 5)), rng.integers(0, 5, 60), np.arange(60) < 30)
    result = mistrust.audit(shadow, target, eval_sets={"ood": rng.normal(size=(20, 5))})
    assert list(result.scores) == list(mistrust.SCORE_BASED_ATTACKS)
    assert list(tmp_path.iterdir()) == []


def test_save_scores_layout(tmp_path) -> None:
    shadow, target, ood = _hand_case()
    result = mistrust.audit(shadow, target, eval_sets={"ood": ood}, attacks=["threshold"])
    result.save_scores(tmp_path)
    with np.load(tmp_path / "threshold" / "ood.npz") as f:
        assert set(f.files) == {"score", "is_member", "predicted", "max_score"}
        np.testing.assert_array_equal(f["is_member"], [True, True, False, False, False])


def test_public_names_and_help() -> None:
    for name in mistrust.__all__:
        assert getattr(mistrust, name) is not None
    text = pydoc.render_doc(mistrust.audit, renderer=pydoc.plaintext)
    for needed in ("shadow", "target", "eval_sets", "(N, C)", "higher = more likely member"):
        assert needed in text
    assert "mistrust.audit(" in text  # the docstring shows a call
