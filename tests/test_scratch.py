"""The run's scratch folder in the work directory, the sweep of killed runs' temporaries, and the
atomic move of a finished file into the output folder."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ebook2audio import scratch
from ebook2audio.scratch import SCRATCH_ROOT, Scratch, move_into_place, sweep_output_dir, sweep_stale


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_a_live_runs_folder_is_kept_and_removed_when_it_closes(tmp_path: Path) -> None:
    with Scratch.open(tmp_path, "sess") as mine:
        assert mine.path.parent == tmp_path / SCRATCH_ROOT and mine.path.name.startswith(f"sess-{os.getpid()}-")
        (mine.path / "piece.aac").write_bytes(b"x")
        _age(mine.path / ".lock", 3600)
        assert sweep_stale(tmp_path / SCRATCH_ROOT) == []  # locked: its run is alive
        assert (mine.path / "piece.aac").exists()
    assert not mine.path.exists()


def test_a_killed_runs_folder_is_removed_at_the_next_start(tmp_path: Path) -> None:
    # a real process takes its scratch folder, then dies by SIGKILL holding the lock
    code = (
        "import os, sys, signal; from pathlib import Path; from ebook2audio.scratch import Scratch; "
        "s = Scratch.open(Path(sys.argv[1]), 'dead'); (s.path / 'x.part.m4b').write_bytes(b'x' * 1000); "
        "print(s.path, flush=True); os.kill(os.getpid(), signal.SIGKILL)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    dead = Path(done.stdout.strip())
    assert dead.is_dir() and (dead / "x.part.m4b").exists()
    _age(dead / ".lock", 60)
    with Scratch.open(tmp_path, "next") as mine:
        assert not dead.exists()
        assert [p.name for p in (tmp_path / SCRATCH_ROOT).iterdir()] == [mine.path.name]


def test_a_folder_without_a_lock_is_removed_only_when_old(tmp_path: Path) -> None:
    root = tmp_path / SCRATCH_ROOT
    young, old = root / "a-1-x", root / "b-2-y"
    for d in (young, old):
        d.mkdir(parents=True)
    _age(old, 3600)
    assert sweep_stale(root) == [old]
    assert young.exists()


def test_move_into_place_copies_across_file_systems_without_a_visible_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "work" / "a.part.m4b"
    src.parent.mkdir()
    src.write_bytes(b"audio" * 1000)
    out = tmp_path / "out"
    out.mkdir()
    (out / "book.m4b").write_bytes(b"old")
    real_replace = os.replace

    def replace(a: str | Path, b: str | Path) -> None:
        if Path(a).parent != Path(b).parent:  # the work dir is "another file system"
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(a, b)

    monkeypatch.setattr(scratch.os, "replace", replace)
    move_into_place(src, out / "book.m4b")
    assert (out / "book.m4b").read_bytes() == b"audio" * 1000
    assert sorted(p.name for p in out.iterdir()) == ["book.m4b"]
    assert not src.exists()


def test_a_failed_cross_device_copy_leaves_no_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "a.part.mp3"
    src.write_bytes(b"audio")
    out = tmp_path / "out"
    out.mkdir()

    def replace(a: str | Path, b: str | Path) -> None:
        raise OSError(errno.EXDEV if Path(a) == src else errno.EIO, "nope")

    monkeypatch.setattr(scratch.os, "replace", replace)
    with pytest.raises(OSError):
        move_into_place(src, out / "book.mp3")
    assert list(out.iterdir()) == []


def test_sweep_output_dir_removes_dead_partials_and_old_style_temporaries(tmp_path: Path) -> None:
    dead = tmp_path / ".ebook2audio-123-abcd.partial"
    dead.write_bytes(b"x")
    _age(dead, 60)
    legacy = [tmp_path / ".Book.1a2b3c4d.part.m4b", tmp_path / ".Book.1a2b3c4d.part.srt"]
    for p in legacy:
        p.write_bytes(b"x")
    pieces = tmp_path / ".Book.pieces-xyz"
    pieces.mkdir()
    (pieces / "00000.aac").write_bytes(b"x")
    keep = [tmp_path / "Book.m4b", tmp_path / ".Other.1a2b3c4d.part.m4b", tmp_path / ".hidden"]
    for p in keep:
        p.write_bytes(b"x")
    removed = sweep_output_dir(tmp_path, "Book")
    assert sorted(removed) == sorted([dead, *legacy, pieces])
    assert sorted(tmp_path.iterdir()) == sorted(keep)
