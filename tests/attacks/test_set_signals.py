"""A set's signals are computed once and shared by every attack, with the bytes of each
attack's own ``fit`` / ``score`` on the raw logits."""

from __future__ import annotations

import numpy as np
import pytest

from mistrust.attacks import SCORE_BASED_ATTACKS, attack_names, create_attack, float32, signals
from mistrust.attacks.set_signals import SetSignals

ATTACKS = [name for name in attack_names() if name in SCORE_BASED_ATTACKS]


def _attack(name: str, precision: str, class_thresholds: bool):
    attack = create_attack(
        name, score_precision=precision, class_thresholds=class_thresholds, seed=1, salem_rows=150
    )
    if name == "salem":
        attack.max_epochs = 5  # the bytes are compared, not the fit's quality
    return attack


def _saturated(logits: np.ndarray) -> np.ndarray:
    """Rows whose float64 softmax saturates or ties, where the precisions differ most."""
    out = logits.copy()
    out[:20] *= 300.0
    out[20:30, :2] = 40.0
    return out


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("class_thresholds", [False, True])
def test_shared_signals_give_the_bytes_of_score_on_raw_logits(
    precision, class_thresholds, shadow, target
) -> None:
    logits, labels, _ = target
    sets = {"target": (logits, labels), "saturated": (_saturated(logits), labels)}
    # one SetSignals per set, read by every attack in turn, as the audit does
    wanted = {s for name in ATTACKS for s in _attack(name, precision, False).reads}
    shared_shadow = SetSignals(shadow[0], shadow[1], wanted=wanted)
    shared = {ds: SetSignals(x, y, wanted=wanted) for ds, (x, y) in sets.items()}
    for name in ATTACKS:
        own = _attack(name, precision, class_thresholds).fit(*shadow)
        reader = _attack(name, precision, class_thresholds)
        reader.fit_signals(shared_shadow, shadow[2])
        assert reader.operating_score_ == own.operating_score_, name
        for ds, (x, y) in sets.items():
            expect = own.score(x, y)
            got = reader.score_signals(shared[ds])
            assert got.dtype == expect.dtype == np.float64
            assert got.tobytes() == expect.tobytes(), (name, ds)
            if not reader.score_needs_fit:  # no shadow: the signal alone, no class thresholds
                free = _attack(name, precision, class_thresholds).shadow_free_score(shared[ds])
                plain = _attack(name, precision, False).fit(*shadow).score(x, y)
                assert free.tobytes() == plain.tobytes(), (name, ds)


def _count(monkeypatch, module, name: str) -> list[int]:
    """Record the row count of every call of ``module.name``."""
    calls: list[int] = []
    real = getattr(module, name)

    def counted(x, *args, **kwargs):
        calls.append(len(x))
        return real(x, *args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_the_audit_computes_each_sets_softmax_once(monkeypatch, make_outputs) -> None:
    import mistrust

    shadow, target = make_outputs(300, seed=0), make_outputs(200, seed=1)
    ood = make_outputs(50, seed=2)[0]
    shifts = _count(monkeypatch, signals, "_shifted")  # the row-max shift of the softmax
    mistrust.audit(shadow, target, eval_sets={"ood": ood}, attacks=ATTACKS, seed=0)
    # shadow, original (the target's rows), ood (the target's 100 members, then the set):
    # once each for the five signal attacks and the max scores (the old code: 17 times)
    assert sorted(shifts) == [150, 200, 300]


def test_the_paper_arithmetic_computes_each_sets_float32_softmax_once(
    monkeypatch, make_outputs
) -> None:
    import mistrust

    shadow, target = make_outputs(300, seed=0), make_outputs(200, seed=1)
    softmaxes = _count(monkeypatch, float32, "softmax")
    mistrust.audit(
        shadow,
        target,
        attacks=["threshold", "entropy", "salem"],
        score_precision="float32",
        salem_rows=None,
        seed=0,
    )
    assert sorted(softmaxes) == [200, 300]  # shadow and original, read by every attack


def test_wanted_signals_share_one_pass_others_get_their_own(monkeypatch, make_outputs) -> None:
    logits, labels, _ = make_outputs(100, n_classes=4, seed=3)
    shifts = _count(monkeypatch, signals, "_shifted")
    sig = SetSignals(logits, labels, wanted={"loss", "entropy"})
    loss = sig.get("loss")
    assert sig.get("entropy") is sig.get("entropy")
    assert shifts == [100]  # one pass for both wanted signals
    assert (
        sig.get("modified_entropy").tobytes() == signals.modified_entropy(logits, labels).tobytes()
    )
    assert len(shifts) == 3  # a pass of its own, then the function's
    # the values are the signal functions' (each computed here in a pass of its own)
    assert loss.tobytes() == signals.loss(logits, labels).tobytes()
    assert sig.get("entropy").tobytes() == signals.entropy(logits).tobytes()
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(loss, -np.log(p[np.arange(100), labels]), rtol=1e-12)


def test_shared_arrays_are_read_only_and_score_returns_the_callers_own(make_outputs) -> None:
    shadow, target = make_outputs(seed=0), make_outputs(seed=1)
    sig = SetSignals(target[0], target[1])
    with pytest.raises(ValueError, match="read-only"):
        sig.get("max_score")[0] = 0.0
    attack = create_attack("threshold").fit(*shadow)
    assert attack.score_signals(sig) is sig.get("max_score")  # no copy inside an audit
    own = attack.score(target[0], target[1])
    own[0] = -1.0  # the caller may change what score returns
    assert sig.get("max_score")[0] != -1.0
    # per-class thresholds make a new array instead of changing the shared one
    before = sig.get("max_score").copy()
    create_attack("threshold", class_thresholds=True).fit(*shadow).score_signals(sig)
    assert np.array_equal(sig.get("max_score"), before)


def test_bad_names_and_precisions_raise_one_clear_error(make_outputs) -> None:
    logits, labels, _ = make_outputs(20, seed=0)
    with pytest.raises(ValueError, match=r"unknown signals \['nope'\]"):
        SetSignals(logits, labels, wanted={"nope"})
    sig = SetSignals(logits, labels)
    with pytest.raises(ValueError, match="unknown signal 'nope'"):
        sig.get("nope")
    with pytest.raises(ValueError, match="loss has no float32 arithmetic"):
        sig.get("loss", "float32")
    with pytest.raises(ValueError, match="precision must be one of"):
        sig.get("entropy", "float16")
    with pytest.raises(ValueError, match="labels must lie in"):
        SetSignals(logits, labels + 10)
