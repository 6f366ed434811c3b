"""Hostile and broken ebooks, generated at test time (never committed as binaries).

Every builder takes a directory and returns the path to hand to the CLI. ``CASES`` lists them all with
the outcome each must have: ``ok`` (exit 0 with the readable text), ``error`` (exit 2, one line
``error: ...``) or ``either``. Builders are fast (under a second each) and write at most ~30 MB (the
zip bombs that expand to 1 GiB are about 1 MB on disk: their deflate stream is built, not computed).
``depends_on`` names a reader another module owns (pdf, docx, mobi, rtf): a failure there is theirs.
"""

from __future__ import annotations

import io
import os
import random
import struct
import zipfile
import zlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

# A token that the XXE cases try to exfiltrate: it must never appear in any output.
SECRET = "HOSTILE-SECRET-7f3a9c"
SECRET_FILE = "secret.txt"

SENTENCES = (
    "The ship left the harbour at dawn and turned north along the grey coast.",
    "Nobody on board knew how long the voyage would last, but everyone hoped for fair winds.",
    "By the third day the sea had calmed and the sailors sang while they mended the nets.",
)
READABLE = " ".join(SENTENCES)

# ---------------------------------------------------------------------------------------------------
# Raw zip writing: full control over every header field (sizes that lie, names zipfile would refuse)
# ---------------------------------------------------------------------------------------------------


@dataclass
class RawMember:
    name: bytes
    data: bytes  # already compressed (raw deflate for method 8)
    method: int = 8
    crc: int = 0
    size: int = 0  # uncompressed size written in the headers
    flags: int = 0x800  # UTF-8 names
    local_name: bytes | None = None  # a different name in the local header
    local_size: int | None = None  # a different uncompressed size in the local header


def raw_zip(members: list[RawMember], *, comment: bytes = b"") -> bytes:
    """A zip archive written byte by byte (no zip64): local headers, data, central directory."""
    out = io.BytesIO()
    central = io.BytesIO()
    for m in members:
        offset = out.tell()
        lname = m.name if m.local_name is None else m.local_name
        lsize = m.size if m.local_size is None else m.local_size
        out.write(
            struct.pack(
                "<4sHHHHHIIIHH",
                b"PK\x03\x04",
                20,
                m.flags,
                m.method,
                0,
                0x21,
                m.crc,
                len(m.data),
                lsize,
                len(lname),
                0,
            )
        )
        out.write(lname)
        out.write(m.data)
        central.write(
            struct.pack(
                "<4sHHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                20,
                20,
                m.flags,
                m.method,
                0,
                0x21,
                m.crc,
                len(m.data),
                m.size,
                len(m.name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
        )
        central.write(m.name)
    cd = central.getvalue()
    start = out.tell()
    out.write(cd)
    out.write(
        struct.pack(
            "<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(cd), start, len(comment)
        )
    )
    out.write(comment)
    return out.getvalue()


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def member(name: str, data: bytes, *, stored: bool = False) -> RawMember:
    if stored:
        return RawMember(name.encode(), data, method=0, crc=zlib.crc32(data), size=len(data))
    return RawMember(name.encode(), deflate(data), crc=zlib.crc32(data), size=len(data))


GIB = 1 << 30
CRC32_ZEROS_1GIB = 0x5B64C2B0  # zlib.crc32(bytes(1 << 30))


def deflated_zeros(n_mib: int) -> bytes:
    """Raw deflate of ``n_mib`` MiB of zero bytes, made in milliseconds (about 1 KB per MiB).

    After a full flush the window is all zeros, so every further MiB compresses to the same bytes.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    mib = bytes(1 << 20)
    first = c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)
    if n_mib == 1:
        return first + c.flush()
    again = c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)
    return first + again * (n_mib - 1) + c.flush()


# ---------------------------------------------------------------------------------------------------
# A small valid EPUB, as an ordered dict of members that the cases mutate
# ---------------------------------------------------------------------------------------------------

CONTAINER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
    '<rootfiles><rootfile full-path="{opf}" media-type="application/oebps-package+xml"/></rootfiles>'
    "</container>"
)


def container_xml(opf: str = "OEBPS/content.opf", prolog: str = "") -> bytes:
    text = CONTAINER.format(opf=opf)
    if prolog:
        text = text.replace("?>\n", "?>\n" + prolog, 1)
    return text.encode()


def opf_xml(
    chapters: list[str],
    *,
    title: str = "Hostile Test",
    author: str = "Test Author",
    prolog: str = "",
    nav: bool = True,
    ncx: bool = False,
    extra_items: str = "",
) -> bytes:
    items = "".join(
        f'<item id="c{i}" href="{name}" media-type="application/xhtml+xml"/>'
        for i, name in enumerate(chapters)
    )
    if nav:
        items += '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
    if ncx:
        items += '<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>'
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    toc = ' toc="ncx"' if ncx else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"{prolog}"
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="uid">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:title>{title}</dc:title><dc:creator>{author}</dc:creator><dc:language>en</dc:language>"
        '<dc:identifier id="uid">urn:uuid:hostile</dc:identifier></metadata>'
        f"<manifest>{items}{extra_items}</manifest>"
        f"<spine{toc}>{spine}</spine></package>"
    ).encode()


def xhtml(body: str, *, title: str = "Chapter", prolog: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"{prolog}"
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        f"<head><title>{title}</title></head><body>{body}</body></html>"
    ).encode()


def chapter_body(n: int) -> str:
    return f"<h1>Chapter {n}</h1>" + "".join(f"<p>{s}</p>" for s in SENTENCES)


def nav_xhtml(entries: list[tuple[str, str]], *, prolog: str = "") -> bytes:
    lis = "".join(f'<li><a href="{href}">{label}</a></li>' for href, label in entries)
    return xhtml(f'<nav epub:type="toc"><ol>{lis}</ol></nav>', title="Contents", prolog=prolog)


def ncx_xml(entries: list[tuple[str, str]], *, prolog: str = "") -> bytes:
    points = "".join(
        f'<navPoint id="p{i}" playOrder="{i + 1}"><navLabel><text>{label}</text></navLabel>'
        f'<content src="{src}"/></navPoint>'
        for i, (src, label) in enumerate(entries)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"{prolog}"
        '<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1"><head/>'
        f"<docTitle><text>Hostile</text></docTitle><navMap>{points}</navMap></ncx>"
    ).encode()


def epub_members(n_chapters: int = 2, *, ncx: bool = False) -> dict[str, bytes]:
    names = [f"ch{i + 1}.xhtml" for i in range(n_chapters)]
    members = {
        "mimetype": b"application/epub+zip",
        "META-INF/container.xml": container_xml(),
        "OEBPS/content.opf": opf_xml(names, ncx=ncx),
        "OEBPS/nav.xhtml": nav_xhtml([(n, f"Chapter {i + 1}") for i, n in enumerate(names)]),
    }
    if ncx:
        members["OEBPS/toc.ncx"] = ncx_xml([(n, f"Chapter {i + 1}") for i, n in enumerate(names)])
    for i, name in enumerate(names):
        members[f"OEBPS/{name}"] = xhtml(chapter_body(i + 1), title=f"Chapter {i + 1}")
    return members


def write_epub(
    path: Path, members: dict[str, bytes] | list[tuple[str, bytes]], *, stored: Collection[str] = ()
) -> Path:
    """Write members with zipfile (mimetype first and stored, the rest deflated unless in ``stored``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    items = list(members.items()) if isinstance(members, dict) else list(members)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in items:
            method = zipfile.ZIP_STORED if name == "mimetype" or name in stored else zipfile.ZIP_DEFLATED
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data, compress_type=method)
    return path


def write_raw_epub(path: Path, members: dict[str, bytes], extra: list[RawMember]) -> Path:
    raws = [member(name, data, stored=name == "mimetype") for name, data in members.items()]
    path.write_bytes(raw_zip(raws + extra))
    return path


# ---------------------------------------------------------------------------------------------------
# Entity attacks
# ---------------------------------------------------------------------------------------------------


def xxe_prolog(directory: Path, root: str) -> str:
    """A DOCTYPE whose external entity reads the secret file (and an external parameter entity)."""
    secret = (directory / SECRET_FILE).resolve()
    return (
        f'<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "file://{secret}">'
        f'<!ENTITY % ext SYSTEM "file://{secret}"> %ext;]>\n'
    )


def laughs_prolog(root: str) -> str:
    """Billion laughs: ten levels of ten references, 10^9 "lol"s if expanded."""
    ents = ['<!ENTITY lol0 "lol">']
    ents += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return f"<!DOCTYPE {root} [{''.join(ents)}]>\n"


def write_secret(directory: Path) -> None:
    (directory / SECRET_FILE).write_text(SECRET + "\n")


# ---------------------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Path]
    expect: str  # "ok", "error" or "either"
    needle: str = ""  # expected (case-insensitive) in the error line
    text: str = ""  # expected (case-insensitive) in the text read, when ok (checked by reading in-process)
    words: tuple[int, int] = (0, 0)  # when ok: the book's word count lies in this range (from inspect)
    depends_on: str = ""  # a reader module owned by someone else (xfail when it breaks)
    argv_tail: tuple[str, ...] = ()  # how the path is passed: e.g. ("--",) before it


def _valid(d: Path, name: str = "book.epub", **kw: bool) -> Path:
    return write_epub(d / name, epub_members(**kw))


def zip_bomb_1gib(d: Path) -> Path:
    """A content document that honestly declares 1 GiB of zeros (about 1 MB compressed)."""
    members = epub_members()
    del members["OEBPS/ch2.xhtml"]
    bomb = RawMember(b"OEBPS/ch2.xhtml", deflated_zeros(1024), crc=CRC32_ZEROS_1GIB, size=GIB)
    return write_raw_epub(d / "bomb.epub", members, [bomb])


def zip_bomb_lying_size(d: Path) -> Path:
    """container.xml declares 300 bytes but inflates to 256 MiB of zeros."""
    members = epub_members()
    del members["META-INF/container.xml"]
    liar = RawMember(b"META-INF/container.xml", deflated_zeros(256), crc=0, size=300)
    return write_raw_epub(d / "liar.epub", members, [liar])


def zip_bomb_lying_local_header(d: Path) -> Path:
    """The central directory says 4 KB, the local header says 1 GiB: only the data decides."""
    members = epub_members()
    del members["OEBPS/ch2.xhtml"]
    liar = RawMember(b"OEBPS/ch2.xhtml", deflated_zeros(64), crc=0, size=4096, local_size=GIB)
    return write_raw_epub(d / "liar-local.epub", members, [liar])


def zip_bomb_many_members(d: Path) -> Path:
    """65,000 tiny members (a central directory bomb; more needs zip64 records)."""
    members = epub_members()
    extra = [RawMember(f"OEBPS/junk/{i}.txt".encode(), b"", method=0) for i in range(65_000)]
    return write_raw_epub(d / "many.epub", members, extra)


def zip_bomb_total(d: Path) -> Path:
    """600 members of 1 MiB of zeros each: each passes a per-member ratio check, the sum is 600 MiB."""
    members = epub_members()
    one = deflated_zeros(1)
    crc = zlib.crc32(bytes(1 << 20))
    extra = [RawMember(f"OEBPS/z{i}.bin".encode(), one, crc=crc, size=1 << 20) for i in range(600)]
    return write_raw_epub(d / "total.epub", members, extra)


def zip_bomb_xhtml_flood(d: Path) -> Path:
    """400 spine documents just under 1 MiB of tiny paragraphs each (~500:1, but under the per-member
    ratio check's 1 MiB floor): 400 MB of XHTML and 50 million paragraphs if read naively."""
    para = b"<p>a</p>"
    body = para * (1_000_000 // len(para))
    doc = xhtml(body.decode())
    packed = deflate(doc)
    crc = zlib.crc32(doc)
    names = [f"f{i}.xhtml" for i in range(400)]
    members = {
        "mimetype": b"application/epub+zip",
        "META-INF/container.xml": container_xml(),
        "OEBPS/content.opf": opf_xml(names, nav=False),
    }
    extra = [RawMember(f"OEBPS/{n}".encode(), packed, crc=crc, size=len(doc)) for n in names]
    return write_raw_epub(d / "flood.epub", members, extra)


def markup_flood_epub(d: Path) -> Path:
    """Twelve documents of 100,000 short paragraphs each, random letters (ratio ~4: no bomb by size)."""
    rng = random.Random(11)
    letters = "abcdefghijklmnopqrstuvwxyz"
    names = [f"f{i}.xhtml" for i in range(12)]
    members = {
        "mimetype": b"application/epub+zip",
        "META-INF/container.xml": container_xml(),
        "OEBPS/content.opf": opf_xml(names, nav=False),
    }
    for n in names:
        body = "".join(f"<p>{rng.choice(letters)}{rng.choice(letters)}</p>" for _ in range(50_000))
        members[f"OEBPS/{n}"] = xhtml(body)
    return write_epub(d / "markup-flood.epub", members)


def nested_zip_epub(d: Path) -> Path:
    """A readable EPUB that also carries a zip of a zip of a 1 GiB bomb (never to be opened)."""
    inner = raw_zip([RawMember(b"zeros.bin", deflated_zeros(1024), crc=CRC32_ZEROS_1GIB, size=GIB)])
    middle = raw_zip([member("inner.zip", inner, stored=True)])
    members = epub_members()
    members["OEBPS/nested.zip"] = middle
    members["OEBPS/content.opf"] = opf_xml(
        ["ch1.xhtml", "ch2.xhtml"],
        extra_items='<item id="z" href="nested.zip" media-type="application/zip"/>',
    )
    return write_epub(d / "nested.epub", members, stored={"OEBPS/nested.zip"})


def nested_zip_fb2(d: Path) -> Path:
    """An .fb2.zip whose .fb2 member is itself a zip bomb, not XML."""
    inner = raw_zip([RawMember(b"book.fb2", deflated_zeros(1024), crc=CRC32_ZEROS_1GIB, size=GIB)])
    path = d / "nested.fb2.zip"
    path.write_bytes(raw_zip([member("book.fb2", inner)]))
    return path


def _slip(names: list[str], file_name: str) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        members = epub_members()
        extra = [member(n, b"<p>evil</p>") for n in names]
        book_dir = d / "a" / "b"
        book_dir.mkdir(parents=True, exist_ok=True)
        return write_raw_epub(book_dir / file_name, members, extra)

    return build


def _epub_with(
    file_name: str,
    change: Callable[[dict[str, bytes], Path], None],
    *,
    ncx: bool = False,
    stored: Collection[str] = (),
) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        members = epub_members(ncx=ncx)
        change(members, d)
        return write_epub(d / file_name, members, stored=stored)

    return build


def _xxe_container(m: dict[str, bytes], d: Path) -> None:
    write_secret(d)
    m["META-INF/container.xml"] = container_xml(prolog=xxe_prolog(d, "container"))


def _laughs_container(m: dict[str, bytes], d: Path) -> None:
    m["META-INF/container.xml"] = container_xml(prolog=laughs_prolog("container"))


def _xxe_opf(m: dict[str, bytes], d: Path) -> None:
    write_secret(d)
    m["OEBPS/content.opf"] = opf_xml(
        ["ch1.xhtml", "ch2.xhtml"], title="&xxe;", prolog=xxe_prolog(d, "package")
    )


def _laughs_opf(m: dict[str, bytes], d: Path) -> None:
    m["OEBPS/content.opf"] = opf_xml(
        ["ch1.xhtml", "ch2.xhtml"], title="&lol9;", prolog=laughs_prolog("package")
    )


def _xxe_xhtml(m: dict[str, bytes], d: Path) -> None:
    write_secret(d)
    m["OEBPS/ch2.xhtml"] = xhtml("<h1>Chapter 2</h1><p>&xxe;</p>", prolog=xxe_prolog(d, "html"))


def _laughs_xhtml(m: dict[str, bytes], d: Path) -> None:
    m["OEBPS/ch2.xhtml"] = xhtml("<h1>Chapter 2</h1><p>&lol9;</p>", prolog=laughs_prolog("html"))


def _laughs_xhtml_late(m: dict[str, bytes], d: Path) -> None:
    """The DOCTYPE comes after 100 KB of comments, beyond any look-ahead for "<!ENTITY"."""
    pad = "<!--" + "x" * 100_000 + "-->\n"
    m["OEBPS/ch2.xhtml"] = xhtml("<h1>Chapter 2</h1><p>&lol9;</p>", prolog=pad + laughs_prolog("html"))


def _xxe_xhtml_late(m: dict[str, bytes], d: Path) -> None:
    write_secret(d)
    pad = "<!--" + "x" * 100_000 + "-->\n"
    m["OEBPS/ch2.xhtml"] = xhtml("<h1>Chapter 2</h1><p>&xxe;</p>", prolog=pad + xxe_prolog(d, "html"))


def _xinclude_xhtml(m: dict[str, bytes], d: Path) -> None:
    write_secret(d)
    secret = (d / SECRET_FILE).resolve()
    m["OEBPS/ch2.xhtml"] = xhtml(
        '<h1>Chapter 2</h1><p>Nothing to see.</p><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
        f'href="file://{secret}" parse="text"/>' + "".join(f"<p>{s}</p>" for s in SENTENCES)
    )


def _xxe_ncx(m: dict[str, bytes], d: Path) -> None:
    write_secret(d)
    del m["OEBPS/nav.xhtml"]
    m["OEBPS/content.opf"] = opf_xml(["ch1.xhtml", "ch2.xhtml"], nav=False, ncx=True)
    m["OEBPS/toc.ncx"] = ncx_xml([("ch1.xhtml", "&xxe;"), ("ch2.xhtml", "Two")], prolog=xxe_prolog(d, "ncx"))


def _laughs_ncx(m: dict[str, bytes], d: Path) -> None:
    del m["OEBPS/nav.xhtml"]
    m["OEBPS/content.opf"] = opf_xml(["ch1.xhtml", "ch2.xhtml"], nav=False, ncx=True)
    m["OEBPS/toc.ncx"] = ncx_xml([("ch1.xhtml", "&lol9;"), ("ch2.xhtml", "Two")], prolog=laughs_prolog("ncx"))


def _xxe_nav(m: dict[str, bytes], d: Path) -> None:
    write_secret(d)
    m["OEBPS/nav.xhtml"] = nav_xhtml(
        [("ch1.xhtml", "&xxe;"), ("ch2.xhtml", "Two")], prolog=xxe_prolog(d, "html")
    )


def _drm(m: dict[str, bytes], d: Path) -> None:
    m["META-INF/encryption.xml"] = (
        b'<?xml version="1.0"?><encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        b'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        b'<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
        b'<enc:CipherData><enc:CipherReference URI="OEBPS/ch1.xhtml"/></enc:CipherData>'
        b"</enc:EncryptedData></encryption>"
    )
    rng = random.Random(1)
    m["OEBPS/ch1.xhtml"] = rng.randbytes(4000)
    m["OEBPS/ch2.xhtml"] = rng.randbytes(4000)


def _drm_undeclared(m: dict[str, bytes], d: Path) -> None:
    """Encrypted content without an encryption.xml: every document is ciphertext."""
    rng = random.Random(2)
    for name in ("OEBPS/ch1.xhtml", "OEBPS/ch2.xhtml"):
        m[name] = rng.randbytes(4000)


def _no_container(m: dict[str, bytes], d: Path) -> None:
    del m["META-INF/container.xml"]


def _missing_opf(m: dict[str, bytes], d: Path) -> None:
    del m["OEBPS/content.opf"]


def _opf_missing_files(m: dict[str, bytes], d: Path) -> None:
    del m["OEBPS/ch1.xhtml"]
    del m["OEBPS/ch2.xhtml"]


def _opf_some_missing(m: dict[str, bytes], d: Path) -> None:
    del m["OEBPS/ch1.xhtml"]


def _opf_garbage(m: dict[str, bytes], d: Path) -> None:
    m["OEBPS/content.opf"] = random.Random(3).randbytes(2000)


def _opf_bad_encoding(m: dict[str, bytes], d: Path) -> None:
    m["OEBPS/content.opf"] = m["OEBPS/content.opf"].replace(
        b'encoding="UTF-8"', b'encoding="x-no-such-codec"'
    )


def _xhtml_bad_encoding(m: dict[str, bytes], d: Path) -> None:
    m["OEBPS/ch2.xhtml"] = m["OEBPS/ch2.xhtml"].replace(b'encoding="UTF-8"', b'encoding="x-no-such-codec"')


def _spine_loop(m: dict[str, bytes], d: Path) -> None:
    """100,000 itemrefs to the same document and a nav that points at itself."""
    refs = '<itemref idref="c0"/>' * 100_000
    opf = opf_xml(["ch1.xhtml", "ch2.xhtml"]).decode()
    m["OEBPS/content.opf"] = opf.replace("</spine>", refs + "</spine>").encode()
    m["OEBPS/nav.xhtml"] = nav_xhtml([("nav.xhtml", "Me"), ("ch1.xhtml#x", "One"), ("ch2.xhtml", "Two")])


def _nav_100k(m: dict[str, bytes], d: Path) -> None:
    """100,000 TOC entries, each at an empty heading of one document."""
    n = 100_000
    m["OEBPS/ch1.xhtml"] = xhtml("".join(f'<h2 id="h{i}"></h2>' for i in range(n)))
    m["OEBPS/nav.xhtml"] = nav_xhtml([(f"ch1.xhtml#h{i}", f"Chapter {i}") for i in range(n)])


def _nested_divs_xhtml(m: dict[str, bytes], d: Path) -> None:
    n = 100_000
    m["OEBPS/ch2.xhtml"] = xhtml("<h1>Chapter 2</h1>" + "<div>" * n + f"<p>{READABLE}</p>" + "</div>" * n)


def _truncated_member(m: dict[str, bytes], d: Path) -> None:
    """Chapter 2's XHTML stops in the middle of a tag (a half-written file): what is there is read."""
    doc = m["OEBPS/ch2.xhtml"]
    m["OEBPS/ch2.xhtml"] = doc[: doc.index(b"</p>", doc.index(b"<p>") + 3) + 10]


def corrupt_member_epub(d: Path) -> Path:
    """Chapter 2's compressed bytes are damaged (bad CRC / bad deflate): chapter 1 is still read."""
    path = _valid(d, "corrupt-member.epub")
    data = bytearray(path.read_bytes())
    name = b"OEBPS/ch2.xhtml"
    at = data.index(name) + len(name)  # start of its data in the local header (no extra field)
    for i in range(at + 10, at + 40):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


def encrypted_member_epub(d: Path) -> Path:
    """A member flagged as zip-password-encrypted (traditional PKWARE encryption bit)."""
    members = epub_members()
    doc = members.pop("OEBPS/ch2.xhtml")
    enc = member("OEBPS/ch2.xhtml", doc)
    enc.flags |= 0x1
    return write_raw_epub(d / "zip-encrypted.epub", members, [enc])


def unknown_method_epub(d: Path) -> Path:
    members = epub_members()
    doc = members.pop("OEBPS/ch2.xhtml")
    odd = RawMember(b"OEBPS/ch2.xhtml", doc, method=99, crc=zlib.crc32(doc), size=len(doc))
    return write_raw_epub(d / "method99.epub", members, [odd])


def name_mismatch_epub(d: Path) -> Path:
    members = epub_members()
    doc = members.pop("OEBPS/ch2.xhtml")
    odd = member("OEBPS/ch2.xhtml", doc)
    odd.local_name = b"OEBPS/xx2.xhtml"
    return write_raw_epub(d / "name-mismatch.epub", members, [odd])


def truncated_zip(d: Path) -> Path:
    path = _valid(d, "truncated.epub")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def duplicate_members(d: Path) -> Path:
    members = list(epub_members().items())
    members.append(("OEBPS/ch2.xhtml", b"\x00\x01garbage"))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        return write_epub(d / "duplicate.epub", members)


def zero_byte(name: str) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        path = d / name
        path.write_bytes(b"")
        return path

    return build


def garbage(name: str, head: bytes = b"") -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        path = d / name
        rng = random.Random(name)
        body = rng.randbytes(64 * 1024)
        if not head:  # make sure no format magic appears by chance at the start
            body = b"\x00\xff" + body[2:]
        path.write_bytes(head + body)
        return path

    return build


def mobi_garbage(d: Path) -> Path:
    """A PalmDB header that says BOOKMOBI followed by noise."""
    rng = random.Random(5)
    head = bytearray(rng.randbytes(78))
    head[60:68] = b"BOOKMOBI"
    path = d / "garbage-magic.mobi"
    path.write_bytes(bytes(head) + rng.randbytes(20_000))
    return path


def docx_garbage(d: Path) -> Path:
    """A zip with word/document.xml that is not XML."""
    path = d / "garbage.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", random.Random(6).randbytes(5000))
    return path


def docx_laughs(d: Path) -> Path:
    path = d / "laughs.docx"
    body = (
        '<?xml version="1.0"?>\n'
        + laughs_prolog("w:document")
        + '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", body)
    return path


def directory(d: Path) -> Path:
    path = d / "folder.epub"
    path.mkdir()
    return path


def fifo(d: Path) -> Path:
    path = d / "pipe.txt"
    os.mkfifo(path)
    return path


def symlink_dev_zero(d: Path) -> Path:
    path = d / "zero.txt"
    path.symlink_to("/dev/zero")
    return path


def symlink_dangling(d: Path) -> Path:
    path = d / "dangling.epub"
    path.symlink_to(d / "no-such-target.epub")
    return path


def symlink_loop(d: Path) -> Path:
    path = d / "loop.epub"
    path.symlink_to(d / "loop.epub")
    return path


def html_symlink_cover(d: Path) -> Path:
    """An HTML book whose cover is a symlink leaving the book's folder (to the secret file)."""
    write_secret(d)
    book_dir = d / "html-book"
    book_dir.mkdir()
    (book_dir / "cover.jpg").symlink_to(d / SECRET_FILE)
    path = book_dir / "book.html"
    path.write_text(
        '<html><head><title>Linked</title><link rel="coverpage" href="cover.jpg"/>'
        '<link rel="coverpage" href="../secret.txt"/></head><body>'
        f"<h2>Chapter 1</h2><p>{READABLE}</p><h2>Chapter 2</h2><p>{READABLE}</p></body></html>"
    )
    return path


def symlinked_book(d: Path) -> Path:
    """The book itself is a symlink to a valid EPUB in another folder: it is read (the user chose it)."""
    target = _valid(d / "elsewhere", "real.epub")
    link = d / "link.epub"
    link.symlink_to(target)
    return link


def txt_invalid_utf8(d: Path) -> Path:
    """UTF-8 text with stray invalid bytes, a few cp1252 words and a NUL."""
    good = "CHAPTER I\n\n" + READABLE + "\n\nCHAPTER II\n\n" + READABLE + "\n"
    data = good.encode("utf-8")
    data = data.replace(b"harbour", b"harb\xffour").replace(b"grey", b"gr\xe9y\x00")
    data = data.replace(b"voyage", "voyage café".encode("cp1252"))
    path = d / "broken-utf8.txt"
    path.write_bytes(data)
    return path


def txt_mixed_encodings(d: Path) -> Path:
    """Paragraphs in UTF-8, cp1252, latin-1 and UTF-16 fragments glued together."""
    parts = [
        ("CHAPTER I\n\nThe café served crème brûlée to the sailors every evening.\n\n").encode(),
        ("Señor Muñoz paid for the naïve captain's coffee and left the harbour.\n\n").encode("cp1252"),
        ("CHAPTER II\n\nThe façade of the old church was grey and cold.\n\n").encode("latin-1"),
        "Ein Bär trank Wasser.\n\n".encode("utf-16-le"),
        (READABLE + "\n").encode(),
    ]
    path = d / "mixed.txt"
    path.write_bytes(b"".join(parts))
    return path


def txt_utf16_no_bom(d: Path) -> Path:
    path = d / "utf16.txt"
    path.write_bytes(("CHAPTER I\n\n" + READABLE + "\n").encode("utf-16-le"))
    return path


def txt_only_punctuation(d: Path) -> Path:
    path = d / "punct.txt"
    path.write_text("* * *\n\n...\n\n--- !!! ???\n\n" * 1000)
    return path


def txt_control_chars(d: Path) -> Path:
    path = d / "control.txt"
    path.write_bytes(b"".join(bytes([i % 32]) for i in range(20_000)))
    return path


def txt_one_paragraph_5mb(d: Path) -> Path:
    """5 MB of words with no punctuation and no line break."""
    rng = random.Random(7)
    words = ["ship", "sea", "wind", "north", "grey", "harbour", "sailor", "night", "rope", "wave"]
    out: list[str] = []
    size = 0
    while size < 5_000_000:
        w = rng.choice(words)
        out.append(w)
        size += len(w) + 1
    path = d / "one-paragraph.txt"
    path.write_text(" ".join(out))
    return path


def txt_one_word_5mb(d: Path) -> Path:
    """5 MB of letters with no space at all."""
    path = d / "one-word.txt"
    path.write_text("abcdefghij" * 500_000)
    return path


def txt_100k_headings(d: Path) -> Path:
    path = d / "headings.txt"
    path.write_text("".join(f"CHAPTER {i % 9999 + 1}\n\n" for i in range(100_000)))
    return path


def html_100k_headings(d: Path) -> Path:
    path = d / "headings.html"
    path.write_text("<html><body>" + "<h2>Chapter</h2>" * 100_000 + "</body></html>")
    return path


def html_30k_headings_some_text(d: Path) -> Path:
    """30,000 empty chapters and one with text (the 100k variant above is all empty)."""
    path = d / "headings-text.html"
    path.write_text(
        "<html><head><title>Many</title></head><body>"
        + "<h2>Chapter</h2>" * 30_000
        + f"<h2>Last</h2><p>{READABLE}</p></body></html>"
    )
    return path


def html_nested_divs(d: Path) -> Path:
    n = 100_000
    path = d / "nested.html"
    path.write_text(
        "<html><head><title>Deep</title></head><body><h2>Chapter 1</h2>"
        + "<div>" * n
        + f"<p>{READABLE}</p>"
        + "</div>" * n
        + "</body></html>"
    )
    return path


def html_unclosed_tags(d: Path) -> Path:
    n = 50_000
    path = d / "unclosed.html"
    path.write_text(
        "<html><head><title>Open</title></head><body><h2>Chapter 1</h2>" + "<span><b><i>" * n + READABLE
    )
    return path


def html_tag_flood(d: Path) -> Path:
    """400,000 empty spans around a readable paragraph (1.6 MB)."""
    path = d / "tags.html"
    path.write_text(f"<html><body><h2>One</h2><p>{READABLE}</p>" + "<br>" * 400_000 + "</body></html>")
    return path


def html_data_uri(d: Path) -> Path:
    """A 20 MB inline (data: URI) image and a readable page: the image is never parsed."""
    path = d / "inline-image.html"
    blob = "A" * 20_000_000
    path.write_text(
        f'<html><head><title>Inline</title></head><body><h2>One</h2><img src="data:image/png;base64,{blob}"/>'
        f"<p>{READABLE}</p><h2>Two</h2><p>{READABLE}</p></body></html>"
    )
    return path


def txt_too_large(d: Path) -> Path:
    path = d / "huge.txt"
    line = (READABLE + "\n\n").encode()
    path.write_bytes(line * (17 * 1024 * 1024 // len(line) + 1))
    return path


def txt_too_many_lines(d: Path) -> Path:
    path = d / "lines.txt"
    path.write_bytes(b"ab\n" * 600_000)
    return path


def txt_one_paragraph_15mb_astral(d: Path) -> Path:
    """15 MB in one line, with one emoji: Python stores it at 4 bytes a character (60 MB a copy)."""
    path = d / "astral.txt"
    path.write_text("sea wind " * 1_650_000 + "\U0001f600", encoding="utf-8")
    return path


def _xxe_xhtml_utf16(m: dict[str, bytes], d: Path) -> None:
    """The entity declarations in UTF-16, where a byte search for "<!ENTITY" sees nothing."""
    write_secret(d)
    doc = xhtml("<h1>Chapter 2</h1><p>&xxe;</p>", prolog=xxe_prolog(d, "html")).decode()
    m["OEBPS/ch2.xhtml"] = doc.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")


def html_marked_section(d: Path) -> Path:
    """A malformed "<![" marked section, which makes Python's html.parser give up (found by fuzzing)."""
    path = d / "marked.html"
    path.write_text(
        f"<html><body><h2>One</h2><p>{READABLE}</p><![if junk <![ ]]><h2>Two</h2><p>{READABLE}</p>"
    )
    return path


def _surrogate_refs(m: dict[str, bytes], d: Path) -> None:
    """References to surrogates and NUL: recovered by libxml2 into text lxml cannot decode (fuzzing)."""
    m["OEBPS/ch2.xhtml"] = xhtml(f"<h1>Chapter 2</h1><p>a&#xD800;b&#0;</p><p>{READABLE}</p>")


def fb2(body: str, *, prolog: str = "", title: str = "Hostile") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + prolog
        + '<FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0" '
        'xmlns:l="http://www.w3.org/1999/xlink"><description><title-info>'
        f"<book-title>{title}</book-title><lang>en</lang></title-info></description>"
        f"<body>{body}</body></FictionBook>"
    )


def fb2_xxe(d: Path) -> Path:
    write_secret(d)
    path = d / "xxe.fb2"
    path.write_text(
        fb2(
            f"<section><title><p>One</p></title><p>&xxe;</p><p>{READABLE}</p></section>",
            prolog=xxe_prolog(d, "FictionBook"),
        )
    )
    return path


def fb2_laughs(d: Path) -> Path:
    path = d / "laughs.fb2"
    path.write_text(
        fb2("<section><p>&lol9;</p></section>", prolog=laughs_prolog("FictionBook"), title="&lol9;")
    )
    return path


def fb2_nested_sections(d: Path) -> Path:
    n = 10_000
    path = d / "nested.fb2"
    path.write_text(fb2("<section>" * n + f"<p>{READABLE}</p>" + "</section>" * n))
    return path


def fb2_huge_cover(d: Path) -> Path:
    """A 30 MB base64 'cover' that is not an image, plus readable text."""
    path = d / "cover.fb2"
    blob = "A" * 30_000_000
    text = fb2(f"<section><title><p>One</p></title><p>{READABLE}</p></section>")
    text = text.replace(
        "<lang>en</lang>", '<lang>en</lang><coverpage><image l:href="#c"/></coverpage>'
    ).replace("</FictionBook>", f'<binary id="c" content-type="image/jpeg">{blob}</binary></FictionBook>')
    path.write_text(text)
    return path


def html_xxe(d: Path) -> Path:
    write_secret(d)
    path = d / "xxe.html"
    path.write_text(
        '<?xml version="1.0"?>\n'
        + xxe_prolog(d, "html")
        + f"<html><head><title>X</title></head><body><h2>Chapter 1</h2><p>&xxe; {READABLE}</p></body></html>"
    )
    return path


def pdf_no_text(d: Path) -> Path:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(3):
        writer.add_blank_page(width=595, height=842)
    path = d / "scanned.pdf"
    with path.open("wb") as fh:
        writer.write(fh)
    return path


def pdf_encrypted(d: Path) -> Path:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.encrypt(user_password="secret-user", owner_password="secret-owner")
    path = d / "locked.pdf"
    with path.open("wb") as fh:
        writer.write(fh)
    return path


def pdf_truncated(d: Path) -> Path:
    path = d / "truncated.pdf"
    path.write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type")
    return path


def name_with_spaces_unicode(d: Path) -> Path:
    return _valid(d / "dir with spaces", "Ünïcødé bøøk — «1».epub")


def name_leading_dash(d: Path) -> Path:
    return _valid(d, "-book.epub")


CASES: list[Case] = [
    # --- zip bombs ---------------------------------------------------------------------------------
    Case("zip-bomb-1gib-member", zip_bomb_1gib, "error", "zip bomb"),
    Case("zip-bomb-lying-size", zip_bomb_lying_size, "error", "corrupt"),
    Case("zip-bomb-lying-local-header", zip_bomb_lying_local_header, "either", text="chapter 1"),
    Case("zip-bomb-100k-members", zip_bomb_many_members, "error", "members"),
    Case("zip-bomb-total-size", zip_bomb_total, "error", "zip bomb"),
    Case("zip-bomb-xhtml-flood", zip_bomb_xhtml_flood, "error", "zip bomb"),
    Case("epub-markup-flood", markup_flood_epub, "error", "too much markup"),
    Case("nested-zip-in-epub", nested_zip_epub, "ok", text="fair winds"),
    Case("nested-zip-fb2-zip", nested_zip_fb2, "error"),
    # --- zip slip ----------------------------------------------------------------------------------
    Case(
        "zip-slip-dotdot", _slip(["../../evil.xhtml", "OEBPS/../../../evil2"], "slip.epub"), "error", "unsafe"
    ),
    Case("zip-slip-absolute", _slip(["/tmp/hostile-evil-abs"], "abs.epub"), "error", "unsafe"),
    Case("zip-slip-backslash", _slip(["..\\..\\evil-bs.xhtml"], "bs.epub"), "error", "unsafe"),
    Case("zip-slip-drive-letter", _slip(["C:/evil-drive.xhtml", "C:\\evil\\x"], "drive.epub"), "either"),
    # --- XML entities (XXE, billion laughs) -------------------------------------------------------
    Case("xxe-container", _epub_with("xxe-container.epub", _xxe_container), "error", "entities"),
    Case("laughs-container", _epub_with("laughs-container.epub", _laughs_container), "error", "entities"),
    Case("xxe-opf", _epub_with("xxe-opf.epub", _xxe_opf), "error", "entities"),
    Case("laughs-opf", _epub_with("laughs-opf.epub", _laughs_opf), "error", "entities"),
    Case("xxe-xhtml", _epub_with("xxe-xhtml.epub", _xxe_xhtml), "error", "entities"),
    Case("laughs-xhtml", _epub_with("laughs-xhtml.epub", _laughs_xhtml), "error", "entities"),
    Case("laughs-xhtml-after-100kb", _epub_with("laughs-late.epub", _laughs_xhtml_late), "error", "entities"),
    Case("xxe-xhtml-after-100kb", _epub_with("xxe-late.epub", _xxe_xhtml_late), "error", "entities"),
    Case("xxe-xhtml-utf16", _epub_with("xxe-utf16.epub", _xxe_xhtml_utf16), "error", "entities"),
    Case("xinclude-xhtml", _epub_with("xinclude.epub", _xinclude_xhtml), "ok", text="fair winds"),
    Case("xxe-ncx", _epub_with("xxe-ncx.epub", _xxe_ncx, ncx=True), "either", text="fair winds"),
    Case("laughs-ncx", _epub_with("laughs-ncx.epub", _laughs_ncx, ncx=True), "either", text="fair winds"),
    Case("xxe-nav", _epub_with("xxe-nav.epub", _xxe_nav), "error", "entities"),
    Case("xxe-fb2", fb2_xxe, "error", "entities"),
    Case("laughs-fb2", fb2_laughs, "error", "entities"),
    Case("xxe-html", html_xxe, "either", text="fair winds"),
    Case("xxe-docx", docx_laughs, "error", depends_on="docx"),
    # --- DRM and broken packages -------------------------------------------------------------------
    Case("drm-encryption-xml", _epub_with("drm.epub", _drm), "error", "drm"),
    Case("drm-undeclared-ciphertext", _epub_with("cipher.epub", _drm_undeclared), "error"),
    Case("zip-password-encrypted-member", encrypted_member_epub, "either", text="chapter 1"),
    Case("zip-unknown-compression", unknown_method_epub, "either", text="chapter 1"),
    Case("zip-local-name-mismatch", name_mismatch_epub, "either", text="chapter 1"),
    Case("zip-duplicate-members", duplicate_members, "either"),
    Case("truncated-zip", truncated_zip, "error", "zip"),
    Case("corrupt-member-readable-rest", corrupt_member_epub, "ok", text="chapter 1"),
    Case(
        "truncated-xhtml-member", _epub_with("truncated-doc.epub", _truncated_member), "ok", text="chapter 2"
    ),
    Case("no-container-xml", _epub_with("no-container.epub", _no_container), "error"),
    Case("missing-opf", _epub_with("missing-opf.epub", _missing_opf), "error", "missing"),
    Case("opf-points-at-missing-files", _epub_with("missing-files.epub", _opf_missing_files), "error"),
    Case(
        "opf-some-files-missing", _epub_with("some-missing.epub", _opf_some_missing), "ok", text="chapter 2"
    ),
    Case("opf-is-garbage", _epub_with("opf-garbage.epub", _opf_garbage), "error"),
    Case("opf-unknown-encoding", _epub_with("opf-encoding.epub", _opf_bad_encoding), "error"),
    Case("xhtml-unknown-encoding", _epub_with("xhtml-encoding.epub", _xhtml_bad_encoding), "either"),
    Case(
        "spine-100k-itemrefs-nav-loop",
        _epub_with("loop.epub", _spine_loop, stored={"OEBPS/content.opf"}),
        "ok",
        text="fair winds",
    ),
    Case("nav-100k-empty-entries", _epub_with("nav100k.epub", _nav_100k), "ok", words=(40, 60)),
    Case(
        "xhtml-100k-nested-divs",
        _epub_with("deep.epub", _nested_divs_xhtml, stored={"OEBPS/ch2.xhtml"}),
        "either",
    ),
    Case("xhtml-100k-nested-divs-deflated", _epub_with("deep2.epub", _nested_divs_xhtml), "either"),
    # --- not a book at all -------------------------------------------------------------------------
    Case("zero-byte-epub", zero_byte("empty.epub"), "error", "empty"),
    Case("zero-byte-txt", zero_byte("empty.txt"), "error", "empty"),
    *(
        Case(f"garbage{ext.replace('.', '-')}", garbage(f"garbage{ext}"), "error")
        for ext in (
            ".epub",
            ".txt",
            ".fb2",
            ".html",
            ".pdf",
            ".mobi",
            ".docx",
            ".azw3",
            ".odt",
            ".rtf",
            ".md",
        )
    ),
    Case("garbage-zip-magic", garbage("garbage-zip.epub", b"PK\x03\x04"), "error"),
    Case("garbage-pdf-magic", garbage("garbage-magic.pdf", b"%PDF-1.4\n"), "error", depends_on="pdf"),
    Case("garbage-rtf-magic", garbage("garbage-magic.rtf", b"{\\rtf1 "), "either", depends_on="rtf"),
    Case("garbage-mobi-magic", mobi_garbage, "error", depends_on="mobi"),
    Case("garbage-docx-xml", docx_garbage, "error", depends_on="docx"),
    Case("directory", directory, "error", "directory"),
    Case("fifo", fifo, "error", "regular file"),
    Case("symlink-to-dev-zero", symlink_dev_zero, "error", "regular file"),
    Case("symlink-dangling", symlink_dangling, "error", "no such file"),
    Case("symlink-loop", symlink_loop, "error"),
    Case("symlink-to-book-elsewhere", symlinked_book, "ok", text="fair winds"),
    Case("html-cover-symlink-outside", html_symlink_cover, "ok", text="fair winds"),
    # --- text pathologies --------------------------------------------------------------------------
    Case("txt-invalid-utf8", txt_invalid_utf8, "ok", text="fair winds"),
    Case("txt-mixed-encodings", txt_mixed_encodings, "ok", text="Señor Muñoz paid for the naïve captain"),
    Case("txt-utf16-no-bom", txt_utf16_no_bom, "ok", text="fair winds"),
    Case("txt-only-punctuation", txt_only_punctuation, "error", "no readable text"),
    Case("txt-control-chars", txt_control_chars, "error"),
    Case("txt-5mb-one-paragraph", txt_one_paragraph_5mb, "ok"),
    Case("txt-5mb-one-word", txt_one_word_5mb, "ok"),
    Case("txt-100k-empty-chapters", txt_100k_headings, "error", "no readable text"),
    Case("txt-over-16mb", txt_too_large, "error", "too large"),
    Case("txt-600k-lines", txt_too_many_lines, "error", "too many lines"),
    Case("txt-15mb-one-line-astral", txt_one_paragraph_15mb_astral, "ok", words=(3_300_000, 3_300_001)),
    Case("html-100k-empty-chapters", html_100k_headings, "error", "no readable text"),
    Case("html-30k-empty-chapters-one-full", html_30k_headings_some_text, "ok", words=(40, 50)),
    Case("html-100k-nested-divs", html_nested_divs, "ok", text="fair winds"),
    Case("html-150k-unclosed-tags", html_unclosed_tags, "ok", text="fair winds"),
    Case("html-malformed-marked-section", html_marked_section, "ok", text="fair winds"),
    Case(
        "xhtml-surrogate-char-refs", _epub_with("surrogates.epub", _surrogate_refs), "ok", text="fair winds"
    ),
    Case("html-400k-tags", html_tag_flood, "error", "too much markup"),
    Case("html-20mb-inline-image", html_data_uri, "ok", text="fair winds"),
    Case("fb2-10k-nested-sections", fb2_nested_sections, "either", text="fair winds"),
    Case("fb2-30mb-fake-cover", fb2_huge_cover, "ok", text="fair winds"),
    # --- PDF (reader owned by another module) ------------------------------------------------------
    Case("pdf-no-text-layer", pdf_no_text, "error", depends_on="pdf"),
    Case("pdf-encrypted", pdf_encrypted, "error", depends_on="pdf"),
    Case("pdf-truncated", pdf_truncated, "error", depends_on="pdf"),
    # --- file names --------------------------------------------------------------------------------
    Case("name-spaces-unicode", name_with_spaces_unicode, "ok", text="fair winds"),
    Case("name-leading-dash", name_leading_dash, "ok", text="fair winds", argv_tail=("--",)),
]

CASE_NAMES = [c.name for c in CASES]
assert len(set(CASE_NAMES)) == len(CASE_NAMES)


def case(name: str) -> Case:
    return next(c for c in CASES if c.name == name)
