"""Temporaries of one run, kept in the work directory (never in the output folder), and the
removal of those a killed run left behind.

A run's scratch folder is ``<work_dir>/.tmp/<session>-<pid>-<random>/`` (``.tmp`` cannot be a
session id, which starts with a letter or digit). It holds a ``.lock`` file that the run keeps
locked (``flock``) while it lives: at the next start, a folder whose lock can be taken belongs to a
dead run (SIGKILL, power loss) and is removed. The lock, not the pid, says whether a run is alive,
so containers that share a host name or reuse pids cannot fool it.

The finished audiobook reaches its final name by :func:`move_into_place`: a rename when the work
directory and the output folder share a file system; otherwise a copy to a hidden, locked
``.ebook2audio-<pid>-<random>.partial`` file in the output folder, renamed over the final name once
complete (removed on any failure or interrupt; a killed run's is removed by :func:`sweep_output_dir`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import logging
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

SCRATCH_ROOT = ".tmp"  # under the work directory
LOCK_NAME = ".lock"
PARTIAL_GLOB = ".ebook2audio-*.partial"
STALE_AFTER = 10.0  # seconds: a lock file younger than this may still be about to be locked


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _age(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_mtime
    except OSError:
        return 0.0


def sweep_stale(root: Path, *, stale_after: float = STALE_AFTER) -> list[Path]:
    """Remove the scratch folders under ``root`` whose run is dead (their lock is free); the removed."""
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    now = time.time()
    for d in entries:
        if not d.is_dir() or d.is_symlink():
            continue
        lock = d / LOCK_NAME
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            if _age(d, now) >= max(stale_after, 60.0):  # a folder whose run died before locking it
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
            continue
        except OSError:
            continue
        try:
            if _age(lock, now) >= stale_after and _try_lock(fd):
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
        finally:
            os.close(fd)
    for d in removed:
        log.info("removed the temporaries of an interrupted run: %s", d)
    return removed


@dataclass
class Scratch:
    """This run's scratch folder, locked while it lives; ``close()`` removes it."""

    path: Path
    _fd: int = field(repr=False)

    @classmethod
    def open(cls, work_dir: Path, session: str) -> Scratch:
        root = Path(work_dir) / SCRATCH_ROOT
        for attempt in range(3):
            root.mkdir(parents=True, exist_ok=True)
            if attempt == 0:
                sweep_stale(root)
            try:
                path = Path(tempfile.mkdtemp(prefix=f"{session}-{os.getpid()}-", dir=root))
                break
            except FileNotFoundError:  # another run removed the empty root meanwhile
                continue
        else:
            path = Path(tempfile.mkdtemp(prefix=f"{session}-{os.getpid()}-", dir=root))
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        _try_lock(fd)
        return cls(path, fd)

    def close(self) -> None:
        if self._fd < 0:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._fd)
        self._fd = -1
        with contextlib.suppress(OSError):  # the root too, when no other run uses it
            self.path.parent.rmdir()

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def move_into_place(src: Path, final: Path) -> None:
    """Move ``src`` (in the work directory) to ``final`` atomically: nobody ever sees a partial file
    under the final name. Raises OSError."""
    try:
        os.replace(src, final)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    partial = final.with_name(f".ebook2audio-{os.getpid()}-{secrets.token_hex(4)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        _try_lock(fd)  # alive: the next run's sweep leaves it alone
        with open(src, "rb") as fh_in, os.fdopen(os.dup(fd), "wb") as fh_out:
            shutil.copyfileobj(fh_in, fh_out, 1 << 20)
            fh_out.flush()
            os.fsync(fh_out.fileno())
        os.replace(partial, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(src)


def sweep_output_dir(out_dir: Path, stem: str) -> list[Path]:
    """Remove from the output folder what killed runs left: unlocked ``.ebook2audio-*.partial``
    copies, and the hidden temporaries older versions wrote beside the output (``.STEM.<hex>.part.EXT``
    files and ``.STEM.pieces-*`` folders)."""
    removed: list[Path] = []
    now = time.time()
    for p in out_dir.glob(PARTIAL_GLOB):
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        try:
            if _age(p, now) >= STALE_AFTER and _try_lock(fd):
                with contextlib.suppress(OSError):
                    p.unlink()
                    removed.append(p)
        finally:
            os.close(fd)
    legacy = glob.escape(f".{stem}")
    for p in [*out_dir.glob(f"{legacy}.*.part.*"), *out_dir.glob(f"{legacy}.pieces-*")]:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
        removed.append(p)
    for p in removed:
        log.info("removed a temporary file of an interrupted run: %s", p)
    return removed
