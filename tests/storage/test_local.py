from __future__ import annotations

from pathlib import Path

import pytest

from ebook2audio.errors import InvalidKeyError, StorageError
from ebook2audio.storage.local import LocalStorage


def test_put_get_list_delete(tmp_path: Path) -> None:
    s = LocalStorage(tmp_path)
    s.put_bytes("job/chunks/ab/abc.wav", b"hello")
    s.put_bytes("job/plan.json", b"{}")
    assert s.get_bytes("job/chunks/ab/abc.wav") == b"hello"
    assert s.size("job/plan.json") == 2
    assert s.size("job/missing") is None
    assert s.get_head("job/chunks/ab/abc.wav", 3) == b"hel"
    assert sorted(s.list("job/")) == ["job/chunks/ab/abc.wav", "job/plan.json"]
    assert list(s.list("job/chunks/")) == ["job/chunks/ab/abc.wav"]
    with s.local_path("job/plan.json") as p:
        assert p.read_bytes() == b"{}"
    s.delete("job/plan.json")
    assert not s.exists("job/plan.json")
    s.delete_prefix("job/")
    assert list(s.list("job/")) == []


def test_overwrite_is_atomic_and_leaves_no_temp(tmp_path: Path) -> None:
    s = LocalStorage(tmp_path)
    s.put_bytes("a/b", b"1" * 1000)
    s.put_bytes("a/b", b"2")
    assert s.get_bytes("a/b") == b"2"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b"]


@pytest.mark.parametrize("key", ["../evil", "/abs", "a/../../b", "", ".", "a/\0b"])
def test_keys_cannot_escape(tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        LocalStorage(tmp_path / "root").put_bytes(key, b"x")
    assert not (tmp_path / "evil").exists()


def test_write_failure_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError):
        LocalStorage(tmp_path / "file").put_bytes("x/y", b"1")


def test_a_write_survives_a_concurrent_delete_pruning_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's delete may remove the folder it emptied between our mkdir and our temp file."""
    import tempfile

    s = LocalStorage(tmp_path)
    real = tempfile.mkstemp
    calls = []

    def racing_mkstemp(*args: object, **kw: object) -> tuple[int, str]:
        calls.append(kw["dir"])
        if len(calls) == 1:
            Path(str(kw["dir"])).rmdir()  # the other process's prune, just after our mkdir
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(tempfile, "mkstemp", racing_mkstemp)
    assert s.put_bytes_if_absent("sess/attempts/b-1", b"1")
    assert s.get_bytes("sess/attempts/b-1") == b"1" and len(calls) == 2


def test_discard_moves_a_session_aside_in_one_rename_and_purge_deletes_it(tmp_path: Path) -> None:
    s = LocalStorage(tmp_path)
    s.put_bytes("book1/chunks/ab/abc.flac", b"x" * 10)
    s.put_bytes("book2/plans/j.json", b"{}")
    inode = (tmp_path / "book1").stat().st_ino
    assert s.discard_prefix("book1/")
    assert not (tmp_path / "book1").exists() and not s.exists("book1/chunks/ab/abc.flac")
    [moved] = (tmp_path / ".trash").iterdir()
    assert moved.stat().st_ino == inode and moved.name.startswith("book1-")  # renamed, not copied
    assert sorted(s.list("")) == ["book2/plans/j.json"]  # what was discarded is no longer listed
    s.put_bytes("book1/chunks/ab/abc.flac", b"y")  # the session can start again at once
    assert s.discard_prefix("book1") and len(list((tmp_path / ".trash").iterdir())) == 2
    assert not s.discard_prefix("book1/") and not s.discard_prefix("missing/")  # nothing to move
    with pytest.raises(InvalidKeyError):
        s.discard_prefix("../x")
    assert s.purge_discarded() == 2 and s.purge_discarded() == 0
    assert not any((tmp_path / ".trash").iterdir())
    assert s.get_bytes("book2/plans/j.json") == b"{}"  # the rest untouched
