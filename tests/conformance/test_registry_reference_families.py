"""Conformance of every registered reference-attack family (``attacks.reference.registry``).

Each name of ``reference_attack_names()`` at collection time (every family, online and
offline; a family registered since included) goes through the same contract, on signals
that the family itself reads from toy logits (``ReferenceAttack.signal``): higher score =
member where the IN models are more confident, the same bytes twice, the shapes its
``queries`` and ``needs_z`` declare, one clear error on bad input, and the reference stage's
own scoring (``pipeline.reference``: fit on the population, score the members paired with a set)
on tiny arrays. A family registered in a test is picked up like the built-in ones. The module
takes about a second.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mistrust.attacks import NotFittedError
from mistrust.attacks.reference import (
    ReferenceAttack,
    create_reference_attack,
    reference_attack_class,
    reference_attack_names,
    registry,
)
from mistrust.data.population import Population

NAMES = reference_attack_names()
M, P, C, Q = 8, 60, 4, 2  # reference models, population rows, classes, queries
Z = np.arange(48, 60)  # population samples z: the last rows


def _case(seed: int = 0):
    """Population labels, an IN mask ``(P, M)`` (every row IN for half of the models) and
    logits ``(P, M, C, Q)`` of each reference model, more confident in the label where IN."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, P)
    in_mask = np.zeros((P, M), bool)
    for p in range(P):
        in_mask[p, rng.permutation(M)[: M // 2]] = True
    logits = rng.normal(size=(P, M, C, Q))
    logits[np.arange(P), :, labels, :] += 1.0 + 3.0 * in_mask[..., None]
    return labels, in_mask, logits


def _signals(cls: type[ReferenceAttack], logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The family's signal of logits ``(n, k, C, Q)``: ``(n, k, Q)``, or ``(n, k)`` of the
    first query where it takes one."""
    n, k = logits.shape[:2]
    out = np.stack(
        [
            np.stack([cls.signal(logits[:, m, :, q], labels) for q in range(Q)], -1)
            for m in range(k)
        ],
        1,
    )
    assert out.shape == (n, k, Q)
    return out if cls.queries else out[..., 0]


def _fitted(name: str, seed: int = 0):
    labels, in_mask, logits = _case(seed)
    attack = create_reference_attack(name)
    cls = type(attack)
    ref = _signals(cls, logits, labels)
    return attack.fit(ref, in_mask, z=Z), cls, labels, in_mask, logits, ref


def _target(cls, labels, in_mask, logits, member_of: int = 0):
    """Reference model ``member_of``'s signal as the target's: a member where it was IN."""
    t = _signals(cls, logits[:, member_of : member_of + 1], labels)[:, 0]
    return t, in_mask[:, member_of]


def _score(attack, cls, labels, in_mask, logits, ref, rows=slice(0, 48)):
    """Model 0 plays the target against the other models (as in the leave-one-out)."""
    t, member = _target(cls, labels, in_mask, logits)
    others = slice(1, M)
    t_z = t[Z] if cls.needs_z else None
    refit = (
        type(attack).from_options(online=attack.online).fit(ref[:, others], in_mask[:, others], z=Z)
    )
    score = refit.score(t[rows], ref[rows, others], in_mask[rows, others], target_z=t_z)
    return score, member[rows]


def test_the_built_in_families_are_registered() -> None:
    assert NAMES[:4] == ["lira-online", "lira-offline", "rmia-online", "rmia-offline"]
    for name in NAMES:
        assert create_reference_attack(name).name == name


@pytest.mark.parametrize("name", NAMES)
def test_higher_score_means_member(name: str) -> None:
    score, member = _score(*_fitted(name))
    assert roc_auc_score(member, score) > 0.8  # chance: 0.5


@pytest.mark.parametrize("name", NAMES)
def test_same_bytes_twice(name: str) -> None:
    first, again = _fitted(name), _fitted(name)
    assert first[0].operating_score_ == again[0].operating_score_
    assert _score(*first)[0].tobytes() == _score(*again)[0].tobytes()


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_what_it_needs(name: str) -> None:
    attack, cls, labels, in_mask, logits, ref = _fitted(name)
    assert isinstance(attack, ReferenceAttack) and reference_attack_class(name) is cls
    assert ref.shape == ((P, M, Q) if cls.queries else (P, M))
    score, _ = _score(attack, cls, labels, in_mask, logits, ref, rows=slice(0, 5))
    assert score.shape == (5,) and score.dtype == np.float64 and np.isfinite(score).all()
    decided = attack.decide(score)
    assert decided.shape == (5,) and decided.dtype == bool
    assert np.isfinite(attack.operating_score_) and attack.n_models_ == M


def _one_line(err: pytest.ExceptionInfo) -> None:
    assert str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_one_clear_error(name: str) -> None:
    attack, cls, labels, in_mask, logits, ref = _fitted(name)
    t, _ = _target(cls, labels, in_mask, logits)
    t_z = t[Z] if cls.needs_z else None
    with pytest.raises(NotFittedError) as err:
        create_reference_attack(name).score(t, ref, in_mask, target_z=t_z)
    _one_line(err)
    for bad in [
        lambda: create_reference_attack(name).fit(ref, in_mask.astype(int), z=Z),  # not bool
        lambda: create_reference_attack(name).fit(ref[:, :1], in_mask[:, :1], z=Z),  # one model
        lambda: attack.score(t, ref[:, :3], in_mask[:, :3], target_z=t_z),  # other models
        lambda: attack.score(t[:5], ref, in_mask, target_z=t_z),  # rows of another length
    ]:
        with pytest.raises(ValueError) as err:
            bad()
        _one_line(err)
    with pytest.raises(ValueError, match="unknown reference attack") as err:
        create_reference_attack(name.replace("-", "_"))
    _one_line(err)


@pytest.mark.parametrize("name", NAMES)
def test_through_the_stage_on_tiny_arrays(name: str, tmp_path) -> None:
    """The stage's own steps: fit on the reference population, score the target's members
    paired with the original non-members and with a set no reference model trained on
    (the online attacks score it as their offline counterpart), write the score file."""
    from mistrust.config import load_config
    from mistrust.pipeline.reference import _fitted as stage_fitted
    from mistrust.pipeline.reference import _set_rows, _Signals, scored_as

    labels, in_mask, logits = _case(1)
    cls = reference_attack_class(name)
    # rows 0-9 members, 10-19 non-members (audited), then the rest of the population
    pop = Population(np.zeros(P, np.int64), np.arange(P), 10, 20, in_mask.T.copy(), Z)
    # the target: more confident in the label of its members (population rows 0-9)
    t_logits = np.random.default_rng(5).normal(size=(P, C, Q))
    t_logits[np.arange(P), labels, :] += 1.0 + 3.0 * (np.arange(P) < 10)[:, None]
    ood_labels = np.random.default_rng(2).integers(0, C, 8)
    ood_logits = np.random.default_rng(3).normal(size=(8, M, C, Q))
    t_ood = np.random.default_rng(4).normal(size=(8, C, Q))

    def target(x, y):
        s = np.stack([cls.signal(x[..., q], y) for q in range(Q)], -1)
        return s if cls.queries else s[:, 0]

    target_sig = {"audited": target(t_logits[:20], labels[:20]), "ood": target(t_ood, ood_labels)}
    if cls.needs_z:
        target_sig["z"] = target(t_logits[Z], labels[Z])
    ref_sig = {
        "population": _signals(cls, logits, labels),
        "ood": _signals(cls, ood_logits, ood_labels),
    }
    sig = _Signals({cls.family: ref_sig}, {cls.family: target_sig})
    cfg = load_config("smoke", [f"reference.attacks=[{name}]"])
    rows = {}
    for ds in ("original", "ood"):
        run_as = scored_as(name, ds, None)
        attack = stage_fitted(run_as, cfg.reference, pop, sig)
        n_set = 10 if ds == "original" else 8
        out = tmp_path / f"{ds}.npz"
        got = _set_rows(
            name,
            ds,
            attack=attack,
            online=attack.online,
            pop=pop,
            sig=sig,
            source=None,
            logits=np.zeros((10 + n_set, C)),
            n_members=10,
            out=out,
            aupr="trapezoid",
        )
        rows[ds] = {m: v for _, _, _, m, v in got}
        assert out.is_file()
    assert rows["original"]["auroc"] > 0.8  # the members were more confident
    assert rows["original"]["tpr"] >= rows["original"]["fpr"]
    if attack.online:
        assert (rows["original"]["offline_on_ood"], rows["ood"]["offline_on_ood"]) == (0.0, 1.0)


class _Median(ReferenceAttack):
    """A toy family: the target's signal minus the median of the OUT models' (offline) or of
    every model's (online) signal on the row."""

    family = "toy-median"

    @staticmethod
    def signal(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.asarray(logits, np.float64)[np.arange(len(labels)), labels]

    def _pool(self, ref, in_mask, z):
        return float(np.median(ref[~in_mask]))

    def _score(self, t_x, ref_x, in_x, pooled, t_z):
        if self.online:
            return t_x - np.median(ref_x, axis=1)
        med = [np.median(r[~m]) if (~m).any() else pooled for r, m in zip(ref_x, in_x, strict=True)]
        return t_x - np.array(med)


def test_a_family_registered_later_goes_through_the_same_contract(monkeypatch) -> None:
    import mistrust.attacks
    from mistrust.config import load_config

    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))  # unregistered after
    registry.register_family(_Median)
    assert mistrust.attacks.REFERENCE_ATTACKS[-2:] == ("toy-median-online", "toy-median-offline")
    load_config("smoke", ["reference.attacks=[toy-median-offline, lira-online]"])  # accepted
    for name in ("toy-median-online", "toy-median-offline"):
        test_higher_score_means_member(name)
        test_same_bytes_twice(name)
        test_shapes_and_what_it_needs(name)
        test_bad_input_is_one_clear_error(name)
    with pytest.raises(ValueError, match="already registered"):
        registry.register_family(_Median)
    with pytest.raises(ValueError, match="must name the family"):
        registry.register_family(type("Named", (_Median,), {"family": "x-online"}))
    with pytest.raises(ValueError, match="must subclass ReferenceAttack"):
        registry.register_family(dict)
