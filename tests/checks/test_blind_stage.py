"""``mistrust.pipeline.blind.run_baseline``: the run's blind baseline, cached and resumable."""

from __future__ import annotations

import numpy as np
import torch

from mistrust.data.bundle import Data
from mistrust.data.evalsets import EvalInputs
from mistrust.data.images import ImageSet, Preprocess
from mistrust.metrics import auroc
from mistrust.pipeline.blind import run_baseline
from mistrust.runtime.paths import RunPaths


def _data() -> tuple[Data, dict[str, EvalInputs]]:
    g = torch.Generator().manual_seed(0)
    pool = torch.randint(0, 256, (80, 1, 12, 12), dtype=torch.uint8, generator=g)
    labels = torch.zeros(80, dtype=torch.long)
    splits = {
        "target_members": np.arange(0, 40, 2),  # every other image of the train pool
        "target_nonmembers": np.arange(1, 41, 2),  # from the test pool (same images here)
    }
    pre = Preprocess(1, 12, (0.5,), (0.25,))
    data = Data(ImageSet(pool, labels), ImageSet(pool, labels), None, pre, 2, splits)
    bright = pre(torch.clamp(pool[:30].int() + 120, 0, 255).to(torch.uint8))
    sets = {"bright": EvalInputs(bright, torch.full((30,), -1), pool[:30])}
    return data, sets


def test_members_first_shift_separated_and_cached(tmp_path, monkeypatch) -> None:
    data, sets = _data()
    out = run_baseline(data, sets, ["original", "bright"], RunPaths(tmp_path), seed=1)
    assert out["original"].shape == (40,) and out["bright"].shape == (50,)
    member = np.arange(50) < 20
    assert auroc(out["bright"], member) > 0.95  # brighter images: visible without a model
    assert sorted(p.name for p in (tmp_path / "baseline").iterdir()) == [
        "bright.npz",
        "original.npz",
    ]
    before = {p.name: p.read_bytes() for p in (tmp_path / "baseline").iterdir()}

    # a rerun reads the cache and fits nothing
    import mistrust.pipeline.blind as blind

    def refuse(*a, **k):
        raise AssertionError("refitted although cached")

    monkeypatch.setattr(blind, "blind_scores", refuse)
    again = run_baseline(data, sets, ["original", "bright"], RunPaths(tmp_path), seed=1)
    assert all(np.array_equal(again[k], out[k]) for k in out)
    # a changed seed (or input) recomputes, with the same bytes as a fresh directory
    monkeypatch.undo()
    other = run_baseline(data, sets, ["original"], RunPaths(tmp_path), seed=2)
    fresh = run_baseline(data, sets, ["original"], RunPaths(tmp_path / "fresh"), seed=2)
    assert other["original"].tobytes() == fresh["original"].tobytes()
    assert (tmp_path / "baseline" / "original.npz").read_bytes() != before["original.npz"]


def test_cache_key_names_the_solver_above_the_switch_only() -> None:
    import hashlib

    from mistrust.checks.baseline import BLIND_NEWTON_ABOVE
    from mistrust.pipeline.blind import _key

    def sha(prefix: str, f: np.ndarray, m: np.ndarray) -> str:
        return hashlib.sha256(prefix.encode() + f.tobytes() + m.tobytes()).hexdigest()

    for n, solver in ((BLIND_NEWTON_ABOVE, ""), (BLIND_NEWTON_ABOVE + 1, "-newton")):
        f, m = np.zeros((n, 2)), np.arange(n) % 2 == 0
        # below the switch the key is what it was: the cached scores of a run stay valid
        assert _key(f, m, 3) == sha(f"logreg-8-5-3{solver}", f, m)


def test_each_fit_gets_the_feature_dtype_of_its_own_size(tmp_path, monkeypatch) -> None:
    # few members with a small set: below the switch, float64 as always; with a set that
    # takes the fit above it: float32, the members' rows rounded once as the set's are
    import mistrust.pipeline.blind as blind
    from mistrust.checks.baseline import BLIND_NEWTON_ABOVE, pixel_features
    from mistrust.pipeline.blind import score_sets

    seen = {}

    def record(f: np.ndarray, is_member: np.ndarray, *, seed: int) -> np.ndarray:
        seen[len(f)] = f
        return np.zeros(len(f))

    monkeypatch.setattr(blind, "blind_scores", record)
    rng = np.random.default_rng(0)
    members = torch.as_tensor(rng.normal(size=(100, 1, 8, 8)))
    small = torch.as_tensor(rng.normal(size=(50, 1, 8, 8)))
    large = torch.as_tensor(rng.normal(size=(BLIND_NEWTON_ABOVE, 1, 8, 8)))
    score_sets(members, {"small": small, "large": large}, RunPaths(tmp_path), seed=0)
    for x, dtype in ((small, np.float64), (large, np.float32)):
        want = pixel_features(torch.cat([members, x]), dtype=dtype)
        assert seen[100 + len(x)].tobytes() == want.tobytes()
