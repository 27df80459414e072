"""Benchmark (GPU): CIFAR ResNet-18 training images/s, with AMP and torch.compile toggled.

Usage::

    python benchmarks/bench_gpu.py                  # 4 settings x --steps steps, batch 256
    python benchmarks/bench_gpu.py --quick          # fewer steps, no torch.compile
    python benchmarks/bench_gpu.py --cpu-check      # run the same code on the CPU (tiny; a test)

Synthetic ``torch.randn`` batches of 3x32x32 (no data loading), the preset's
``resnet18-cifar`` model, Adam, cross-entropy. Each setting builds a fresh
model, runs ``--warmup`` steps (compilation happens there), then times
``--steps`` steps between two ``torch.cuda.synchronize()``. AMP is
``torch.autocast`` with bfloat16 where the GPU supports it, else float16 with a
gradient scaler. Exits with status 0 and a message when there is no CUDA device.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import torch
import torch.nn.functional as F

from mistrust.models import create_model


def _step_fn(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    amp: torch.dtype | None,
    scaler: torch.amp.GradScaler | None,
    device: torch.device,
):
    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        ctx = torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext()
        with ctx:
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()

    return step


def images_per_second(
    device: torch.device, *, amp: bool, compile: bool, batch: int, steps: int, warmup: int
) -> float:
    torch.manual_seed(0)
    model = create_model("resnet18-cifar", channels=3, num_classes=10, size=32).to(device)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    dtype = scaler = None
    if amp:
        bf16 = device.type == "cpu" or torch.cuda.is_bf16_supported()
        dtype = torch.bfloat16 if bf16 else torch.float16
        scaler = None if bf16 else torch.amp.GradScaler(device.type)
    net = torch.compile(model) if compile else model
    step = _step_fn(net, opt, dtype, scaler, device)
    x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step(x, y)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    sync()
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps, no torch.compile")
    ap.add_argument("--cpu-check", action="store_true", help="run on the CPU with tiny sizes")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=200, help="timed steps (196 = 1 epoch of 50k)")
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args()
    if args.cpu_check:
        device = torch.device("cpu")
        args.batch, args.steps, args.warmup = 8, 2, 1
    elif not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here; skipped (use --cpu-check to exercise the code)")
        sys.exit(0)
    else:
        device = torch.device("cuda")
        torch.backends.cudnn.benchmark = True
    if args.quick:
        args.steps, args.warmup = min(args.steps, 50), min(args.warmup, 10)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(
        f"resnet18-cifar training on {name}, torch {torch.__version__}, batch {args.batch}, "
        f"{args.steps} timed steps after {args.warmup} warm-up\n"
    )
    print("| AMP | torch.compile | images/s | vs fp32 eager |")
    print("|---|---|---:|---:|")
    base = None
    for compile in (False,) if args.quick or args.cpu_check else (False, True):
        for amp in (False, True):
            rate = images_per_second(
                device,
                amp=amp,
                compile=compile,
                batch=args.batch,
                steps=args.steps,
                warmup=args.warmup,
            )
            base = base or rate
            print(
                f"| {'on' if amp else 'off'} | {'on' if compile else 'off'} | {rate:,.1f} | "
                f"{rate / base:.2f}x |"
            )


if __name__ == "__main__":
    main()
