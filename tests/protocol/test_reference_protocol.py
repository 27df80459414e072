"""The reference population: who each reference model trains on, and the IN / OUT masks
that LiRA and RMIA are actually handed, per set.

Documented (``mistrust.study.reference``): population rows are the target's attack members,
then its attack non-members, then the shadow training pool; models come in complementary
pairs on the audited rows, so each audited sample is IN for exactly half of them; every
model trains on ``population_size`` samples; ``z`` is drawn from the shadow pool. A
perturbed copy of a non-member (scaled, permuted, unnormalised) keeps the IN / OUT models
of its source sample; no reference model trains on any other OOD row, so those rows are
OUT for every model. Offline attacks get the OUT mask. Queries are flipped exactly when
the models trained with flips, unless ``reference.augment_queries`` says otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from protocol_helpers import N_MODELS, REFERENCE

from mistrust.attacks.reference import create_reference_attack
from mistrust.attacks.reference.lira import pool
from mistrust.config import load_config
from mistrust.data.population import Population, make_population
from mistrust.io import load_npz
from mistrust.pipeline.reference import _attack_set, _fitted, _Signals


def _population_images(data) -> torch.Tensor:
    sp = data.splits
    return torch.cat(
        [
            data.train.images[sp["target_members"]],
            data.test.images[sp["target_nonmembers"]],
            data.train.images[sp["shadow_train"]],
        ]
    )


def _sorted_rows(images: torch.Tensor) -> list[bytes]:
    return sorted(bytes(x.numpy().tobytes()) for x in images)


def test_each_reference_model_trains_on_its_keep_row(pipeline, data) -> None:
    keep = load_npz(pipeline.run_dir / "reference_keep.npz")
    mask, a = keep["keep"], int(keep["n_audited"])
    assert a == 80 and mask.shape == (N_MODELS, 80 + 80)
    assert (mask[:, :a].sum(0) == N_MODELS // 2).all(), "audited rows IN for exactly half"
    for m in range(0, N_MODELS, 2):
        assert (mask[m, :a] ^ mask[m + 1, :a]).all(), "complementary pairs"
    assert (mask.sum(1) == pipeline.cfg.data.train_size).all()
    z = keep["z"]
    assert len(z) == 20 and (z >= a).all() and len(set(z.tolist())) == 20
    images = _population_images(data)
    assert sorted(pipeline.rec.reference_train) == list(range(N_MODELS))
    for m, trained_on in pipeline.rec.reference_train.items():
        assert _sorted_rows(trained_on) == _sorted_rows(images[mask[m]]), m
    # the target's members are the first rows: a model that trains on row i < 40 trains on
    # the target's member i (never on one of the target's non-members instead)
    members = data.train.images[data.splits["target_members"]]
    for m, trained_on in pipeline.rec.reference_train.items():
        got = set(_sorted_rows(trained_on))
        assert all(
            (bytes(members[i].numpy().tobytes()) in got) for i in np.flatnonzero(mask[m, :40])
        )


def _calls(pipeline, attack: str, ds: str, fn: str) -> list[dict]:
    return [k for a, d, f, k in pipeline.rec.reference_calls if (a, d, f) == (attack, ds, fn)]


@pytest.fixture(scope="module")
def keep(pipeline) -> tuple[np.ndarray, int, np.ndarray]:
    k = load_npz(pipeline.run_dir / "reference_keep.npz")
    return k["keep"].T, int(k["n_audited"]), k["z"]  # (P, M)


def test_lira_masks_on_the_original_set(pipeline, keep) -> None:
    in_mask, a, _ = keep
    (online,) = _calls(pipeline, "lira-online", "original", "lira_online")
    np.testing.assert_array_equal(online["args"][2], in_mask[:a])
    (offline,) = _calls(pipeline, "lira-offline", "original", "lira_offline")
    np.testing.assert_array_equal(offline["args"][2], ~in_mask[:a])  # the OUT mask


PERTURBED = ["permuted", "scaled", "unnormalized"]


@pytest.mark.parametrize("ds", ["noise", "gan", "held-out"])
@pytest.mark.parametrize("attack", ["lira-online", "lira-offline"])
def test_lira_on_ood_sets_is_offline_with_ood_rows_out(pipeline, keep, attack, ds) -> None:
    in_mask, _, _ = keep
    (call,) = _calls(pipeline, attack, ds, "lira_offline")
    assert not _calls(pipeline, attack, ds, "lira_online")
    out = call["args"][2]
    n_ood = pipeline.cfg.data.nonmembers if ds != "held-out" else len(out) - 40
    assert out.shape == (40 + n_ood, N_MODELS)
    np.testing.assert_array_equal(out[:40], ~in_mask[:40])  # members: their own OUT models
    assert out[40:].all(), "no reference model trained on an OOD row"


@pytest.mark.parametrize("ds", PERTURBED)
def test_perturbed_copies_keep_the_models_of_their_source_sample(pipeline, keep, ds) -> None:
    """Row 40 + j of a perturbed set is non-member j perturbed, population row 40 + j: the
    models that trained on that image are IN for its copy, the others OUT."""
    in_mask, a, _ = keep
    (online,) = _calls(pipeline, "lira-online", ds, "lira_online")
    assert not _calls(pipeline, "lira-online", ds, "lira_offline"), "online runs online"
    np.testing.assert_array_equal(online["args"][2], in_mask[:a])
    (offline,) = _calls(pipeline, "lira-offline", ds, "lira_offline")
    np.testing.assert_array_equal(offline["args"][2], ~in_mask[:a])
    assert (offline["args"][2][40:].sum(1) == N_MODELS // 2).all(), "half the models are OUT"
    rows = {(at, d, m): v for _, at, d, m, v in pipeline.result.attack_rows}
    assert rows[("lira-online", ds, "offline_on_ood")] == 0.0
    assert rows[("rmia-online", ds, "offline_on_ood")] == 0.0
    assert rows[("lira-online", "noise", "offline_on_ood")] == 1.0


def test_rmia_masks(pipeline, keep) -> None:
    in_mask, a, z = keep
    assert not _calls(pipeline, "rmia-online", "original", "rmia_prior")[0].get("args")[1:]
    x_call, z_call = _calls(pipeline, "rmia-offline", "original", "rmia_prior")
    np.testing.assert_array_equal(x_call["args"][1], ~in_mask[:a])
    np.testing.assert_array_equal(z_call["args"][1], ~in_mask[z])
    assert x_call["a"] == pipeline.cfg.reference.rmia_a
    x_call, _ = _calls(pipeline, "rmia-offline", "scaled", "rmia_prior")
    np.testing.assert_array_equal(x_call["args"][1], ~in_mask[:a])  # copies: source's OUT
    x_call, _ = _calls(pipeline, "rmia-offline", "noise", "rmia_prior")
    np.testing.assert_array_equal(x_call["args"][1][:40], ~in_mask[:40])
    assert x_call["args"][1][40:].all()


def test_no_flipped_queries_for_models_trained_without_flips(pipeline) -> None:
    assert pipeline.cfg.data.augment == "none" and pipeline.cfg.reference.augment_queries is None
    assert not list((pipeline.run_dir / "outputs" / "reference").rglob("*-flip.npz"))


# --- the same rules on hand-made signals (fast) ------------------------------------------


def _tiny() -> tuple[Population, _Signals]:
    """4 models, 2 members + 2 non-members audited, 4 pool rows (2 of them z), 3 OOD rows."""
    keep = np.array(
        [
            [1, 0, 1, 0, 1, 1, 0, 0],
            [0, 1, 0, 1, 1, 0, 1, 0],
            [1, 1, 0, 0, 0, 1, 1, 0],
            [0, 0, 1, 1, 0, 0, 1, 1],
        ],
        bool,
    )
    pop = Population(np.zeros(8, np.int64), np.arange(8), 2, 4, keep, np.array([6, 7]))
    rng = np.random.default_rng(0)
    ref_phi = {"population": rng.normal(size=(8, 4, 1)), "ood": rng.normal(size=(3, 4, 1))}
    ref_prob = {"population": rng.uniform(0.1, 0.9, (8, 4)), "ood": rng.uniform(0.1, 0.9, (3, 4))}
    t_phi = {"audited": rng.normal(size=(4, 1)), "ood": rng.normal(size=(3, 1))}
    t_prob = {
        "audited": rng.uniform(0.1, 0.9, 4),
        "z": rng.uniform(0.1, 0.9, 2),
        "ood": rng.uniform(0.1, 0.9, 3),
    }
    return pop, _signals(ref_phi, ref_prob, t_phi, t_prob)


def _signals(ref_phi, ref_prob, t_phi, t_prob) -> _Signals:
    return _Signals({"lira": ref_phi, "rmia": ref_prob}, {"lira": t_phi, "rmia": t_prob})


def _record(monkeypatch, name: str) -> list[tuple]:
    import mistrust.attacks.reference.lira as lira
    import mistrust.attacks.reference.rmia as rmia

    module = lira if name.startswith("lira") else rmia  # where the attack object calls it
    calls: list[tuple] = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def _run(name: str, ds: str, pop: Population, sig: _Signals) -> np.ndarray:
    """Scores of the configured attack ``name`` on ``ds``, run as the stage runs it: online
    only on ``original``, else as its offline counterpart."""
    if ds != "original":
        name = name.replace("online", "offline")
    return _attack_set(_fitted(name, CFG.reference, pop, sig), ds, pop=pop, sig=sig)


CFG = load_config("smoke", ["reference.rmia_a=0.3", "reference.rmia_gamma=1.5"])


def test_attack_set_hands_lira_the_documented_masks(monkeypatch) -> None:
    pop, sig = _tiny()
    off = _record(monkeypatch, "lira_offline")
    on = _record(monkeypatch, "lira_online")
    online_attack = _fitted("lira-online", CFG.reference, pop, sig)
    offline_attack = _fitted("lira-offline", CFG.reference, pop, sig)
    on.clear()  # fitting calls them too (the leave-one-out operating point)
    off.clear()
    _attack_set(online_attack, "original", pop=pop, sig=sig)
    assert len(on) == 1 and not off
    np.testing.assert_array_equal(on[0][0][2], pop.keep.T[:4])
    np.testing.assert_array_equal(on[0][0][0], sig.target["lira"]["audited"])
    np.testing.assert_array_equal(on[0][0][1], sig.ref["lira"]["population"][:4])
    _attack_set(offline_attack, "original", pop=pop, sig=sig)
    np.testing.assert_array_equal(off[-1][0][2], ~pop.keep.T[:4])
    _attack_set(offline_attack, "ood", pop=pop, sig=sig)  # what lira-online runs as on OOD
    assert len(on) == 1
    args = off[-1][0]
    np.testing.assert_array_equal(
        args[0], np.r_[sig.target["lira"]["audited"][:2], sig.target["lira"]["ood"]]
    )
    np.testing.assert_array_equal(
        args[1], np.r_[sig.ref["lira"]["population"][:2], sig.ref["lira"]["ood"]]
    )
    np.testing.assert_array_equal(args[2], np.r_[~pop.keep.T[:2], np.ones((3, 4), bool)])


def test_attack_set_hands_rmia_the_documented_masks(monkeypatch) -> None:
    pop, sig = _tiny()
    offline = _fitted("rmia-offline", CFG.reference, pop, sig)
    online = _fitted("rmia-online", CFG.reference, pop, sig)
    prior = _record(monkeypatch, "rmia_prior")
    _attack_set(offline, "original", pop=pop, sig=sig)
    (x_args, x_kw), (z_args, z_kw) = prior
    np.testing.assert_array_equal(x_args[1], ~pop.keep.T[:4])
    np.testing.assert_array_equal(z_args[1], ~pop.keep.T[[6, 7]])
    np.testing.assert_array_equal(z_args[0], sig.ref["rmia"]["population"][[6, 7]])
    # a row without OUT models would take the mean OUT value of the whole population
    fallback = sig.ref["rmia"]["population"][~pop.keep.T].mean()
    assert x_kw == z_kw == {"a": 0.3, "fallback": pytest.approx(fallback, rel=1e-15)}
    prior.clear()
    _attack_set(online, "original", pop=pop, sig=sig)
    assert [len(a) for a, _ in prior] == [1, 1] and all(not k for _, k in prior)
    prior.clear()
    _attack_set(offline, "ood", pop=pop, sig=sig)  # what rmia-online runs as on OOD
    np.testing.assert_array_equal(prior[0][0][1], np.r_[~pop.keep.T[:2], np.ones((3, 4), bool)])


def test_perturbed_copy_is_scored_with_its_source_samples_out_models(monkeypatch) -> None:
    """Copies of non-members 1 and 0 (population rows 3 and 2, in that order): the masks
    handed to LiRA are those rows' masks, not "every model OUT"."""
    pop, sig = _tiny()
    sig.ref["lira"]["copy"], sig.target["lira"]["copy"] = (
        sig.ref["lira"]["ood"][:2],
        sig.target["lira"]["ood"][:2],
    )
    offline, online = (
        _fitted("lira-offline", CFG.reference, pop, sig),
        _fitted("lira-online", CFG.reference, pop, sig),
    )
    off = _record(monkeypatch, "lira_offline")
    on = _record(monkeypatch, "lira_online")
    _attack_set(offline, "copy", pop=pop, sig=sig, source=np.array([1, 0]))
    np.testing.assert_array_equal(off[0][0][2], ~pop.keep.T[[0, 1, 3, 2]])
    _attack_set(online, "copy", pop=pop, sig=sig, source=np.array([1, 0]))
    np.testing.assert_array_equal(on[0][0][2], pop.keep.T[[0, 1, 3, 2]])
    _attack_set(offline, "ood", pop=pop, sig=sig)  # no source: every model OUT
    np.testing.assert_array_equal(off[1][0][2][2:], np.ones((3, 4), bool))


def test_offline_rmia_on_a_perturbed_copy_by_hand() -> None:
    """Two models, one member (row 0) and one non-member (row 1), z = rows 2 and 3. The
    copy of non-member 0 was trained on by model 1 only, which is confident on it (0.9);
    model 0 gives 0.2. Offline, a = 0.3: Pr(copy) = (1.3 * 0.2 + 0.7) / 2 = 0.48 (from the
    OUT model alone; counting model 1 as OUT would give (1.3 * 0.55 + 0.7) / 2 = 0.7075).
    Pr(z) = (1.3 * 0.5 + 0.7) / 2 = 0.675 for both z rows; the target gives z 0.675 and
    0.81 (ratios 1.0 and 1.2) and the copy 0.6 (ratio 1.25, beating both: score 1; with
    every model OUT the ratio would be 0.848 and the score 0)."""
    from mistrust.attacks.reference import RMIA

    keep = np.array([[1, 0, 1, 0], [0, 1, 0, 1]], bool)  # (M, P)
    pop = Population(np.zeros(4, np.int64), np.arange(4), 1, 2, keep, np.array([2, 3]))
    ref_prob = {
        "population": np.array([[0.7, 0.3], [0.4, 0.8], [0.5, 0.5], [0.5, 0.5]]),
        "scaled": np.array([[0.2, 0.9]]),
    }
    t_prob = {"audited": np.array([0.9, 0.3]), "z": np.array([0.675, 0.81]), "scaled": [0.6]}
    sig = _signals({}, ref_prob, {}, t_prob)
    attack = RMIA(online=False, rmia_a=0.3, rmia_gamma=1.0).fit(
        ref_prob["population"], keep.T, z=pop.z
    )
    score = _attack_set(attack, "scaled", pop=pop, sig=sig, source=np.array([0]))
    assert score[1] == 1.0


@pytest.mark.parametrize(
    ("override", "augment", "flip"),
    [
        (None, "none", False),
        (None, "flip-crop", True),
        (None, "rotate-crop-flip", True),
        (True, "none", True),
        (False, "flip-crop", False),
    ],
)
def test_query_flips_follow_the_training_augmentation(override, augment, flip) -> None:
    from mistrust.study.reference import query_flips

    assert query_flips(override, augment) is flip


def test_reference_preset_does_not_flip_queries_of_models_trained_without_flips() -> None:
    from mistrust.study.reference import query_flips
    from mistrust.training.trainer import AUGMENT_FLIPS

    cfg = load_config("reference")
    assert cfg.data.augment == "none"
    assert query_flips(cfg.reference.augment_queries, cfg.data.augment) is False
    for augment in AUGMENT_FLIPS:  # every augmentation the config accepts says if it flips
        load_config("smoke", [f"data.augment={augment}"])


def test_copies_of_the_nonmembers_name_their_source_rows(tmp_path) -> None:
    from mistrust.data.evalsets import EvalContext, build_evalset
    from mistrust.data.images import ImageSet, Preprocess

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (5, 1, 4, 4), generator=g, dtype=torch.uint8)
    ctx = EvalContext(
        preprocess=Preprocess(1, 4, (0.5,), (0.25,)),
        nonmembers=ImageSet(images, torch.arange(5) % 2),
        held_out=ImageSet(images[:3], torch.full((3,), 7)),
        gan_data=ImageSet(images, torch.arange(5) % 2),
        size=5,
        seed=1,
        root=None,
        download=False,
        cache_dir=tmp_path,
    )
    for name in ("original", *PERTURBED):
        np.testing.assert_array_equal(build_evalset(name, ctx).source, np.arange(5))
    for name in ("noise", "held-out"):
        assert build_evalset(name, ctx).source is None


def test_rmia_score_by_hand() -> None:
    """Offline RMIA with a = 0.3, gamma = 1.5, written out for the tiny population."""
    pop, sig = _tiny()
    score = _run("rmia-offline", "original", pop, sig)
    ref, keep = sig.ref["rmia"]["population"], pop.keep.T

    def prior(rows: np.ndarray) -> np.ndarray:
        out = []
        for r in rows:
            m = ref[r][~keep[r]].mean()
            out.append(((1 + 0.3) * m + (1 - 0.3)) / 2)
        return np.array(out)

    ratio_x = sig.target["rmia"]["audited"] / prior(np.arange(4))
    ratio_z = sig.target["rmia"]["z"] / prior(np.array([6, 7]))
    want = [(ratio_x[i] / ratio_z > 1.5).mean() for i in range(4)]
    np.testing.assert_allclose(score, want)


def test_score_routes_online_and_offline(monkeypatch) -> None:
    off = _record(monkeypatch, "lira_offline")
    on = _record(monkeypatch, "lira_online")
    t, ref = np.zeros((2, 1)), np.zeros((2, 2, 1))
    in_x = np.array([[True, False], [False, True]])
    pooled = pool(ref, in_x)
    create_reference_attack("lira-offline", fixed_variance=True)._score(t, ref, in_x, pooled, None)
    create_reference_attack("lira-online")._score(t, ref, in_x, pooled, None)
    np.testing.assert_array_equal(off[0][0][2], ~in_x)
    np.testing.assert_array_equal(on[0][0][2], in_x)
    assert off[0][1] == {"fixed_variance": True, "pooled": pooled}
    assert on[0][1] == {"fixed_variance": False, "pooled": pooled}
    with pytest.raises(ValueError, match="population samples z"):
        create_reference_attack("rmia-offline").fit(ref[..., 0], in_x)


def test_population_rows_and_pairs() -> None:
    splits = {
        "target_members": np.array([3, 5, 9]),
        "target_nonmembers": np.array([0, 4]),
        "shadow_train": np.array([10, 11, 12, 13, 14, 15]),
    }
    pop = make_population(splits, n_models=4, population_size=4, z_size=3, seed=1)
    np.testing.assert_array_equal(pop.source, [0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(pop.index, [3, 5, 9, 0, 4, 10, 11, 12, 13, 14, 15])
    assert (pop.n_members, pop.n_audited) == (3, 5)
    counts = pop.keep[:, :5].sum(1)
    assert sorted(counts.tolist()) == [2, 2, 3, 3]  # odd audited count: pairs alternate 2 / 3
    assert (pop.keep[0, :5] ^ pop.keep[1, :5]).all() and (pop.keep[2, :5] ^ pop.keep[3, :5]).all()
    assert (pop.keep.sum(1) == 4).all()
    assert len(pop.z) == 3 and (pop.z >= 5).all() and list(pop.z) == sorted(pop.z)
    again = make_population(splits, n_models=4, population_size=4, z_size=3, seed=1)
    np.testing.assert_array_equal(again.keep, pop.keep)
    other = make_population(splits, n_models=4, population_size=4, z_size=3, seed=2)
    assert not np.array_equal(other.keep, pop.keep)
    assert len(make_population(splits, n_models=2, population_size=8, z_size=99, seed=1).z) == 6
    assert pop.digest(0) != pop.digest(1) and len(pop.digest(0)) == 10


@pytest.mark.parametrize("size", [2, 9])
def test_population_size_bounds(size: int) -> None:
    from mistrust.config import ConfigError

    splits = {
        "target_members": np.array([3, 5, 9]),
        "target_nonmembers": np.array([0, 4]),
        "shadow_train": np.array([10, 11, 12, 13, 14, 15]),
    }
    make_population(splits, n_models=2, population_size=3, z_size=1, seed=0)  # lowest allowed
    make_population(splits, n_models=2, population_size=8, z_size=1, seed=0)  # highest allowed
    with pytest.raises(ConfigError, match="population_size"):
        make_population(splits, n_models=2, population_size=size, z_size=1, seed=0)


def test_every_reference_attack_has_rows(pipeline) -> None:
    rows = pipeline.result.attack_rows
    got = {(a, d) for _, a, d, _, _ in rows}
    for attack in REFERENCE:
        for ds in pipeline.cfg.eval.sets:
            assert (attack, ds) in got


def _best_threshold(score: np.ndarray, member: np.ndarray) -> float:
    """The smallest threshold reaching the maximal TPR - FPR (rule ``score >= t``)."""
    best, best_t = -np.inf, np.inf
    for t in np.sort(np.unique(score))[::-1]:
        gap = (score[member] >= t).mean() - (score[~member] >= t).mean()
        if gap > best + 1e-12:
            best, best_t = gap, t
    return float(best_t)


def test_operating_threshold_by_hand() -> None:
    """Each reference model plays the target once, scored with the other models on the
    population rows that are neither z nor IN / OUT for every model (module docstring)."""
    from mistrust.attacks.reference.lira import lira_offline

    pop, sig = _tiny()
    keep = pop.keep  # (4, 8); rows 6 and 7 are z; every row has IN and OUT models here
    rows = np.array([0, 1, 2, 3, 4, 5])
    phi = sig.ref["lira"]["population"]
    scores, members = [], []
    for k in range(4):
        others = [m for m in range(4) if m != k]
        scores.append(
            lira_offline(
                phi[rows, k],
                phi[rows][:, others],
                ~keep[others][:, rows].T,
                fixed_variance=CFG.reference.fixed_variance,
                pooled=pool(phi[:, others], keep[others].T),  # the others' whole population
            )
        )
        members.append(keep[k, rows])
    want = _best_threshold(np.concatenate(scores), np.concatenate(members))
    got = _fitted("lira-offline", CFG.reference, pop, sig).operating_score_
    assert got == pytest.approx(want)


def test_signals_are_read_per_model_and_label(tmp_path) -> None:
    """phi: LiRA's logit-scaled confidence of the given label; prob: its softmax
    probability; the flipped query fills phi's second column only."""
    from mistrust.core.outputs import Outputs
    from mistrust.runtime.paths import RunPaths
    from mistrust.study.reference import _load_signals

    rng = np.random.default_rng(2)
    labels = np.array([0, 2, 1])
    logits = {}
    for m in range(2):
        for suffix in ("", "-flip"):
            z = rng.normal(size=(3, 3))
            logits[(m, suffix)] = z
            Outputs(z.astype(np.float32), np.full(3, -1)).save(
                tmp_path / f"outputs/reference/{m}/population{suffix}.npz"
            )
    from mistrust.attacks.reference import RMIA, LiRA

    families = {"lira": LiRA, "rmia": RMIA}
    sig = _load_signals(RunPaths(tmp_path), 2, {"population": labels}, [False, True], families)
    phi, prob = sig["lira"], sig["rmia"]
    assert phi["population"].shape == (3, 2, 2) and prob["population"].shape == (3, 2)
    for m in range(2):
        for q, suffix in enumerate(("", "-flip")):
            z = logits[(m, suffix)].astype(np.float32).astype(np.float64)
            p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
            py = p[np.arange(3), labels]
            np.testing.assert_allclose(phi["population"][:, m, q], np.log(py / (1 - py)), rtol=1e-5)
            if q == 0:
                np.testing.assert_allclose(prob["population"][:, m], py, rtol=1e-5)


# --- reference_attack_rows on a tiny run, recomputed from the cached outputs ---------------


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _py(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _softmax(logits)[np.arange(len(labels)), labels]


def _phi(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``log p_y - log(1 - p_y)`` as ``z_y - logsumexp(z_other)``: finite where p_y rounds
    to 1 (the scaled set)."""
    from scipy.special import logsumexp

    z = logits.astype(np.float64)
    rows = np.arange(len(labels))
    others = z.copy()
    others[rows, labels] = -np.inf
    return z[rows, labels] - logsumexp(others, axis=1)


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory):
    """A tiny target, two reference models and every reference attack (a few seconds)."""
    from mistrust.runtime.paths import RunPaths
    from mistrust.study.data import build_evalsets, load_data
    from mistrust.study.reference import reference_attack_rows
    from mistrust.study.run import _outputs_for
    from mistrust.study.train import train_or_load

    cfg = load_config(
        "smoke",
        [
            "model.arch=mlp",
            "model.width=8",
            "train.epochs=3",
            "train.lr=0.01",
            "data.train_size=40",
            "data.test_size=40",
            "data.members=10",
            "data.nonmembers=10",
            "eval.sets=[original, scaled, noise]",
            "variants.names=[base]",
            "attacks.names=[threshold]",
            "reference.n_models=2",
            "reference.z_size=8",
            "reference.rmia_a=0.4",
            f"reference.attacks=[{', '.join(REFERENCE)}]",
            "device=cpu",
        ],
    )
    run_dir = tmp_path_factory.mktemp("tiny-ref") / "run"
    data = load_data(cfg.data, seed=cfg.seed)
    sets = build_evalsets(
        cfg.data, cfg.eval, cfg.variants.names, data, run_dir / "cache", "cpu", False, seed=cfg.seed
    )
    model, _, _ = train_or_load(
        cfg.data,
        cfg.model,
        cfg.train,
        role="target",
        train_set=data.train.subset(data.splits["target_train"]),
        preprocess=data.preprocess,
        num_classes=data.num_classes,
        seed=cfg.seed,
        model_path=run_dir / "models/base/target.pt",
        device=torch.device("cpu"),
        progress=False,
    )
    paths = RunPaths(run_dir)
    _outputs_for(model, "target", data, sets, paths, cfg, torch.device("cpu"))
    rows = reference_attack_rows(cfg, data, sets, paths, device="cpu", progress=False)
    return cfg, data, run_dir, rows


def _target_audited(data, run_dir) -> tuple[np.ndarray, np.ndarray]:
    sp = data.splits
    train = load_npz(run_dir / "outputs/base/target/train.npz")
    test = load_npz(run_dir / "outputs/base/target/test.npz")
    m = np.searchsorted(sp["target_train"], sp["target_members"])
    n = np.searchsorted(sp["target_test"], sp["target_nonmembers"])
    logits = np.concatenate([train["logits"][m], test["logits"][n]])
    labels = np.concatenate(
        [data.train.labels[sp["target_members"]], data.test.labels[sp["target_nonmembers"]]]
    )
    return logits, np.asarray(labels)


def test_reference_scores_recomputed_from_the_cached_outputs(tiny_reference) -> None:
    from mistrust.attacks.reference.lira import lira_offline, lira_online

    cfg, data, run_dir, rows = tiny_reference
    keep = load_npz(run_dir / "reference_keep.npz")
    mask, z = keep["keep"].T, keep["z"]  # (P, M)
    assert mask.shape == (20 + 40, 2) and int(keep["n_audited"]) == 20
    np.testing.assert_array_equal(keep["index"][:10], data.splits["target_members"])
    np.testing.assert_array_equal(keep["source"][:20], np.r_[np.zeros(10), np.ones(10)])
    t_logits, t_labels = _target_audited(data, run_dir)
    pop_labels = np.r_[t_labels, data.train.labels[data.splits["shadow_train"]].numpy()]
    ref = [load_npz(run_dir / f"outputs/reference/{m}/population.npz")["logits"] for m in range(2)]
    ref_phi = np.stack([_phi(r, pop_labels) for r in ref], axis=1)  # (P, M)
    ref_p = np.stack([_py(r, pop_labels) for r in ref], axis=1)
    fv = cfg.reference.fixed_variance
    pooled = pool(ref_phi, mask)  # pooled statistics: the whole population, for every set

    def saved(attack: str, ds: str):
        return load_npz(run_dir / f"scores/base/{attack}/{ds}.npz")

    t_phi = _phi(t_logits, t_labels)
    np.testing.assert_allclose(
        saved("lira-offline", "original")["score"],
        lira_offline(t_phi, ref_phi[:20], ~mask[:20], fixed_variance=fv, pooled=pooled),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        saved("lira-online", "original")["score"],
        lira_online(t_phi, ref_phi[:20], mask[:20], fixed_variance=fv, pooled=pooled),
        rtol=1e-6,
    )
    # OOD set: members then the noise images, labelled with the target's argmax
    noise_t = load_npz(run_dir / "outputs/base/target/noise.npz")["logits"]
    y = noise_t.argmax(1)
    noise_ref = [load_npz(run_dir / f"outputs/reference/{m}/noise.npz")["logits"] for m in range(2)]
    ood_phi = np.stack([_phi(r, y) for r in noise_ref], axis=1)
    want = lira_offline(
        np.r_[t_phi[:10], _phi(noise_t, y)],
        np.r_[ref_phi[:10], ood_phi],
        np.r_[~mask[:10], np.ones((len(y), 2), bool)],
        fixed_variance=fv,
        pooled=pooled,
    )
    for attack in ("lira-offline", "lira-online"):
        np.testing.assert_allclose(saved(attack, "noise")["score"], want, rtol=1e-6)
    # scaled: the members, then the scaled copies of the non-members (true labels), each
    # copy with the IN / OUT models of the non-member it was made from
    sc_t = load_npz(run_dir / "outputs/base/target/scaled.npz")["logits"]
    y_nm = t_labels[10:]
    sc_ref = [load_npz(run_dir / f"outputs/reference/{m}/scaled.npz")["logits"] for m in range(2)]
    sc_phi = np.stack([_phi(r, y_nm) for r in sc_ref], axis=1)
    t_sc, ref_sc = np.r_[t_phi[:10], _phi(sc_t, y_nm)], np.r_[ref_phi[:10], sc_phi]
    np.testing.assert_allclose(
        saved("lira-offline", "scaled")["score"],
        lira_offline(t_sc, ref_sc, ~mask[:20], fixed_variance=fv, pooled=pooled),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        saved("lira-online", "scaled")["score"],
        lira_online(t_sc, ref_sc, mask[:20], fixed_variance=fv, pooled=pooled),
        rtol=1e-6,
    )
    # offline RMIA, written out: prior = ((1 + a) mean_OUT + (1 - a)) / 2
    a, gamma = cfg.reference.rmia_a, cfg.reference.rmia_gamma
    t_z = _py(load_npz(run_dir / "outputs/reference/target/z.npz")["logits"], pop_labels[z])

    def prior(rows: np.ndarray) -> np.ndarray:
        out = []
        for r in rows:
            vals = ref_p[r][~mask[r]]
            m = vals.mean() if len(vals) else ref_p[:, :][~mask].mean()
            out.append(((1 + a) * m + (1 - a)) / 2)
        return np.array(out)

    ratio_z = t_z / prior(z)
    ratio_x = _py(t_logits, t_labels) / prior(np.arange(20))
    want = np.array([(r / ratio_z > gamma).mean() for r in ratio_x])
    np.testing.assert_allclose(saved("rmia-offline", "original")["score"], want, atol=1e-12)


def test_reference_rows_and_decisions(tiny_reference) -> None:
    cfg, data, run_dir, rows = tiny_reference
    val = {(a, d, m): x for v, a, d, m, x in rows}
    assert {v for v, *_ in rows} == {"base"}
    for attack in REFERENCE:
        for ds in ("original", "scaled", "noise"):
            # on OOD sets an online attack runs as its offline counterpart, threshold included;
            # on perturbed copies of the non-members (scaled) it runs online
            copies = ds in ("original", "scaled")
            run_as = attack if copies else attack.replace("online", "offline")
            t = val[(run_as, "shadow", "operating_score")]
            f = load_npz(run_dir / f"scores/base/{attack}/{ds}.npz")
            member = f["is_member"]
            assert member.dtype == bool and member.sum() == 10 and (~member).sum() == 10
            np.testing.assert_array_equal(f["predicted"], f["score"] >= t)
            assert val[(attack, ds, "tpr")] == f["predicted"][member].mean()
            assert val[(attack, ds, "fpr")] == f["predicted"][~member].mean()
            if attack.endswith("online"):
                assert val[(attack, ds, "offline_on_ood")] == (0.0 if copies else 1.0)
            else:
                assert (attack, ds, "offline_on_ood") not in val
        f = load_npz(run_dir / f"scores/base/{attack}/scaled.npz")
        nm = load_npz(run_dir / "outputs/base/target/scaled.npz")["logits"]
        t_logits, _ = _target_audited(data, run_dir)
        np.testing.assert_allclose(
            f["max_score"], _softmax(np.r_[t_logits[:10], nm]).max(1), rtol=1e-5
        )
    # the online attacks' own threshold, the offline one on OOD sets
    assert (
        val[("lira-online", "shadow", "operating_score")]
        != val[("lira-offline", "shadow", "operating_score")]
    )


def test_reference_config_checks() -> None:
    from mistrust.config import ConfigError, check_reference_config

    check_reference_config(load_config("smoke", ["reference.attacks=[lira-online]"]))
    with pytest.raises(ConfigError, match="unknown attack 'lira'"):
        check_reference_config(load_config("smoke", ["reference.attacks=[lira]"]))
    with pytest.raises(ConfigError, match="duplicates"):
        check_reference_config(
            load_config("smoke", ["reference.attacks=[rmia-online, rmia-online]"])
        )
