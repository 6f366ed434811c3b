"""FictionBook 2 (``.fb2``, and ``.fb2.zip``): parsed with the safe XML parser, namespace-agnostic.

A chapter is a ``<section>`` that carries text of its own; sections that only hold other sections lend
their titles to the first chapter inside them ("ТОМ 1. ЧАСТЬ ПЕРВАЯ"). Notes and comments bodies are
not read inline, nor are the note links (``<a type="note">``) pointing at them.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BookError
from ..model import Book, Chapter, Cover, Metadata
from .common import MAX_COVER_BYTES, clean_text, has_words, image_mime, join_title_parts, language_code
from .safety import MAX_XML_BYTES, SafeZip, parse_xml

log = logging.getLogger(__name__)

_SKIPPED_BODIES = frozenset({"notes", "comments", "footnotes"})
# Blocks whose <p>s are read as paragraphs, in order.
_CONTAINERS = frozenset({"epigraph", "cite", "annotation", "poem", "stanza"})


def _local(el: Any) -> str:
    tag = el.tag
    if not isinstance(tag, str):  # comments and processing instructions
        return ""
    return tag.rsplit("}", 1)[-1]


def _children(el: Any, name: str) -> list[Any]:
    return [child for child in el if _local(child) == name]


def _child(el: Any, name: str) -> Any | None:
    return next((child for child in el if _local(child) == name), None)


def _href(el: Any) -> str:
    for key, value in el.attrib.items():
        if key.rsplit("}", 1)[-1] == "href":
            return str(value)
    return ""


def read_fb2(path: Path) -> Book:
    try:
        size = path.stat().st_size
        if size > MAX_XML_BYTES:
            raise BookError(f"{path.name} is too large for an FB2 book ({size // (1024 * 1024)} MB)")
        data = path.read_bytes()
    except OSError as exc:
        raise BookError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    return book_from_fb2(data, path.name)


def read_fb2_zip(path: Path) -> Book:
    """An FB2 book zipped alone (``.fb2.zip``, ``.fbz``): the first ``.fb2`` member is read."""
    with SafeZip.open(path) as archive:
        members = [n for n in archive.names() if n.lower().endswith(".fb2")]
        if not members:
            raise BookError(f"{path.name} holds no .fb2 file")
        data = archive.read(members[0])
    book = book_from_fb2(data, f"{path.name}:{members[0]}")
    return Book(
        metadata=book.metadata,
        chapters=book.chapters,
        cover=book.cover,
        source_format="fb2.zip",
        warnings=book.warnings,
    )


_BINARY = re.compile(rb"<(?:[\w.-]+:)?binary\b[^>]*>.*?</(?:[\w.-]+:)?binary\s*>", re.DOTALL)


def book_from_fb2(data: bytes, name: str) -> Book:
    warnings: list[str] = []
    try:
        root = parse_xml(data, name)
    except BookError as exc:
        # An embedded image over libxml2's 10 MB text-node limit: read the text without the images.
        if "Text node too long" not in str(exc):
            raise
        root = parse_xml(_BINARY.sub(b"", data), name)
        warnings.append("embedded images too large to parse: ignored (no cover)")
    if _local(root) != "FictionBook":
        raise BookError(f"{name} is not a FictionBook (its root element is <{_local(root)}>)")
    description = _child(root, "description")
    title_info = _child(description, "title-info") if description is not None else None
    metadata = _metadata(description, title_info)
    cover = _cover(root, title_info, warnings)
    chapters: list[Chapter] = []
    for body in _children(root, "body"):
        if str(body.get("name", "")).lower() in _SKIPPED_BODIES:
            continue
        chapters.extend(_body_chapters(body))
    return Book(
        metadata=metadata,
        chapters=tuple(chapters),
        cover=cover,
        source_format="fb2",
        warnings=tuple(warnings),
    )


# --- metadata -------------------------------------------------------------------------------------


def _text(el: Any | None) -> str:
    return clean_text(" ".join(el.itertext())) if el is not None else ""


def _person(el: Any) -> str:
    names = [_text(_child(el, part)) for part in ("first-name", "middle-name", "last-name")]
    full = " ".join(n for n in names if n)
    return full or _text(_child(el, "nickname"))


def _metadata(description: Any | None, title_info: Any | None) -> Metadata:
    if title_info is None:
        return Metadata()
    publish = _child(description, "publish-info") if description is not None else None
    document = _child(description, "document-info") if description is not None else None
    date_el = _child(title_info, "date")
    date = ""
    if date_el is not None:
        date = clean_text(str(date_el.get("value") or "")) or _text(date_el)
    if not date and publish is not None:
        date = _text(_child(publish, "year"))
    annotation = _child(title_info, "annotation")
    identifiers = []
    if document is not None and _text(_child(document, "id")):
        identifiers.append(_text(_child(document, "id")))
    isbn = _text(_child(publish, "isbn")) if publish is not None else ""
    if sum(ch.isdigit() for ch in isbn) >= 10:
        identifiers.append(f"isbn:{isbn}")
    return Metadata(
        title=_text(_child(title_info, "book-title")),
        authors=tuple(a for a in (_person(el) for el in _children(title_info, "author")) if a),
        language=language_code(_text(_child(title_info, "lang"))),
        publisher=_text(_child(publish, "publisher")) if publish is not None else "",
        date=date,
        description="\n".join(_paragraphs(annotation)) if annotation is not None else "",
        identifiers=tuple(identifiers),
        subjects=tuple(g for g in (_text(el) for el in _children(title_info, "genre")) if g),
    )


def _cover(root: Any, title_info: Any | None, warnings: list[str]) -> Cover | None:
    coverpage = _child(title_info, "coverpage") if title_info is not None else None
    image = _child(coverpage, "image") if coverpage is not None else None
    if image is None:
        return None
    ref = _href(image)
    if not ref.startswith("#"):
        warnings.append(f"cover reference {ref!r} is not inside the book: ignored")
        return None
    wanted = ref[1:]
    for binary in _children(root, "binary"):
        if binary.get("id") != wanted:
            continue
        encoded = "".join(binary.itertext())
        if len(encoded) > MAX_COVER_BYTES * 4 // 3 + 4096:
            warnings.append("cover image is too large: ignored")
            return None
        try:
            data = base64.b64decode("".join(encoded.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            warnings.append(f"cover image is not valid base64 ({exc}): ignored")
            return None
        mime = image_mime(data)
        if mime is None:
            warnings.append(
                f"cover image ({binary.get('content-type', '?')}) is neither JPEG nor PNG: ignored"
            )
            return None
        return Cover(data=data, mime=mime)
    warnings.append(f"cover image {wanted!r} is missing from the book")
    return None


# --- text -----------------------------------------------------------------------------------------


def _inline(el: Any) -> str:
    """The text of a <p>/<v>/<subtitle>, without note links or images."""
    parts: list[str] = [el.text or ""]
    for child in el:
        name = _local(child)
        if name == "a" and str(child.get("type", "")).lower() == "note":
            # "[1]" pointing into the notes body; "word [1]." must not become "word ."
            if (child.tail or "")[:1] in (".", ",", ";", ":", "!", "?", "»", ")"):
                parts[-1] = parts[-1].rstrip()
        elif name in ("image", ""):
            pass
        else:
            parts.append(_inline(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _paragraphs(el: Any) -> list[str]:
    """Paragraphs inside a block element (<title>, <epigraph>, <poem>, <annotation>...), in order."""
    return _read_blocks(list(el))


def _read_blocks(elements: Iterable[Any]) -> list[str]:
    """Paragraphs of a run of elements: <p>, <v>, <subtitle>, <text-author>, and nested blocks."""
    out: list[str] = []
    for child in elements:
        name = _local(child)
        if name in ("p", "subtitle", "text-author", "v"):
            text = clean_text(_inline(child))
            if has_words(text):
                out.append(text)
        elif name == "stanza":
            lines = [clean_text(_inline(v)) for v in child if _local(v) in ("v", "subtitle")]
            title = _child(child, "title")
            if title is not None:
                out.extend(_paragraphs(title))
            text = " ".join(line for line in lines if line)
            if has_words(text):
                out.append(text)
        elif name in _CONTAINERS or name == "title":
            out.extend(_paragraphs(child))
        elif name == "table":
            for row in child:
                text = clean_text(" ".join(clean_text(_inline(cell)) for cell in row))
                if has_words(text):
                    out.append(text)
    return out


def _title(el: Any) -> str:
    title = _child(el, "title")
    return join_title_parts(_paragraphs(title)) if title is not None else ""


@dataclass
class _Walk:
    chapters: list[Chapter] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # titles of sections with no text of their own yet

    def emit(self, fallback: str, paragraphs: list[str]) -> None:
        title = join_title_parts(self.pending) or fallback
        self.pending = []
        self.chapters.append(Chapter(title=title, paragraphs=tuple(paragraphs)))


def _body_chapters(body: Any) -> list[Chapter]:
    walk = _Walk()
    _walk(body, walk, depth=0)
    return walk.chapters


def _walk(el: Any, walk: _Walk, depth: int) -> None:
    """Flatten nested sections: each run of text directly inside a section becomes one chapter."""
    title = _title(el)
    if title:
        walk.pending.append(title)
    own: list[str] = []
    for child in el:
        name = _local(child)
        if name == "section":
            if own:
                walk.emit(title, own)
                own = []
            _walk(child, walk, depth + 1)
        elif name == "title":
            if depth == 0 and child is not _child(el, "title"):
                # Invalid but common: a later <title> straight in <body> ("ТОМ 2") heads what follows.
                text = join_title_parts(_paragraphs(child))
                if text:
                    walk.pending.append(text)
        else:
            own.extend(_read_blocks([child]))
    if own:
        walk.emit(title, own)
