"""Kindle books without DRM (MOBI, AZW, AZW3, PRC), unpacked with the ``mobi`` package (KindleUnpack).

The book is unpacked into a private temporary directory that is always removed afterwards. A KF8 book
(AZW3, or the KF8 half of a combined MOBI) unpacks to an EPUB, read by the EPUB reader. An old MOBI7
book unpacks to one HTML file plus an OPF package and an NCX table of contents pointing into it; these
are packed into an EPUB and read by the same reader (metadata, cover and TOC chapters included). When
that gives no chapter structure, the HTML reader splits the HTML at its headings instead. A Print
Replica book (AZW4) unpacks to a PDF, read by the PDF reader.

DRM-encrypted books are refused before anything is unpacked (the encryption field of the PalmDOC
header), and so are books that declare an absurd amount of text.

Public API:
    read_mobi(path) -> Book
    mobi_encryption(data) -> int
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import struct
import tempfile
import zipfile
from pathlib import Path

from ..errors import BookError, DRMError, UnsupportedFormatError
from ..model import Book

__all__ = ["mobi_encryption", "read_mobi"]

log = logging.getLogger(__name__)

MAX_MOBI_BYTES = 256 * 1024 * 1024
MAX_TEXT_BYTES = 256 * 1024 * 1024  # uncompressed text a book may declare
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024
_IDENTS = (b"BOOKMOBI", b"TEXtREAd")
_CONTAINER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
    '<rootfiles><rootfile full-path="content.opf" media-type="application/oebps-package+xml"/>'
    "</rootfiles></container>\n"
)


@dataclasses.dataclass(frozen=True)
class _Header:
    ident: bytes
    records: int
    text_length: int
    encryption: int


def _header(data: bytes, name: str) -> _Header:
    """The PalmDB header and the PalmDOC header of record 0."""
    if len(data) < 86:
        raise BookError(f"{name} is too short to be a MOBI book")
    ident = data[60:68]
    if ident not in _IDENTS:
        raise BookError(f"{name} is not a MOBI/Kindle book (PalmDB type {ident!r})")
    (records,) = struct.unpack_from(">H", data, 76)
    if records < 1:
        raise BookError(f"{name}: the MOBI book has no records")
    (offset,) = struct.unpack_from(">L", data, 78)
    if offset + 16 > len(data):
        raise BookError(f"{name}: the MOBI header points outside the file (damaged)")
    text_length, _count, _size, encryption = struct.unpack_from(">LHHH", data, offset + 4)
    return _Header(ident, records, text_length, encryption)


def mobi_encryption(data: bytes) -> int:
    """The encryption type of a MOBI book's first record: 0 none, 1 old Mobipocket, 2 Mobipocket DRM."""
    return _header(data, "book").encryption


def read_mobi(path: Path) -> Book:
    """Read an unencrypted MOBI / AZW / AZW3 book."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_MOBI_BYTES:
            raise BookError(f"{path.name} is too large for a MOBI book ({size // (1024 * 1024)} MB)")
        with path.open("rb") as fh:
            head = fh.read(1024 * 1024)  # the record list (up to 65,535 records) and record 0
    except OSError as exc:
        raise BookError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    header = _header(head, path.name)
    if header.encryption != 0:
        raise DRMError(
            f"{path.name} is DRM-encrypted (Mobipocket encryption type {header.encryption}); it cannot be read"
        )
    if header.text_length > MAX_TEXT_BYTES:
        raise BookError(f"{path.name} declares {header.text_length} bytes of text (limit {MAX_TEXT_BYTES})")

    with tempfile.TemporaryDirectory(prefix="ebook2audio-mobi-") as tmp:
        out = Path(tmp)
        _unpack(path, out)
        book = _read_unpacked(path, out)
    return dataclasses.replace(book, source_format="mobi")


def _unpack(path: Path, out: Path) -> None:
    try:
        from mobi.kindleunpack import unpackBook, unpackException
    except ImportError as exc:  # not installed, or (mobi 0.4 on Python 3.13) its "imghdr" import fails
        raise UnsupportedFormatError(
            f"{path.name}: reading MOBI/AZW needs the mobi package (reinstall ebook2audio: pip install .) ({exc})"
        ) from exc

    chatter = io.StringIO()  # KindleUnpack prints progress; keep it off the user's terminal
    try:
        with contextlib.redirect_stdout(chatter):
            unpackBook(str(path), str(out), epubver="A")
    except unpackException as exc:
        if "encrypt" in str(exc).lower():
            raise DRMError(f"{path.name} is DRM-encrypted; it cannot be read") from exc
        raise BookError(f"{path.name} cannot be unpacked: {exc}") from exc
    except Exception as exc:  # KindleUnpack raises bare errors (struct, index, zlib) on damaged books
        raise BookError(
            f"{path.name} cannot be unpacked (damaged MOBI?): {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        if chatter.getvalue():
            log.debug("kindleunpack: %s", chatter.getvalue()[-2000:])
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    if total > MAX_UNPACKED_BYTES:
        raise BookError(
            f"{path.name} unpacks to {total // (1024 * 1024)} MB (limit {MAX_UNPACKED_BYTES // (1024 * 1024)} MB)"
        )


def _read_unpacked(path: Path, out: Path) -> Book:
    from .epub import read_epub

    kf8 = sorted((out / "mobi8").glob("*.epub"))
    if kf8:
        log.debug("%s: KF8 book, reading its EPUB", path.name)
        return read_epub(kf8[0])
    html = out / "mobi7" / "book.html"
    if html.is_file():
        return _read_mobi7(path, out / "mobi7")
    pdfs = sorted(out.glob("*.pdf"))
    if pdfs:
        from .pdf import read_pdf

        log.debug("%s: Print Replica book, reading its PDF", path.name)
        return read_pdf(pdfs[0])
    raise BookError(f"{path.name}: nothing readable was unpacked from this MOBI book")


def _read_mobi7(path: Path, folder: Path) -> Book:
    """MOBI7: the unpacked OPF + NCX + HTML as an EPUB; the HTML alone when that has no chapters."""
    from .epub import read_epub
    from .html import read_html

    packed: Book | None = None
    if (folder / "content.opf").is_file():
        epub = folder.parent / "mobi7.epub"
        _pack_epub(folder, epub)
        try:
            packed = read_epub(epub)
        except BookError as exc:
            log.debug("%s: MOBI7 package unreadable as EPUB (%s); reading its HTML", path.name, exc)
    if packed is not None and len(packed.chapters) > 1:
        return packed
    from_html = read_html(folder / "book.html")
    if packed is None:
        return from_html
    if len(from_html.chapters) > len(packed.chapters):
        # The HTML's headings give chapters; the package gives the metadata and the cover.
        return dataclasses.replace(
            packed, chapters=from_html.chapters, warnings=packed.warnings + from_html.warnings
        )
    return packed


def _pack_epub(folder: Path, target: Path) -> None:
    """Zip an unpacked MOBI7 folder the OCF way (``mimetype`` first, stored) so the EPUB reader reads it."""
    with zipfile.ZipFile(target, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        zf.writestr("META-INF/container.xml", _CONTAINER, compress_type=zipfile.ZIP_DEFLATED)
        for file in sorted(folder.rglob("*")):
            if file.is_file() and not file.is_symlink():
                zf.write(file, file.relative_to(folder).as_posix(), compress_type=zipfile.ZIP_DEFLATED)
