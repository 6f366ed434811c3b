"""Helpers for the storage tests: a snapshot of a directory tree, and acting as another user."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

NOBODY = 65534

#: Prefixes delete_prefix must refuse in every backend: the whole storage, or outside a job folder.
DANGEROUS_PREFIXES = ["", "/", ".", "./", "..", "../", "/etc", "/tmp/", "../x", "a/..", "a/../..", "./a",
                      "a/./b", "a//b", "sess/../other", "//", "a\0b"]  # fmt: skip


def tree(root: Path) -> dict[str, tuple[str, int, str]]:
    """{relative path: (kind, mode, sha256 of a file's bytes)} of everything under ``root``."""
    out: dict[str, tuple[str, int, str]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath, name)
            st = p.lstat()
            kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if kind == "file" else ""
            out[p.relative_to(root).as_posix()] = (kind, stat.S_IMODE(st.st_mode), digest)
    return out


def is_root() -> bool:
    return os.geteuid() == 0


@contextlib.contextmanager
def as_nobody() -> Iterator[None]:
    """Run the block with effective uid/gid ``nobody`` (root only; restored afterwards)."""
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@contextlib.contextmanager
def shared_dir() -> Iterator[Path]:
    """A fresh directory that other users can reach (pytest's tmp_path is private to its user)."""
    path = Path(tempfile.mkdtemp(prefix="e2a-shared-"))
    try:
        path.chmod(0o755)
        yield path
    finally:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
