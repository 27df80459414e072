"""Run the whole benchmark suite with one command and write its results into BENCHMARKS.md.

Usage::

    python benchmarks/run_all.py                # everything (~15 min on 2 CPU cores)
    python benchmarks/run_all.py --quick        # every script's --quick / small sizes (~4 min)
    python benchmarks/run_all.py --only train art --no-write

Each benchmark runs as its own process (one at a time, so they do not compete
for the cores); its Markdown output goes between the ``run_all`` markers of
BENCHMARKS.md, under a header naming the machine; with ``--only`` the other
benchmarks' last results stay. The hand-written analysis around the markers is
kept. A benchmark whose script is absent (``bench_rmia`` is optional) or that
fails is reported as such and the others still run.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "BENCHMARKS.md"
BEGIN, END = "<!-- run_all:begin -->", "<!-- run_all:end -->"

# name -> (script, full args, quick args)
SUITE: dict[str, tuple[str, list[str], list[str]]] = {
    "train": ("bench_train.py", ["--compare"], ["--quick", "--compare"]),
    "default": ("bench_default.py", [], ["--quick"]),
    "scoring": ("bench_scoring.py", [], ["--rows", "100000"]),
    "rmia": ("bench_rmia.py", [], ["--n", "5000", "--z", "2000"]),
    "laplace": ("bench_laplace.py", [], ["--n-predict", "2000", "--grid-size", "7"]),
    "gan": (
        "bench_gan.py",
        ["--out", "/tmp/mistrust-bench/gan.png"],
        ["--epochs", "2", "--out", "/tmp/mistrust-bench/gan.png"],
    ),
    "scale": ("bench_scale.py", [], ["--sizes", "10000", "100000"]),
    "salem": ("bench_salem.py", [], ["--sizes", "10000", "100000"]),
    "reference-scale": (
        "bench_reference_scale.py",
        [],
        ["--n", "10000", "100000", "--fit-p", "312", "3125"],
    ),
    "blind-scale": ("bench_blind_scale.py", [], ["--sizes", "10000", "100000"]),
    "art": ("bench_art.py", [], ["--quick"]),
    "gpu": ("bench_gpu.py", [], ["--quick"]),
}


def machine() -> str:
    import numpy
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return (
        f"- date: {datetime.now():%Y-%m-%d %H:%M}\n- CPU: {cpu}, {os.cpu_count()} logical cores "
        f"({usable} usable)\n- GPU: {gpu}\n- torch {torch.__version__} "
        f"({torch.get_num_threads()} intra-op threads, {torch.get_num_interop_threads()} inter-op), "
        f"numpy {numpy.__version__}, Python {platform.python_version()}\n"
        f"- 1-min load average at start: {os.getloadavg()[0]:.2f}"
    )


def wait_for_quiet(max_load: float | None, max_wait: float) -> float:
    """Sleep (up to ``max_wait`` s) until the 1-min load average is at most ``max_load``."""
    deadline = time.monotonic() + max_wait
    while max_load is not None and os.getloadavg()[0] > max_load and time.monotonic() < deadline:
        time.sleep(15)
    return os.getloadavg()[0]


def run_one(name: str, quick: bool, max_load: float | None = None, max_wait: float = 180) -> str:
    script, full, small = SUITE[name]
    path = HERE / script
    if not path.is_file():
        return f"_{script} is not in this checkout; skipped._\n"
    load = wait_for_quiet(max_load, max_wait)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(path), *(small if quick else full)], capture_output=True, text=True
    )
    took = time.perf_counter() - t0
    body = proc.stdout.strip()
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        body += f"\n\n**failed (exit {proc.returncode}):**\n\n```\n{tail}\n```"
    cmd = " ".join(["python benchmarks/" + script, *(small if quick else full)])
    return f"`{cmd}` ({took:.0f} s, 1-min load {load:.2f} at start)\n\n{body}\n"


def write(header: str, parts: dict[str, str]) -> None:
    """Put ``header`` and the ``### name`` parts between the markers; parts of benchmarks
    not run this time (``--only``) are kept from the previous write."""
    text = DOC.read_text() if DOC.is_file() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    old, tail = rest.split(END, 1)
    chunks = old.split("<!-- bench:")[1:]
    kept = {c.split(" -->", 1)[0]: "<!-- bench:" + c for c in chunks}
    merged = {name: parts.get(name) or kept.get(name) for name in SUITE}
    body = "\n".join(p.rstrip() + "\n" for p in merged.values() if p)
    DOC.write_text(f"{head}{BEGIN}\n{header}\n{body}\n{END}{tail}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes everywhere")
    ap.add_argument("--only", nargs="+", choices=list(SUITE), help="run only these")
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md")
    ap.add_argument(
        "--max-load", type=float, help="before each benchmark, wait for this 1-min load"
    )
    ap.add_argument("--max-wait", type=float, default=180, help="seconds to wait for --max-load")
    args = ap.parse_args()
    flag = " --quick" if args.quick else ""
    header = f"## Latest `run_all.py{flag}`\n\n{machine()}\n"
    print(header)
    parts = {}
    for name in args.only or list(SUITE):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        stamp = f"{datetime.now():%Y-%m-%d %H:%M}"
        result = run_one(name, args.quick, args.max_load, args.max_wait)
        parts[name] = f"<!-- bench:{name} -->\n### {name}\n\n{stamp}: {result}"
        print(parts[name])
    if not args.no_write:
        write(header, parts)
        print(f"wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
