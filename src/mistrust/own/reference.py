"""Reference models trained elsewhere, from their outputs: what ``mistrust audit``'s
``reference`` section names, read and checked, for the scoring ``mistrust run`` uses
too (:mod:`mistrust.pipeline.reference`). The outputs come from files
(:func:`reference_from_files`) or from checkpoints the audit runs
(:mod:`mistrust.own.reference_models`); both are checked by :func:`reference_outputs`.

The population's first rows are the audited ones, in the order of the target's files:
its members (``logits.target.members``), then its non-members
(``logits.target.nonmembers``); any rows after them are further samples the reference
models may have trained on. The files' layout: docs/REFERENCE_AUDIT.md.
"""

from __future__ import annotations

import json

import numpy as np

from mistrust.attacks.reference import offline_counterpart, reference_attack_class
from mistrust.calibration.variants import BASE
from mistrust.config.own import REFERENCE_ARRAYS, AuditReferenceConfig
from mistrust.core.outputs import Outputs
from mistrust.data.external import _existing, _npz
from mistrust.data.population import Population
from mistrust.errors import InputError
from mistrust.pipeline.evaluate import attack_labels
from mistrust.pipeline.reference import ReferenceOutputs
from mistrust.runtime.paths import RunPaths

__all__ = ["needs_z", "read_keep", "reference_from_files", "reference_outputs"]


def _fail(path: str, what: str) -> InputError:
    return InputError(f"{path}: {what} (docs/REFERENCE_AUDIT.md)")


def _array(arrays: dict[str, np.ndarray], key: str, path: str) -> np.ndarray:
    if key not in arrays:
        raise _fail(path, f"no array {key!r}; it has {', '.join(sorted(arrays)) or 'none'}")
    return arrays[key]


def _shape(x: np.ndarray, want: tuple[int, ...], key: str, path: str, meaning: str) -> None:
    if x.shape != want:
        raise _fail(path, f"{key} has shape {x.shape}, expected {want} ({meaning})")


def _keep(keep: np.ndarray, n_members: int, n_audited: int, path: str) -> None:
    if keep.dtype != np.bool_ or keep.ndim != 2:
        raise _fail(
            path, f"keep must be a bool array (models, rows), got {keep.dtype} {keep.shape}"
        )
    m, p = keep.shape
    if m < 2:
        raise _fail(path, f"keep has {m} reference model(s); the attacks need at least 2")
    if p < n_audited:
        raise _fail(
            path,
            f"keep has {p} rows, fewer than the target's {n_members} members and "
            f"{n_audited - n_members} non-members that come first",
        )
    counts = keep[:, :n_audited].sum(axis=0)
    for bad, which in ((counts == 0, "no"), (counts == m, "every")):
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            part = "member" if row < n_members else "non-member"
            raise _fail(
                path,
                f"audited row {row} (a {part}) is IN for {which} reference model; each "
                "audited row needs IN and OUT models",
            )


def _labels(labels: np.ndarray, target: np.ndarray, width: int, path: str) -> np.ndarray:
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise _fail(path, f"labels must be integers (rows,), got {labels.dtype} {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= width):
        raise _fail(path, f"labels must be class indices 0...{width - 1}")
    given = target >= 0
    differ = np.flatnonzero(given & (labels[: len(target)] != target))
    if len(differ):
        row = int(differ[0])
        raise _fail(
            path,
            f"row {row} has label {int(labels[row])} but the target's files give "
            f"{int(target[row])}; the audited rows come first, in the order of those files",
        )
    return labels.astype(np.int64)


def _z(z: np.ndarray, n_audited: int, p: int, path: str) -> np.ndarray:
    if z.ndim != 1 or not np.issubdtype(z.dtype, np.integer) or len(z) == 0:
        raise _fail(path, f"z must be a non-empty (Z,) array of row indices, got {z.shape}")
    if z.min() < n_audited or z.max() >= p:
        raise _fail(path, f"z must index rows {n_audited}...{p - 1}, after the audited ones")
    return np.sort(z.astype(np.int64))


def _source(src: np.ndarray | None, n: int, n_nonmembers: int, key: str, path: str):  # noqa: ANN202
    if src is None:
        return None
    _shape(src, (n,), key, path, "the audited non-member each row is a copy of")
    if not np.issubdtype(src.dtype, np.integer) or src.min() < 0 or src.max() >= n_nonmembers:
        raise _fail(path, f"{key} must be non-member indices 0...{n_nonmembers - 1}")
    return src.astype(np.int64)


def reference_from_files(
    r: AuditReferenceConfig, sets: list[str], paths: RunPaths
) -> ReferenceOutputs:
    """The reference outputs that ``r`` names, checked against the target's cached
    outputs (``outputs/base/target/``: ``train.npz`` the members, ``test.npz`` the
    non-members first, ``<set>.npz``); ``sets``: the OOD sets' names.

    Raises:
        mistrust.errors.DataError: a file that is missing or not an ``.npz``.
        mistrust.errors.InputError: an array missing or of the wrong shape or type, a
            keep matrix that is not bool or leaves an audited row without IN or OUT models,
            labels that disagree with the target's.
    """
    assert r.keep is not None and r.logits is not None  # validate_audit
    keep_file = read_keep(r)
    logit_file = _npz(_existing(r.logits, "reference.logits"), "the reference models' logits")
    return reference_outputs(r, sets, paths, keep_file, logit_file, r.logits)


def read_keep(r: AuditReferenceConfig) -> dict[str, np.ndarray]:
    """The arrays of ``reference.keep``."""
    assert r.keep is not None  # validate_audit
    return _npz(_existing(r.keep, "reference.keep"), "the keep matrix")


def needs_z(r: AuditReferenceConfig) -> bool:
    """Whether an attack of ``r`` takes population samples ``z`` (RMIA)."""
    return any(reference_attack_class(offline_counterpart(n)).needs_z for n in r.attacks)


def reference_outputs(
    r: AuditReferenceConfig,
    sets: list[str],
    paths: RunPaths,
    keep_file: dict[str, np.ndarray],
    logit_file: dict[str, np.ndarray],
    lp: str,
) -> ReferenceOutputs:
    """The reference outputs of ``keep_file`` (``reference.keep``'s arrays) and
    ``logit_file`` (the arrays of ``reference.logits``, or the same computed from the
    reference models; ``lp`` names them in messages), checked against the target's."""
    assert r.keep is not None  # validate_audit
    kp = r.keep
    members = Outputs.load(paths.outputs(BASE, "target", "train"))
    test = Outputs.load(paths.outputs(BASE, "target", "test"))
    n_non = json.loads(paths.parts("target").read_text())["nonmembers"]
    nonmembers = test.subset(np.arange(n_non))
    nm, a = len(members), len(members) + n_non
    width = members.logits.shape[1]

    keep = _array(keep_file, "keep", kp)
    _keep(keep, nm, a, kp)
    n_models, p = keep.shape
    target_labels = np.concatenate([members.labels, nonmembers.labels])
    labels = _labels(_array(keep_file, "labels", kp), target_labels, width, kp)
    _shape(labels, (p,), "labels", kp, "one class per row of keep")

    z = _z(_array(keep_file, "z", kp), a, p, kp) if needs_z(r) else np.zeros(0, np.int64)
    target = {"audited": np.concatenate([members.logits, nonmembers.logits])}
    if needs_z(r):
        target["z"] = _array(logit_file, REFERENCE_ARRAYS[1], lp).astype(np.float32)
        _shape(target["z"], (len(z), width), "target_z", lp, "the target's logits on z")

    # float32 as the target's outputs (and a run's cached ones)
    ref = {"population": _array(logit_file, REFERENCE_ARRAYS[0], lp).astype(np.float32)}
    _shape(ref["population"], (n_models, p, width), "population", lp, "models, rows, classes")
    set_labels, sources = {}, {}
    for name in sets:
        out = Outputs.load(paths.outputs(BASE, "target", name))
        target[name] = out.logits
        set_labels[name] = attack_labels(out)
        ref[name] = _array(logit_file, name, lp).astype(np.float32)
        _shape(ref[name], (n_models, len(out), width), name, lp, "models, the set's rows, classes")
        key = f"source_{name}"
        sources[name] = _source(keep_file.get(key), len(out), n_non, key, kp)
    for key, x in ref.items():
        if not np.isfinite(x).all():
            raise _fail(lp, f"{key} has NaN or infinite logits")

    def ref_logits(m: int, key: str, flip: bool) -> np.ndarray:
        assert not flip  # no flipped queries from files
        return ref[key][m]

    pop = Population(
        source=np.zeros(p, np.int64),
        index=np.arange(p, dtype=np.int64),
        n_members=nm,
        n_audited=a,
        keep=keep,
        z=z,
    )
    return ReferenceOutputs(
        pop=pop,
        labels=labels,
        ref_logits=ref_logits,
        n_models=n_models,
        target=target,
        set_labels=set_labels,
        sources=sources,
        flip=False,
    )
