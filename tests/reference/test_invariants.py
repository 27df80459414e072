"""Invariants of every attack, score-based and reference-based, on random inputs (hypothesis).

An attack is fitted once (on the shadow model, or on the reference population) and then
applied unchanged to the target's members paired with each evaluation set. So:

(a) the members' scores are the same whichever set they are paired with; the one
    documented exception is an online reference attack on an OOD set with no IN
    statistics (not a copy of audited non-members), scored as its offline counterpart
    (:func:`mistrust.pipeline.reference.scored_as`): there the members' scores are the offline
    attack's;
(b) adding or removing an evaluation set changes no other set's rows;
(c) the order of the rows (members, non-members, a set's rows) changes no metric.

Score-based attacks go through the audit core (:func:`mistrust.audit`) on arrays, every
attack of the registry; reference attacks through their objects and through the stage's
per-set scoring (:func:`mistrust.pipeline.reference._attack_set`, ``_set_rows``) on synthetic
signals, and the stage's rows on stand-in outputs (``test_reference_units._stage``),
every attack of :data:`mistrust.attacks.REFERENCE_ATTACKS`. The trust checks' rows are
left out of (c): the bootstraps and the null test's split draw rows by a seeded
permutation, so they depend on the row order by construction.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_reference_units import _signals, _stage

import mistrust
from mistrust.attacks import REFERENCE_ATTACKS, attack_names, create_reference_attack
from mistrust.attacks.reference import offline_counterpart
from mistrust.config import load_config
from mistrust.data.population import Population
from mistrust.metrics import METRIC_KEYS
from mistrust.pipeline.reference import _attack_set, _fitted, _set_rows, _Signals, scored_as

FEW = settings(max_examples=4, deadline=None)
#: the OOD sets of the synthetic reference signals: ``copy`` is made of copies of audited
#: non-members (a source row each), ``noise`` of images no reference model trained on
OOD = ("copy", "noise")
C = 4  # classes


def _same(a: dict, b: dict, keys) -> None:
    """Equal values (NaN equal to NaN) at ``keys``, to rounding: a row order changes the
    order of floating-point sums."""
    for k in keys:
        x, y = a[k], b[k]
        assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-9, abs=1e-12), k


# --- score-based attacks, through the audit core -----------------------------------------


def _outputs(rng: np.random.Generator, n: int, gap: float, members: int) -> tuple:
    """Logits ``(n, C)``: the first ``members`` rows more confident in their label."""
    labels = rng.integers(0, C, n)
    logits = rng.normal(size=(n, C))
    logits[np.arange(n), labels] += np.where(np.arange(n) < members, 2.0 + gap, 2.0)
    return logits, labels, np.arange(n) < members


@st.composite
def audits(draw):
    """Shadow and target outputs, two OOD sets (one without labels) and row permutations."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nm, nn = draw(st.integers(3, 12)), draw(st.integers(3, 12))
    gap = draw(st.floats(0.0, 3.0))
    shadow = _outputs(rng, 24, 2.0, 12)
    target = _outputs(rng, nm + nn, gap, nm)
    n_noise, n_lab = draw(st.integers(2, 9)), draw(st.integers(2, 9))
    sets = {
        "noise": rng.normal(size=(n_noise, C)) * 3,  # logits only: the predicted class
        "labelled": (rng.normal(size=(n_lab, C)), rng.integers(0, C, n_lab)),
    }
    return shadow, target, sets, rng


@pytest.mark.parametrize("name", attack_names())
@FEW
@given(case=audits())
def test_score_based_attacks_score_members_alike_on_every_set(name: str, case) -> None:
    """(a) and (b): the members' scores on every set; a set removed changes no other row."""
    shadow, target, sets, _ = case
    full = mistrust.audit(shadow, target, eval_sets=sets, attacks=[name])
    nm = int(target[2].sum())
    member = full.scores[name]["original"].score[:nm]  # members first in the target
    for ds in sets:  # to rounding: Salem's attack model rounds by the batch it is given
        np.testing.assert_allclose(full.scores[name][ds].score[:nm], member, rtol=1e-12, atol=0)
    fewer = mistrust.audit(shadow, target, eval_sets={"noise": sets["noise"]}, attacks=[name])
    rows = {r[:4]: r.value for r in full.rows if r.dataset != "labelled"}
    np.testing.assert_equal({r[:4]: r.value for r in fewer.rows}, rows)


@pytest.mark.parametrize("name", attack_names())
@FEW
@given(case=audits())
def test_score_based_metrics_do_not_depend_on_the_row_order(name: str, case) -> None:
    """(c): the target's rows and each set's rows shuffled."""
    shadow, target, sets, rng = case
    perm = rng.permutation(len(target[0]))
    shuffled_target = tuple(np.asarray(x)[perm] for x in target)
    p_noise = rng.permutation(len(sets["noise"]))
    p_lab = rng.permutation(len(sets["labelled"][0]))
    shuffled_sets = {
        "noise": sets["noise"][p_noise],
        "labelled": (sets["labelled"][0][p_lab], sets["labelled"][1][p_lab]),
    }
    a = mistrust.audit(shadow, target, eval_sets=sets, attacks=[name])
    b = mistrust.audit(shadow, shuffled_target, eval_sets=shuffled_sets, attacks=[name])
    keys = [(name, ds, k) for ds in ("original", *sets) for k in METRIC_KEYS]
    keys += [(name, "shadow", "operating_score")] * any(
        r.metric == "operating_score" for r in a.rows
    )
    _same({r[1:4]: r.value for r in a.rows}, {r[1:4]: r.value for r in b.rows}, keys)


# --- reference attacks on synthetic signals ------------------------------------------------


@st.composite
def populations(draw):
    """A reference population (complementary pairs on the audited rows, a random pool), the
    reference models' and the target's signals on it and on the two OOD sets, the copies'
    source rows and the target's logits per set.

    ``all_in``: member 0 is IN for every model, ``all_out``: member 1 OUT for every model,
    so the fallbacks (LiRA's shift and OUT mean, RMIA's prior) are exercised too.
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_models = draw(st.sampled_from([2, 4, 6]))
    nm, nn, n_pool = draw(st.integers(2, 8)), draw(st.integers(2, 8)), draw(st.integers(2, 8))
    q = draw(st.integers(1, 2))
    a, p = nm + nn, nm + nn + n_pool
    keep = np.zeros((n_models, p), bool)
    for j in range(0, n_models, 2):
        half = rng.random(a) < 0.5
        half[2], half[3] = True, False  # every model has IN and OUT rows (the leave-one-out)
        keep[j, :a], keep[j + 1, :a] = half, ~half
    keep[:, a:] = rng.random((n_models, n_pool)) < 0.4
    if draw(st.booleans()):
        keep[:, 0] = True
    if draw(st.booleans()):
        keep[:, 1] = False
    z = np.sort(rng.choice(np.arange(a, p), draw(st.integers(1, n_pool)), replace=False))
    pop = Population(np.zeros(p, np.int64), np.arange(p), nm, a, keep, z)
    n_ood = {"copy": draw(st.integers(1, nn)), "noise": draw(st.integers(1, 8))}
    sources = {"original": None, "copy": rng.permutation(nn)[: n_ood["copy"]], "noise": None}
    ref_phi = {"population": rng.normal(size=(p, n_models, q)) + 2.0 * keep.T[..., None]}
    ref_phi["copy"] = ref_phi["population"][nm + sources["copy"]] + rng.normal(
        scale=0.3, size=(n_ood["copy"], n_models, q)
    )
    ref_phi["noise"] = rng.normal(size=(n_ood["noise"], n_models, q)) - 1.0
    t_phi = {"audited": rng.normal(size=(a, q)) + np.where(np.arange(a) < nm, 2.0, 0.0)[:, None]}
    t_phi.update({ds: rng.normal(size=(n, q)) + 1.0 for ds, n in n_ood.items()})

    def prob(phi: np.ndarray) -> np.ndarray:  # RMIA's signal from the first query
        return 1.0 / (1.0 + np.exp(-phi[..., 0]))

    sig = _Signals(
        {"lira": dict(ref_phi), "rmia": {k: prob(v) for k, v in ref_phi.items()}},
        {
            "lira": t_phi,
            "rmia": {
                **{k: prob(v) for k, v in t_phi.items()},
                "z": rng.uniform(0.05, 0.95, len(z)),
            },
        },
    )
    logits = {"original": rng.normal(size=(a, C))}
    logits.update({ds: rng.normal(size=(n, C)) for ds, n in n_ood.items()})
    cfg = load_config(
        "smoke",
        [
            f"reference.fixed_variance={str(draw(st.booleans())).lower()}",
            "reference.rmia_a=0.3",
            "reference.rmia_gamma=1.2",
        ],
    )
    return cfg, pop, sig, sources, logits


def _members_scored(name: str, cfg, pop: Population, sig: _Signals, sources) -> dict:
    """The members' scores per set, each set scored as the stage scores it."""
    fitted: dict = {}
    out = {}
    for ds, source in sources.items():
        run_as = scored_as(name, ds, source)
        if run_as not in fitted:
            fitted[run_as] = _fitted(run_as, cfg.reference, pop, sig)
        score = _attack_set(fitted[run_as], ds, pop=pop, sig=sig, source=source)
        out[ds] = score[: pop.n_members]
    return out


@pytest.mark.parametrize("name", REFERENCE_ATTACKS)
@FEW
@given(case=populations())
def test_reference_attacks_score_members_alike_on_every_set(name: str, case) -> None:
    """(a) through the stage's per-set scoring: the members' scores on ``original``, on the
    copies and on ``noise`` (online attacks: the offline counterpart's there)."""
    cfg, pop, sig, sources, _ = case
    got = _members_scored(name, cfg, pop, sig, sources)
    offline = _members_scored(offline_counterpart(name), cfg, pop, sig, sources)
    for ds, source in sources.items():
        want = got["original"] if scored_as(name, ds, source) == name else offline["original"]
        np.testing.assert_array_equal(got[ds], want, err_msg=f"{name} on {ds}")


@pytest.mark.parametrize("name", REFERENCE_ATTACKS)
@FEW
@given(case=populations(), data=st.data())
def test_reference_attack_objects_score_each_row_on_its_own(name: str, case, data) -> None:
    """(a) and (b) through the objects: a row's score is the same in any batch of rows (a
    subset, or the rows of another set added), given the fitted population statistics."""
    cfg, pop, sig, sources, _ = case
    attack = _fitted(name, cfg.reference, pop, sig)
    lira = attack.family == "lira"
    t = sig.target[attack.family]["audited"]
    ref = sig.ref[attack.family]["population"][: pop.n_audited]
    in_x = pop.in_mask[: pop.n_audited]
    t_z = None if lira else sig.target["rmia"]["z"]
    full = attack.score(t, ref, in_x, target_z=t_z)
    rows = np.asarray(
        data.draw(st.lists(st.integers(0, pop.n_audited - 1), min_size=1, max_size=6))
    )
    part = attack.score(t[rows], ref[rows], in_x[rows], target_z=t_z)
    np.testing.assert_allclose(part, full[rows], rtol=1e-12, atol=1e-12)
    other = sig.ref[attack.family]["noise"]  # OOD rows: every model OUT
    t_o = sig.target[attack.family]["noise"]
    both = attack.score(
        np.concatenate([t[rows], t_o]),
        np.concatenate([ref[rows], other]),
        np.concatenate([in_x[rows], np.zeros(other.shape[:2], bool)]),
        target_z=t_z,
    )
    np.testing.assert_allclose(both[: len(rows)], full[rows], rtol=1e-12, atol=1e-12)


def _permuted(case, rng: np.random.Generator):
    """The same case with the members, the non-members and each OOD set's rows shuffled
    (the copies' sources follow their non-members); the pool rows stay put, so ``z`` does."""
    cfg, pop, sig, sources, logits = case
    nm, a = pop.n_members, pop.n_audited
    p_aud = np.r_[rng.permutation(nm), nm + rng.permutation(a - nm)]
    rows = np.r_[p_aud, np.arange(a, len(pop.index))]  # new row i = old row rows[i]
    new_pos = np.argsort(p_aud[nm:] - nm)  # old non-member j is now non-member new_pos[j]
    p_ood = {ds: rng.permutation(len(sig.target["lira"][ds])) for ds in OOD}
    keep = pop.keep[:, rows]
    new_pop = Population(pop.source, pop.index[rows], nm, a, keep, pop.z)

    def move(d: dict[str, np.ndarray], key_pop: str) -> dict[str, np.ndarray]:
        out = dict(d)
        out[key_pop] = d[key_pop][rows[: len(d[key_pop])]]
        for ds in OOD:
            out[ds] = d[ds][p_ood[ds]]
        return out

    new_sig = _Signals(
        {f: move(v, "population") for f, v in sig.ref.items()},
        {f: move(v, "audited") for f, v in sig.target.items()},
    )
    new_sources = dict(sources, copy=new_pos[sources["copy"][p_ood["copy"]]])
    new_logits = {"original": logits["original"][p_aud]}
    new_logits.update({ds: logits[ds][p_ood[ds]] for ds in OOD})
    return cfg, new_pop, new_sig, new_sources, new_logits


def _reference_rows(name: str, case, directory: Path) -> dict:
    """Every metric row of ``name`` on every set, scored as the stage scores it."""
    cfg, pop, sig, sources, logits = case
    rows = {}
    for ds, source in sources.items():
        run_as = scored_as(name, ds, source)
        attack = _fitted(run_as, cfg.reference, pop, sig)
        nm_logits = logits["original"][pop.n_members :] if ds == "original" else logits[ds]
        for r in _set_rows(
            name,
            ds,
            attack=attack,
            online=name.endswith("online") and run_as == name,
            pop=pop,
            sig=sig,
            source=source,
            logits=np.concatenate([logits["original"][: pop.n_members], nm_logits]),
            n_members=pop.n_members,
            out=directory / f"{ds}.npz",
            aupr="trapezoid",
        ):
            rows[r[1:4]] = r.value
    return rows


@pytest.mark.parametrize("name", REFERENCE_ATTACKS)
@FEW
@given(case=populations(), seed=st.integers(0, 2**32 - 1))
def test_reference_metrics_do_not_depend_on_the_row_order(name: str, case, seed: int) -> None:
    """(c) through the stage's rows of each set."""
    with tempfile.TemporaryDirectory() as tmp:
        want = _reference_rows(name, case, Path(tmp))
        got = _reference_rows(name, _permuted(case, np.random.default_rng(seed)), Path(tmp))
    assert got.keys() == want.keys()
    _same(got, want, want.keys())


def test_reference_stage_rows_do_not_depend_on_the_other_sets(tmp_path, monkeypatch) -> None:
    """(b) through the stage: removing ``scaled`` (copies of the non-members) or ``noise``
    leaves every row of the other sets as it was, the operating points included."""
    _, _, _, rows, _ = _stage(tmp_path / "all", monkeypatch)
    every = {r[1:4]: r.value for r in rows}
    for kept in ("noise", "scaled"):
        _, _, _, fewer, _ = _stage(tmp_path / kept, monkeypatch, f"eval.sets=[original, {kept}]")
        want = {k: v for k, v in every.items() if k[1] in ("original", kept, "shadow")}
        np.testing.assert_equal({r[1:4]: r.value for r in fewer}, want)


@pytest.mark.parametrize("name", REFERENCE_ATTACKS)
def test_a_row_without_out_models_scores_alike_in_any_batch(name: str) -> None:
    """(a) where the fallbacks apply (LiRA's shift and OUT mean, RMIA's OUT prior): a row
    that every reference model trained on scores the same alone as beside other rows."""
    phi, prob, in_mask = _signals()  # row 0: IN for every model
    z = np.array([10, 11])
    attack = create_reference_attack(name, fixed_variance=True).fit(
        phi if name.startswith("lira") else prob, in_mask, z=z
    )
    signal = phi if attack.family == "lira" else prob
    t = signal[:, 0] + 0.5
    t_z = None if attack.family == "lira" else prob[z, 0]
    rows = [0, 2, 3, 4]
    together = attack.score(t[rows], signal[rows], in_mask[rows], target_z=t_z)
    alone = attack.score(t[:1], signal[:1], in_mask[:1], target_z=t_z)
    np.testing.assert_allclose(alone, together[:1], rtol=1e-12, atol=1e-12)
