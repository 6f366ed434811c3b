"""EPUB 2 / EPUB 3 reader: ``read_epub(path) -> Book``.

Reading order is the spine. Chapters come from the EPUB 3 navigation document (``epub:type="toc"``)
or, failing that, the EPUB 2 NCX. Every TOC target (a file or an anchor inside one) starts a chapter
that runs until the next target, across spine files if needed; nested entries are flattened and an
entry with no text of its own is dropped. Front and back matter (cover, title page, copyright,
colophon, the TOC page itself, Project Gutenberg boilerplate) is not read: it is recognised from
``epub:type`` / ``role``, EPUB 3 landmarks and the EPUB 2 guide. Without a usable TOC, every spine item
is one chapter titled from its first heading.

All archive and XML access goes through :mod:`ebook2audio.ingest.safety`.
"""

from __future__ import annotations

import html
import logging
import posixpath
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.entities import name2codepoint
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import BookError, DRMError
from ..model import Book, Chapter, Cover, Metadata
from .safety import SafeZip, TagBudget, parse_xml
from .xhtml import (
    FRONT_BACK_MATTER_TYPES,
    Anchor,
    Block,
    blocks_from_element,
    epub_types,
    inline_text,
    normalize_space,
    paragraphs_from_element,
)

__all__ = ["read_epub"]

log = logging.getLogger(__name__)

CONTAINER = "META-INF/container.xml"
ENCRYPTION = "META-INF/encryption.xml"
OPF_MEDIA_TYPE = "application/oebps-package+xml"
NCX_MEDIA_TYPE = "application/x-dtbncx+xml"
OPF_NS = "http://www.idpf.org/2007/opf"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

CONTENT_MEDIA_TYPES = frozenset({"application/xhtml+xml", "text/html", "application/html"})
CONTENT_EXTENSIONS = (".xhtml", ".html", ".htm", ".xht")
FONT_EXTENSIONS = (".otf", ".ttf", ".woff", ".woff2", ".eot", ".otc", ".ttc")

# Font obfuscation (not DRM): the IDPF algorithm and Adobe's.
FONT_OBFUSCATION = frozenset({"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"})

# EPUB 2 guide reference types that are not read.
GUIDE_SKIP_TYPES = frozenset(
    {
        "cover",
        "title-page",
        "titlepage",
        "toc",
        "copyright-page",
        "colophon",
        "loi",
        "lot",
        "index",
        "imprint",
    }
)

_XML_BUILTIN_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})
_ENTITY_RE = re.compile(rb"&([A-Za-z][A-Za-z0-9]{1,31});")
_NOTE_MARK_RE = re.compile(r"\s*\[[A-Za-z]{0,2}\d{1,4}\]")
_NUMBERING_RE = re.compile(r"^\s*(?:[0-9]{1,4}|[ivxlcdm]{1,7})\s*[.):\-–—]\s*", re.IGNORECASE)
_KEY_RE = re.compile(r"[\W_]+")
_WORD_RE = re.compile(r"[^\W_]+")
_HOSTILE = "declares XML entities"  # safety.parse_xml's refusal of DTD entities (XXE, billion laughs)
_BUDGET = "too much markup"  # safety.TagBudget: the whole book has absurdly many tags
_GUTENBERG_RE = re.compile(r"project\s+gutenberg", re.IGNORECASE)
_ROMAN = r"(?=[mdclxvi])m{0,4}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})"
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|first|second|third|last|"
    "un|une|premier|première|deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|dernier|dernière|"
    "eins|zwei|drei|vier|fünf|erste|erster|zweite|zweiter|dritte|dritter|"
    "uno|dos|tres|primero|primera|segundo|segunda|due|tre|primo|prima"
)
_SECTION_WORDS = (
    "part|chapter|book|section|volume|act|scene|canto|partie|chapitre|livre|tome|acte|scène|"
    "teil|kapitel|buch|band|parte|capítulo|capitulo|libro|capitolo|tomo"
)
# A TOC label that is only a number: "I", "2", "IV.", "Part 3", "Chapitre II", "Chapter Four"
_NUMBER_ONLY_RE = re.compile(
    rf"^\s*(?:(?:{_SECTION_WORDS})\s+)?(?:\d{{1,4}}|{_ROMAN}|{_NUMBER_WORDS})\s*[.:)]?\s*$", re.IGNORECASE
)

COVER_PAGE_MAX_TEXT = 64  # a "cover page" with more text than this is not an image wrapper
TITLE_SEPARATOR = " — "


# ----------------------------------------------------------------------------------------------------
# Archive access: names resolved the way hrefs are written (percent-encoding, Unicode forms, old zips)
# ----------------------------------------------------------------------------------------------------


class _Archive:
    def __init__(self, zf: SafeZip, name: str) -> None:
        self.zf = zf
        self.name = name
        self.budget = TagBudget(name)  # markup parsed for this book, all documents together
        self._exact: dict[str, str] = {}
        self._folded: dict[str, str] = {}
        for member in zf.names():
            if member.endswith("/"):
                continue
            for key in self._keys(member):
                self._exact.setdefault(key, member)
                self._folded.setdefault(key.casefold(), member)

    @staticmethod
    def _keys(member: str) -> Iterator[str]:
        yield member
        yield unicodedata.normalize("NFC", member)
        try:  # a UTF-8 name stored without the zip's UTF-8 flag is decoded as cp437 by zipfile
            alias = member.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return
        yield alias
        yield unicodedata.normalize("NFC", alias)

    def resolve(self, path: str) -> str | None:
        nfc = unicodedata.normalize("NFC", path)
        return self._exact.get(path) or self._exact.get(nfc) or self._folded.get(nfc.casefold())

    def read(self, path: str) -> bytes:
        member = self.resolve(path)
        if member is None:
            raise BookError(f"{self.name}: missing member {path!r}")
        return self.zf.read(member)


def _resolve_href(doc_path: str, href: str) -> tuple[str, str] | None:
    """(archive path, fragment) of an href written in the document at ``doc_path``; None if external."""
    href = href.strip()
    if not href:
        return None
    parts = urlsplit(href)
    if parts.scheme or parts.netloc:
        return None
    fragment = unquote(parts.fragment)
    rel = unquote(parts.path)
    if not rel:
        return doc_path, fragment
    if rel.startswith("/"):
        joined = posixpath.normpath(rel.lstrip("/"))
    else:
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(doc_path), rel))
    if joined == ".." or joined.startswith("../"):
        return None
    return joined, fragment


# ----------------------------------------------------------------------------------------------------
# XML helpers
# ----------------------------------------------------------------------------------------------------


def _local(tag: Any) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _ns(tag: Any) -> str:
    return tag[1:].partition("}")[0] if isinstance(tag, str) and tag.startswith("{") else ""


def _children(el: Any, name: str) -> list[Any]:
    return [c for c in el if _local(c.tag) == name]


def _first(el: Any, name: str) -> Any | None:
    for c in el.iter():
        if _local(c.tag) == name:
            return c
    return None


def _text(el: Any) -> str:
    """An element's text, whitespace collapsed (metadata: "夏目 漱石" keeps its space)."""
    return " ".join("".join(el.itertext()).split())


def _replace_html_entities(data: bytes) -> bytes:
    """Turn HTML named entities (``&nbsp;``) that an XML parser without the DTD rejects into numbers."""

    def repl(m: re.Match[bytes]) -> bytes:
        name = m.group(1).decode("ascii")
        if name in _XML_BUILTIN_ENTITIES or name not in name2codepoint:
            return m.group(0)
        return b"&#%d;" % name2codepoint[name]

    return _ENTITY_RE.sub(repl, data)


def _parse_document(data: bytes, what: str, budget: TagBudget, warnings: list[str]) -> Any:
    """Parse a content document: strict XML, then with HTML entities mapped, then in recovery mode
    (which keeps what precedes the damage: a warning says that text may be missing)."""
    budget.spend(data)  # once, however many tries the parse takes
    try:
        return parse_xml(data, what)
    except BookError as exc:
        if _HOSTILE in str(exc) or _BUDGET in str(exc) or "too large" in str(exc):
            raise
        fixed = _replace_html_entities(data)
        try:
            return parse_xml(fixed, what)
        except BookError as again:
            root = parse_xml(fixed, what, recover=True)
            warnings.append(f"{what} is damaged, read what could be recovered (text may be missing): {again}")
            return root


# ----------------------------------------------------------------------------------------------------
# Package
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    id: str
    path: str  # resolved archive path (may be missing from the archive)
    media_type: str
    properties: frozenset[str]

    @property
    def is_content(self) -> bool:
        return self.media_type in CONTENT_MEDIA_TYPES or self.path.lower().endswith(CONTENT_EXTENSIONS)

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/")


@dataclass
class _Package:
    opf_path: str
    root: Any
    metadata: Any | None
    manifest: dict[str, _Item]
    by_path: dict[str, _Item]
    spine: list[tuple[_Item, bool]]  # (item, linear)
    ncx_id: str
    guide: list[tuple[str, str, str]]  # (type, path, fragment)
    warnings: list[str] = field(default_factory=list)


def _check_encryption(arc: _Archive) -> list[str]:
    """Raise DRMError when content is encrypted; font obfuscation is fine."""
    if arc.resolve(ENCRYPTION) is None:
        return []
    try:
        root = parse_xml(arc.read(ENCRYPTION), f"{arc.name}: {ENCRYPTION}", budget=arc.budget)
    except BookError as exc:
        raise DRMError(f"{arc.name} is DRM-encrypted or damaged: its {ENCRYPTION} is unreadable") from exc
    encrypted: list[str] = []
    fonts = 0
    for data in root.iter():
        if _local(data.tag) != "EncryptedData":
            continue
        method = _first(data, "EncryptionMethod")
        algorithm = (method.get("Algorithm") if method is not None else "") or ""
        ref = _first(data, "CipherReference")
        uri = unquote((ref.get("URI") if ref is not None else "") or "")
        if algorithm.strip() in FONT_OBFUSCATION:
            continue
        if uri.lower().endswith(FONT_EXTENSIONS):
            fonts += 1
            continue
        encrypted.append(uri or "?")
    if encrypted:
        raise DRMError(
            f"{arc.name} is DRM-encrypted ({len(encrypted)} encrypted files, e.g. {encrypted[0]!r}); "
            "only DRM-free books can be read"
        )
    return [f"{fonts} embedded fonts are encrypted (ignored)"] if fonts else []


def _find_opf(arc: _Archive) -> str:
    if arc.resolve(CONTAINER) is None:
        raise BookError(f"{arc.name} is not a valid EPUB: {CONTAINER} is missing")
    root = parse_xml(arc.read(CONTAINER), f"{arc.name}: {CONTAINER}", budget=arc.budget)
    rootfiles = [el for el in root.iter() if _local(el.tag) == "rootfile" and el.get("full-path")]
    rootfiles.sort(key=lambda el: (el.get("media-type") or OPF_MEDIA_TYPE).strip() != OPF_MEDIA_TYPE)
    if not rootfiles:
        raise BookError(f"{arc.name}: {CONTAINER} names no package document (OPF)")
    wanted = unquote(rootfiles[0].get("full-path", "")).strip().lstrip("/")
    found = arc.resolve(posixpath.normpath(wanted))
    if found is None:
        raise BookError(f"{arc.name}: the package document {wanted!r} named in {CONTAINER} is missing")
    return found


def _read_package(arc: _Archive, opf_path: str) -> _Package:
    root = parse_xml(arc.read(opf_path), f"{arc.name}: {opf_path}", budget=arc.budget)
    if _local(root.tag) != "package":
        raise BookError(f"{arc.name}: {opf_path} is not an EPUB package document")
    metadata = next((c for c in root if _local(c.tag) == "metadata"), None)
    manifest: dict[str, _Item] = {}
    by_path: dict[str, _Item] = {}
    manifest_el = next((c for c in root if _local(c.tag) == "manifest"), None)
    for el in _children(manifest_el, "item") if manifest_el is not None else []:
        resolved = _resolve_href(opf_path, el.get("href") or "")
        item_id = el.get("id") or ""
        if resolved is None or not item_id:
            continue
        path = arc.resolve(resolved[0]) or resolved[0]
        item = _Item(
            id=item_id,
            path=path,
            media_type=(el.get("media-type") or "").strip().lower(),
            properties=frozenset((el.get("properties") or "").split()),
        )
        manifest.setdefault(item_id, item)
        by_path.setdefault(path, item)
    spine_el = next((c for c in root if _local(c.tag) == "spine"), None)
    refs = _children(spine_el, "itemref") if spine_el is not None else []
    if not refs:
        raise BookError(f"{arc.name}: the package document has no spine (no reading order)")
    pkg = _Package(
        opf_path=opf_path,
        root=root,
        metadata=metadata,
        manifest=manifest,
        by_path=by_path,
        spine=[],
        ncx_id=(spine_el.get("toc") or "") if spine_el is not None else "",
        guide=[],
    )
    for ref in refs:
        idref = ref.get("idref") or ""
        item = manifest.get(idref)
        if item is None:
            pkg.warnings.append(f"spine item {idref!r} is not in the manifest (skipped)")
            continue
        linear = (ref.get("linear") or "yes").strip().lower() != "no"
        pkg.spine.append((item, linear))
    guide_el = next((c for c in root if _local(c.tag) == "guide"), None)
    for ref in _children(guide_el, "reference") if guide_el is not None else []:
        resolved = _resolve_href(opf_path, ref.get("href") or "")
        if resolved is not None:
            path = arc.resolve(resolved[0]) or resolved[0]
            pkg.guide.append(((ref.get("type") or "").strip().lower(), path, resolved[1]))
    return pkg


# ----------------------------------------------------------------------------------------------------
# Metadata
# ----------------------------------------------------------------------------------------------------


def _canonical_language(tag: str) -> str:
    """BCP 47 casing: ``en-us`` -> ``en-US``, ``zh-hant-tw`` -> ``zh-Hant-TW`` (the tag is kept)."""
    parts = [p for p in re.split(r"[-_]", tag.strip()) if p]
    if not parts:
        return ""
    out = [parts[0].lower()]
    private = False
    for p in parts[1:]:
        if private or len(p) == 1:
            private = private or p.lower() == "x"
            out.append(p.lower())
        elif len(p) == 2 and p.isalpha():
            out.append(p.upper())
        elif len(p) == 4 and p.isalpha():
            out.append(p.title())
        else:
            out.append(p.lower())
    return "-".join(out)


def _strip_html(text: str) -> str:
    text = re.sub(r"<[^>]*>", " ", text)
    return normalize_space(html.unescape(text))


def _read_metadata(pkg: _Package, fallback_title: str) -> Metadata:
    md = pkg.metadata
    dc: dict[str, list[Any]] = {}
    refines: dict[str, dict[str, list[str]]] = {}
    props: dict[str, list[str]] = {}
    named: dict[str, str] = {}
    if md is not None:
        for el in md.iter():
            name = _local(el.tag)
            ns = _ns(el.tag)
            if "purl.org/dc/elements" in ns or "dublin_core" in ns:
                dc.setdefault(name.lower(), []).append(el)
            elif name == "meta":
                prop = (el.get("property") or "").strip()
                target = (el.get("refines") or "").strip()
                if prop and target.startswith("#"):
                    refines.setdefault(target[1:], {}).setdefault(prop, []).append(_text(el))
                elif prop:
                    props.setdefault(prop, []).append(_text(el))
                elif el.get("name"):
                    named.setdefault(el.get("name", "").strip(), (el.get("content") or "").strip())

    def refined(el: Any, prop: str) -> list[str]:
        return refines.get(el.get("id") or "", {}).get(prop, [])

    titles = [el for el in dc.get("title", []) if _text(el)]
    main = [el for el in titles if "main" in refined(el, "title-type")]
    title = _text((main or titles)[0]) if titles else fallback_title

    creators: list[tuple[str, str]] = []
    for el in dc.get("creator", []):
        name = _text(el)
        if name:
            role = (refined(el, "role") or [el.get(f"{{{OPF_NS}}}role") or el.get("role") or ""])[0]
            creators.append((name, role.strip().lower()))
    if any(role == "aut" for _, role in creators):
        authors = [n for n, role in creators if role in ("aut", "")]
    else:
        authors = [n for n, _ in creators]

    language = next((_text(el) for el in dc.get("language", []) if _text(el)), "")
    language = _canonical_language(language or pkg.root.get(XML_LANG) or "")

    publisher = next((_text(el) for el in dc.get("publisher", []) if _text(el)), "")
    publisher = publisher or next(iter(props.get("dcterms:publisher", [])), "")

    date = ""
    dates = [el for el in dc.get("date", []) if _text(el)]
    for el in dates:
        event = (el.get(f"{{{OPF_NS}}}event") or el.get("event") or "").lower()
        if event in ("", "publication", "issued", "original-publication"):
            date = _text(el)
            break
    if not date and dates:
        date = _text(dates[0])
    date = date or next(iter(props.get("dcterms:issued", []) + props.get("dcterms:date", [])), "")

    description = ""
    for el in dc.get("description", []):
        description = _strip_html("".join(el.itertext()))
        if description:
            break

    return Metadata(
        title=title,
        authors=tuple(dict.fromkeys(authors)),
        language=language,
        publisher=publisher,
        date=date,
        description=description,
        identifiers=tuple(dict.fromkeys(t for el in dc.get("identifier", []) if (t := _text(el)))),
        subjects=tuple(dict.fromkeys(t for el in dc.get("subject", []) if (t := _text(el)))),
    )


# ----------------------------------------------------------------------------------------------------
# Table of contents and landmarks
# ----------------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    label: str
    path: str | None  # None: a label without a link (a grouping entry)
    fragment: str
    parent: int  # index of the parent entry, -1 at the top
    skip: bool = False


def _nav_entries(nav: Any, nav_path: str, arc: _Archive) -> list[_Entry]:
    entries: list[_Entry] = []

    def walk(ol: Any, parent: int) -> None:
        for li in _children(ol, "li"):
            head = next((c for c in li if _local(c.tag) in ("a", "span")), None)
            if head is None:  # a link wrapped in another element
                head = next((a for a in _descendants_outside_lists(li) if _local(a.tag) == "a"), None)
            index = parent
            if head is not None:
                label = _clean_label(inline_text(head))
                target = _resolve_href(nav_path, head.get("href") or "") if _local(head.tag) == "a" else None
                path = (arc.resolve(target[0]) or target[0]) if target else None
                entries.append(_Entry(label, path, target[1] if target else "", parent))
                index = len(entries) - 1
            for sub in _children(li, "ol"):
                walk(sub, index)

    for ol in _children(nav, "ol"):
        walk(ol, -1)
    return entries


def _descendants_outside_lists(li: Any) -> Iterator[Any]:
    for child in li:
        if _local(child.tag) in ("ol", "ul"):
            continue
        yield from child.iter()


def _ncx_entries(ncx: Any, ncx_path: str, arc: _Archive) -> list[_Entry]:
    entries: list[_Entry] = []

    def walk(el: Any, parent: int) -> None:
        for point in _children(el, "navPoint"):
            label_el = _first(point, "navLabel")
            text_el = _first(label_el, "text") if label_el is not None else None
            label = _clean_label(_text(text_el)) if text_el is not None else ""
            content = next((c for c in point if _local(c.tag) == "content"), None)
            target = _resolve_href(ncx_path, content.get("src") or "") if content is not None else None
            path = (arc.resolve(target[0]) or target[0]) if target else None
            entries.append(_Entry(label, path, target[1] if target else "", parent))
            walk(point, len(entries) - 1)

    nav_map = _first(ncx, "navMap")
    if nav_map is not None:
        walk(nav_map, -1)
    return entries


def _clean_label(label: str) -> str:
    return normalize_space(_NOTE_MARK_RE.sub("", label))


# ----------------------------------------------------------------------------------------------------
# Chapters
# ----------------------------------------------------------------------------------------------------


def _key(text: str) -> str:
    return _KEY_RE.sub("", text.casefold())


def _title_keys(text: str) -> tuple[str, str]:
    return _key(text), _key(_NUMBERING_RE.sub("", text, count=1))


def _same_title(heading: str, label: str, *, exact: bool) -> bool:
    h, h_bare = _title_keys(heading)
    lab, lab_bare = _title_keys(label)
    if not h or not lab:
        return False
    if h == lab or (h_bare and h_bare == lab_bare):
        return True
    if exact:
        return False
    h_words, lab_words = _words(heading), _words(label)
    if _contains(lab_words, h_words):  # "190" under "190 A FOUR-LEAVED CLOVER"
        return True
    # "Chapter 1. Loomings." under the label "Loomings"
    return _contains(h_words, lab_words) and len(h) <= 2 * len(lab) + 10


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.casefold())


def _contains(words: list[str], part: list[str]) -> bool:
    """True when ``part`` is a run of whole words inside ``words``."""
    n = len(part)
    return n > 0 and any(words[i : i + n] == part for i in range(len(words) - n + 1))


def _drop_title(blocks: list[Block], label: str) -> list[Block]:
    """Remove the leading heading(s) that repeat the chapter title (the planner speaks the title)."""
    i = 0
    while i < len(blocks) and i < 4:
        b = blocks[i]
        if b.heading and _same_title(b.text, label, exact=False):
            i += 1
            continue
        if i == 0 and not b.heading and _same_title(b.text, label, exact=True):
            i += 1
            continue
        break
    return blocks[i:]


@dataclass
class _Segment:
    kind: str  # "toc", "skip", "orphan", "item"
    entry: int = -1
    path: str = ""
    doc_title: str = ""
    blocks: list[Block] = field(default_factory=list)


@dataclass(frozen=True)
class _Marker:
    kind: str  # "toc" or "skip"
    entry: int = -1


def _doc_title(root: Any) -> str:
    head = _first(root, "head")
    title = _first(head, "title") if head is not None else None
    return _text(title) if title is not None else ""


def _body(root: Any) -> Any:
    body = _first(root, "body")
    return body if body is not None else root


class _Reader:
    def __init__(self, arc: _Archive, pkg: _Package, warnings: list[str]) -> None:
        self.arc = arc
        self.pkg = pkg
        self.warnings = warnings
        self.landmarks: list[tuple[frozenset[str], str, str]] = []
        self.unreadable = 0  # documents that could not be parsed

    # -- documents ----------------------------------------------------------------------------------
    def parse(self, path: str) -> Any | None:
        try:
            return _parse_document(
                self.arc.read(path), f"{self.arc.name}: {path}", self.arc.budget, self.warnings
            )
        except BookError as exc:
            if isinstance(exc, DRMError) or _HOSTILE in str(exc) or _BUDGET in str(exc):
                raise  # a hostile document refuses the whole book
            self.warnings.append(f"{path}: unreadable, skipped ({exc})")
            self.unreadable += 1
            return None

    def readable_spine(self) -> list[_Item]:
        items: list[_Item] = []
        seen: set[str] = set()
        nav_paths = {i.path for i in self.pkg.manifest.values() if "nav" in i.properties}
        for item, linear in self.pkg.spine:
            if not linear or item.path in nav_paths:
                continue
            if not item.is_content:
                if not item.is_image:
                    self.warnings.append(
                        f"spine item {item.path!r} ({item.media_type}) is not XHTML (skipped)"
                    )
                continue
            if self.arc.resolve(item.path) is None:
                self.warnings.append(f"spine item {item.path!r} is missing from the archive (skipped)")
                continue
            if item.path in seen:
                continue
            seen.add(item.path)
            items.append(item)
        if not items:
            raise BookError(
                f"{self.arc.name}: none of the {len(self.pkg.spine)} spine documents can be read "
                "(missing from the archive or not XHTML)"
            )
        return items

    # -- table of contents --------------------------------------------------------------------------
    def toc(self, spine_paths: set[str]) -> tuple[list[_Entry], list[tuple[frozenset[str], str, str]]]:
        """TOC entries (nav, else NCX) and landmarks ((types, path, fragment))."""
        landmarks: list[tuple[frozenset[str], str, str]] = []
        nav_entries: list[_Entry] = []
        nav_item = next((i for i in self.pkg.manifest.values() if "nav" in i.properties), None)
        if nav_item is not None and self.arc.resolve(nav_item.path) is not None:
            root = self.parse(nav_item.path)
            for nav in root.iter() if root is not None else ():
                if _local(nav.tag) != "nav":
                    continue
                types = epub_types(nav)
                if "toc" in types and not nav_entries:
                    nav_entries = _nav_entries(nav, nav_item.path, self.arc)
                elif "landmarks" in types:
                    for a in nav.iter():
                        target = (
                            _resolve_href(nav_item.path, a.get("href") or "")
                            if _local(a.tag) == "a"
                            else None
                        )
                        if target:
                            path = self.arc.resolve(target[0]) or target[0]
                            landmarks.append((epub_types(a), path, target[1]))
        if any(e.path in spine_paths for e in nav_entries):
            return nav_entries, landmarks
        ncx_item = self.pkg.manifest.get(self.pkg.ncx_id) or next(
            (i for i in self.pkg.manifest.values() if i.media_type == NCX_MEDIA_TYPE), None
        )
        if ncx_item is not None and self.arc.resolve(ncx_item.path) is not None:
            try:
                root = parse_xml(
                    self.arc.read(ncx_item.path), f"{self.arc.name}: {ncx_item.path}", budget=self.arc.budget
                )
            except BookError as exc:
                if _BUDGET in str(exc):
                    raise
                self.warnings.append(f"the NCX table of contents is unreadable ({exc})")
            else:
                entries = _ncx_entries(root, ncx_item.path, self.arc)
                if any(e.path in spine_paths for e in entries):
                    return entries, landmarks
        return [], landmarks

    def skip_positions(self, landmarks: list[tuple[frozenset[str], str, str]]) -> set[tuple[str, str]]:
        skip: set[tuple[str, str]] = set()
        for types, path, fragment in landmarks:
            if types & FRONT_BACK_MATTER_TYPES:
                skip.add((path, fragment))
        for gtype, path, fragment in self.pkg.guide:
            if gtype in GUIDE_SKIP_TYPES:
                skip.add((path, fragment))
        return skip

    # -- chapters -----------------------------------------------------------------------------------
    def chapters(self, book_title: str) -> tuple[Chapter, ...]:
        spine = self.readable_spine()
        spine_paths = {i.path for i in spine}
        entries, self.landmarks = self.toc(spine_paths)
        skip = self.skip_positions(self.landmarks)
        segments = self.toc_segments(spine, entries, skip) if entries else self.item_segments(spine, skip)
        return self.finish(segments, entries, book_title)

    def toc_segments(
        self, spine: list[_Item], entries: list[_Entry], skip: set[tuple[str, str]]
    ) -> list[_Segment]:
        markers: dict[str, list[tuple[str, _Marker]]] = {}
        for i, e in enumerate(entries):
            if e.path is None:
                continue
            e.skip = (e.path, e.fragment) in skip or bool(_GUTENBERG_RE.search(e.label))
            markers.setdefault(e.path, []).append((e.fragment, _Marker("toc", i)))
        for path, fragment in skip:
            if not any(f == fragment for f, _ in markers.get(path, [])):
                markers.setdefault(path, []).insert(0, (fragment, _Marker("skip")))

        segments: list[_Segment] = []
        for item in spine:
            root = self.parse(item.path)
            if root is None:
                continue
            here = markers.get(item.path, [])
            anchors = {f for f, _ in here if f}
            stream = blocks_from_element(_body(root), anchors)
            found = {a.id for a in stream if isinstance(a, Anchor)}
            at_start = [m for f, m in here if not f or f not in found]
            for f, m in here:
                if f and f not in found and m.kind == "toc":
                    self.warnings.append(
                        f"TOC target {item.path}#{f} not found (chapter starts at the file start)"
                    )
            by_anchor: dict[str, list[_Marker]] = {}
            for f, m in here:
                if f in found:
                    by_anchor.setdefault(f, []).append(m)
            doc_title = _doc_title(root)

            def open_segment(m: _Marker, path: str = item.path, title: str = doc_title) -> _Segment:
                kind = "skip" if m.kind == "skip" or entries[m.entry].skip else "toc"
                seg = _Segment(kind, m.entry, path, title)
                segments.append(seg)
                return seg

            current: _Segment | None = None
            for m in at_start:
                current = open_segment(m)
            if current is None:
                last = segments[-1] if segments else None
                if last is not None and last.kind == "toc":
                    current = last  # a chapter spread over several spine files
                else:
                    current = _Segment("orphan", -1, item.path, doc_title)
                    segments.append(current)
            for ev in stream:
                if isinstance(ev, Anchor):
                    for m in by_anchor.pop(ev.id, []):
                        current = open_segment(m)
                else:
                    current.blocks.append(ev)
        return segments

    def item_segments(self, spine: list[_Item], skip: set[tuple[str, str]]) -> list[_Segment]:
        segments: list[_Segment] = []
        for item in spine:
            if (item.path, "") in skip:
                continue
            root = self.parse(item.path)
            if root is None:
                continue
            blocks = [b for b in blocks_from_element(_body(root)) if isinstance(b, Block)]
            segments.append(_Segment("item", -1, item.path, _doc_title(root), blocks))
        return segments

    def finish(self, segments: list[_Segment], entries: list[_Entry], book_title: str) -> tuple[Chapter, ...]:
        built: list[tuple[str, int, list[Block]]] = []  # (title, entry, blocks)
        for seg in segments:
            if seg.kind == "skip" or not seg.blocks:
                continue
            blocks = seg.blocks
            if seg.kind == "toc":
                title = entries[seg.entry].label
                if title:
                    blocks = _drop_title(blocks, title)
                else:
                    title, blocks = _title_from_heading(blocks)
                if not _has_body_text(blocks):
                    continue  # nothing of its own but headings: a part title or a title-page fragment
                if not title:
                    title = _fallback_title(seg, book_title, len(built) + 1)
                built.append((title, seg.entry, blocks))
                continue
            words = sum(len(b.text.split()) for b in blocks)
            if seg.kind == "orphan":
                if _GUTENBERG_RE.search(" ".join(b.text for b in blocks[:3])):
                    continue  # Project Gutenberg header or licence
                title, rest = _title_from_heading(blocks)
                if not title or not _has_body_text(rest):
                    self.warnings.append(
                        f"{seg.path}: {words} words of untitled text outside the TOC skipped"
                    )
                    continue
                built.append((title, -1, rest))
                continue
            title, rest = _title_from_heading(blocks)  # "item": one chapter per spine item
            if not _has_body_text(rest):
                continue
            built.append((title or _fallback_title(seg, book_title, len(built) + 1), -1, rest))
        titles = _disambiguate([(t, e) for t, e, _ in built], entries)
        return tuple(
            Chapter(title=t, paragraphs=tuple(b.text for b in blocks))
            for t, (_, _, blocks) in zip(titles, built, strict=True)
        )


def _has_body_text(blocks: list[Block]) -> bool:
    return any(not b.heading for b in blocks)


def _title_from_heading(blocks: list[Block]) -> tuple[str, list[Block]]:
    for i, b in enumerate(blocks):
        if b.heading:
            return b.text, blocks[:i] + blocks[i + 1 :]
    return "", blocks


def _fallback_title(seg: _Segment, book_title: str, number: int) -> str:
    if seg.doc_title and _key(seg.doc_title) != _key(book_title) and not _GUTENBERG_RE.search(seg.doc_title):
        return seg.doc_title
    return str(number)


def _disambiguate(titled: list[tuple[str, int]], entries: list[_Entry]) -> list[str]:
    """Repeated titles ("CHAPITRE PREMIER" in every book) get their TOC parent's label in front, and so
    do their siblings, so that a group of chapters is named the same way."""

    def labelled_parent(entry: int) -> int:
        parent = entries[entry].parent if entry >= 0 else -1
        while parent >= 0 and not entries[parent].label:
            parent = entries[parent].parent
        return parent

    def full_label(entry: int, seen: frozenset[int] = frozenset()) -> str:
        """The entry's label, after its parent's full label when the label is only a number."""
        label = entries[entry].label
        parent = labelled_parent(entry)
        if parent < 0 or parent in seen or not is_number_only(label):
            return label
        return f"{full_label(parent, seen | {entry})}{TITLE_SEPARATOR}{label}"

    counts: dict[str, int] = {}
    for title, _ in titled:
        counts[_key(title)] = counts.get(_key(title), 0) + 1
    groups = {labelled_parent(e) for t, e in titled if counts[_key(t)] > 1} - {-1}
    out: list[str] = []
    for title, entry in titled:
        parent = labelled_parent(entry)
        if parent >= 0 and (
            is_number_only(title) or (parent in groups and _key(entries[parent].label) not in _key(title))
        ):
            title = f"{full_label(parent)}{TITLE_SEPARATOR}{title}"
        out.append(title)
    return out


def is_number_only(label: str) -> bool:
    """True for a title that says only which one it is ("I", "2", "IV.", "Part 3", "Chapitre II"):
    a listener needs the title of what it is a part of."""
    return bool(_NUMBER_ONLY_RE.match(label))


# ----------------------------------------------------------------------------------------------------
# Cover
# ----------------------------------------------------------------------------------------------------


def _sniff_image(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:2048].lower()):
        return "image/svg+xml"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def _cover_page_image(reader: _Reader, page: str) -> str | None:
    """The image of a cover wrapper page (an XHTML page that is essentially one picture)."""
    root = reader.parse(page)
    if root is None:
        return None
    body = _body(root)
    if len(" ".join(paragraphs_from_element(body, skip_types=()))) > COVER_PAGE_MAX_TEXT:
        return None
    for el in body.iter():
        tag = _local(el.tag)
        src = (
            el.get("src")
            if tag == "img"
            else el.get(XLINK_HREF) or el.get("href")
            if tag == "image"
            else None
        )
        if src:
            target = _resolve_href(page, src)
            if target:
                return reader.arc.resolve(target[0]) or target[0]
    return None


def _cover_candidates(reader: _Reader, landmarks: list[tuple[frozenset[str], str, str]]) -> Iterator[str]:
    pkg = reader.pkg
    for item in pkg.manifest.values():
        if "cover-image" in item.properties:
            yield item.path
    md = pkg.metadata
    if md is not None:
        for el in md.iter():
            if _local(el.tag) == "meta" and (el.get("name") or "").strip().lower() == "cover":
                ref = (el.get("content") or "").strip()
                item = pkg.manifest.get(ref)
                if item is not None:
                    yield item.path
                elif ref:
                    target = _resolve_href(pkg.opf_path, ref)
                    if target:
                        yield target[0]
    pages = [path for gtype, path, _ in pkg.guide if gtype == "cover"]
    pages += [path for types, path, _ in landmarks if "cover" in types]
    for path in dict.fromkeys(pages):
        item = pkg.by_path.get(path)
        if (item is not None and item.is_image) or path.lower().endswith((".jpg", ".jpeg", ".png")):
            yield path
        else:
            image = _cover_page_image(reader, path)
            if image:
                yield image
    for item in pkg.manifest.values():
        stem = posixpath.splitext(posixpath.basename(item.path))[0].lower()
        if item.is_image and (item.id.lower() in ("cover", "cover-image", "coverimage") or stem == "cover"):
            yield item.path


def _find_cover(reader: _Reader, landmarks: list[tuple[frozenset[str], str, str]]) -> Cover | None:
    tried: set[str] = set()
    for path in _cover_candidates(reader, landmarks):
        if path in tried:
            continue
        tried.add(path)
        if reader.arc.resolve(path) is None:
            reader.warnings.append(f"cover image {path!r} is missing from the archive")
            continue
        data = reader.arc.read(path)
        mime = _sniff_image(data)
        if mime in ("image/jpeg", "image/png"):
            return Cover(data=data, mime=mime)
        reader.warnings.append(f"cover image {path!r} is {mime}, not JPEG or PNG (skipped)")
    return None


# ----------------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------------


def read_epub(path: Path) -> Book:
    """Read an EPUB 2 or EPUB 3 file into a Book (chapters of plain-text paragraphs, metadata, cover)."""
    path = Path(path)
    with SafeZip.open(path) as zf:
        arc = _Archive(zf, path.name)
        warnings = _check_encryption(arc)
        opf_path = _find_opf(arc)
        pkg = _read_package(arc, opf_path)
        warnings.extend(pkg.warnings)
        metadata = _read_metadata(pkg, path.stem)
        reader = _Reader(arc, pkg, warnings)
        chapters = reader.chapters(metadata.title)
        if not chapters:
            if reader.unreadable and reader.unreadable >= len(reader.readable_spine()):
                raise BookError(
                    f"{path.name}: none of its documents can be parsed (damaged, or DRM-encrypted "
                    "without saying so in META-INF/encryption.xml)"
                )
            raise BookError(f"{path.name}: no readable text found in the EPUB")
        cover = _find_cover(reader, reader.landmarks)
    for w in warnings:
        log.debug("%s: %s", path.name, w)
    return Book(
        metadata=metadata,
        chapters=chapters,
        cover=cover,
        source_format="epub",
        warnings=tuple(dict.fromkeys(warnings)),
    )
