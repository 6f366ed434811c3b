"""Safe parsing of untrusted archives and XML: zip-slip, zip bombs, XXE and entity expansion.

Every reader opens archives and XML through these functions, never directly.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lxml import etree

from ..errors import BookError

# Bounds for one book. A real EPUB is rarely over 100 MB unpacked; text members are far smaller.
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_MEMBERS = 20_000
MAX_RATIO = 200  # uncompressed / compressed, per member above 1 MB
MAX_XML_BYTES = 32 * 1024 * 1024


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


def parse_xml(data: bytes, what: str, *, recover: bool = False) -> etree._Element:
    """Parse untrusted XML bytes. DOCTYPEs that declare entities are refused outright."""
    if len(data) > MAX_XML_BYTES:
        raise BookError(f"{what} is too large to parse ({len(data) // (1024 * 1024)} MB)")
    head = data[:4096].lstrip()
    if b"<!ENTITY" in data[:65536] or (b"<!DOCTYPE" in head and b"[" in head.split(b">", 2)[0]):
        raise BookError(f"{what} declares XML entities (refused: possible XXE or entity expansion)")
    try:
        root = etree.fromstring(data, parser=xml_parser(recover=recover))
    except etree.XMLSyntaxError as exc:
        raise BookError(f"{what} is not well-formed XML: {exc}") from exc
    if root is None:
        raise BookError(f"{what} is empty or not XML")
    return root


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
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise BookError(f"{path.name} is not a readable zip archive ({exc})") from exc
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise BookError(f"{path.name} has {len(infos)} members (limit {MAX_MEMBERS})")
        total = 0
        for info in infos:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if name.is_absolute() or ".." in name.parts:
                raise BookError(f"{path.name} contains an unsafe member name {info.filename!r} (zip slip)")
            total += info.file_size
            if info.file_size > MAX_MEMBER_BYTES:
                raise BookError(f"{path.name}: member {info.filename!r} is too large ({info.file_size} bytes)")
            if info.file_size > 1024 * 1024 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise BookError(f"{path.name}: member {info.filename!r} looks like a zip bomb")
        if total > MAX_TOTAL_BYTES:
            raise BookError(f"{path.name} expands to {total} bytes (limit {MAX_TOTAL_BYTES}): zip bomb?")
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
        limit = min(info.file_size, MAX_MEMBER_BYTES)
        try:
            with self._zf.open(info) as fh:
                data = fh.read(limit + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise BookError(f"{self.path.name}: member {name!r} is corrupt ({exc})") from exc
        if len(data) > limit:
            raise BookError(f"{self.path.name}: member {name!r} is larger than it declares")
        self._total_read += len(data)
        if self._total_read > MAX_TOTAL_BYTES:
            raise BookError(f"{self.path.name}: too much data read (zip bomb?)")
        return data

    def close(self) -> None:
        self._zf.close()

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
