"""The trust checks of the shared run, recomputed from its raw images and saved scores.

Every (variant, attack, set) of ``results.csv`` (reference attacks included) carries the
checks and a verdict; the blind baseline saw the right images in the right order; the
null test, the constant-decision flag and the epsilon bound follow from the saved scores
as docs/CHECKS.md defines them.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict

import numpy as np
import pytest
from protocol_helpers import SETS
from scipy.stats import beta

from mistrust.checks import IN_DISTRIBUTION_KEYS, SET_CHECK_KEYS
from mistrust.io import load_npz
from mistrust.metrics import auroc

pytestmark = pytest.mark.pipeline
DEGENERATE = ("flag_constant", "flag_ties", "flag_polarity")


@pytest.fixture(scope="module")
def res(pipeline) -> dict[tuple[str, str, str, str], float]:
    with open(pipeline.run_dir / "results.csv", newline="") as fh:
        r = csv.reader(fh)
        next(r)
        return {tuple(row[:4]): float(row[4]) for row in r}


def _pairs(res):
    return sorted({k[:3] for k in res if k[2] != "shadow"})


def test_every_attack_and_set_has_its_checks_and_a_verdict(pipeline, res) -> None:
    pairs = _pairs(res)
    attacks = {(v, a) for v, a, _ in pairs}
    assert ("base", "lira-online") in attacks and ("temperature-fit", "loss") in attacks
    for v, a, d in pairs:
        for key in (*SET_CHECK_KEYS, "baseline_auroc", "auroc_minus_baseline_ci_low"):
            assert (v, a, d, key) in res, (v, a, d, key)
        assert res[(v, a, d, "verdict")] in (1.0, 0.0, -1.0)
        assert all(((v, a, d, k) in res) == (d == "original") for k in IN_DISTRIBUTION_KEYS)
    assert {d for _, _, d in pairs} == set(SETS)


def test_verdicts_adjust_the_p_values_of_every_attack_on_a_set(res) -> None:
    # Holm by hand per (variant, set); the reference attacks join the base variant's family
    families: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for (v, a, d, m), x in res.items():
        if m == "p_leakage":
            families[(v, d)][a] = x
    assert {"lira-online", "loss"} <= set(families[("base", "original")])
    for (v, d), p in families.items():
        running = 0.0
        for j, a in enumerate(sorted(p, key=p.get)):
            running = max(running, min(1.0, (len(p) - j) * p[a]))
            assert res[(v, a, d, "p_leakage_holm")] == pytest.approx(running)
            # digits: mistrust's own split of one pool, so "original" is i.i.d.
            assert res[(v, a, d, "iid_split")] == float(d == "original")


def test_blind_baseline_saw_members_then_the_sets_images(pipeline, data, res) -> None:
    from mistrust.checks import blind_scores, pixel_features

    sp = data.splits
    members = data.preprocess(data.train.images[sp["target_members"]])
    nonmembers = data.preprocess(data.test.images[sp["target_nonmembers"]])
    features = np.concatenate([pixel_features(members), pixel_features(nonmembers)])
    is_member = np.arange(len(features)) < len(members)
    want = blind_scores(features, is_member, seed=pipeline.cfg.seed)
    saved = load_npz(pipeline.run_dir / "baseline/original.npz")["score"]
    assert saved.tobytes() == want.tobytes()
    for name in SETS:
        score = load_npz(pipeline.run_dir / f"baseline/{name}.npz")["score"]
        truth = load_npz(pipeline.run_dir / f"scores/base/threshold/{name}.npz")["is_member"]
        assert len(score) == len(truth) and truth[: len(members)].all()
        for v, a, d in _pairs(res):
            if d == name:  # model-free: the same beside every attack and variant
                assert res[(v, a, d, "baseline_auroc")] == auroc(score, truth)


@pytest.mark.parametrize("attack", ["threshold", "loss", "lira-offline", "rmia-online"])
def test_null_test_flags_and_epsilon_from_the_saved_scores(pipeline, res, attack) -> None:
    f = load_npz(pipeline.run_dir / f"scores/base/{attack}/original.npz")
    m, pred = f["is_member"], f["predicted"]
    y = f["score"][~m]
    half = np.zeros(len(y), bool)
    half[np.random.default_rng(pipeline.cfg.seed).permutation(len(y))[: len(y) // 2]] = True
    assert res[("base", attack, "original", "null_auroc")] == pytest.approx(auroc(y, half))
    low = res[("base", attack, "original", "null_auroc_ci_low")]
    high = res[("base", attack, "original", "null_auroc_ci_high")]
    assert res[("base", attack, "original", "flag_null")] == float(not low <= 0.5 <= high)
    for name in SETS:
        g = load_npz(pipeline.run_dir / f"scores/base/{attack}/{name}.npz")
        constant = g["predicted"].all() or not g["predicted"].any()
        assert res[("base", attack, name, "flag_constant")] == float(constant)
    tp, n_in = int(pred[m].sum()), int(m.sum())
    fp, n_out = int(pred[~m].sum()), int((~m).sum())
    tpr_low = beta.ppf(0.025, tp, n_in - tp + 1) if tp else 0.0
    fpr_high = beta.ppf(0.975, fp + 1, n_out - fp) if fp < n_out else 1.0
    fnr_high = 1 - tpr_low
    eps = [0.0]
    if 1 - 1e-5 - fpr_high > 0 and fnr_high > 0:
        eps.append(math.log((1 - 1e-5 - fpr_high) / fnr_high))
    if 1 - 1e-5 - fnr_high > 0 and fpr_high > 0:
        eps.append(math.log((1 - 1e-5 - fnr_high) / fpr_high))
    assert res[("base", attack, "original", "epsilon_lower_bound")] == pytest.approx(max(eps))
    # 40 non-members resolve neither 0.1 % nor 1 % FPR (5 / 40 = 12.5 %)
    assert res[("base", attack, "original", "min_resolvable_fpr")] == 5 / 40
    assert math.isnan(res[("base", attack, "original", "tpr_at_1fpr_ci_low")])


def test_the_strongest_attack_counts_the_reference_attacks(pipeline, res) -> None:
    """The base variant's ``strongest`` row: the highest AUROC on ``original`` (computed
    here with scikit-learn from the saved scores) among every attack, reference attacks
    included, with a threshold and no degenerate flag; the per-sample view ranks by it."""
    from sklearn.metrics import roc_auc_score

    names = [*pipeline.cfg.attacks.names, *pipeline.cfg.reference.attacks]
    auc = {}
    for a in names:
        flagged = any(res.get(("base", a, "original", f)) == 1.0 for f in DEGENERATE)
        if ("base", a, "shadow", "operating_score") in res and not flagged:
            f = load_npz(pipeline.run_dir / f"scores/base/{a}/original.npz")
            auc[a] = roc_auc_score(f["is_member"], f["score"])
    order = sorted(auc, key=lambda a: -auc[a])
    assert order and set(order) & set(pipeline.cfg.reference.attacks)
    strongest = [k[1] for k in res if k[0] == "base" and k[3] == "strongest"]
    runner_up = [k[1] for k in res if k[0] == "base" and k[3] == "runner_up"]
    assert (strongest, runner_up) == ([order[0]], order[1:2])
    with open(pipeline.run_dir / "vulnerable.csv", newline="") as fh:
        ranked_by = {r["ranked_by"] for r in csv.DictReader(fh) if r["variant"] == "base"}
    assert ranked_by == {order[0]}
