"""Which reader reads a file: detection by content (then extension), dispatch, and checks on every Book."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import re
from collections.abc import Callable
from pathlib import Path

from ..errors import BookError, UnsupportedFormatError, UserError
from ..model import Book, Chapter
from .common import bom_encoding, clean_text, guess_language, has_words, utf16_without_bom
from .safety import SafeZip

log = logging.getLogger(__name__)

Reader = Callable[[Path], Book]

_HEAD_BYTES = 64 * 1024


def _lazy(module: str, function: str) -> Reader:
    """A reader imported on first use, so that one format's dependencies never load for another."""

    def read(path: Path) -> Book:
        reader: Reader = getattr(importlib.import_module(f"{__package__}.{module}"), function)
        return reader(path)

    read.__name__ = f"{module}.{function}"
    return read


def _not_yet(name: str) -> Reader:
    def read(path: Path) -> Book:
        raise UnsupportedFormatError(
            f"{path.name}: {name} books are not supported yet (convert it to EPUB, e.g. with Calibre)"
        )

    read.__name__ = f"not_yet_{name}"
    return read


# One line per format. Formats whose reader is still missing say so clearly.
READERS: dict[str, Reader] = {
    "epub": _lazy("epub", "read_epub"),
    "fb2": _lazy("fb2", "read_fb2"),
    "fb2.zip": _lazy("fb2", "read_fb2_zip"),
    "html": _lazy("html", "read_html"),
    "txt": _lazy("text", "read_text"),
    "md": _lazy("markdown", "read_markdown"),
    "pdf": _lazy("pdf", "read_pdf"),
    "docx": _lazy("docx", "read_docx"),
    "odt": _lazy("odt", "read_odt"),
    "rtf": _lazy("rtf", "read_rtf"),
    "mobi": _lazy("mobi", "read_mobi"),
    "calibre": _lazy("calibre", "read_with_calibre"),
}

# Used when the content alone does not decide (plain text vs Markdown, unknown XML).
_EXTENSIONS: dict[str, str] = {
    ".epub": "epub",
    ".kepub": "epub",
    ".fb2": "fb2",
    ".fbz": "fb2.zip",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".mdown": "md",
    ".pdf": "pdf",
    ".docx": "docx",
    ".odt": "odt",
    ".rtf": "rtf",
    ".mobi": "mobi",
    ".azw": "mobi",
    ".azw3": "mobi",
    ".prc": "mobi",
}
_MARKDOWN_EXTENSIONS = (".md", ".markdown", ".mdown")
_NAMES = {
    "epub": "an EPUB",
    "fb2": "an FB2 book",
    "fb2.zip": "a zipped FB2 book",
    "html": "an HTML page",
    "pdf": "a PDF",
    "mobi": "a MOBI/AZW book",
    "docx": "a DOCX document",
    "odt": "an ODT document",
    "rtf": "an RTF document",
}


def supported_formats() -> list[str]:
    """Formats for which a reader exists (detection knows a few more, which it reports clearly)."""
    return sorted(fmt for fmt, reader in READERS.items() if not reader.__name__.startswith("not_yet_"))


def book_extensions(with_calibre: bool | None = None) -> tuple[str, ...]:
    """File extensions of books (for scanning a folder): the native formats, plus those Calibre's
    ``ebook-convert`` reads when it is installed (``with_calibre`` None: look it up), except
    metadata and comics."""
    from .calibre import FORMAT_NAMES, calibre_executable

    native = (".fb2.zip", *_EXTENSIONS)
    if with_calibre is None:
        with_calibre = calibre_executable() is not None
    if not with_calibre:
        return native
    skip = {".opf", ".recipe", ".cbz", ".cbr", ".cb7", ".cbc", ".odp"}
    return native + tuple(e for e in FORMAT_NAMES if e not in skip and e not in native)


def detect_format(path: Path) -> str:
    """The book's format by its content first (magic bytes, zip members, XML root), then its extension."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from exc
    fmt = _sniff(path, head)
    if fmt:
        return fmt
    suffix = path.suffix.lower()
    from .calibre import FORMAT_NAMES as _CALIBRE_FORMATS

    if suffix in _CALIBRE_FORMATS:
        return "calibre"  # LIT, LRF, PDB, CBZ...: through Calibre's ebook-convert when installed
    expected = _EXTENSIONS.get(suffix)
    if expected and expected in _NAMES:
        raise UnsupportedFormatError(
            f"{path.name} has the extension {suffix} but is not {_NAMES[expected]} (unrecognised content)"
        )
    raise UnsupportedFormatError(
        f"{path.name}: unrecognised file content (not an ebook format this program knows: "
        f"{', '.join(supported_formats())})"
    )


def _sniff(path: Path, head: bytes) -> str | None:
    suffix = path.suffix.lower()
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _sniff_zip(path)
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head[60:68] in (b"BOOKMOBI", b"TEXtREAd"):
        return "mobi"
    if head.lstrip()[:5] == b"{\\rtf":
        return "rtf"
    text = _text_head(head)
    if text is None:
        return None
    start = _skip_prolog(text)
    lowered = start[:4096].lower()
    if re.match(r"<(?:[\w-]+:)?fictionbook\b", lowered):
        return "fb2"
    if lowered.startswith(("<!doctype html", "<html")) or (
        lowered.startswith("<") and re.search(r"<(?:html|body|head|p|div|h[1-6])[\s>/]", lowered)
    ):
        return "html"
    if lowered.startswith("<") and suffix in (".fb2", ".html", ".htm", ".xhtml"):
        return _EXTENSIONS[suffix]  # other XML: let the reader say what is wrong with it
    if lowered.startswith("<?xml") or (lowered.startswith("<") and not suffix):
        return None
    if suffix in _MARKDOWN_EXTENSIONS:
        return "md"
    return "txt"


def _sniff_zip(path: Path) -> str | None:
    with SafeZip.open(path) as archive:
        names = archive.names()
        mimetype = b""
        if archive.has("mimetype"):
            mimetype = archive.read("mimetype")[:256].strip()
    if mimetype == b"application/epub+zip" or "META-INF/container.xml" in names:
        return "epub"
    if mimetype.startswith(b"application/vnd.oasis.opendocument.text"):
        return "odt"
    if "word/document.xml" in names:
        return "docx"
    if any(name.lower().endswith(".fb2") for name in names):
        return "fb2.zip"
    return None


def _text_head(head: bytes) -> str | None:
    """The start of the file as text, or None when it looks binary."""
    bom = bom_encoding(head)
    if bom:
        return head.decode(bom, errors="replace").lstrip("\ufeff")
    sample = head[:8192]
    if b"\x00" in sample:
        sixteen = utf16_without_bom(sample)
        if sixteen:
            return sample.decode(sixteen, errors="replace")
        # NUL padding or a stray NUL (a half-written file, a UTF-16 fragment) does not make text binary:
        # judge what is left.
        sample = sample.replace(b"\x00", b"")
        if not sample.strip():
            return None
    control = sum(1 for b in sample if b < 0x20 and b not in (0x09, 0x0A, 0x0C, 0x0D, 0x1B))
    if control > max(2, len(sample) // 100):
        return None
    text = sample.decode("utf-8", errors="replace")
    if text.count("\ufffd") > len(text) // 3:
        # Not UTF-8: a legacy 8-bit text still has mostly printable ASCII; binary noise does not.
        printable = sum(1 for b in sample if 0x20 <= b < 0x7F or b in (0x09, 0x0A, 0x0D))
        if printable < len(sample) * 0.7:
            return None
        text = sample.decode("latin-1")
    return text


_PROLOG = re.compile(
    r"\s*(?:<\?.*?\?>|<!--.*?-->|<!doctype(?!\s+html)[^\[>]*(?:\[.*?\]\s*)?>)", re.IGNORECASE | re.DOTALL
)


def _skip_prolog(text: str) -> str:
    """Drop whitespace, the XML declaration, comments and DOCTYPEs that precede the root element."""
    pos = 0
    while match := _PROLOG.match(text, pos):
        pos = match.end()
    return text[pos:].lstrip()


def read_book(path: Path) -> Book:
    """Read any supported book into a Book with at least one chapter of text."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a book")
    if not path.is_file():
        raise UserError(f"{path} is not a regular file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if size == 0:
        raise BookError(f"{path.name} is empty (0 bytes)")
    fmt = detect_format(path)
    reader = READERS.get(fmt)
    if reader is None:
        raise UnsupportedFormatError(f"{path.name}: {fmt} books are not supported")
    log.debug("reading %s as %s with %s", path.name, fmt, reader.__name__)
    try:
        book = reader(path)
    except OSError as exc:
        raise BookError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    return finish_book(book, path, fmt)


def finish_book(book: Book, path: Path, fmt: str) -> Book:
    """Checks every reader gets for free: no empty chapters, some text, a title, a language."""
    warnings = list(book.warnings)
    chapters: list[Chapter] = []
    for number, chapter in enumerate(book.chapters, start=1):
        paragraphs = [text for text in (p.strip() for p in chapter.paragraphs) if has_words(text)]
        title = clean_text(chapter.title)
        if paragraphs and title and _same(paragraphs[0], title):
            paragraphs.pop(0)  # the title is spoken from Chapter.title: never twice
        if not paragraphs:
            warnings.append(f"dropped chapter {number} {title!r}: no text")
            continue
        chapters.append(Chapter(title=title, paragraphs=tuple(paragraphs)))
    if not chapters:
        raise BookError(f"{path.name}: no readable text found (a scanned or image-only book?)")
    metadata = book.metadata
    if not clean_text(metadata.title):
        metadata = dataclasses.replace(metadata, title=_title_from_name(path))
    if not metadata.language:
        sample = " ".join(p for c in chapters for p in c.paragraphs[:50])[:50_000]
        guessed = guess_language(sample)
        if guessed:
            metadata = dataclasses.replace(metadata, language=guessed)
    return dataclasses.replace(
        book,
        metadata=metadata,
        chapters=tuple(chapters),
        source_format=book.source_format or fmt,
        warnings=tuple(warnings),
    )


def _same(paragraph: str, title: str) -> bool:
    def key(s: str) -> str:
        return "".join(ch for ch in s.casefold() if ch.isalnum())

    return key(paragraph) == key(title)


def _title_from_name(path: Path) -> str:
    name = path.name
    for suffix in (".fb2.zip", *_EXTENSIONS):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return clean_text(name.replace("_", " ")) or path.name
