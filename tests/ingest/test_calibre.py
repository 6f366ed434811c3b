from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

import pytest

from ebook2audio.errors import BookError, UnsupportedFormatError
from ebook2audio.ingest.calibre import convert_command, format_name, read_with_calibre

OPF = """<?xml version="1.0" encoding="UTF-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
    <dc:identifier id="id">urn:uuid:1</dc:identifier><dc:title>Converted Tale</dc:title>
    <dc:creator>Old Author</dc:creator><dc:language>en</dc:language>
  </metadata>
  <manifest>
    <item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
    <item id="c1" href="c1.xhtml" media-type="application/xhtml+xml"/>
  </manifest>
  <spine><itemref idref="c1"/></spine>
</package>"""
NAV = """<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops"><head><title>nav</title></head>
<body><nav epub:type="toc"><ol><li><a href="c1.xhtml">The Only Chapter</a></li></ol></nav></body></html>"""
CHAPTER = """<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>c1</title></head>
<body><h1>The Only Chapter</h1><p>Converted text came through Calibre safely.</p></body></html>"""
CONTAINER = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
<rootfiles><rootfile full-path="content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>"""

FAKE = """#!{python}
import json, os, shutil, sys, time
with open(os.environ["FAKE_CALIBRE_LOG"], "w") as fh:
    json.dump(sys.argv, fh)
mode = os.environ.get("FAKE_CALIBRE_MODE", "ok")
if mode == "fail":
    print("Conversion error: input format not recognised")
    sys.exit(3)
if mode == "slow":
    time.sleep(60)
shutil.copy(os.environ["FAKE_CALIBRE_EPUB"], sys.argv[2])
"""


@pytest.fixture()
def fake_calibre(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `ebook-convert` on PATH that logs its arguments and writes a tiny EPUB."""
    epub = tmp_path / "tiny.epub"
    with zipfile.ZipFile(epub, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        zf.writestr("META-INF/container.xml", CONTAINER)
        zf.writestr("content.opf", OPF)
        zf.writestr("nav.xhtml", NAV)
        zf.writestr("c1.xhtml", CHAPTER)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ebook-convert"
    script.write_text(FAKE.format(python=sys.executable), encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_CALIBRE_EPUB", str(epub))
    monkeypatch.setenv("FAKE_CALIBRE_LOG", str(tmp_path / "argv.json"))
    return tmp_path / "argv.json"


def test_without_calibre_the_format_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    book = tmp_path / "old.lit"
    book.write_bytes(b"ITOLITLS")
    with pytest.raises(
        UnsupportedFormatError, match=r"^old\.lit: LIT books .* install Calibre \(ebook-convert\) to read it$"
    ):
        read_with_calibre(book)


def test_converts_with_ebook_convert_and_reads_the_epub(fake_calibre: Path, tmp_path: Path) -> None:
    source = tmp_path / "story.pdb"
    source.write_bytes(b"fake palm database")
    book = read_with_calibre(source)
    assert [c.title for c in book.chapters] == ["The Only Chapter"]
    assert book.chapters[0].paragraphs == ("Converted text came through Calibre safely.",)
    assert book.metadata.title == "Converted Tale"
    assert book.source_format == "pdb"
    assert any("Calibre" in w for w in book.warnings)
    argv = json.loads(fake_calibre.read_text())
    assert Path(argv[0]).name == "ebook-convert"
    assert argv[1] == str(source.resolve())
    assert argv[2].endswith("book.epub") and len(argv) == 3
    assert not Path(argv[2]).parent.exists()  # the temporary directory is removed


def test_a_failed_conversion_says_why(
    fake_calibre: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CALIBRE_MODE", "fail")
    source = tmp_path / "broken.lrf"
    source.write_bytes(b"x")
    with pytest.raises(
        BookError, match=r"failed on broken\.lrf \(exit 3\): Conversion error: input format not recognised"
    ):
        read_with_calibre(source)


def test_a_hung_conversion_is_stopped(
    fake_calibre: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CALIBRE_MODE", "slow")
    source = tmp_path / "slow.tcr"
    source.write_bytes(b"x")
    with pytest.raises(BookError, match="took longer than"):
        read_with_calibre(source, timeout=1.0)


def test_command_and_names() -> None:
    assert convert_command("/usr/bin/ebook-convert", Path("/b/in.lit"), Path("/t/book.epub")) == [
        "/usr/bin/ebook-convert",
        "/b/in.lit",
        "/t/book.epub",
    ]
    assert format_name(Path("a.LIT")) == "LIT"
    assert format_name(Path("a.pdb")) == "PDB (eReader/Palm)"
    assert format_name(Path("a.xyz")) == "XYZ"
    assert os.sep not in format_name(Path("noext"))
