"""LocalStorage as shared storage (a directory or NFS mount used by several processes and users):
prefixes that could delete the whole storage are refused, files get the umask's modes, permission
errors are permanent, and ``put_bytes_if_absent`` lets exactly one of many concurrent writers win."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import stat
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ebook2audio.errors import InvalidKeyError, StoragePermissionError, TransientError, UserError
from ebook2audio.storage.local import LocalStorage, process_umask
from tests.storage.helpers import DANGEROUS_PREFIXES, as_nobody, is_root, shared_dir, tree


def _populated(root: Path) -> LocalStorage:
    st = LocalStorage(root / "work")
    st.put_bytes("sess/plan.json", b"{}")
    st.put_bytes("sess/chunks/ab/abc.wav", b"RIFF")
    st.put_bytes("sessX/plan.json", b"[]")
    st.put_bytes("other/chunks/cd/cde.wav", b"wav")
    (root / "outside.txt").write_text("keep me")
    return st


@pytest.mark.parametrize("prefix", DANGEROUS_PREFIXES)
def test_delete_prefix_refuses_prefixes_that_leave_a_job(tmp_path: Path, prefix: str) -> None:
    st = _populated(tmp_path)
    before = tree(tmp_path)
    with pytest.raises(InvalidKeyError, match="refusing to delete storage prefix") as err:
        st.delete_prefix(prefix)
    assert "\n" not in str(err.value) and isinstance(err.value, UserError)
    assert not isinstance(err.value, TransientError)  # never retried
    assert tree(tmp_path) == before  # the work directory (and what is beside it) is intact


def test_delete_prefix_deletes_exactly_its_folder(tmp_path: Path) -> None:
    st = _populated(tmp_path)
    st.delete_prefix("sess")  # without the slash: the folder sess, never sessX
    left = ["outside.txt", "work", "work/sessX", "work/sessX/plan.json", "work/other", "work/other/chunks",
            "work/other/chunks/cd", "work/other/chunks/cd/cde.wav"]  # fmt: skip
    assert sorted(tree(tmp_path)) == sorted(left)
    st.delete_prefix("other/chunks/")
    assert not (tmp_path / "work/other/chunks").exists() and (tmp_path / "work/other").is_dir()
    st.delete_prefix("missing/")  # nothing there: nothing to do


def test_delete_prefix_does_not_follow_a_symlinked_folder(tmp_path: Path) -> None:
    st = _populated(tmp_path)
    (tmp_path / "work" / "link").symlink_to(tmp_path / "work" / "other")
    before = tree(tmp_path / "work" / "other")
    st.delete_prefix("link/")
    assert tree(tmp_path / "work" / "other") == before


# -- modes --------------------------------------------------------------------------------------

_WRITE = """
import os, sys
os.umask(int(sys.argv[2], 8))
from ebook2audio.storage.local import LocalStorage
st = LocalStorage(sys.argv[1])
st.put_bytes("sess/plan.json", b"{}")
assert st.put_bytes_if_absent("sess/chunks/ab/abc.wav", b"RIFF....")
"""


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775),
                                                              (0o077, 0o600, 0o700)])  # fmt: skip
def test_files_and_folders_get_the_modes_the_umask_allows(
    tmp_path: Path, umask: int, file_mode: int, dir_mode: int
) -> None:
    """A fresh process with that umask (LocalStorage reads it itself) writes with both write paths."""
    root = tmp_path / "shared"
    subprocess.run([sys.executable, "-c", _WRITE, str(root), oct(umask)], check=True, timeout=60)
    modes = {k: v[1] for k, v in tree(root).items()}
    assert modes == {
        "sess": dir_mode,
        "sess/plan.json": file_mode,
        "sess/chunks": dir_mode,
        "sess/chunks/ab": dir_mode,
        "sess/chunks/ab/abc.wav": file_mode,
    }


def test_process_umask_reads_without_changing_it() -> None:
    old = os.umask(0o027)
    try:
        assert process_umask() == 0o027
        assert process_umask() == 0o027
    finally:
        os.umask(old)


def test_an_explicit_umask_sets_the_file_mode(tmp_path: Path) -> None:
    st = LocalStorage(tmp_path, umask=0o002)
    st.put_bytes("a", b"1")
    assert st.put_bytes_if_absent("b", b"2")
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o664
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o664


@pytest.mark.skipif(not is_root(), reason="needs root to act as another user")
def test_another_user_reads_what_this_one_wrote() -> None:
    """The NFS case of issue 9: coordinator and workers under different users (umask 022 here)."""
    with shared_dir() as root:
        st = LocalStorage(root / "work", umask=0o022)
        st.put_bytes("sess/plan.json", b'{"plan": 1}')
        st.put_bytes_if_absent("sess/chunks/ab/abc.wav", b"RIFF")
        fd, private = tempfile.mkstemp(dir=root / "work" / "sess")  # what put_bytes made before: 0600
        os.close(fd)
        with as_nobody():
            other = LocalStorage(root / "work")
            assert other.get_bytes("sess/plan.json") == b'{"plan": 1}'
            assert other.get_head("sess/chunks/ab/abc.wav", 4) == b"RIFF"
            with pytest.raises(StoragePermissionError) as err:
                other.get_bytes(f"sess/{Path(private).name}")
        assert private in str(err.value) and "\n" not in str(err.value)


# -- permission errors are permanent -------------------------------------------------------------


@pytest.mark.skipif(not is_root(), reason="needs root to act as another user")
def test_a_write_refused_by_the_file_system_is_a_permanent_error_naming_the_path() -> None:
    from ebook2audio.executors.celery_app import retry_exceptions

    with shared_dir() as root:
        LocalStorage(root / "work").put_bytes("sess/plan.json", b"{}")  # root's folder, 0755
        before = tree(root)
        with as_nobody():
            st = LocalStorage(root / "work")
            with pytest.raises(StoragePermissionError) as write:
                st.put_bytes("sess/chunks/ab/abc.wav", b"x")
            with pytest.raises(StoragePermissionError):
                st.put_bytes_if_absent("sess/chunks/ab/abc.wav", b"x")
            with pytest.raises(StoragePermissionError):
                st.delete("sess/plan.json")
        assert tree(root) == before  # and no temp file left behind
    message = str(write.value)
    assert str(root / "work" / "sess" / "chunks") in message and "\n" not in message
    assert isinstance(write.value, UserError) and not isinstance(write.value, retry_exceptions())


@pytest.mark.skipif(is_root(), reason="root ignores file modes (covered by the test as nobody)")
def test_a_write_refused_by_file_modes_is_a_permanent_error(tmp_path: Path) -> None:
    st = LocalStorage(tmp_path / "work")
    st.put_bytes("sess/plan.json", b"{}")
    (tmp_path / "work" / "sess").chmod(0o555)
    try:
        with pytest.raises(StoragePermissionError, match="sess"):
            st.put_bytes("sess/x", b"1")
    finally:
        (tmp_path / "work" / "sess").chmod(0o755)


# -- first writer wins ----------------------------------------------------------------------------


def _blob(i: int, n: int = 300_000) -> bytes:
    return bytes([i]) * n


def test_concurrent_writers_in_threads_exactly_one_wins(tmp_path: Path) -> None:
    st = LocalStorage(tmp_path)
    writers = 16
    candidates = {_blob(i) for i in range(writers)}
    barrier = threading.Barrier(writers + 1)
    seen: list[bytes] = []
    stop = threading.Event()

    def read() -> None:
        barrier.wait()
        while not stop.is_set():
            with contextlib.suppress(FileNotFoundError):
                seen.append(st.get_bytes("s/chunks/ab/abc.wav"))

    def write(i: int) -> bool:
        barrier.wait()
        return st.put_bytes_if_absent("s/chunks/ab/abc.wav", _blob(i))

    reader = threading.Thread(target=read)
    reader.start()
    with ThreadPoolExecutor(writers) as pool:
        won = list(pool.map(write, range(writers)))
    stop.set()
    reader.join()
    assert won.count(True) == 1
    final = st.get_bytes("s/chunks/ab/abc.wav")
    assert final == _blob(won.index(True))
    assert set(seen) <= {final} and all(b in candidates for b in seen)  # whole blobs only: the winner's
    assert [p.name for p in (tmp_path / "s/chunks/ab").iterdir()] == ["abc.wav"]  # no temp file left
    # A later writer loses too, and leaves the blob alone.
    assert st.put_bytes_if_absent("s/chunks/ab/abc.wav", b"late") is False
    assert st.get_bytes("s/chunks/ab/abc.wav") == final


def _process_writer(root: str, i: int, barrier: object) -> bool:
    barrier.wait()  # type: ignore[attr-defined]
    return LocalStorage(root).put_bytes_if_absent("s/k.wav", _blob(i, 1_000_000))


def test_concurrent_writers_in_processes_exactly_one_wins(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    n = 6
    barrier = ctx.Manager().Barrier(n)
    with ctx.Pool(n) as pool:
        won = pool.starmap(_process_writer, [(str(tmp_path), i, barrier) for i in range(n)])
    assert won.count(True) == 1
    assert (tmp_path / "s/k.wav").read_bytes() == _blob(won.index(True), 1_000_000)
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["k.wav"]
