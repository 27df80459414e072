"""Benchmark: ART's black-box membership inference attacks vs ours, on the same saved outputs.

Usage::

    python benchmarks/bench_art.py                 # 2,500 + 2,500 per role (trains 2 SalemCNNs once)
    python benchmarks/bench_art.py --quick         # 1,000 + 1,000, fewer epochs
    python benchmarks/bench_art.py --run runs/default   # a finished run's base-variant outputs
    python benchmarks/bench_art.py --run A --run B --swap  # several runs, each role split both ways

Needs ``adversarial-robustness-toolbox`` (``pip install adversarial-robustness-toolbox``).
Every attack is fitted on the shadow model's member / non-member outputs and
scores the target model's; AUROC is on the target. ART gets softmax
probabilities (its ``input_type="prediction"``) through a ``BlackBoxClassifier``
whose "inputs" are row indices into the saved predictions, so no model runs
during the attacks. Outputs of the trained models are cached in ``--cache``.
With ``--swap`` each case is also run with the roles exchanged (fit on the target,
score the shadow): a second, independent measurement on the same run. ART's ``nn``
trains with torch's global generator, seeded here (``torch.manual_seed(0)``) so the
table repeats.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from mistrust.attacks import create_attack
from mistrust.metrics.rates import auroc

Role = tuple[np.ndarray, np.ndarray, np.ndarray]  # logits (N, C), labels (N,), is_member (N,)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(1, keepdims=True))
    return (z / z.sum(1, keepdims=True)).astype(np.float32)


def outputs_from_run(run: Path) -> tuple[Role, Role]:
    from mistrust.core.outputs import Outputs
    from mistrust.data.splits import positions
    from mistrust.io import load_npz

    splits = load_npz(run / "splits.npz")
    roles = []
    for role in ("shadow", "target"):
        d = run / "outputs" / "base" / role
        mem = Outputs.load(d / "train.npz").subset(
            positions(splits[f"{role}_train"], splits[f"{role}_members"])
        )
        non = Outputs.load(d / "test.npz").subset(
            positions(splits[f"{role}_test"], splits[f"{role}_nonmembers"])
        )
        roles.append(_stack(mem.logits, mem.labels, non.logits, non.labels))
    return roles[0], roles[1]


def _stack(ml: np.ndarray, my: np.ndarray, nl: np.ndarray, ny: np.ndarray) -> Role:
    member = np.r_[np.ones(len(ml), bool), np.zeros(len(nl), bool)]
    return np.concatenate([ml, nl]), np.concatenate([my, ny]), member


def outputs_from_models(n: int, epochs: int, cache: Path) -> tuple[Role, Role]:
    """Train target and shadow SalemCNNs on disjoint ``n``-image Fashion-MNIST splits."""
    if cache.is_file():
        d = np.load(cache)
        return tuple(
            (d[f"{r}_logits"], d[f"{r}_labels"], d[f"{r}_member"]) for r in ("shadow", "target")
        )  # type: ignore[return-value]
    from mistrust.config import TrainConfig
    from mistrust.core.outputs import compute_outputs
    from mistrust.data.images import Preprocess
    from mistrust.data.sources import get_source, load_source
    from mistrust.models import create_model
    from mistrust.training import train_model

    spec = get_source("fashion-mnist")
    train, test = (
        load_source("fashion-mnist", split=s, size=28, channels=1) for s in ("train", "test")
    )
    pre = Preprocess(1, 28, spec.mean, spec.std)
    rng = np.random.default_rng(0)
    tr, te = rng.permutation(len(train))[: 2 * n], rng.permutation(len(test))[: 2 * n]
    arrays = {}
    for i, role in enumerate(("shadow", "target")):
        mem, non = train.subset(tr[i * n : (i + 1) * n]), test.subset(te[i * n : (i + 1) * n])
        torch.manual_seed(i)
        model = create_model("salem-cnn", channels=1, num_classes=10, size=28)
        hist = train_model(model, mem.images, mem.labels, pre, TrainConfig(epochs=epochs), seed=i)
        print(f"trained {role} model: {hist.seconds:.1f} s, train accuracy {hist.accuracy[-1]:.3f}")
        om = compute_outputs(model, pre(mem.images), mem.labels)
        on = compute_outputs(model, pre(non.images), non.labels)
        lg, lb, m = _stack(om.logits, om.labels, on.logits, on.labels)
        arrays.update({f"{role}_logits": lg, f"{role}_labels": lb, f"{role}_member": m})
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **arrays)
    return outputs_from_models(n, epochs, cache)


def run_ours(name: str, shadow: Role, target: Role) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    attack = create_attack(name).fit(*shadow)
    t1 = time.perf_counter()
    score = attack.score(target[0], target[1])
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, auroc(score, target[2])


def run_art(kind: str, shadow: Role, target: Role) -> tuple[float, float, float]:
    from art.attacks.inference.membership_inference import (
        MembershipInferenceBlackBox,
        MembershipInferenceBlackBoxRuleBased,
    )
    from art.estimators.classification import BlackBoxClassifier

    s_prob, t_prob = _softmax(shadow[0]), _softmax(target[0])
    n_classes = s_prob.shape[1]
    rows = np.arange(len(t_prob), dtype=np.float32)[:, None]  # "inputs" = row indices
    clf = BlackBoxClassifier(lambda x: t_prob[x[:, 0].astype(int)], (1,), n_classes)
    m = shadow[2]
    t0 = time.perf_counter()
    if kind == "rule-based":
        attack = MembershipInferenceBlackBoxRuleBased(clf)  # nothing to fit
        t1 = time.perf_counter()
        score = attack.infer(rows, target[1])
    else:
        torch.manual_seed(0)  # ART's nn draws its init and batches from torch's generator
        attack = MembershipInferenceBlackBox(clf, attack_model_type=kind)
        attack.fit(y=shadow[1][m], pred=s_prob[m], test_y=shadow[1][~m], test_pred=s_prob[~m])
        t1 = time.perf_counter()
        score = attack.infer(None, target[1], pred=t_prob, probabilities=True)
    t2 = time.perf_counter()
    score = np.asarray(score, dtype=np.float64).reshape(len(t_prob), -1)[:, -1]
    return t1 - t0, t2 - t1, auroc(score, target[2])


OURS = (
    "threshold",
    "entropy",
    "loss",
    "modified-entropy",
    "logit-confidence",
    "salem",
    "shokri",
    "shokri-log",
)
ARTS = ("nn", "rf", "gb", "rule-based")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,000 + 1,000 per role, 10 epochs")
    ap.add_argument(
        "--run",
        type=Path,
        action="append",
        help="a run directory's base-variant outputs (repeatable)",
    )
    ap.add_argument("--swap", action="store_true", help="also fit on the target, score the shadow")
    ap.add_argument("--n", type=int, default=2500, help="members (= non-members) per role")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/mistrust-bench/art_outputs"))
    args = ap.parse_args()
    logging.getLogger("art").setLevel(logging.WARNING)
    try:
        import art
    except ImportError:
        raise SystemExit("bench_art: pip install adversarial-robustness-toolbox") from None
    cases: list[tuple[str, Role, Role]] = []
    if args.run:
        for run in args.run:
            shadow, target = outputs_from_run(run)
            cases.append((f"{run.name}", shadow, target))
    else:
        n, epochs = (1000, 10) if args.quick else (args.n, args.epochs)
        cache = args.cache.with_name(f"{args.cache.name}_{n}_{epochs}.npz")
        shadow, target = outputs_from_models(n, epochs, cache)
        print(f"SalemCNN on Fashion-MNIST, {epochs} epochs (cached in {cache})")
        cases.append(("salemcnn", shadow, target))
    if args.swap:
        cases += [(f"{name} swapped", t, s) for name, s, t in list(cases)]
    load0 = os.getloadavg()[0]
    names = [f"mistrust {a}" for a in OURS] + [f"ART black-box {k}" for k in ARTS]
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in names}
    for _, shadow, target in cases:
        for a in OURS:
            results[f"mistrust {a}"].append(run_ours(a, shadow, target))
        for k in ARTS:
            results[f"ART black-box {k}"].append(run_art(k, shadow, target))
    _, shadow, target = cases[0]
    print(
        f"ART {art.__version__} vs mistrust: fit on the shadow's outputs, score the target's; "
        f"case 1: {len(shadow[0]):,} shadow outputs ({shadow[2].sum():,} members), "
        f"{len(target[0]):,} target outputs; torch threads {torch.get_num_threads()}, "
        f"1-min load {load0:.2f} -> {os.getloadavg()[0]:.2f}\n"
    )
    heads = " | ".join(f"AUROC {name}" for name, _, _ in cases)
    print(f"| attack | fit s | score s | {heads} | mean AUROC |")
    print("|---|---:|---:|" + "---:|" * (len(cases) + 1))
    for name, runs in results.items():
        fit, score, _ = runs[0]
        aucs = [auc for _, _, auc in runs]
        cells = " | ".join(f"{auc:.3f}" for auc in aucs)
        print(f"| {name} | {fit:.3f} | {score:.3f} | {cells} | {np.mean(aucs):.3f} |")


if __name__ == "__main__":
    main()
