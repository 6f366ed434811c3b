"""PDF books, read with pypdf: text in reading order, rebuilt into paragraphs and chapters.

What a narrator should not read is removed: running heads and footers (lines repeated at the top or
bottom of many pages), page numbers, footnote markers and footnotes, and the all-capitals captions of
illustrations. Drop caps are joined to their word ("I" + "N the year" -> "In the year"), small capitals
are lower-cased ("J" + "OHN" -> "John"), ligatures are expanded and end-of-line hyphenation is undone
("bat-" + "tle" -> "battle"; "to-" + "day" stays "to-day" when the book spells it so elsewhere).

Chapters come from the document outline when there is one, otherwise from headings: lines set in a
larger font, and lines such as "CHAPTER IV", "Chapitre 3", "PART II" or a bare Roman numeral. A part
heading is folded into the title of its first chapter ("Part I, Chapter I. Mr. Sherlock Holmes"), its
short introduction into that chapter's text. Front matter before the first heading (title page,
transcriber's notes, contents) is skipped with a warning unless it is long (an untitled opening).

Public API:
    read_pdf(path) -> Book
"""

from __future__ import annotations

import itertools
import logging
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BookError, DRMError, UnsupportedFormatError
from ..model import Book, Chapter, Cover, Metadata
from .common import (
    CHAPTER_WORDS,
    PART_WORDS,
    clean_text,
    has_words,
    heading_kind,
    image_mime,
    language_code,
    roman_to_int,
    word_count,
)

__all__ = ["read_pdf"]

log = logging.getLogger(__name__)

MAX_PDF_BYTES = 512 * 1024 * 1024
MAX_PAGES = 10_000
# Front matter before the first heading is read only when it is this long (an untitled opening).
FRONT_MATTER_MIN_WORDS = 1000
# A part's own text up to this long is moved into its first chapter; longer, it is a chapter itself.
PART_INTRO_MAX_WORDS = 60

# Relative to the body text size.
HEADING_RATIO = 1.2  # a line this much larger than the body text is a heading
DROP_CAP_RATIO = 1.6  # a lone capital this much larger starts its paragraph
SMALL_RATIO = 0.92  # smaller than this: small capitals, superscripts, footnotes

_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})
_MARKER = re.compile(r"^[\d*†‡§¶]{1,3}$")
_PAGE_NUMBER = re.compile(
    r"^[\s\-–—|·•]*(?:page\s+|p\.\s*)?(?:\d{1,4}|[ivxlcdm]{1,7})(?:\s*(?:of|/)\s*\d{1,4})?[\s\-–—|·•]*$",
    re.IGNORECASE,
)
_SENTENCE_END = (".", "!", "?", ":", ";", "”", "’", '"', "'", ")", "»", "…")
# Between a drop cap and the rest of its line when it is not known whether they make one word.
CAP_JOIN = "\u2063"
_BOLD_NAMES = ("bold", "black", "heavy", "semibold", "demi")


# --- data -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fragment:
    """One run of text as the page draws it: its position (baseline, points from the bottom-left)."""

    text: str
    x: float
    y: float
    size: float
    bold: bool = False


@dataclass
class Line:
    """One line of text on one page, in the order the page draws it."""

    page: int
    text: str
    x: float
    y: float
    size: float  # the size most of its characters are set in
    bold: bool = False
    upper: bool = False  # no lower-case letter as drawn (before small capitals are lower-cased)
    drop_cap: bool = False  # begins with a drop cap, or runs beside one
    note_start: bool = False  # begins with a superscript marker: the first line of a footnote


@dataclass
class Heading:
    text: str
    size: float
    page: int
    y: float
    kind: str | None = None  # heading_kind() of the text: "chapter", "part", "standalone", "numeral"
    by_size: bool = True  # set in a larger font (False: a keyword line in the body font)


@dataclass
class Paragraph:
    text: str
    page: int
    y: float
    lines: list[str] = field(default_factory=list)


Item = Heading | Paragraph


@dataclass(frozen=True)
class OutlineEntry:
    level: int
    title: str
    page: int
    top: float | None  # y of the destination on its page, when the outline says


# --- reading (the pypdf adapter) ------------------------------------------------------------------


def read_pdf(path: Path) -> Book:
    """Read a PDF with a text layer. Scanned (image-only) PDFs and password-protected ones are refused."""
    path = Path(path)
    reader = _open(path)
    try:
        page_count = len(reader.pages)
    except Exception as exc:  # pypdf raises many kinds of error on a broken page tree
        raise BookError(f"{path.name}: cannot read the page tree of this PDF ({exc})") from exc
    if page_count == 0:
        raise BookError(f"{path.name} has no pages")
    if page_count > MAX_PAGES:
        raise BookError(f"{path.name} has {page_count} pages (limit {MAX_PAGES})")

    pages: list[list[Fragment]] = []
    images: list[bool] = []
    broken: list[int] = []
    for number in range(page_count):
        try:
            page = reader.pages[number]
            pages.append(_page_fragments(page))
        except Exception as exc:  # pypdf's errors on a damaged page are of many kinds
            log.debug("%s: page %d unreadable: %s", path.name, number + 1, exc)
            pages.append([])
            broken.append(number + 1)
        images.append(_has_image(reader, number))
    if len(broken) == page_count:
        raise BookError(f"{path.name}: none of its {page_count} pages can be read (damaged PDF?)")

    letters = sum(ch.isalpha() for frags in pages for f in frags for ch in f.text)
    if letters == 0 or (letters < 20 * page_count and any(images)):
        raise BookError(f"{path.name} has no text layer (scanned?); OCR is not supported")

    outline = _outline(reader)
    layout = analyse(pages, images)
    metadata = _metadata(reader, layout.first_page_title)
    chapters, warnings = build_chapters(layout.items, outline, metadata.title)
    cover = _cover(reader, layout)
    return Book(
        metadata=metadata,
        chapters=tuple(chapters),
        cover=cover,
        source_format="pdf",
        warnings=tuple(layout.warnings + warnings + _broken_warning(broken)),
    )


def _broken_warning(broken: list[int]) -> list[str]:
    if not broken:
        return []
    listed = ", ".join(map(str, broken[:10])) + (" ..." if len(broken) > 10 else "")
    return [f"skipped {len(broken)} unreadable pages: {listed}"]


def _open(path: Path) -> Any:
    try:
        from pypdf import PdfReader
        from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PdfStreamError
    except ImportError as exc:
        raise UnsupportedFormatError(
            f"{path.name}: reading PDF needs the pypdf package (reinstall ebook2audio: pip install .)"
        ) from exc

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BookError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    if size > MAX_PDF_BYTES:
        raise BookError(f"{path.name} is too large ({size // (1024 * 1024)} MB)")
    try:
        reader = PdfReader(path, strict=False)
    except (PdfReadError, PdfStreamError, ValueError, KeyError, TypeError) as exc:
        raise BookError(f"{path.name} is not a readable PDF ({exc})") from exc
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")  # many "protected" PDFs only restrict printing or copying
        except DependencyError as exc:
            raise BookError(
                f"{path.name} is AES-encrypted; reading it needs the 'cryptography' package ({exc})"
            ) from exc
        except (FileNotDecryptedError, NotImplementedError, PdfReadError) as exc:
            raise DRMError(f"{path.name} is encrypted and cannot be opened ({exc})") from exc
        if not opened:
            raise DRMError(f"{path.name} is password-protected; remove the password (or DRM) and try again")
    return reader


def _page_fragments(page: Any) -> list[Fragment]:
    frags: list[Fragment] = []

    def visit(text: str, cm: Sequence[float], tm: Sequence[float], font: Any, size: float) -> None:
        if not text:
            return
        m = _multiply(tm, cm)
        scale = (m[2] ** 2 + m[3] ** 2) ** 0.5 or 1.0
        name = str(font.get("/BaseFont", "")) if font else ""
        bold = any(word in name.lower() for word in _BOLD_NAMES)
        frags.append(Fragment(text, float(m[4]), float(m[5]), round(float(size) * scale, 1), bold))

    page.extract_text(visitor_text=visit)
    return frags


def _multiply(a: Sequence[float], b: Sequence[float]) -> tuple[float, ...]:
    return (
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
        a[4] * b[0] + a[5] * b[2] + b[4],
        a[4] * b[1] + a[5] * b[3] + b[5],
    )


def _page_images(page: Any) -> list[Any]:
    resources = page.get("/Resources")
    resources = resources.get_object() if resources is not None else {}
    xobjects = resources.get("/XObject") if resources else None
    if not xobjects:
        return []
    found = []
    for ref in xobjects.get_object().values():
        obj = ref.get_object()
        if obj.get("/Subtype") == "/Image":
            found.append(obj)
    return found


def _has_image(reader: Any, number: int) -> bool:
    try:
        return bool(_page_images(reader.pages[number]))
    except Exception as exc:  # a broken resource dictionary: no picture known
        log.debug("page %d: images unreadable: %s", number + 1, exc)
        return False


def _outline(reader: Any) -> list[OutlineEntry]:
    try:
        tree = reader.outline
    except Exception as exc:  # a broken outline is ignored: headings still give chapters
        log.debug("outline unreadable: %s", exc)
        return []
    entries: list[OutlineEntry] = []

    def walk(nodes: Iterable[Any], level: int) -> None:
        for node in nodes:
            if isinstance(node, list):
                walk(node, level + 1)
                continue
            try:
                page = reader.get_destination_page_number(node)
            except Exception:
                page = None
            title = clean_text(str(getattr(node, "title", "") or ""))
            if page is None or page < 0 or not title:
                continue
            top = getattr(node, "top", None)
            try:
                top_value = float(top) if top is not None else None
            except (TypeError, ValueError):
                top_value = None
            entries.append(OutlineEntry(level, title, page, top_value))

    walk(tree or [], 1)
    return entries


def _metadata(reader: Any, page_title: str) -> Metadata:
    try:
        info = reader.metadata or {}
    except Exception:
        info = {}

    def field_(key: str) -> str:
        try:
            value = info.get(key)
        except Exception:
            return ""
        return clean_text(str(value)) if value else ""

    title = _clean_info_title(field_("/Title"))
    if page_title and (not title or (page_title.casefold() in title.casefold() and page_title != title)):
        title = page_title  # "Sherlock Holmes 1: A Study in Scarlet" -> the title page's "A Study in Scarlet"
    authors = tuple(a for a in (clean_text(x) for x in re.split(r";|&|\s+and\s+|\n", field_("/Author"))) if a)
    language = ""
    try:
        lang = reader.trailer["/Root"].get("/Lang")
        language = language_code(str(lang)) if lang else ""
    except Exception:
        language = ""
    keywords = tuple(k for k in (clean_text(x) for x in re.split(r"[;,]", field_("/Keywords"))) if k)
    return Metadata(
        title=title,
        authors=authors,
        language=language,
        publisher="",
        date=_pdf_date(field_("/CreationDate")),
        description=field_("/Subject"),
        subjects=keywords,
    )


_OFFICE_PREFIX = re.compile(r"^(?:Microsoft (?:Word|PowerPoint|Excel)|LibreOffice|OpenOffice)\s*-\s*", re.I)
_FILE_TITLE = re.compile(r"\.(?:docx?|odt|rtf|tex|dvi|pdf|txt|html?|indd|qxd)$", re.IGNORECASE)


def _clean_info_title(title: str) -> str:
    title = _OFFICE_PREFIX.sub("", title).strip()
    if _FILE_TITLE.search(title) or title.lower() in ("untitled", "title", "document"):
        return ""
    return title


def _pdf_date(value: str) -> str:
    """``D:20130313212256+01'00'`` -> ``2013-03-13`` (as much of the date as is given)."""
    m = re.match(r"^(?:D:)?(\d{4})(\d{2})?(\d{2})?", value)
    if not m:
        return ""
    parts = [p for p in m.groups() if p]
    return "-".join(parts)


def _cover(reader: Any, layout: Layout) -> Cover | None:
    """The first page as a cover when it is one JPEG picture with (almost) no text on it."""
    if layout.first_page_words > 30:
        return None
    try:
        images = _page_images(reader.pages[0])
        if len(images) != 1 or images[0].get("/Filter") != "/DCTDecode":
            return None
        data = images[0].get_data()
    except Exception as exc:
        log.debug("no cover: %s", exc)
        return None
    mime = image_mime(data)
    return Cover(data=data, mime=mime) if mime else None


# --- from fragments to lines ----------------------------------------------------------------------


def body_size(pages: Sequence[Sequence[Fragment]]) -> float:
    """The font size most characters are set in."""
    counts: Counter[float] = Counter()
    for frags in pages:
        for f in frags:
            counts[round(f.size)] += sum(ch.isalnum() for ch in f.text)
    if not counts:
        return 10.0
    size = counts.most_common(1)[0][0]
    # The exact size (not rounded) of the fragments in that bucket.
    exact = Counter(f.size for frags in pages for f in frags if round(f.size) == size and f.text.strip())
    return float(exact.most_common(1)[0][0]) if exact else float(size)


def build_lines(frags: Sequence[Fragment], page: int, body: float) -> list[Line]:
    """Group a page's fragments into lines (stream order), with drop caps, small capitals and superscript
    markers dealt with."""
    groups: list[list[Fragment]] = []
    caps: dict[int, Fragment] = {}  # group index -> the drop cap that starts it
    pending_cap: Fragment | None = None
    for frag in _split_newlines(frags):
        text = frag.text
        if not text.strip():
            if groups and " " in text and pending_cap is None:
                groups[-1].append(Fragment(" ", frag.x, frag.y, frag.size, frag.bold))
            continue
        stripped = text.strip()
        if (
            frag.size >= DROP_CAP_RATIO * body
            and len(stripped) <= 2
            and any(ch.isalpha() for ch in stripped)
            and not any(ch.islower() for ch in stripped)
        ):
            pending_cap = frag
            continue
        if pending_cap is not None or not groups or not _same_line(groups[-1], frag):
            groups.append([frag])
            if pending_cap is not None:
                caps[len(groups) - 1] = pending_cap
                pending_cap = None
        else:
            groups[-1].append(frag)
    if pending_cap is not None:  # a large lone letter that starts nothing: keep it as text
        groups.append([Fragment(pending_cap.text, pending_cap.x, pending_cap.y, body, pending_cap.bold)])

    lines: list[Line] = []
    cap_zone: tuple[float, float] | None = None
    for index, group in enumerate(groups):
        cap = caps.get(index)
        line = _make_line(group, page, body, cap)
        if line is None:
            continue
        if cap is not None:
            cap_zone = (cap.y - 0.3 * body, cap.y + cap.size)
            line.drop_cap = True
        elif cap_zone is not None and cap_zone[0] <= line.y <= cap_zone[1]:
            line.drop_cap = True
        lines.append(line)
    return lines


def _split_newlines(frags: Iterable[Fragment]) -> Iterable[Fragment]:
    for frag in frags:
        text = frag.text.replace("\r", "\n")
        if "\n" not in text.rstrip("\n"):
            yield Fragment(text.replace("\n", ""), frag.x, frag.y, frag.size, frag.bold)
            continue
        for i, piece in enumerate(text.split("\n")):
            if piece:
                yield Fragment(piece, frag.x, frag.y - i * frag.size * 1.2, frag.size, frag.bold)


def _same_line(group: list[Fragment], frag: Fragment) -> bool:
    base = max(group, key=lambda f: (f.size, len(f.text)))
    return abs(frag.y - base.y) <= 0.5 * max(frag.size, base.size)


def _make_line(group: list[Fragment], page: int, body: float, cap: Fragment | None) -> Line | None:
    main = max(group, key=lambda f: (sum(ch.isalnum() for ch in f.text), f.size))
    baseline = main.y
    texts: list[str] = []
    note_start = False
    previous = cap.text.strip() if cap is not None else ""
    for i, frag in enumerate(group):
        text = frag.text
        stripped = text.strip()
        raised = frag.y - baseline > 0.15 * body
        if _MARKER.match(stripped) and frag.size < SMALL_RATIO * min(main.size, body) + 0.01 and raised:
            if i == 0 and cap is None:
                note_start = True
            continue  # a footnote marker: never read inline
        if (
            frag.size < SMALL_RATIO * body
            and stripped.isupper()
            and not text[:1].isspace()
            and previous[-1:].isupper()
            and not raised
        ):
            text = text.lower()  # small capitals: "J" + "OHN" -> "John"
        texts.append(text)
        previous = stripped or previous
    raw = "".join(f.text for f in group)
    body_text = "".join(texts)
    prefix = ""
    if cap is not None:
        prefix = cap.text.strip()
        if body_text[:1].islower() and group[0].size >= SMALL_RATIO * body:
            prefix += CAP_JOIN  # "I" + "confess" or "T" + "he": decided with the book's vocabulary
    text = prefix + body_text
    text = clean_text(text.translate(_LIGATURES))
    if not text:
        return None
    weights: Counter[float] = Counter()
    bold = 0
    for frag in group:
        n = sum(ch.isalnum() for ch in frag.text) or len(frag.text.strip())
        weights[frag.size] += n
        bold += n if frag.bold else -n
    size = weights.most_common(1)[0][0]
    return Line(
        page=page,
        text=text,
        x=cap.x if cap is not None else group[0].x,
        y=baseline,
        size=size,
        bold=bold > 0,
        upper=not any(ch.islower() for ch in raw) and any(ch.isalpha() for ch in raw),
        note_start=note_start,
    )


# --- removing what is not read --------------------------------------------------------------------


def _signature(text: str) -> str:
    return re.sub(r"\d+", "#", clean_text(text).casefold())


def strip_running_lines(pages: list[list[Line]], body: float = 0.0) -> tuple[list[list[Line]], int]:
    """Remove page numbers and running heads/footers. Returns the pages and how many lines went.

    Only lines at the top or bottom of a page, not set larger than the body text, are candidates. A
    number counts as a page number when it follows the page sequence (its offset from the page index is
    shared by other pages); a running head repeats on several pages, and when it carries a number,
    that number follows the page sequence too ("CHAPTER I 3" but not "Chapter 3" headings)."""
    if not pages:
        return pages, 0
    limit = HEADING_RATIO * body if body else float("inf")
    edges = [(where, line) for lines in pages for where, line in _edge_lines(lines) if line.size < limit]
    counts: Counter[tuple[str, str]] = Counter((where, _signature(line.text)) for where, line in edges)
    offsets: Counter[int] = Counter()
    for _, line in edges:
        for number in set(_numbers(line.text)):
            offsets[number - line.page] += 1
    following = {offset for offset, n in offsets.items() if n >= 2}
    tracking: Counter[tuple[str, str]] = Counter(
        (where, _signature(line.text))
        for where, line in edges
        if any(number - line.page in following for number in _numbers(line.text))
    )
    spacing = _line_spacing(pages)
    threshold = 3 if len(pages) >= 6 else 2
    removed = 0
    result: list[list[Line]] = []
    for lines in pages:
        drop: set[int] = set()
        for where, line in _edge_lines(lines):
            if line.size >= limit:
                continue
            index = next(i for i, other in enumerate(lines) if other is line)
            numbers = _numbers(line.text)
            tracks = any(number - line.page in following for number in numbers)
            apart = _set_apart(lines, index, spacing)
            if _PAGE_NUMBER.match(line.text):
                roman = not numbers and line.text.strip().strip("-–—|·• ").islower()
                if tracks or (roman and apart) or (len(pages) == 1 and apart):
                    drop.add(index)
                continue
            sig = _signature(line.text)
            seen = counts[where, sig]
            if seen < threshold or len(line.text) > 120:
                continue
            # A number in a running head is the page's: on (nearly) all its pages, not by chance on one.
            if ("#" in sig and tracks and tracking[where, sig] >= 0.75 * seen) or (
                "#" not in sig and (apart or (seen >= 6 and seen >= 0.2 * len(pages)))
            ):
                drop.add(index)
        removed += len(drop)
        result.append([line for i, line in enumerate(lines) if i not in drop])
    return result, removed


def _numbers(text: str) -> tuple[int, ...]:
    """The first and the last number of a line ("Page 3 of 10" -> 3, 10; "CHAPTER I 3" -> 3)."""
    found = re.findall(r"\d{1,5}", text)
    return (int(found[0]), int(found[-1])) if found else ()


def _edge_lines(lines: list[Line]) -> list[tuple[str, Line]]:
    """The two top-most and two bottom-most lines of a page (by position, not stream order)."""
    if not lines:
        return []
    ordered = sorted(lines, key=lambda ln: -ln.y)
    edges = [("top", ln) for ln in ordered[:2]]
    edges += [("bottom", ln) for ln in ordered[-2:][::-1] if all(ln is not e for _, e in edges)]
    return edges


def _set_apart(lines: list[Line], index: int, spacing: float) -> bool:
    """True when the line is further from its nearest neighbour than a normal line step (or alone)."""
    line = lines[index]
    others = [abs(line.y - other.y) for i, other in enumerate(lines) if i != index]
    if not others:
        return True
    return min(others) > 1.35 * spacing


def _line_spacing(pages: Sequence[Sequence[Line]]) -> float:
    steps = []
    for lines in pages:
        for a, b in itertools.pairwise(lines):
            step = a.y - b.y
            if a.page == b.page and 0 < step < 4 * a.size and abs(a.size - b.size) < 0.5:
                steps.append(round(step, 1))
    if not steps:
        return 12.0
    return float(statistics.median(steps))


def strip_captions(
    pages: list[list[Line]], images: Sequence[bool], body: float
) -> tuple[list[list[Line]], int]:
    """On pages with a picture, lines set all in capitals (as drawn) are its caption: not read."""
    removed = 0
    result = []
    for lines, has_image in zip(pages, images, strict=True):
        if not has_image:
            result.append(lines)
            continue
        kept = [ln for ln in lines if not (ln.upper and ln.size < HEADING_RATIO * body)]
        removed += len(lines) - len(kept)
        result.append(kept)
    return result, removed


def strip_footnotes(pages: list[list[Line]], body: float) -> tuple[list[list[Line]], int]:
    """Footnotes: smaller lines at the bottom of a page, the first one starting with a marker."""
    removed = 0
    result = []
    for lines in pages:
        cut = None
        for i, line in enumerate(lines):
            if line.note_start and line.size < SMALL_RATIO * body:
                rest = lines[i:]
                if all(ln.size < SMALL_RATIO * body for ln in rest) and all(
                    ln.y <= line.y + 0.5 * body for ln in rest
                ):
                    cut = i
                    break
        if cut is None:
            result.append(lines)
        else:
            removed += 1
            result.append(lines[:cut])
    return result, removed


# --- from lines to paragraphs and headings --------------------------------------------------------


@dataclass
class Layout:
    items: list[Item]
    warnings: list[str]
    first_page_title: str = ""
    first_page_words: int = 0


def analyse(pages: Sequence[Sequence[Fragment]], images: Sequence[bool]) -> Layout:
    """Fragments of every page -> headings and paragraphs in reading order."""
    body = body_size(pages)
    lines = [build_lines(frags, number, body) for number, frags in enumerate(pages)]
    first_title = _first_page_title(lines[0] if lines else [], body)
    first_words = sum(len(line.text.split()) for line in lines[0]) if lines else 0
    warnings: list[str] = []
    lines, running = strip_running_lines(lines, body)
    lines, captions = strip_captions(lines, images, body)
    lines, notes = strip_footnotes(lines, body)
    log.debug(
        "pdf: body %.1f pt, %d running lines, %d caption lines, %d footnotes", body, running, captions, notes
    )
    if captions:
        warnings.append(f"skipped {captions} lines of picture captions")
    if notes:
        warnings.append(f"skipped {notes} footnotes")
    items = _items(lines, body)
    return Layout(items=items, warnings=warnings, first_page_title=first_title, first_page_words=first_words)


def _first_page_title(lines: Sequence[Line], body: float) -> str:
    """The largest text on the first page, when it is larger than the body text and short."""
    big = [ln for ln in lines if ln.size >= HEADING_RATIO * body]
    if not big:
        return ""
    top = max(ln.size for ln in big)
    title = " ".join(ln.text for ln in big if abs(ln.size - top) < 0.5)
    title = clean_text(title)
    if not has_words(title) or len(title) > 150 or heading_kind(title) is not None:
        return ""  # no title, or the first page opens with a chapter
    return pretty_title(title)


def _items(pages: Sequence[Sequence[Line]], body: float) -> list[Item]:
    spacing = _line_spacing(pages)
    margins = _margins(pages, body)
    typical = _typical_length(pages, body)
    vocabulary = _vocabulary(
        line.text for lines in pages for line in lines if line.size < HEADING_RATIO * body
    )

    items: list[Item] = []
    para: list[Line] = []

    def flush() -> None:
        if para:
            text = join_lines([_resolve_cap(ln.text, vocabulary[0]) for ln in para], vocabulary)
            if has_words(text):
                items.append(Paragraph(text, para[0].page, para[0].y, [ln.text for ln in para]))
            para.clear()

    for lines in pages:
        margin = margins.get(lines[0].page, 0.0) if lines else 0.0
        for i, line in enumerate(lines):
            if line.size >= HEADING_RATIO * body:
                flush()
                last = items[-1] if items else None
                if (
                    isinstance(last, Heading)
                    and last.by_size
                    and last.page == line.page
                    and abs(last.size - line.size) <= 0.1 * line.size
                    and 0 < last.y - line.y <= 2.5 * line.size
                ):
                    last.text = clean_text(f"{last.text} {line.text}")
                    last.y = line.y
                else:
                    items.append(Heading(line.text, line.size, line.page, line.y))
                continue
            nxt = lines[i + 1] if i + 1 < len(lines) else None
            if para and _starts_paragraph(para, line, nxt, margin, spacing, typical, body):
                flush()
            para.append(line)
    flush()
    for item in items:
        if isinstance(item, Heading):
            item.kind = heading_kind(item.text)
    return _keyword_headings(items)


def _resolve_cap(text: str, plain: frozenset[str]) -> str:
    """ "T" + "he" -> "The" (a word the book uses); "I" + "confess" -> "I confess"."""
    if CAP_JOIN not in text:
        return text
    cap, _, rest = text.partition(CAP_JOIN)
    first = _START_WORD.match(rest)
    if first and (cap[-1:] + first.group(1)).casefold() in plain:
        return cap + rest
    return f"{cap} {rest}"


def _starts_paragraph(
    para: Sequence[Line],
    line: Line,
    nxt: Line | None,
    margin: float,
    spacing: float,
    typical: float,
    body: float,
) -> bool:
    prev = para[-1]
    same_page = prev.page == line.page
    gap = prev.y - line.y
    if same_page and gap > 1.6 * spacing and not _uniform(para, line, nxt, gap):
        return True  # a blank line or more (not merely widely spaced lines)
    if same_page and line.y > prev.y + 0.5 * body:
        return True  # back up the page: a new column or a new block
    if abs(prev.size - line.size) > 0.15 * max(prev.size, line.size):
        return True  # a block quote, a letter, a poem set smaller
    if line.drop_cap and not (prev.drop_cap and same_page):
        return True
    if line.bold != prev.bold and len(line.text if line.bold else prev.text) < 0.7 * typical:
        return True  # a short bold line (a heading in the body font) stands alone
    if len(para) == 1 and heading_kind(prev.text) in ("chapter", "part"):
        return True  # after "CHAPTER IV" on a line of its own
    if (
        heading_kind(line.text) in ("chapter", "part")
        and prev.text.endswith(_SENTENCE_END)
        and (not same_page or gap > 1.3 * spacing)
    ):
        return True  # "CHAPTER IV" opening a page, or set apart, after a finished sentence
    if line.drop_cap or line.text[:1].islower():
        return False  # beside a drop cap, or a sentence going on
    if len(prev.text) < 0.7 * typical and prev.text.endswith(_SENTENCE_END):
        return True  # the previous line stopped short
    indent = line.x - margin
    if indent > 4 * body:
        return prev.text.endswith(_SENTENCE_END)  # a centred line after a finished one
    if indent > 0.6 * body and line.x > prev.x + 0.6 * body:
        # First-line indentation: the lines that follow go back to the margin (a hanging indent does not).
        return nxt is None or nxt.page != line.page or nxt.x < line.x - 0.6 * body
    return False


def _uniform(para: Sequence[Line], line: Line, nxt: Line | None, gap: float) -> bool:
    """True when the lines around are as widely spaced as this gap (double spacing, a centred block)."""
    if len(para) >= 2 and para[-2].page == para[-1].page:
        before = para[-2].y - para[-1].y
        return abs(before - gap) <= 0.15 * gap
    if nxt is not None and nxt.page == line.page:
        after = line.y - nxt.y
        return abs(after - gap) <= 0.15 * gap
    return False


def _margins(pages: Sequence[Sequence[Line]], body: float) -> dict[int, float]:
    """The left margin of each page: where most body lines start."""
    everywhere: Counter[float] = Counter()
    per_page: dict[int, Counter[float]] = {}
    for lines in pages:
        for line in lines:
            if line.size < HEADING_RATIO * body and not line.drop_cap:
                key = round(line.x)
                everywhere[key] += 1
                per_page.setdefault(line.page, Counter())[key] += 1
    default = float(everywhere.most_common(1)[0][0]) if everywhere else 0.0
    margins = {}
    for page, counts in per_page.items():
        value, count = counts.most_common(1)[0]
        margins[page] = float(min(value, min(counts))) if count >= 3 else default
        if count >= 3 and min(counts) < value - 2 * body:
            margins[page] = float(value)  # a stray line far to the left does not move the margin
    return margins


def _typical_length(pages: Sequence[Sequence[Line]], body: float) -> float:
    lengths = [len(line.text) for lines in pages for line in lines if abs(line.size - body) < 0.5]
    if not lengths:
        return 60.0
    lengths.sort()
    return float(lengths[int(len(lengths) * 0.75)])  # a full line (most lines are full)


_WORDS = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


def _vocabulary(lines: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    plain: set[str] = set()
    hyphenated: set[str] = set()
    for line in lines:
        words = _WORDS.findall(line.casefold())
        if line.rstrip().endswith("-") and words:
            words = words[:-1]  # the broken word at the end is no evidence
        for word in words:
            (hyphenated if "-" in word else plain).add(word)
    return frozenset(plain), frozenset(hyphenated)


_END_HYPHEN = re.compile(r"([^\W\d_]+)-$")
_START_WORD = re.compile(r"^([^\W\d_]+)")


def join_lines(lines: Sequence[str], vocabulary: tuple[frozenset[str], frozenset[str]]) -> str:
    """Join the lines of a paragraph. A word broken at a line end is re-joined without its hyphen unless
    the book spells it with a hyphen elsewhere ("to-day") or the second half is capitalised."""
    plain, hyphenated = vocabulary
    out = ""
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if not out:
            out = line
            continue
        head = _END_HYPHEN.search(out)
        tail = _START_WORD.match(line)
        if head and tail and not out.endswith("--"):
            left, right = head.group(1).casefold(), tail.group(1).casefold()
            keep = f"{left}-{right}" in hyphenated and (left + right) not in plain
            if tail.group(1)[0].isupper() and (left + right) not in plain:
                keep = True  # "Anglo-" + "Saxon"
            out = out + line if keep else out[:-1] + line
        elif out.endswith(("—", "–")) and not out.endswith((" —", " –")):
            out = out + line  # "air—" + "or": the dash joins the words
        else:
            out = f"{out} {line}"
    return clean_text(out)


def _keyword_headings(items: list[Item]) -> list[Item]:
    """Body-font paragraphs of one short line that read as a heading ("CHAPTER IV", "Part Two") become
    headings; a bare keyword heading takes the short title line after it ("Chapter 4" + "The Storm")."""
    found: list[Item] = []
    for item in items:
        if isinstance(item, Paragraph) and len(item.lines) == 1 and len(item.text) <= 100:
            kind = heading_kind(item.text)
            if kind is not None:
                found.append(Heading(item.text, 0.0, item.page, item.y, kind, by_size=False))
                continue
        found.append(item)
    chapter_like = sum(1 for it in found if isinstance(it, Heading) and it.kind == "chapter")
    result: list[Item] = []
    for item in found:
        if isinstance(item, Heading) and not item.by_size and item.kind == "numeral" and chapter_like >= 2:
            result.append(Paragraph(item.text, item.page, item.y, [item.text]))  # "1." inside real chapters
            continue
        prev = result[-1] if result else None
        if (
            isinstance(item, Paragraph)
            and isinstance(prev, Heading)
            and prev.kind in ("chapter", "part", "numeral")
            and _bare(prev.text)
            and len(item.lines) == 1
            and _title_like(item.text)
        ):
            prev.text = (
                f"{prev.text}. {item.text}" if not prev.text.endswith(".") else f"{prev.text} {item.text}"
            )
            continue
        result.append(item)
    return result


def _bare(text: str) -> bool:
    return len(text.split()) <= 3 and not any(ch in text for ch in ":—–")


def _title_like(text: str) -> bool:
    words = text.split()
    return (
        0 < len(words) <= 12
        and len(text) <= 80
        and text[0].isupper()
        and not text.endswith((".", ",", ";", "!", "?"))
        and heading_kind(text) is None
    )


# --- chapters -------------------------------------------------------------------------------------


def build_chapters(
    items: Sequence[Item], outline: Sequence[OutlineEntry] = (), book_title: str = ""
) -> tuple[list[Chapter], list[str]]:
    """Chapters from the outline when it has usable entries, otherwise from the headings. Text with no
    heading over it (a book without headings, or a long untitled opening) is titled with the book's title."""
    entries = _chapter_entries(outline)
    if len(entries) >= 2:
        return _chapters_from_outline(items, entries, book_title)
    return _chapters_from_headings(items, book_title)


def _chapter_entries(outline: Sequence[OutlineEntry]) -> list[OutlineEntry]:
    """Top-level entries; a part ("Part I", or an entry whose children are chapters) gives its children,
    the first of them titled "Part I, Chapter 1"."""
    result: list[OutlineEntry] = []
    i = 0
    while i < len(outline):
        entry = outline[i]
        if entry.level != 1:
            i += 1
            continue
        j = i + 1
        children = []
        while j < len(outline) and outline[j].level > 1:
            if outline[j].level == 2:
                children.append(outline[j])
            j += 1
        expand = children and (
            heading_kind(entry.title) == "part"
            or sum(heading_kind(c.title) == "chapter" for c in children) >= max(1, len(children) // 2)
        )
        if expand:
            first = children[0]
            same_place = first.page == entry.page
            title = f"{pretty_title(entry.title)}, {pretty_title(first.title)}"
            result.append(OutlineEntry(1, title, entry.page if not same_place else first.page, entry.top))
            result.extend(OutlineEntry(1, pretty_title(c.title), c.page, c.top) for c in children[1:])
        else:
            result.append(OutlineEntry(1, pretty_title(entry.title), entry.page, entry.top))
        i = j
    result.sort(key=lambda e: (e.page, -(e.top if e.top is not None else 1e9)))
    return result


def _position(item: Item) -> tuple[int, float]:
    return item.page, -item.y


def _chapters_from_outline(
    items: Sequence[Item], entries: Sequence[OutlineEntry], book_title: str
) -> tuple[list[Chapter], list[str]]:
    starts = [(e.page, -(e.top + 2.0) if e.top is not None else -1e9) for e in entries]
    buckets: list[list[Item]] = [[] for _ in entries]
    front: list[Item] = []
    k = -1
    for item in items:
        while k + 1 < len(starts) and _position(item) >= starts[k + 1]:
            k += 1
        (buckets[k] if k >= 0 else front).append(item)
    chapters: list[Chapter] = []
    warnings: list[str] = []
    for entry, bucket in zip(entries, buckets, strict=True):
        while bucket and isinstance(bucket[0], Heading) and _same_words(bucket[0].text, entry.title):
            bucket.pop(0)  # the heading the outline entry points at: its title is spoken already
        paragraphs = [_item_text(it) for it in bucket]
        chapters.append(Chapter(title=entry.title, paragraphs=tuple(p for p in paragraphs if has_words(p))))
    _front(front, chapters, warnings, book_title)
    return chapters, warnings


def _chapters_from_headings(items: Sequence[Item], book_title: str) -> tuple[list[Chapter], list[str]]:
    headings = [it for it in items if isinstance(it, Heading)]
    splits = _split_headings(headings)
    chapters: list[Chapter] = []
    warnings: list[str] = []
    front: list[Item] = []
    part: tuple[str, list[str]] | None = None  # a part heading waiting for its first chapter
    title = ""
    paragraphs: list[str] = []
    started = False

    def close() -> None:
        nonlocal paragraphs
        if started and paragraphs:
            chapters.append(Chapter(title=title, paragraphs=tuple(paragraphs)))
        paragraphs = []

    for item in items:
        if isinstance(item, Heading) and id(item) in splits:
            if part is not None and item.kind != "part" and not paragraphs:
                part_title, intro = part
                part = None
                title = f"{part_title}, {pretty_title(item.text)}"
                paragraphs = list(intro)
                started = True
                continue
            if part is not None:  # a part with no chapter heading after it: the part is the chapter
                part_title, intro = part
                part = None
                title, paragraphs, started = part_title, list(intro), True
            close()
            if item.kind == "part":
                part = (pretty_title(item.text), [])
                started = False
                continue
            title = pretty_title(item.text)
            started = True
            continue
        text = _item_text(item)
        if part is not None:
            part[1].append(text)
            if word_count(part[1]) > PART_INTRO_MAX_WORDS:
                title, paragraphs, started = part[0], part[1], True
                part = None
            continue
        if started:
            paragraphs.append(text)
        else:
            front.append(item)
    if part is not None:
        close()
        title, paragraphs, started = part[0], part[1], True
    close()
    if not chapters:
        text = [_item_text(it) for it in front]
        return ([Chapter(title=book_title, paragraphs=tuple(text))] if text else []), warnings
    _front(front, chapters, warnings, book_title)
    return chapters, warnings


def _split_headings(headings: Sequence[Heading]) -> set[int]:
    """Which headings start a chapter (or a part)."""
    keyword = [h for h in headings if h.kind in ("chapter", "part", "standalone", "numeral")]
    chapter_like = sum(1 for h in keyword if h.kind == "chapter")
    if chapter_like < 2:
        keyword = [h for h in keyword if h.kind != "numeral" or h.by_size or chapter_like == 0]
    if keyword and (len(keyword) >= 2 or not any(h.by_size for h in headings)):
        first = headings.index(keyword[0])
        sized = [h.size for h in keyword if h.by_size]
        floor = min(sized) * 0.9 if sized else float("inf")
        chosen = {id(h) for h in keyword}
        # After the first chapter, other headings set as large ("Appendix", "Notes") are chapters too.
        chosen |= {id(h) for h in headings[first:] if h.by_size and h.size >= floor}
        return chosen
    sized_headings = [h for h in headings if h.by_size]
    if not sized_headings:
        return set()
    counts = Counter(round(h.size) for h in sized_headings)
    repeated = [size for size, n in counts.items() if n >= 2]
    if not repeated:
        return {id(h) for h in sized_headings}
    level = max(repeated)
    first = next(i for i, h in enumerate(sized_headings) if round(h.size) == level)
    return {id(h) for h in sized_headings[first:] if round(h.size) >= level}


def _front(front: list[Item], chapters: list[Chapter], warnings: list[str], title: str) -> None:
    text = [_item_text(it) for it in front]
    text = [t for t in text if has_words(t)]
    if not text:
        return
    words = word_count(text)
    if words >= FRONT_MATTER_MIN_WORDS:
        chapters.insert(0, Chapter(title=title, paragraphs=tuple(text)))
    else:
        warnings.append(
            f"skipped {words} words of front matter before the first chapter: {' / '.join(text)[:80]}"
        )


def _item_text(item: Item) -> str:
    return pretty_title(item.text) if isinstance(item, Heading) else item.text


def _same_words(heading: str, title: str) -> bool:
    """True when most words of the heading are in the title ("CHAPTER 1. THE STORM" vs "1 The Storm")."""
    words = re.findall(r"\w+", heading.casefold())
    known = set(re.findall(r"\w+", title.casefold()))
    return bool(words) and sum(w in known for w in words) >= 0.5 * len(words)


# --- titles ---------------------------------------------------------------------------------------

_MINOR_WORDS = frozenset(
    (
        "a", "an", "the", "and", "but", "or", "nor", "of", "in", "on", "at", "to", "by", "for", "with",
        "from", "as", "into", "upon", "off", "over", "via", "vs",
    )
)  # fmt: skip
_KEYWORDS = frozenset(CHAPTER_WORDS + PART_WORDS)
_ABBREVIATIONS = frozenset(
    (
        "mr", "mrs", "ms", "dr", "st", "jr", "sr", "co", "inc", "ltd", "vs", "etc", "no", "vol", "ch", "pp",
        "esq", "rev", "prof", "gen", "col", "capt",
    )
)  # fmt: skip


def pretty_title(text: str) -> str:
    """A heading as a title: "CHAPTER I. MR. SHERLOCK HOLMES." -> "Chapter I. Mr. Sherlock Holmes"."""
    text = clean_text(text)
    if sum(ch.isalpha() for ch in text) >= 2 and not any(ch.islower() for ch in text):
        text = _title_case(text)
    last = text.rsplit(" ", 1)[-1]
    if (
        text.endswith(".")
        and not text.endswith("..")
        and last.count(".") == 1
        and last[:-1].casefold() not in _ABBREVIATIONS
    ):
        text = text[:-1]  # a heading's full stop is not part of the title; "M.D." and "Mr." keep theirs
    return text


def _title_case(text: str) -> str:
    words = text.split(" ")
    out: list[str] = []
    for i, word in enumerate(words):
        core = word.strip(".,:;!?()[]\"'“”‘’«»")
        prev = out[-1] if out else ""
        after_keyword = prev.strip(".,:;").casefold() in _KEYWORDS
        sentence_start = i == 0 or prev.endswith((".", ":", "—", "!", "?"))
        if core and (roman_to_int(core) is not None and (after_keyword or len(core) > 1) and core != "MIX"):
            out.append(word)
        elif core.count(".") >= 1 and len(core.replace(".", "")) <= 3 and "." in core[:-1]:
            out.append(word)  # an abbreviation such as "M.D." or "U.S."
        elif not sentence_start and core.casefold() in _MINOR_WORDS:
            out.append(word.lower())
        else:
            out.append(_capitalize(word))
    return " ".join(out)


def _capitalize(word: str) -> str:
    for i, ch in enumerate(word):
        if ch.isalpha():
            return word[:i] + ch.upper() + word[i + 1 :].lower()
    return word
