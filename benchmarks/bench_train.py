"""Benchmark: training throughput of every preset model on this machine, against its matmul peak.

Usage::

    python benchmarks/bench_train.py              # all preset models, peak, achieved FLOP/s
    python benchmarks/bench_train.py --quick      # salem-cnn and resnet18-cifar only, fewer steps
    python benchmarks/bench_train.py --compare    # also the default loop's optimisations, side by side
    python benchmarks/bench_train.py --workers-ab # 2 models: one 2-thread process vs two 1-thread

Throughput is measured through the project's own ``train_model`` (uint8 images
in, preprocessing, Adam, checkpoint-free) after one warm-up call. Forward FLOPs
come from ``torch.utils.flop_counter.FlopCounterMode`` on one batch; a training
step counts as 3x forward. The peak is a float32 ``torch.mm`` of two
``--mm-size`` squared matrices, best of ``--repeat``, measured in the same
process before and after the table (the higher one counts); a large oneDNN
convolution is shown as a second reference (it beats MKL's sgemm on AMD CPUs).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from mistrust.config import TrainConfig
from mistrust.core.outputs import compute_outputs
from mistrust.data.images import Preprocess
from mistrust.models import create_model
from mistrust.training import train_model

# (arch, channels, size, batch, images per timed epoch in full / quick mode); None: skip in quick
MODELS = [
    ("salem-cnn", 1, 28, 64, 4096, 2048),
    ("resnet18-cifar", 3, 32, 64, 256, 128),
    ("efficientnet-b0-cifar", 3, 32, 64, 256, None),
    ("resnet50", 3, 224, 16, 32, None),
]
MEAN_STD = {1: ((0.286,), (0.353,)), 3: ((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))}


def matmul_peak(n: int = 2048, repeat: int = 10) -> float:
    """Best float32 ``torch.mm`` FLOP/s over ``repeat`` products of ``(n, n)`` matrices."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def conv_peak(repeat: int = 10) -> float:
    """Best FLOP/s of a large 3x3 convolution (oneDNN, channels-last): 64 x 256 x 16 x 16."""
    x = torch.randn(64, 256, 16, 16).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3).contiguous(memory_format=torch.channels_last)
    F.conv2d(x, w)  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        F.conv2d(x, w)
        best = min(best, time.perf_counter() - t0)
    return 2 * 64 * 14 * 14 * 256 * 256 * 9 / best


def forward_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward pass over batch ``x (B, C, H, W)``."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def _images(n: int, channels: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)
    return x, torch.randint(0, 10, (n,), generator=g)


def train_throughput(arch: str, channels: int, size: int, batch: int, n: int) -> dict:
    pre = Preprocess(channels, size, *MEAN_STD[channels])
    model = create_model(arch, channels=channels, num_classes=10, size=size)
    x, y = _images(n, channels, size)
    fwd = forward_flops(model, pre(x[:batch])) / batch
    cfg = TrainConfig(epochs=1, batch_size=batch)
    train_model(model, x[: 2 * batch], y[: 2 * batch], pre, cfg, seed=0)  # warm-up
    reps = 5 if fwd * n < 1e11 else 1  # best of 5 where an epoch is cheap
    rate = n / min(train_model(model, x, y, pre, cfg, seed=0).seconds for _ in range(reps))
    return {
        "arch": arch,
        "input": f"{channels}x{size}x{size}",
        "batch": batch,
        "n": n,
        "samples_s": rate,
        "fwd_mflop": fwd / 1e6,
        "flops": 3 * fwd * rate,
    }


# ---- --compare: the default loop's candidate optimisations, interleaved in one process ----


def _salem(pool_first: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model("salem-cnn", channels=1, num_classes=10, size=28)
    if pool_first:  # max-pool before ReLU: the same function, ReLU on 4x fewer values
        conv = model.body[0]
        for i in (1, 4):
            conv[i], conv[i + 1] = conv[i + 1], conv[i]
    return model


def _loop(
    x_u8: torch.Tensor,
    y: torch.Tensor,
    pre: Preprocess,
    *,
    epochs: int,
    once: bool = False,
    channels_last: bool = False,
    adam: dict | None = None,
    pool_first: bool = False,
    threads: int = 0,
    mkldnn: bool = True,
) -> torch.nn.Module:
    """The pre-optimisation training loop of ``train_model``, with one knob per candidate."""
    model = _salem(pool_first)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **(adam or {}))
    gen = torch.Generator().manual_seed(0)
    x_pre = pre(x_u8) if once else None
    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads)
    with torch.backends.mkldnn.flags(enabled=mkldnn):
        for _ in range(epochs):
            order = torch.randperm(len(x_u8), generator=gen)
            total = torch.zeros(())
            for i in range(0, len(x_u8), 64):
                idx = order[i : i + 64]
                xb = x_pre[idx] if x_pre is not None else pre(x_u8[idx])
                out = model(xb.contiguous(memory_format=fmt))
                loss = F.cross_entropy(out, y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach() * len(idx)
    torch.set_num_threads(default_threads)
    return model.to(memory_format=torch.contiguous_format)


def _shipped(x_u8: torch.Tensor, y: torch.Tensor, pre: Preprocess, epochs: int) -> torch.nn.Module:
    model = _salem()
    train_model(model, x_u8, y, pre, TrainConfig(epochs=epochs, batch_size=64), seed=0)
    return model


FUSED = {"fused": True}
LOOP_VARIANTS = {
    "baseline: per-batch preprocess, NCHW, Adam for-loop": {},
    "preprocess once per run": {"once": True},
    "Adam foreach=True": {"adam": {"foreach": True}},
    "Adam fused=True": {"adam": FUSED},
    "channels_last": {"channels_last": True},
    "channels_last + fused (shipped)": {"channels_last": True, "adam": FUSED},
    "channels_last + fused + preprocess once": {"channels_last": True, "adam": FUSED, "once": True},
    "shipped + max-pool before ReLU (models/small.py)": {
        "channels_last": True,
        "adam": FUSED,
        "pool_first": True,
    },
    "baseline, oneDNN (mkldnn) off": {"mkldnn": False},
    "baseline, 1 thread": {"threads": 1},
    "shipped, 1 thread": {"channels_last": True, "adam": FUSED, "threads": 1},
}


def compare_loops(n: int, epochs: int, rounds: int) -> list[tuple[str, float, float, str]]:
    """Best-of-``rounds`` seconds of each loop variant, run round-robin; ratio to the baseline."""
    pre = Preprocess(1, 28, *MEAN_STD[1])
    x, y = _images(n, 1, 28)
    runs: dict[str, Callable[[], torch.nn.Module]] = {
        name: (lambda kw=kw: _loop(x, y, pre, epochs=epochs, **kw))
        for name, kw in LOOP_VARIANTS.items()
    }
    runs["train_model as shipped"] = lambda: _shipped(x, y, pre, epochs)
    best = dict.fromkeys(runs, float("inf"))
    weights = {}
    for _ in range(rounds):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            model = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
            weights[name] = list(model.state_dict().values())
    base_name = next(iter(runs))
    rows = []
    for name, t in best.items():
        pairs = zip(weights[base_name], weights[name], strict=True)
        same = all(torch.equal(a, b) for a, b in pairs)
        rows.append((name, t, best[base_name] / t, "identical" if same else "differ (rounding)"))
    return rows


@torch.inference_mode()
def _outputs_before(model: torch.nn.Module, x: torch.Tensor, batch: int) -> torch.Tensor:
    """``compute_outputs`` before channels-last: NCHW, batches of ``batch``."""
    return torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)])


def compare_outputs(n: int, rounds: int) -> list[tuple[str, float, float]]:
    """Inference over ``n`` salem-cnn inputs: the old NCHW loop vs ``compute_outputs``."""
    model = _salem().eval()
    x = torch.randn(n, 1, 28, 28)
    y = torch.zeros(n, dtype=torch.long)
    runs = {
        "before: NCHW, batch 1024 (eval_batch_size default)": lambda: _outputs_before(
            model, x, 1024
        ),
        "before: NCHW, batch 256": lambda: _outputs_before(model, x, 256),
        "compute_outputs (channels-last), batch 1024": lambda: compute_outputs(model, x, y),
        "compute_outputs (channels-last), batch 256": lambda: compute_outputs(
            model, x, y, batch_size=256
        ),
    }
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    base = next(iter(best.values()))
    return [(name, t, base / t) for name, t in best.items()]


# ---- --workers-ab: how a study spreads its models over the cores ----


def _train_salem(shared: tuple[torch.Tensor, torch.Tensor, int], seed: int) -> float:
    """One default-preset model: padded SalemCNN, Adam, batch 64; returns its seconds."""
    x, y, epochs = shared
    pre = Preprocess(1, 28, *MEAN_STD[1])
    torch.manual_seed(seed)
    model = create_model("salem-cnn", channels=1, num_classes=10, size=28)
    return train_model(
        model, x, y, pre, TrainConfig(epochs=epochs, batch_size=64), seed=seed
    ).seconds


def compare_workers(
    n_models: int, n: int, epochs: int, rounds: int
) -> list[tuple[str, float, float]]:
    """Wall seconds of ``n_models`` trainings (``n`` images x ``epochs``): one after another
    with 2 torch threads vs over 2 forked 1-thread workers (``run_tasks``, as a study runs
    them), best of ``rounds``, round-robin."""
    from mistrust.runtime.executors import run_tasks

    x, y = _images(n, 1, 28)
    shared, seeds = (x, y, epochs), list(range(n_models))
    threads = torch.get_num_threads()
    variants = {
        "1 process x 2 threads, models one after another": {"threads": 2, "workers": 1},
        "2 processes x 1 thread (run_tasks workers=2)": {"threads": 1, "workers": 2},
    }
    best = dict.fromkeys(variants, float("inf"))
    try:
        for _ in range(rounds):
            for name, kw in variants.items():
                t0 = time.perf_counter()
                run_tasks(_train_salem, seeds, shared=shared, **kw)
                best[name] = min(best[name], time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    base = next(iter(best.values()))
    return [(name, t, base / t) for name, t in best.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer models and steps")
    ap.add_argument("--compare", action="store_true", help="time the default loop's variants")
    ap.add_argument("--mm-size", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: default)")
    ap.add_argument("--workers-ab", action="store_true", help="2 models: 1x2 vs 2x1 threads")
    ap.add_argument("--no-table", action="store_true", help="skip the per-model table")
    ap.add_argument("--models", nargs="+", help="only these architectures (e.g. salem-cnn)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message="TF32 acceleration")  # from mkldnn.flags()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.workers_ab:
        n, epochs, rounds = (500, 4, 2) if args.quick else (500, 10, 3)
        load = os.getloadavg()[0]
        print(
            f"Two default-preset models (padded salem-cnn, {n} images x {epochs} epochs, batch "
            f"64), wall seconds, best of {rounds}, round-robin; 1-min load {load:.2f}:\n"
        )
        print("| how | seconds | speed-up |")
        print("|---|---:|---:|")
        for name, t, ratio in compare_workers(2, n, epochs, rounds):
            print(f"| {name} | {t:.2f} | {ratio:.2f}x |")
        print(f"\n1-min load after: {os.getloadavg()[0]:.2f}\n")
        if args.no_table:
            return
    load0 = os.getloadavg()[0]
    peak0, conv0 = matmul_peak(args.mm_size, args.repeat), conv_peak(args.repeat)
    rows = []
    for arch, c, s, b, n_full, n_quick in MODELS:
        n = n_quick if args.quick else n_full
        if n is not None and (not args.models or arch in args.models):
            rows.append(train_throughput(arch, c, s, b, n))
    peak1, conv1 = matmul_peak(args.mm_size, args.repeat), conv_peak(args.repeat)
    peak, conv = max(peak0, peak1), max(conv0, conv1)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads. Peaks (best of "
        f"{args.repeat}, before / after the table): float32 torch.mm {args.mm_size}^2 "
        f"{peak0 / 1e9:.0f} / {peak1 / 1e9:.0f} GFLOP/s; oneDNN 3x3 conv (64x256x16x16, "
        f"channels-last) {conv0 / 1e9:.0f} / {conv1 / 1e9:.0f} GFLOP/s. "
        f"1-min load {load0:.2f} / {os.getloadavg()[0]:.2f}.\n"
    )
    print(
        "| model | input | batch | images | samples/s | fwd MFLOP/sample | GFLOP/s (3x fwd) "
        "| % of mm peak | % of conv peak |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['arch']} | {r['input']} | {r['batch']} | {r['n']:,} | {r['samples_s']:,.0f} | "
            f"{r['fwd_mflop']:,.1f} | {r['flops'] / 1e9:.1f} | {100 * r['flops'] / peak:.0f} % "
            f"| {100 * r['flops'] / conv:.0f} % |"
        )
    if args.compare:
        n, epochs, rounds = (1000, 2, 3) if args.quick else (1000, 4, 5)
        print(
            f"\nDefault loop variants (salem-cnn, {n} images, {epochs} epochs, batch 64, "
            f"best of {rounds}, round-robin in this process):\n"
        )
        print("| variant | seconds | speed-up vs baseline | weights vs baseline |")
        print("|---|---:|---:|---|")
        for name, t, ratio, same in compare_loops(n, epochs, rounds):
            print(f"| {name} | {t:.2f} | {ratio:.2f}x | {same} |")
        n_out = 4096 if args.quick else 8192
        print(f"\nModel outputs (salem-cnn inference on {n_out} inputs, best of {rounds}):\n")
        print("| variant | seconds | speed-up |")
        print("|---|---:|---:|")
        for name, t, ratio in compare_outputs(n_out, rounds):
            print(f"| {name} | {t:.3f} | {ratio:.2f}x |")
        print(f"\n1-min load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
