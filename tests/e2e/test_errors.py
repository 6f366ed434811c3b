"""Bad input: one line `error: ...`, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from .helpers import run_cli


def _epub_with_encryption(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        z.writestr(
            "META-INF/encryption.xml",
            '<?xml version="1.0"?><encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
            'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
            '<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
            '<enc:CipherData><enc:CipherReference URI="OEBPS/ch1.xhtml"/></enc:CipherData>'
            "</enc:EncryptedData></encryption>",
        )
        z.writestr(
            "OEBPS/content.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
            '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>X</dc:title><dc:identifier id="id">x'
            "</dc:identifier><dc:language>en</dc:language></metadata>"
            '<manifest><item id="c1" href="ch1.xhtml" media-type="application/xhtml+xml"/></manifest>'
            '<spine><itemref idref="c1"/></spine></package>',
        )
        z.writestr("OEBPS/ch1.xhtml", b"\x8a\x91\x00garbage-ciphertext")


def _cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    (tmp / "dir.epub").mkdir()
    (tmp / "empty.epub").write_bytes(b"")
    (tmp / "garbage.epub").write_bytes(bytes(range(256)) * 40)
    _epub_with_encryption(tmp / "drm.epub")
    (tmp / "ok.txt").write_text("CHAPTER I\n\nHello there.\n")
    return {
        "missing": (["convert", "nope.epub"], "no such file"),
        "directory": (["convert", "dir.epub"], "directory"),
        "empty": (["convert", "empty.epub"], ""),
        "garbage": (["convert", "garbage.epub"], ""),
        "drm": (["convert", "drm.epub"], "DRM"),
        "bad-language": (["convert", "ok.txt", "--language", "xx-nonsense"], ""),
        "bad-voice": (["convert", "ok.txt", "--voice", "no-such-voice"], "voice"),
        "jenny-missing": (["convert", "ok.txt", "--voice", "jenny"], "jenny"),
        "inspect-missing": (["inspect", "nope.epub"], "no such file"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "directory",
        "empty",
        "garbage",
        "drm",
        "bad-language",
        "bad-voice",
        "jenny-missing",
        "inspect-missing",
    ],
)
def test_bad_input_one_line_error(tmp_path: Path, case: str) -> None:
    args, needle = _cases(tmp_path)[case]
    r = run_cli([*args, "-o", "out"] if args[0] == "convert" else args, tmp_path, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    assert needle.lower() in lines[-1].lower()
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir())


def test_debug_shows_traceback(tmp_path: Path) -> None:
    (tmp_path / "garbage.epub").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    r = run_cli(["--debug", "convert", "garbage.epub"], tmp_path, timeout=120)
    assert r.returncode == 2
    assert "Traceback" in r.stderr
