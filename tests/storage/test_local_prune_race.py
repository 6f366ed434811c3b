"""``delete`` prunes emptied folders; writers in other processes racing with it must never fail."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from ebook2audio.storage.local import LocalStorage


def _churn(root: str, n: int) -> None:
    st = LocalStorage(root)
    for i in range(1500):
        key = f"s/attempts/b-{n}-{i}"
        st.put_bytes(key, b"1")
        assert st.put_bytes_if_absent(f"{key}-x", b"2")
        st.delete(key)
        st.delete(f"{key}-x")


def test_writers_survive_concurrent_pruning_of_their_folder(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_churn, args=(str(tmp_path), n)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert not (tmp_path / "s").exists()  # every key deleted: no folder left behind
