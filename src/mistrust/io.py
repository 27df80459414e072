"""Atomic file writes: a crash never leaves a half-written artifact behind."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; artifacts are for sharing
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    _atomic(path, lambda p: p.write_text(text))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic(path, lambda p: p.write_bytes(data))


def atomic_savez(path: Path, **arrays: Any) -> None:
    def write(p: Path) -> None:
        with open(p, "wb") as fh:
            np.savez(fh, **arrays)

    _atomic(path, write)


def atomic_torch_save(path: Path, obj: Any) -> None:
    import torch

    def write(p: Path) -> None:
        with open(p, "wb") as fh:
            torch.save(obj, fh)

    _atomic(path, write)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` (no pickles)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@contextmanager
def exclusive(path: Path, *, what: str = "") -> Iterator[None]:
    """Hold an exclusive advisory lock (``flock``) on ``path`` for the block.

    ``path`` is a directory (created if missing; the lock is on the directory
    itself, so nothing is added to it) or a lock file (created). A second process
    asking for the same lock logs a warning and waits until the first releases
    it, by leaving the block or by dying: the kernel drops the lock of a killed
    process, so a stale lock cannot block later runs. Where ``fcntl`` does not
    exist (Windows) nothing is locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = Path(path)
    if path.suffix == ".lock":
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
    else:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("waiting for another process using %s to finish", what or path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:  # a file system without flock (some network mounts)
            log.debug("cannot lock %s (%s); continuing without a lock", path, exc)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class _Forward(logging.Handler):
    """Hands a record to the root logger's handlers, as propagation would."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger().handle(record)


@contextmanager
def log_file(path: Path) -> Iterator[None]:
    """Every record of ``mistrust`` (DEBUG up) appended to ``path`` while the block runs,
    in the format of the command line's ``log.txt``; nothing more where a handler already
    writes there (the command line set one up), so no line is written twice.

    The program's own handlers see what they saw before: records below the ``mistrust``
    logger's former level go to the file alone.
    """
    target = os.path.abspath(path)  # as logging.FileHandler stores its file
    logger = logging.getLogger("mistrust")
    if any(
        isinstance(h, logging.FileHandler) and h.baseFilename == target
        for h in (*logging.getLogger().handlers, *logger.handlers)
    ):
        yield
        return
    handler = logging.FileHandler(target)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    level, propagate = logger.level, logger.propagate
    forward = _Forward(logger.getEffectiveLevel())
    logger.addHandler(handler)
    if propagate:
        logger.addHandler(forward)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield
    finally:
        logger.setLevel(level)
        logger.propagate = propagate
        for h in (handler, forward):
            logger.removeHandler(h)
        handler.close()
