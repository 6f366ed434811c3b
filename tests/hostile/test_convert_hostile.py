"""`convert` with the real Piper voice on damaged but readable books, and on outputs that cannot be
written. A readable book gives a chaptered m4b of what is readable; anything else exits 2 with one
``error:`` line. Nothing is ever written outside the output folder, and no partial file is left there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ebook2audio.audio.assemble import probe

from .generate import case
from .helpers import Run, assert_user_error, drop_root_powers, run_cli, snapshot

CONVERT_TIMEOUT = 300.0


def _convert(
    tmp_path: Path, name: str, *, out: str = "out", before_book: tuple[str, ...] = (), preexec=None
) -> tuple[Run, Path, dict[str, int]]:
    """Build case ``name`` under tmp_path/root and convert it into tmp_path/``out``."""
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    book = case(name).build(root)
    before = snapshot(tmp_path, skip=("cache", out.split("/")[0]))
    run = run_cli(
        ["convert", "-q", "--workers", "1", "-o", str(tmp_path / out), *before_book, str(book)],
        tmp_path,
        cwd=root,
        timeout=CONVERT_TIMEOUT,
        cap_memory=False,  # onnxruntime reserves much address space: only inspect runs are capped
        preexec=preexec,
    )
    assert snapshot(tmp_path, skip=("cache", out.split("/")[0])) == before, "wrote outside the output folder"
    return run, book, before


def _outputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _assert_no_leftovers(tmp_path: Path, folder: Path) -> None:
    assert not [n for n in _outputs(folder) if n.startswith(".") or ".part" in n], _outputs(folder)
    jobs = tmp_path / "cache" / "ebook2audio" / "jobs"
    left = [*jobs.rglob("*.flac"), *jobs.rglob("*.wav")] if jobs.is_dir() else []
    assert not left, "chunk audio left behind after success"


READABLE_CASES = [
    # (case, chapters expected in the audiobook)
    ("txt-mixed-encodings", 2),
    ("txt-invalid-utf8", 2),
    ("corrupt-member-readable-rest", 1),  # a truncated/corrupt chapter in an EPUB: the rest is read
    ("truncated-xhtml-member", 2),
    ("html-cover-symlink-outside", 2),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "chapters"), READABLE_CASES, ids=[c[0] for c in READABLE_CASES])
def test_damaged_but_readable_book_becomes_a_chaptered_audiobook(
    tmp_path: Path, name: str, chapters: int
) -> None:
    run, _, _ = _convert(tmp_path, name)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    out = tmp_path / "out"
    books = list(out.glob("*.m4b"))
    assert len(books) == 1, _outputs(out)
    info = probe(books[0])
    assert len(info.chapters) == chapters, info.chapters
    assert info.duration > 3 * chapters  # every chapter holds speech, not just a title
    assert all(ch.end > ch.start for ch in info.chapters)
    _assert_no_leftovers(tmp_path, out)


@pytest.mark.slow
def test_leading_dash_file_name_after_double_dash(tmp_path: Path) -> None:
    run, book, _ = _convert(tmp_path, "name-leading-dash", before_book=("--",))
    assert book.name == "-book.epub"
    assert run.returncode == 0, run.stderr[-3000:]
    (m4b,) = (tmp_path / "out").glob("*.m4b")
    assert m4b.name == "Test Author - Hostile Test.m4b"
    assert len(probe(m4b).chapters) == 2


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("zip-bomb-1gib-member", "zip bomb"),
        ("xxe-xhtml", "entities"),
        ("drm-encryption-xml", "drm"),
        ("zip-slip-dotdot", "unsafe"),
        ("txt-only-punctuation", "no readable text"),
    ],
)
def test_hostile_book_through_convert_writes_nothing(tmp_path: Path, name: str, needle: str) -> None:
    run, _, _ = _convert(tmp_path, name)
    assert_user_error(run, needle)
    assert _outputs(tmp_path / "out") == []


def test_output_directory_that_is_a_file_fails_before_synthesis(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("I am a file")
    run, _, _ = _convert(tmp_path, "txt-invalid-utf8")
    assert_user_error(run, "not a directory")
    assert "synthesising" not in run.stderr
    assert (tmp_path / "out").read_text() == "I am a file"
    run, _, _ = _convert(tmp_path, "name-spaces-unicode", out="out/sub")
    assert_user_error(run, "not a directory")


def _read_only(folder: Path) -> object:
    """A folder this test's children cannot write to (as root: by dropping root's file powers)."""
    folder.mkdir()
    folder.chmod(0o500)
    if os.geteuid() != 0:
        return None
    try:  # check that the capability drop works here before relying on it
        import subprocess
        import sys

        probe_run = subprocess.run(
            [sys.executable, "-c", f"open({str(folder / 'x')!r}, 'w')"],
            preexec_fn=drop_root_powers,
            capture_output=True,
        )
    except OSError as exc:  # pragma: no cover - a container without CAP_SETPCAP
        pytest.skip(f"cannot drop root's file powers here: {exc}")
    if probe_run.returncode == 0:  # pragma: no cover
        pytest.skip("root can still write into a read-only folder here")
    return drop_root_powers


def test_unwritable_output_directory_fails_before_synthesis(tmp_path: Path) -> None:
    preexec = _read_only(tmp_path / "out")
    try:
        run, _, _ = _convert(tmp_path, "txt-invalid-utf8", preexec=preexec)
        assert_user_error(run, "not writable")
        assert "synthesising" not in run.stderr
        run, _, _ = _convert(tmp_path, "name-spaces-unicode", out="out/sub", preexec=preexec)
        assert_user_error(run, "not writable")
        assert _outputs(tmp_path / "out") == []
    finally:
        (tmp_path / "out").chmod(0o700)


@pytest.mark.slow
def test_final_name_taken_by_a_folder_exits_2_and_leaves_no_partial_file(tmp_path: Path) -> None:
    """Only known after reading (the name comes from the metadata), but still before any synthesis."""
    (tmp_path / "out" / "Test Author - Hostile Test.m4b").mkdir(parents=True)
    run, _, _ = _convert(tmp_path, "name-spaces-unicode")
    assert_user_error(run, "Test Author - Hostile Test.m4b")
    assert "synthesising" not in run.stderr
    assert _outputs(tmp_path / "out") == ["Test Author - Hostile Test.m4b"]
    assert (tmp_path / "out" / "Test Author - Hostile Test.m4b").is_dir()
