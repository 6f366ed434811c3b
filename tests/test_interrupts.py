"""SIGINT/SIGTERM become Interrupted (a KeyboardInterrupt) with the right exit code and message."""

from __future__ import annotations

import os
import signal

import pytest

from ebook2audio.interrupts import Interrupted, note_progress, trap


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_inside_trap_raises_interrupted_and_handlers_are_restored(sig: int, code: int) -> None:
    before = signal.getsignal(sig)
    with pytest.raises(Interrupted) as caught, trap() as state:
        os.kill(os.getpid(), sig)
        for _ in range(1000):  # the handler runs between bytecodes
            pass
    assert isinstance(caught.value, KeyboardInterrupt)
    assert caught.value.exit_code == code and state.signum == sig
    assert signal.getsignal(sig) == before


def test_the_message_says_what_is_kept() -> None:
    exc = Interrupted(signal.SIGTERM)
    assert "rerun the same command" in exc.message()
    note_progress(exc, 12, 30)
    note_progress(exc, 99, 99)  # the first (innermost) count stands
    assert exc.message() == "interrupted: 12 of 30 sentences kept; rerun the same command to resume"
    other = ValueError("x")
    note_progress(other, 1, 2)  # no-op on anything else
    assert not hasattr(other, "kept")


def test_an_interrupt_inside_a_native_call_is_raised_when_it_returns() -> None:
    from ebook2audio.interrupts import deferred_interrupts

    reached = []
    with pytest.raises(Interrupted), trap():
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                pass
            reached.append("end of the native call")  # the handler did not raise in here
        reached.append("after")  # pragma: no cover - never reached
    assert reached == ["end of the native call"]
