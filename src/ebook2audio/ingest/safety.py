"""Safe parsing of untrusted archives and XML: zip-slip, zip bombs, XXE and entity expansion.

Every reader opens archives and XML through these functions, never directly.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lxml import etree

from ..errors import BookError, DRMError

# Bounds for one book. A real EPUB is rarely over 100 MB unpacked; text members are far smaller.
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_MEMBERS = 20_000
MAX_RATIO = 200  # uncompressed / compressed, per member above 1 MB
MAX_XML_BYTES = 32 * 1024 * 1024
# Markup tags ("<" counted before parsing) in all the documents parsed for one book. Real books have
# 10k-100k (Moby-Dick: 9k); a million tags is about half a million elements, i.e. a few seconds and
# a few hundred MB of work for the tree walk: the bound on time and memory for markup.
MAX_BOOK_TAGS = 1_000_000
# Errors a decompressor may raise on damaged or hostile data (zlib.error, lzma.LZMAError, bz2's OSError).
_ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    zlib.error,
)
try:
    import lzma

    _ZIP_ERRORS = (*_ZIP_ERRORS, lzma.LZMAError)
except ImportError:  # pragma: no cover - Python built without lzma
    pass
_DRIVE = re.compile(r"^[A-Za-z]:")


class HostileInputError(BookError):
    """Input refused for safety: entity declarations, zip bombs, zip slip, limits exceeded."""


@dataclass
class TagBudget:
    """The tags parsed so far for one book, across all its documents (see MAX_BOOK_TAGS)."""

    name: str
    limit: int = MAX_BOOK_TAGS
    used: int = 0

    def spend(self, data: bytes | str) -> None:
        self.used += data.count(b"<" if isinstance(data, bytes) else "<")
        if self.used > self.limit:
            raise HostileInputError(
                f"{self.name} has too much markup (over {self.limit} tags): damaged or hostile"
            )


def xml_parser(*, recover: bool = False) -> etree.XMLParser:
    """An lxml parser that never resolves entities, never reads DTDs or the network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        recover=recover,
    )


def parse_xml(
    data: bytes, what: str, *, recover: bool = False, budget: TagBudget | None = None
) -> etree._Element:
    """Parse untrusted XML bytes. DOCTYPEs that declare entities are refused outright.

    ``budget`` (one per book) bounds the markup parsed across documents; without one, this document
    alone may have at most MAX_BOOK_TAGS tags.
    """
    if len(data) > MAX_XML_BYTES:
        raise HostileInputError(f"{what} is too large to parse ({len(data) // (1024 * 1024)} MB)")
    (budget or TagBudget(what)).spend(data)
    refused = f"{what} declares XML entities (refused: possible XXE or entity expansion)"
    head = data[:4096].lstrip()
    if b"<!ENTITY" in data[:65536] or (b"<!DOCTYPE" in head and b"[" in head.split(b">", 2)[0]):
        raise HostileInputError(refused)
    if recover:  # libxml2 keeps a reference to a surrogate as bytes that lxml then cannot decode
        data = _CHAR_REF.sub(_valid_char_ref, data)
    try:
        root = etree.fromstring(data, parser=xml_parser(recover=recover))
    except etree.XMLSyntaxError as exc:
        if "amplification" in str(exc):  # libxml2's own guard against entity expansion
            raise HostileInputError(refused) from exc
        raise BookError(f"{what} is not well-formed XML: {exc}") from exc
    except (ValueError, LookupError) as exc:  # e.g. an encoding lxml cannot use
        raise BookError(f"{what} cannot be parsed: {exc}") from exc
    if root is None:
        raise BookError(f"{what} is empty or not XML")
    # The quick look above misses a DOCTYPE after 64 KB of comments, or one in UTF-16: ask the parser.
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise HostileInputError(refused)
    if recover:
        _scrub(root)
    return root


_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));")


def _valid_char_ref(match: re.Match[bytes]) -> bytes:
    """A numeric character reference to a character XML forbids (NUL, a surrogate...) -> U+FFFD."""
    code = int(match.group(1), 16) if match.group(1) else int(match.group(2))
    ok = code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
    return match.group(0) if ok or 0x10000 <= code <= 0x10FFFF else b"&#xFFFD;"


def _scrub(root: etree._Element) -> None:
    """Drop text and attributes of a recovered tree that lxml cannot decode (it raises on access)."""
    for el in root.iter():
        for attr in ("text", "tail"):
            try:
                getattr(el, attr)
            except UnicodeDecodeError:
                setattr(el, attr, None)
        try:
            list(el.attrib.items())
        except UnicodeDecodeError:
            el.attrib.clear()


@dataclass
class SafeZip:
    """A read-only view of a zip archive that refuses hostile members."""

    path: Path
    _zf: zipfile.ZipFile
    _total_read: int = 0

    @classmethod
    def open(cls, path: Path) -> SafeZip:
        try:
            zf = zipfile.ZipFile(path)
        except _ZIP_ERRORS as exc:
            raise BookError(f"{path.name} is not a readable zip archive ({exc})") from exc
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            zf.close()
            raise HostileInputError(f"{path.name} has {len(infos)} members (limit {MAX_MEMBERS})")
        total = packed = 0
        for info in infos:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if name.is_absolute() or ".." in name.parts or _DRIVE.match(str(name)) or "\0" in str(name):
                zf.close()
                raise HostileInputError(
                    f"{path.name} contains an unsafe member name {info.filename!r} (zip slip)"
                )
            total += info.file_size
            packed += info.compress_size
        if total > MAX_TOTAL_BYTES or (total > MAX_MEMBER_BYTES and total > MAX_RATIO * max(packed, 1)):
            zf.close()
            raise HostileInputError(
                f"{path.name} expands to {total} bytes (limit {MAX_TOTAL_BYTES}): zip bomb?"
            )
        return cls(path=path, _zf=zf)

    def names(self) -> list[str]:
        return self._zf.namelist()

    def has(self, name: str) -> bool:
        try:
            self._zf.getinfo(name)
        except KeyError:
            return False
        return True

    def read(self, name: str) -> bytes:
        """Read one member, never more than its declared size (a lying header cannot bomb us)."""
        try:
            info = self._zf.getinfo(name)
        except KeyError as exc:
            raise BookError(f"{self.path.name}: missing member {name!r}") from exc
        # Members are only checked when read: a bomb the book never uses does not refuse the book.
        if info.file_size > MAX_MEMBER_BYTES:
            raise HostileInputError(
                f"{self.path.name}: member {name!r} is too large ({info.file_size} bytes)"
            )
        if info.file_size > 1024 * 1024 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise HostileInputError(f"{self.path.name}: member {name!r} looks like a zip bomb")
        if info.flag_bits & 0x1:
            raise DRMError(f"{self.path.name}: member {name!r} is password-encrypted")
        limit = info.file_size
        if self._total_read + limit > MAX_TOTAL_BYTES:
            raise HostileInputError(f"{self.path.name}: too much data to read (zip bomb?)")
        try:
            with self._zf.open(info) as fh:
                data = fh.read(limit + 1)
        except _ZIP_ERRORS as exc:
            raise BookError(f"{self.path.name}: member {name!r} is corrupt ({exc})") from exc
        if len(data) > limit:
            raise HostileInputError(f"{self.path.name}: member {name!r} is larger than it declares")
        self._total_read += len(data)
        if self._total_read > MAX_TOTAL_BYTES:
            raise HostileInputError(f"{self.path.name}: too much data read (zip bomb?)")
        return data

    def close(self) -> None:
        self._zf.close()

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
