"""Run the real CLI on hostile input, under a memory cap, and check what a hostile input must never do.

Memory bound (chosen and enforced here): every `inspect` of a hostile input runs with an address-space
limit of MEMORY_CAP (3 GiB: a runaway allocation fails inside the child instead of hurting the
machine) and its resident memory, sampled every few milliseconds with psutil, must stay under
PEAK_RSS_LIMIT (500 MB). The worst case measured in this suite is about 330 MB (a 15 MB one-line text
with an emoji, stored by Python at 4 bytes a character).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

MEMORY_CAP = 3 * 1024**3
PEAK_RSS_LIMIT = 500 * 1024**2
INSPECT_TIMEOUT = 60.0  # the slowest case takes about 8 s on one core

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER = 1, 2, 3


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    peak_rss: int
    seconds: float

    @property
    def last_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def json(self) -> dict:
        return json.loads(self.stdout)


def cli_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBOOK2AUDIO_") or k == "EBOOK2AUDIO_VOICES_URL"}
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    env["EBOOK2AUDIO_VOICES_DIR"] = str(tmp / "voices")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def drop_root_powers() -> None:
    """For a child of root: lose the capabilities that ignore file permissions (so a read-only folder
    is read-only for it too). Raises OSError when not allowed."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_cli(
    args: list[str],
    tmp: Path,
    *,
    cwd: Path,
    timeout: float = INSPECT_TIMEOUT,
    cap_memory: bool = True,
    preexec: Callable[[], None] | None = None,
) -> Run:
    """``python -m ebook2audio ARGS`` with its peak RSS measured; a timeout fails the test (a hang)."""

    def setup() -> None:
        if cap_memory:
            _cap_memory()
        if preexec is not None:
            preexec()

    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ebook2audio", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=cwd,
        env=cli_env(tmp),
        preexec_fn=setup,
    )
    peak = 0
    watched = psutil.Process(proc.pid)
    out: dict[str, str] = {}  # the pipes are drained in a thread while this one samples the RSS

    def drain() -> None:
        out["stdout"], out["stderr"] = proc.communicate()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    while reader.is_alive():
        with contextlib.suppress(psutil.Error):  # the child may have exited between two checks
            peak = max(peak, watched.memory_info().rss)
        if time.monotonic() - start > timeout:
            proc.kill()
            reader.join()
            raise AssertionError(f"ebook2audio {' '.join(args)} did not finish in {timeout:.0f} s (a hang)")
        reader.join(0.005)
    return Run(proc.returncode, out["stdout"], out["stderr"], peak, time.monotonic() - start)


def snapshot(root: Path, *, skip: tuple[str, ...] = ("cache",)) -> dict[str, int]:
    """Every path under root (links not followed) with its size; ``skip`` names top-level folders."""
    found: dict[str, int] = {}
    for folder, dirs, files in os.walk(root):
        rel_folder = Path(folder).relative_to(root)
        if rel_folder.parts[:1] and rel_folder.parts[0] in skip:
            dirs[:] = []
            continue
        for name in dirs + files:
            rel = rel_folder / name
            if rel.parts[0] not in skip:
                found[str(rel)] = (Path(folder) / name).lstat().st_size
    return found


def assert_user_error(run: Run, needle: str = "") -> None:
    """Exit 2, one line ``error: ...`` last on stderr, no traceback, nothing on stdout."""
    assert run.returncode == 2, (run.returncode, run.stderr[-2000:])
    assert run.last_line.startswith("error: "), run.stderr[-2000:]
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    assert not run.last_line.startswith("error: unexpected "), run.last_line  # an uncaught exception
    if needle:
        assert needle.lower() in run.last_line.lower(), run.last_line
