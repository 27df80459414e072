"""Command line: mistrust run | audit | check | compare | diff | report | datasets | presets."""

from __future__ import annotations

import argparse
import atexit
import errno
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mistrust.errors import MistrustError
from mistrust.runtime.paths import RunPaths

if TYPE_CHECKING:  # the CLI imports the package lazily, so that --help stays fast
    from mistrust.config import Config

log = logging.getLogger("mistrust.cli")

#: What the CLI reports as one line with exit status 2 (a traceback only with --debug):
#: every MistrustError (ConfigError, DataError, CheckpointError, WeightsError,
#: OutputsError, InputError) and the OS errors a user fixes on their side. Anything
#: else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    MistrustError,
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def is_user_error(exc: BaseException) -> bool:
    return isinstance(exc, USER_ERRORS) or (isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS)


def _setup_logging(run_dir: Path | None, verbose: bool) -> None:
    import warnings

    # laplace-torch scripts a helper with torch.jit, which newer torch flags as deprecated
    warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")
    root = logging.getLogger()
    # every record of ours; other libraries' from INFO up (matplotlib's font search alone
    # wrote 12,000 DEBUG lines, 3.5 MB, into the default run's log.txt)
    root.setLevel(logging.INFO)
    logging.getLogger("mistrust").setLevel(logging.DEBUG)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    console.setFormatter(logging.Formatter("%(message)s"))
    console.addFilter(lambda r: r.name.startswith("mistrust") or r.levelno >= logging.WARNING)
    _add_handler(root, console)
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(RunPaths(run_dir).log)
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        _add_handler(root, fh)


_HANDLERS: list[logging.Handler] = []


def _add_handler(root: logging.Logger, handler: logging.Handler) -> None:
    root.addHandler(handler)
    _HANDLERS.append(handler)


def _remove_handlers() -> None:
    """Detach what ``_setup_logging`` attached, so ``main()`` can be called again in-process
    without logging into an earlier run's log.txt."""
    root = logging.getLogger()
    while _HANDLERS:
        handler = _HANDLERS.pop()
        root.removeHandler(handler)
        handler.close()


def _config(args: argparse.Namespace) -> Config:
    """The config named by ``run`` / ``check`` arguments, with their overrides."""
    from mistrust.config import load_config

    overrides = list(args.set or [])
    if args.device:
        overrides.append(f"device={args.device}")
    if args.data_root:
        overrides.append(f"data.root={args.data_root}")
    if getattr(args, "seeds", None) is not None:
        overrides.append(f"seeds={args.seeds}")
    return load_config(args.config or args.preset, overrides)


def _cmd_run(args: argparse.Namespace) -> int:
    from mistrust.study.plan import check_plan

    cfg = _config(args)

    check_plan(cfg)  # nothing infeasible starts training
    out = Path(args.out or Path("runs") / cfg.name)
    _setup_logging(out, args.verbose)
    from mistrust.present.summary import print_summary
    from mistrust.study.run import run_experiment

    # bars only where they redraw in place; elsewhere (a log file, CI, a pipe) each stage
    # prints one line with its time
    bars = not args.quiet and sys.stderr.isatty()
    if cfg.seeds > 1:
        from mistrust.present.summary import print_seeds_summary
        from mistrust.study.run import run_seeds

        results = run_seeds(cfg, out, progress=bars, report=not args.no_report)
        print_seeds_summary(out, seeds=[r.run_dir.name for r in results])
        return 0
    result = run_experiment(cfg, out, progress=bars, report=not args.no_report)
    print_summary(
        result, variants=cfg.variants.names, attacks=cfg.attacks.names, report=not args.no_report
    )
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from mistrust.config.own import load_audit_config

    overrides = list(args.set or [])
    # flags name files relative to where the command runs (config paths: to the config)
    if args.model:
        overrides.append(f"target.model={Path(args.model).resolve()}")
    if (args.factory or args.weights) and not args.model:
        overrides.append("target.model=null")  # a factory and weights replace a .pt2
    if args.factory:
        overrides.append(f"target.factory={args.factory}")
    if args.weights:
        overrides.append(f"target.weights={Path(args.weights).resolve()}")
    overrides += [f"target.factory_args.{kv}" for kv in args.factory_arg or []]
    if args.device:
        overrides.append(f"device={args.device}")
    if args.data_root:
        overrides.append(f"data_root={args.data_root}")
    cfg = load_audit_config(args.config, overrides)
    out = Path(args.out or Path("runs") / cfg.name)
    _setup_logging(out, args.verbose)
    from mistrust.own.run import run_audit
    from mistrust.present.summary import print_summary

    bars = not args.quiet and sys.stderr.isatty()
    result = run_audit(cfg, out, progress=bars, report=not args.no_report)
    print_summary(
        result, variants=cfg.variants.names, attacks=cfg.attacks.names, report=not args.no_report
    )
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from mistrust.study.plan import check_plan

    cfg = _config(args)
    _setup_logging(None, verbose=False)
    print("\n".join(check_plan(cfg).lines()))
    print("plan ok: nothing was trained")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from mistrust.present.compare import compare_run

    for path in compare_run(Path(args.run_dir)):
        print(f"wrote {path}")
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from mistrust.present.tables.diff import diff_runs

    text, written = diff_runs(
        Path(args.run_a), Path(args.run_b), Path(args.out) if args.out else None
    )
    print(text)
    for path in written:
        print(f"wrote {path}")
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from mistrust.data.sources import get_source, load_source, source_names

    print(f"{'dataset':<15} {'shape':<12} {'classes':>7}  {'local':<5}  source")
    for name in source_names():
        spec = get_source(name)
        try:
            load_source(name, split="test", root=args.data_root, download=False, size=8)
            here = "yes"
        except Exception:  # noqa: BLE001 - any failure means "not available here"
            here = "no"
        shape = f"{spec.channels}x{spec.size}x{spec.size}"
        print(f"{name:<15} {shape:<12} {spec.num_classes or '-':>7}  {here:<5}  {spec.help}")
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    from mistrust.config import load_config, preset_names

    for name in preset_names():
        cfg = load_config(name)
        print(
            f"{name:<30} {cfg.data.dataset:<14} {cfg.model.arch:<22} "
            f"variants={','.join(cfg.variants.names)}"
        )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from mistrust.present.report import build_report

    path = build_report(Path(args.run_dir))
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from mistrust.config import preset_names

    p = argparse.ArgumentParser(prog="mistrust", description=__doc__)
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train, attack and audit into a run directory")
    r.add_argument("config", nargs="?", help="a YAML config file (may name a base 'preset')")
    r.add_argument("--preset", default="default", choices=preset_names())
    r.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=5 (repeatable)",
    )
    r.add_argument("--out", help="run directory (default runs/<config name>)")
    r.add_argument(
        "--seeds",
        type=int,
        metavar="K",
        help="repeat the study with seeds seed, seed+1, ..., each in RUN/seed-<seed>, "
        "then mean ± sd of every metric (RUN/results_seeds.csv); config key 'seeds'",
    )
    r.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    r.add_argument("--data-root", help="folder holding the datasets")
    r.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars, one line per stage (the default when stderr is not a terminal)",
    )
    r.add_argument(
        "--verbose", action="store_true", help="debug messages on the console, every epoch"
    )
    r.add_argument(
        "--no-report",
        action="store_true",
        help="skip report.html (build it later with: mistrust report RUN_DIR)",
    )
    r.set_defaults(func=_cmd_run)
    a = sub.add_parser(
        "audit",
        help="audit a model trained elsewhere (.pt2, factory + weights) or its saved outputs",
    )
    a.add_argument("config", help="an audit YAML file (README: 'Audit your own model')")
    a.add_argument("--out", help="run directory (default runs/<config name>)")
    a.add_argument("--set", action="append", metavar="KEY=VALUE", help="as for run")
    a.add_argument("--model", help="the target: a torch.export program (.pt2)")
    a.add_argument(
        "--factory",
        help="the target's factory, package.module:function (replaces a target.model "
        "of the config)",
    )
    a.add_argument(
        "--weights", help="the target's state dict (with --factory, or the config's factory)"
    )
    a.add_argument(
        "--factory-arg",
        action="append",
        metavar="KEY=VALUE",
        help="a keyword argument of the factory, e.g. --factory-arg num_classes=10 "
        "(repeatable; target.factory_args)",
    )
    a.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    a.add_argument("--data-root", help="folder holding registry datasets")
    a.add_argument("--quiet", action="store_true", help="no progress bars")
    a.add_argument("--verbose", action="store_true", help="debug messages on the console")
    a.add_argument("--no-report", action="store_true", help="skip report.html")
    a.set_defaults(func=_cmd_audit)
    c = sub.add_parser("check", help="check a run's plan (data, models, variants) without training")
    c.add_argument("config", nargs="?", help="a YAML config file (may name a base 'preset')")
    c.add_argument("--preset", default="default", choices=preset_names())
    c.add_argument("--set", action="append", metavar="KEY=VALUE", help="as for run")
    c.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    c.add_argument("--data-root", help="folder holding the datasets")
    c.set_defaults(func=_cmd_check)
    cmp = sub.add_parser("compare", help="put a paper-preset run's numbers beside the paper's")
    cmp.add_argument("run_dir")
    cmp.set_defaults(func=_cmd_compare)
    df = sub.add_parser(
        "diff",
        help="the values of two run directories that moved beyond their 95 %% intervals, "
        "the verdicts that changed, what only one run has",
    )
    df.add_argument("run_a")
    df.add_argument("run_b")
    df.add_argument("--out", help="where diff.md and diff.csv go (default RUN_B)")
    df.set_defaults(func=_cmd_diff)
    d = sub.add_parser("datasets", help="list dataset sources and whether they are available")
    d.add_argument("--data-root")
    d.set_defaults(func=_cmd_datasets)
    s = sub.add_parser("presets", help="list the shipped presets")
    s.set_defaults(func=_cmd_presets)
    rep = sub.add_parser("report", help="rebuild report.html from a run directory")
    rep.add_argument("run_dir")
    rep.set_defaults(func=_cmd_report)
    return p


#: ``MISTRUST_MALLOC=default`` leaves glibc's allocator as it is
MALLOC_ENV = "MISTRUST_MALLOC"
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>


def tune_malloc() -> bool:
    """Make glibc keep freed memory for reuse; True if it took effect.

    PyTorch frees and reallocates multi-MB activations every step; by default glibc
    hands blocks over 128 KiB (a threshold that adapts) back to the OS and
    page-faults them in again. Serving up to 32 MiB from the heap and trimming it
    only above 1 GiB free made the default preset 1.13x faster with identical
    results (BENCHMARKS.md); freed memory up to 1 GiB stays with the process.
    ``mallopt`` at start-up does what ``MALLOC_*_`` variables do (glibc reads those
    once, when the process starts). Process-wide, so only the command line does it.
    """
    if os.environ.get(MALLOC_ENV, "").lower() == "default" or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 * 2**20) and mallopt(_M_TRIM_THRESHOLD, 2**30))


def sleeping_threads() -> None:
    """Have idle OpenMP threads sleep at once instead of spinning first.

    With two torch threads on two cores, a spinning thread takes the core its partner
    needs as soon as another process runs: the default preset's cached rerun took 45 s
    with ``ACTIVE`` and 26 s with ``PASSIVE`` beside a test suite (load 3); given the
    machine, ``PASSIVE`` and the default were within the noise (BENCHMARKS.md).
    OpenMP reads ``OMP_WAIT_POLICY`` once, when torch loads, so only the command line
    (which imports torch later) sets it; a value the user set is kept.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class EndWithoutTeardown:
    """Ends the process once the exit handlers have run, skipping Python's teardown: after
    the default preset it spent 1.3 s freeing the run's tensors and modules one by one
    (BENCHMARKS.md). Every file is written and closed by then.

    It registers itself with :mod:`atexit` before the command runs, and ``sys.exit`` runs
    the handlers last registered first: every handler that the command's imports and work
    registered (multiprocessing's, weakref finalizers, matplotlib's, Ray's) has run when
    it is called, and the threads have been joined before them. Of those registered
    before it, at import, only logging's is left; it calls :func:`logging.shutdown`
    itself. Without a ``status`` (the command raised) Python ends the process as usual.
    """

    def __init__(self) -> None:
        self.status: int | None = None
        atexit.register(self)

    def __call__(self) -> None:
        if self.status is None:
            return
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more to say
                pass
        os._exit(self.status)


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # a command-line start, not a program calling main() in-process
        tune_malloc()
        sleeping_threads()
        end = EndWithoutTeardown()
        end.status = _main(None)
        sys.exit(end.status)  # the exit handlers, then ``end``
    return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("mistrust: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`mistrust presets | head -1`)
        return 141  # 128 + SIGPIPE, as a shell reports it
    except Exception as exc:
        if args.debug or not is_user_error(exc):
            raise
        message = " ".join(str(exc).split())  # one line, whatever the message holds
        log.debug("error: %s", message)  # into log.txt; the console shows it below
        print(f"mistrust: error: {message}", file=sys.stderr)
        return 2
    finally:
        _remove_handlers()


if __name__ == "__main__":
    sys.exit(main())
