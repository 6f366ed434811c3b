"""SIGINT and SIGTERM during a conversion: stop cleanly, keep the work, say how to resume.

:func:`trap` (a context manager, used by the CLI around ``convert``) turns the first SIGINT or
SIGTERM into :class:`Interrupted` raised in the main thread, so every ``finally`` and ``except
BaseException`` on the way up runs: the process pool and the ffmpeg encoders are stopped and the
temporaries removed. The pipeline adds how many sentences are kept (:func:`note_progress`); the CLI
prints :meth:`Interrupted.message` and exits 128 + the signal number (130 for SIGINT, 143 for
SIGTERM). A second signal while cleaning up ends the process at once (the next run removes what is
left: see :mod:`ebook2audio.scratch`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class _Deferral:
    """Blocks of main-thread code that run a native library calling back into Python (see
    :func:`deferred_interrupts`). Process-wide, like the signal handlers it works with."""

    depth: int = 0
    pending: BaseException | None = None


_DEFERRAL = _Deferral()


class Interrupted(KeyboardInterrupt):
    """The conversion was stopped by a signal (a KeyboardInterrupt, so cleanup code sees it as one)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.kept: int | None = None  # sentences whose audio is kept in the work directory
        self.total: int | None = None  # sentences in the plan

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def message(self) -> str:
        if self.kept is not None and self.total is not None:
            return f"interrupted: {self.kept} of {self.total} sentences kept; rerun the same command to resume"
        return "interrupted: the work done so far is kept; rerun the same command to resume"


def note_progress(exc: BaseException, kept: int, total: int) -> None:
    """Record on an interrupt how much work is kept (no-op for other exceptions)."""
    if isinstance(exc, Interrupted) and exc.kept is None:
        exc.kept, exc.total = kept, total


@dataclass
class Trap:
    """What :func:`trap` saw: the first signal's number (None: none came)."""

    signum: int | None = None
    _previous: dict[int, Any] = field(default_factory=dict)

    def handler(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:  # a second signal: stop now, without cleanup
            print(f"interrupted again ({signal.Signals(signum).name}): stopping at once", file=sys.stderr)
            os._exit(128 + self.signum)
        self.signum = signum
        if _DEFERRAL.depth:  # inside a native call: raised when it returns
            _DEFERRAL.pending = Interrupted(signum)
            return
        raise Interrupted(signum)

    def interrupted(self) -> Interrupted | None:
        """An Interrupted for the signal that came, if one did (to report an error it caused)."""
        return None if self.signum is None else Interrupted(self.signum)


@contextlib.contextmanager
def trap() -> Iterator[Trap]:
    """Turn SIGINT/SIGTERM into Interrupted in the main thread while the block runs (a no-op
    outside the main thread); the previous handlers are restored afterwards."""
    state = Trap()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    for sig in SIGNALS:
        state._previous[sig] = signal.signal(sig, state.handler)
    try:
        yield state
    finally:
        for sig, previous in state._previous.items():
            signal.signal(sig, previous)


def raise_soon(exc: BaseException) -> None:
    """For a signal handler: raise ``exc`` now, or, inside :func:`deferred_interrupts`, when the
    native call in progress returns."""
    if _DEFERRAL.depth:
        _DEFERRAL.pending = exc
        return
    raise exc


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Around a call into a native library that calls back into Python (espeak-ng's audio callback):
    an exception raised by a signal handler inside the callback cannot cross the C code (ctypes
    prints and drops it, and the interrupt would be lost), so an interrupt that comes meanwhile is
    raised when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _DEFERRAL.depth += 1
    try:
        yield
    finally:
        _DEFERRAL.depth -= 1
        pending = _DEFERRAL.pending
        if _DEFERRAL.depth == 0 and pending is not None:
            _DEFERRAL.pending = None
            raise pending


def ignore_in_child() -> None:
    """For pool processes: a terminal's Ctrl-C reaches the whole process group, but only the parent
    decides how to stop (it stops its children itself)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
