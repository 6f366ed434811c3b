"""The EPUB reader on the real corpus books and on small EPUBs built here, one trap each."""

from __future__ import annotations

import re
import time
import zipfile
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest

from ebook2audio.errors import BookError, DRMError
from ebook2audio.ingest.epub import is_number_only, read_epub
from ebook2audio.model import Book

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _read(name: str) -> Book:
    path = CORPUS / name
    if not path.is_file():
        pytest.fail(f"corpus book missing: {path}")
    return read_epub(path)


def _all_text(book: Book) -> str:
    return "\n".join(p for c in book.chapters for p in c.paragraphs)


def _key(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.casefold())


def _check_common(book: Book) -> None:
    """What every book must satisfy: no empty chapter, no chapter opening with its own title."""
    assert book.source_format == "epub"
    for chapter in book.chapters:
        assert chapter.title.strip(), chapter
        assert chapter.paragraphs and all(p.strip() for p in chapter.paragraphs), chapter.title
        assert _key(chapter.paragraphs[0]) != _key(chapter.title), chapter.title
        assert all(p == " ".join(p.split()) for p in chapter.paragraphs), chapter.title


# ----------------------------------------------------------------------------------------------------
# The real corpus
# ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moby() -> Book:
    return _read("epub3_moby-dick_melville_en.epub")


def test_moby_dick_chapters_in_order(moby: Book) -> None:
    titles = [c.title for c in moby.chapters]
    # Etymology and Extracts are real text; the title page, the transcriber's notes (a colophon),
    # the brief TOC and the copyright page are not chapters.
    assert len(titles) == 138
    assert titles[0] == "ETYMOLOGY."
    assert titles[1] == "EXTRACTS (Supplied by a Sub-Sub-Librarian)."
    assert titles[2] == "Chapter 1. Loomings."
    assert titles[43] == "Chapter 42. The Whiteness of The Whale."
    assert titles[-2] == "Chapter 135. The Chase.—Third Day."
    assert titles[-1] == "Epilogue"
    assert [int(m.group(1)) for t in titles if (m := re.match(r"Chapter (\d+)\.", t))] == list(range(1, 136))
    _check_common(moby)
    assert moby.chapters[2].paragraphs[0].startswith("Call me Ishmael.")
    assert moby.chapters[-1].paragraphs[-1].endswith("only found another orphan.")


def test_moby_dick_metadata_cover_and_length(moby: Book) -> None:
    md = moby.metadata
    assert md.title == "Moby-Dick"
    assert md.authors == ("Herman Melville",)
    assert md.language == "en-US"
    assert md.publisher == "Harper & Brothers, Publishers"
    assert md.identifiers == ("code.google.com.epub-samples.moby-dick-basic",)
    assert moby.cover is not None and moby.cover.mime == "image/jpeg"
    assert moby.cover.data[:3] == b"\xff\xd8\xff" and len(moby.cover.data) > 100_000
    words = sum(c.words for c in moby.chapters)
    assert 200_000 < words < 225_000, words
    text = _all_text(moby)
    assert "Project Gutenberg" not in text  # the copyright page
    assert "This text is a combination of etexts" not in text  # transcriber's notes (colophon)
    assert "Brief Contents" not in text and "Begin Reading" not in text
    assert moby.warnings == ()


def test_moby_dick_reads_fast() -> None:
    start = time.perf_counter()
    _read("epub3_moby-dick_melville_en.epub")
    assert time.perf_counter() - start < 3.0


def test_childrens_literature_fragments_split_without_duplicates() -> None:
    book = _read("epub3_childrens-literature_curry-clippinger_en.epub")
    titles = [c.title for c in book.chapters]
    # "SECTION IV ..." has nothing of its own before its first child: dropped; the hidden depth-4
    # entries (the four stories of "A Four-Leaved Clover") carry text: chapters of their own.
    assert len(titles) == 21
    assert titles[0] == "BIBLIOGRAPHY"
    assert titles[1] == "INTRODUCTORY"
    assert titles[2:7] == [
        "190 A FOUR-LEAVED CLOVER",
        "I. The Rabbi and the Diadem",
        "II. Friendship",
        "III. True Charity",
        "IV. An Eastern Garden",
    ]
    assert titles[-1] == "204 THE KING OF THE GOLDEN RIVER OR THE BLACK BROTHERS"
    assert not any(t.startswith("SECTION IV") for t in titles)
    _check_common(book)
    clover, rabbi = book.chapters[2], book.chapters[3]
    assert clover.paragraphs[0].startswith("The rabbis of old were good story-tellers.")
    assert "Great was the alarm" not in " ".join(clover.paragraphs)
    # its heading "1. The Rabbi and The Diadem" repeats the TOC label "I. The Rabbi and the Diadem"
    assert rabbi.paragraphs[0].startswith("Great was the alarm in the palace of Rome")
    # No text twice: no paragraph is in two chapters (a refrain may repeat inside one story).
    counts = Counter(p for c in book.chapters for p in set(c.paragraphs) if len(p) > 80)
    assert [p for p, n in counts.items() if n > 1] == []
    assert 50_000 < sum(c.words for c in book.chapters) < 58_000
    md = book.metadata
    assert md.title == "Children's Literature"
    assert md.authors == ("Charles Madison Curry", "Erle Elsworth Clippinger")
    assert md.language == "en" and md.date == "2008-05-20"
    assert md.subjects == ("Children -- Books and reading", "Children's literature -- Study and teaching")
    assert book.cover is not None and book.cover.mime == "image/png"
    assert not any(re.fullmatch(r"\d{3}", p) for c in book.chapters for p in c.paragraphs)  # page numbers


def test_georgia_main_title_and_no_notes_inline() -> None:
    book = _read("epub3_georgia-pls-ssml_britannica1911_en.epub")
    assert book.metadata.title == "Georgia"  # of 4 refined titles, the "main" one
    assert book.metadata.authors == ("Various",)
    assert book.metadata.language == "en-US"
    titles = [c.title for c in book.chapters]
    assert len(titles) == 10
    assert titles[0] == "GEORGIA" and titles[6] == "Government" and titles[-1] == "History"
    _check_common(book)
    text = _all_text(book)
    assert "the upper Savannah was formerly part of the Chattahoochee" in text  # noteref "1" dropped
    assert "According to the usual nomenclature" not in text  # the rearnotes
    assert "amended from overriden" not in text  # an annotation aside
    assert "the rank and file of the Whigs" in text  # a pagebreak "757" inside the sentence: not read
    assert "James Edward Oglethorpe, 1732-1743" in text  # a table row, without its noteref "8"
    assert book.cover is not None and book.cover.mime == "image/png"


def test_kusamakura_ruby_read_once() -> None:
    book = _read("epub3_kusamakura_natsume-soseki_ja.epub")
    md = book.metadata
    assert md.title == "草枕"
    assert md.authors == ("夏目 漱石",)
    assert md.language == "ja-JP"  # declared "ja-jp"
    assert book.cover is None  # no cover declared; the cover page is text, not a picture
    titles = [c.title for c in book.chapters]
    assert titles == ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二", "十三"]
    _check_common(book)
    first = book.chapters[0].paragraphs
    assert first[0] == "山路を登りながら、こう考えた。"  # <ruby>山路<rt>やまみち</rt></ruby>
    assert first[1].startswith("智に働けば角が立つ。情に棹させば流される。")
    text = _all_text(book)
    assert "やまみち" not in text and "智ち" not in text and "情じょう" not in text
    assert "この文書について" not in text and "慶応" not in text  # colophon and cover page
    assert len(text) > 80_000


def test_esprit_des_lois_ncx_chapters() -> None:
    book = _read("epub2_esprit-des-lois_montesquieu_fr.epub")
    md = book.metadata
    assert md.title.startswith("Esprit des lois")
    assert md.language == "fr"
    assert md.authors == ("baron de Charles de Secondat Montesquieu",)
    assert md.date == "2008-12-20"  # the "publication" event, not the conversion date
    assert "Political science" in md.subjects
    assert book.cover is not None and book.cover.mime == "image/png"
    titles = [c.title for c in book.chapters]
    assert len(titles) == 168
    assert titles[0] == "INTRODUCTION"  # "[1]" note marker removed from the NCX label
    assert "LIVRE DEUXIÈME — CHAPITRE PREMIER" in titles  # repeated titles named by their book
    assert "LIVRE ONZIÈME — CHAPITRE VI" in titles
    assert titles[-2:] == ["NOTES EXPLICATIVES", "NOTES"]
    assert "TABLE DES MATIÈRES" not in titles  # the guide's toc
    assert len(set(titles)) == len(titles)
    _check_common(book)
    text = _all_text(book)
    assert "Gutenberg" not in text  # header and licence boxes
    assert not re.search(r"\[\w{1,5}\]", text)  # PG-style footnote markers
    assert book.chapters[0].paragraphs[0].startswith("Le plus grand livre du xviiie siècle")
    assert 100_000 < sum(c.words for c in book.chapters) < 130_000


# ----------------------------------------------------------------------------------------------------
# Small EPUBs built here
# ----------------------------------------------------------------------------------------------------

XHTML = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
    "<head><title>{title}</title></head><body>{body}</body></html>"
)
CONTAINER = (
    '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
    '<rootfiles><rootfile full-path="{opf}" media-type="application/oebps-package+xml"/></rootfiles>'
    "</container>"
)


def _doc(body: str, title: str = "Book") -> str:
    return XHTML.format(title=title, body=body)


def _opf(
    items: list[tuple[str, str, str, str]],
    spine: list[tuple[str, bool]],
    *,
    metadata: str = "<dc:title>Test Book</dc:title><dc:language>en</dc:language>",
    version: str = "3.0",
    toc: str = "",
    guide: str = "",
) -> str:
    manifest = "".join(
        f'<item id="{i}" href="{h}" media-type="{m}"' + (f' properties="{p}"' if p else "") + "/>"
        for i, h, m, p in items
    )
    refs = "".join(f'<itemref idref="{i}"' + ("" if lin else ' linear="no"') + "/>" for i, lin in spine)
    toc_attr = f' toc="{toc}"' if toc else ""
    return (
        f'<?xml version="1.0" encoding="utf-8"?><package xmlns="http://www.idpf.org/2007/opf" '
        f'version="{version}" unique-identifier="uid">'
        f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:opf="http://www.idpf.org/2007/opf">'
        f"{metadata}</metadata><manifest>{manifest}</manifest><spine{toc_attr}>{refs}</spine>{guide}</package>"
    )


def _nav(entries: str) -> str:
    return _doc(f'<nav epub:type="toc"><h1>Contents</h1><ol>{entries}</ol></nav>', "Contents")


def _write(path: Path, files: dict[str, str | bytes], *, opf_path: str = "OEBPS/content.opf") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        if "META-INF/container.xml" not in files:
            zf.writestr("META-INF/container.xml", CONTAINER.format(opf=opf_path))
        for name, data in files.items():
            if data is not None:
                zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def _book(
    tmp_path: Path,
    docs: dict[str, str],
    nav: str | None,
    *,
    linear: dict[str, bool] | None = None,
    extra: dict[str, str | bytes] | None = None,
    extra_items: list[tuple[str, str, str, str]] | None = None,
    metadata: str | None = None,
) -> Path:
    """An EPUB 3 with the documents in spine order (ids d0, d1, ...) and an optional nav."""
    items = [(f"d{i}", href, "application/xhtml+xml", "") for i, href in enumerate(docs)]
    spine = [(f"d{i}", (linear or {}).get(href, True)) for i, href in enumerate(docs)]
    files: dict[str, str | bytes] = {f"OEBPS/{href}": body for href, body in docs.items()}
    if nav is not None:
        items.append(("nav", "nav.xhtml", "application/xhtml+xml", "nav"))
        files["OEBPS/nav.xhtml"] = _nav(nav)
    items += extra_items or []
    kwargs = {"metadata": metadata} if metadata is not None else {}
    files["OEBPS/content.opf"] = _opf(items, spine, **kwargs)
    files.update(extra or {})
    return _write(tmp_path / "book.epub", files)


def _li(label: str, href: str, children: str = "") -> str:
    return f'<li><a href="{href}">{label}</a>' + (f"<ol>{children}</ol>" if children else "") + "</li>"


def test_fragments_split_and_spread_chapter_merged(tmp_path: Path) -> None:
    one = _doc(
        '<section id="a"><h1>Alpha</h1><p>Text of alpha.</p></section>'
        '<section id="b"><h2>Beta</h2><p>Text of beta.</p></section>'
        '<section id="c"><h2>Gamma</h2><p>Gamma starts here.</p></section>'
    )
    two = _doc("<p>Gamma goes on in the next file.</p>")
    three = _doc('<h2 id="d">Delta</h2><p>Delta text.</p>')
    nav = (
        _li("Alpha", "one.xhtml#a")
        + _li("Beta", "one.xhtml#b")
        + _li("Gamma", "one.xhtml#c")
        + _li("Delta", "three.xhtml#d")
    )
    book = read_epub(_book(tmp_path, {"one.xhtml": one, "two.xhtml": two, "three.xhtml": three}, nav))
    assert [(c.title, c.paragraphs) for c in book.chapters] == [
        ("Alpha", ("Text of alpha.",)),
        ("Beta", ("Text of beta.",)),
        ("Gamma", ("Gamma starts here.", "Gamma goes on in the next file.")),
        ("Delta", ("Delta text.",)),
    ]


def test_spine_order_wins_over_toc_order(tmp_path: Path) -> None:
    docs = {"a.xhtml": _doc("<h1>First</h1><p>1.</p>"), "b.xhtml": _doc("<h1>Second</h1><p>2.</p>")}
    book = read_epub(_book(tmp_path, docs, _li("Second", "b.xhtml") + _li("First", "a.xhtml")))
    assert [c.title for c in book.chapters] == ["First", "Second"]


def test_nested_toc_flattened_empty_parent_dropped(tmp_path: Path) -> None:
    doc = _doc(
        '<h1 id="p1">Part One</h1>'
        '<h2 id="c1">Chapter 1</h2><p>One.</p>'
        '<h2 id="c2">Chapter 2</h2><p>Two.</p>'
        '<h1 id="p2">Part Two</h1><p>A short preface to part two.</p>'
        '<h2 id="c3">Chapter 1</h2><p>Three.</p>'
    )
    nav = _li("Part One", "t.xhtml#p1", _li("Chapter 1", "t.xhtml#c1") + _li("Chapter 2", "t.xhtml#c2"))
    nav += _li("Part Two", "t.xhtml#p2", _li("Chapter 1", "t.xhtml#c3"))
    book = read_epub(_book(tmp_path, {"t.xhtml": doc}, nav))
    assert [(c.title, c.paragraphs) for c in book.chapters] == [
        ("Part One — Chapter 1", ("One.",)),
        ("Part One — Chapter 2", ("Two.",)),
        ("Part Two", ("A short preface to part two.",)),
        ("Part Two — Chapter 1", ("Three.",)),
    ]


def test_linear_no_and_front_matter_not_read(tmp_path: Path) -> None:
    docs = {
        "cover.xhtml": _doc('<section epub:type="cover"><p>Cover words.</p></section>'),
        "title.xhtml": _doc('<section epub:type="titlepage"><h1>Test Book</h1><p>By Someone.</p></section>'),
        "preface.xhtml": _doc("<h1>Preface</h1><p>An untitled-in-TOC preface with a heading.</p>"),
        "ch1.xhtml": _doc("<h1>One</h1><p>Chapter one text.</p>"),
        "notes.xhtml": _doc("<h1>Side notes</h1><p>Out of the reading order.</p>"),
        "copy.xhtml": _doc('<section epub:type="copyright-page"><p>All rights reserved.</p></section>'),
    }
    nav = _li("One", "ch1.xhtml") + _li("Copyright", "copy.xhtml")
    book = read_epub(_book(tmp_path, docs, nav, linear={"notes.xhtml": False}))
    assert [(c.title, c.paragraphs) for c in book.chapters] == [
        ("Preface", ("An untitled-in-TOC preface with a heading.",)),
        ("One", ("Chapter one text.",)),
    ]
    text = _all_text(book)
    assert "Out of the reading order" not in text and "Cover words" not in text
    assert "By Someone" not in text and "rights reserved" not in text


def test_inline_traps(tmp_path: Path) -> None:
    body = (
        "<h1>Traps</h1>"
        '<p>Base <ruby>漢字<rp>(</rp><rt>かんじ</rt><rp>)</rp></ruby> text<a epub:type="noteref" href="#n1">1</a>'
        ' and<sup><a href="#n2">2</a></sup> more<a href="#fn3" class="fnanchor">[3]</a>.</p>'
        '<aside epub:type="footnote" id="n1"><p>Footnote one.</p></aside>'
        '<p>A page<span epub:type="pagebreak" id="p7" title="7">7</span> break.</p>'
        "<script>var x = 1;</script><style>p {}</style>"
        '<p>Line one<br/>line two<br/><br/>new paragraph <img src="x.png" alt="ALT TEXT"/></p>'
        "<table><tr><th>Name</th><th>Year</th></tr><tr><td>Ann</td><td>1900</td></tr></table>"
        "<ul><li>first</li><li>second</li></ul>"
        "<p>Spaces&#160;and\n\t newlines   collapse&#173;d.</p>"
        '<p hidden="hidden">Hidden.</p><div style="display: none">Also hidden.</div>'
        "<p>x<sup>2</sup> stays.</p>"
    )
    book = read_epub(_book(tmp_path, {"t.xhtml": _doc(body)}, _li("Traps", "t.xhtml")))
    assert book.chapters[0].paragraphs == (
        "Base 漢字 text and more.",
        "A page break.",
        "Line one line two",
        "new paragraph",
        "Name, Year",
        "Ann, 1900",
        "first",
        "second",
        "Spaces and newlines collapsed.",
        "x2 stays.",
    )


def test_ncx_only_epub2_with_guide_meta_cover_and_gutenberg(tmp_path: Path) -> None:
    ncx = (
        '<?xml version="1.0"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1"><navMap>'
        '<navPoint id="n1" playOrder="1"><navLabel><text>Book I</text></navLabel><content src="a.html"/>'
        '<navPoint id="n2" playOrder="2"><navLabel><text>Chapter I[1]</text></navLabel>'
        '<content src="a.html#c1"/></navPoint></navPoint>'
        '<navPoint id="n3" playOrder="3"><navLabel><text>Contents</text></navLabel>'
        '<content src="a.html#toc"/></navPoint>'
        '<navPoint id="n4" playOrder="4"><navLabel><text>THE FULL PROJECT GUTENBERG LICENSE</text></navLabel>'
        '<content src="lic.html"/></navPoint>'
        "</navMap></ncx>"
    )
    a = _doc(
        '<div class="pgheader">The Project Gutenberg EBook of Test</div>'
        '<h1>Book I</h1><h2 id="c1">Chapter I<a href="#f1">[1]</a></h2><p>Words of chapter one.</p>'
        '<div id="toc"><p><a href="#c1">Chapter I</a></p></div>'
    )
    items = [
        ("a", "a.html", "application/xhtml+xml", ""),
        ("lic", "lic.html", "application/xhtml+xml", ""),
        ("ncx", "toc.ncx", "application/x-dtbncx+xml", ""),
        ("img", "images/c.jpg", "image/jpeg", ""),
        ("wrap", "wrap.html", "application/xhtml+xml", ""),
    ]
    metadata = (
        '<dc:title>Test</dc:title><dc:creator opf:role="ill">Drawer</dc:creator>'
        '<dc:creator opf:role="aut">Writer</dc:creator><dc:language>en-gb</dc:language>'
        '<dc:date opf:event="conversion">2020-01-01</dc:date><dc:date opf:event="publication">1901</dc:date>'
        "<dc:description>&lt;p&gt;A &lt;b&gt;fine&lt;/b&gt; book.&lt;/p&gt;</dc:description>"
        '<dc:identifier id="uid">urn:x:1</dc:identifier><meta name="cover" content="img"/>'
    )
    guide = '<guide><reference type="toc" title="Contents" href="a.html#toc"/></guide>'
    opf = _opf(
        items,
        [("wrap", True), ("a", True), ("lic", True)],
        metadata=metadata,
        version="2.0",
        toc="ncx",
        guide=guide,
    )
    files: dict[str, str | bytes] = {
        "OEBPS/content.opf": opf,
        "OEBPS/toc.ncx": ncx,
        "OEBPS/a.html": a,
        "OEBPS/lic.html": _doc("<p>Licence text.</p>"),
        "OEBPS/wrap.html": _doc('<div><img src="images/c.jpg" alt="Cover"/></div>'),
        "OEBPS/images/c.jpg": JPEG,
    }
    book = read_epub(_write(tmp_path / "b.epub", files))
    assert [(c.title, c.paragraphs) for c in book.chapters] == [
        ("Book I — Chapter I", ("Words of chapter one.",))  # a numbered chapter named by its book
    ]
    md = book.metadata
    assert md.authors == ("Writer",) and md.language == "en-GB" and md.date == "1901"
    assert md.description == "A fine book."
    assert md.identifiers == ("urn:x:1",)
    assert book.cover is not None and book.cover.mime == "image/jpeg" and book.cover.data == JPEG


def test_no_toc_one_chapter_per_spine_item(tmp_path: Path) -> None:
    docs = {
        "a.xhtml": _doc("<h2>The Beginning</h2><p>First.</p>"),
        "b.xhtml": _doc("<p>Untitled second part.</p>", title="Second Part"),
        "c.xhtml": _doc("<h1>The End</h1><p>Last.</p>"),
    }
    book = read_epub(_book(tmp_path, docs, None))
    assert [(c.title, c.paragraphs) for c in book.chapters] == [
        ("The Beginning", ("First.",)),
        ("Second Part", ("Untitled second part.",)),
        ("The End", ("Last.",)),
    ]


def test_non_ascii_percent_encoded_hrefs_and_landmark_cover(tmp_path: Path) -> None:
    name = "第一章.xhtml"
    docs = {name: _doc('<h1 id="一">第一章</h1><p>本文です。</p>')}
    items = [("cov", "images/表紙.png", "image/png", "cover-image")]
    path = _book(
        tmp_path,
        docs,
        _li("第一章", f"{quote(name)}#{quote('一')}"),
        extra={"OEBPS/images/表紙.png": PNG},
        extra_items=items,
        metadata="<dc:title>本</dc:title><dc:language>ja</dc:language>",
    )
    book = read_epub(path)
    assert [(c.title, c.paragraphs) for c in book.chapters] == [("第一章", ("本文です。",))]
    assert book.cover is not None and book.cover.mime == "image/png"


def test_html_entities_without_dtd_are_read(tmp_path: Path) -> None:
    body = "<h1>One</h1><p>Caf&eacute;&nbsp;au lait &mdash; &amp; more.</p>"
    book = read_epub(_book(tmp_path, {"a.xhtml": _doc(body)}, _li("One", "a.xhtml")))
    assert book.chapters[0].paragraphs == ("Café au lait — & more.",)


def test_missing_spine_item_skipped_with_warning(tmp_path: Path) -> None:
    docs = {"a.xhtml": _doc("<h1>A</h1><p>Present.</p>"), "b.xhtml": _doc("<h1>B</h1><p>Gone.</p>")}
    path = _book(tmp_path, docs, None)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if n not in ("OEBPS/b.xhtml", "mimetype")}
    path = _write(tmp_path / "missing.epub", members)
    book = read_epub(path)
    assert [c.title for c in book.chapters] == ["A"]
    assert any("b.xhtml" in w and "missing" in w for w in book.warnings)


def test_svg_cover_skipped_with_warning(tmp_path: Path) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg>'
    path = _book(
        tmp_path,
        {"a.xhtml": _doc("<h1>A</h1><p>Text.</p>")},
        _li("A", "a.xhtml"),
        extra={"OEBPS/cover.svg": svg},
        extra_items=[("c", "cover.svg", "image/svg+xml", "cover-image")],
    )
    book = read_epub(path)
    assert book.cover is None
    assert any("svg" in w.lower() for w in book.warnings)


# -- refused books -------------------------------------------------------------------------------------


def _encryption(algorithm: str, uri: str) -> str:
    return (
        '<?xml version="1.0"?><encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
        f'<enc:EncryptedData><enc:EncryptionMethod Algorithm="{algorithm}"/>'
        f'<enc:CipherData><enc:CipherReference URI="{uri}"/></enc:CipherData></enc:EncryptedData>'
        "</encryption>"
    )


def test_drm_encrypted_content_refused(tmp_path: Path) -> None:
    enc = _encryption("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "OEBPS/a.xhtml")
    path = _book(tmp_path, {"a.xhtml": _doc("<p>x</p>")}, None, extra={"META-INF/encryption.xml": enc})
    with pytest.raises(DRMError, match="is DRM-encrypted"):
        read_epub(path)


def test_font_obfuscation_is_not_drm(tmp_path: Path) -> None:
    enc = _encryption("http://www.idpf.org/2008/embedding", "OEBPS/fonts/f.otf")
    path = _book(
        tmp_path,
        {"a.xhtml": _doc("<h1>A</h1><p>Readable.</p>")},
        None,
        extra={"META-INF/encryption.xml": enc, "OEBPS/fonts/f.otf": b"\x00" * 32},
    )
    assert read_epub(path).chapters[0].paragraphs == ("Readable.",)


def test_missing_container_or_opf_or_spine(tmp_path: Path) -> None:
    no_container = tmp_path / "nc.epub"
    with zipfile.ZipFile(no_container, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip")
        zf.writestr("OEBPS/content.opf", _opf([], []))
    with pytest.raises(BookError, match=r"container\.xml is missing"):
        read_epub(no_container)

    no_opf = _write(tmp_path / "no.epub", {"OEBPS/a.xhtml": _doc("<p>x</p>")})
    with pytest.raises(BookError, match=r"package document 'OEBPS/content\.opf'.*missing") as info:
        read_epub(no_opf)
    assert "\n" not in str(info.value)

    no_spine = _write(
        tmp_path / "ns.epub",
        {"OEBPS/content.opf": _opf([("a", "a.xhtml", "application/xhtml+xml", "")], [])},
    )
    with pytest.raises(BookError, match="no spine"):
        read_epub(no_spine)

    missing_all = _write(
        tmp_path / "ma.epub",
        {"OEBPS/content.opf": _opf([("a", "a.xhtml", "application/xhtml+xml", "")], [("a", True)])},
    )
    with pytest.raises(BookError, match="none of the 1 spine documents can be read"):
        read_epub(missing_all)


def test_zip_slip_member_refused(tmp_path: Path) -> None:
    path = _book(tmp_path, {"a.xhtml": _doc("<h1>A</h1><p>x</p>")}, None, extra={"../../evil.txt": "pwned"})
    with pytest.raises(BookError, match="zip slip"):
        read_epub(path)


def test_xxe_in_opf_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    opf = (
        f'<?xml version="1.0"?><!DOCTYPE package [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0"><metadata '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>&xxe;</dc:title></metadata>'
        '<manifest><item id="a" href="a.xhtml" media-type="application/xhtml+xml"/></manifest>'
        '<spine><itemref idref="a"/></spine></package>'
    )
    path = _write(tmp_path / "x.epub", {"OEBPS/content.opf": opf, "OEBPS/a.xhtml": _doc("<p>x</p>")})
    with pytest.raises(BookError, match="entities") as info:
        read_epub(path)
    assert "TOP-SECRET" not in str(info.value)


def test_entities_in_a_content_document_refuse_the_book(tmp_path: Path) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE html [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
        '<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>B</h1><p>&b;</p></body></html>'
    )
    docs = {"a.xhtml": _doc("<h1>A</h1><p>Fine.</p>"), "b.xhtml": bomb}
    with pytest.raises(BookError, match="entities"):
        read_epub(_book(tmp_path, docs, None))


def test_undeclared_encryption_is_reported(tmp_path: Path) -> None:
    garbage = bytes(range(256)) * 8
    path = _book(tmp_path, {"a.xhtml": _doc("<p>x</p>")}, None)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if n != "mimetype"}
    members["OEBPS/a.xhtml"] = garbage
    with pytest.raises(BookError, match="none of its documents can be parsed"):
        read_epub(_write(tmp_path / "g.epub", members))


# ----------------------------------------------------------------------------------------------------
# Numbered TOC entries take their parent's title (nav and NCX)
# ----------------------------------------------------------------------------------------------------

_STORY_DOCS = {
    "title.xhtml": _doc("<h1>Preface</h1><p>Some words before.</p>"),
    "story.xhtml": _doc(
        '<h1 id="s">A Story</h1>'
        '<h2 id="p1">I</h2><p>First part.</p>'
        '<h2 id="p2">II</h2><p>Second part.</p>'
        '<h2 id="p3">III.</h2><p>Third part.</p>'
    ),
    "tale.xhtml": _doc(
        '<h1 id="t">Le Conte</h1><p>Un avant-propos.</p>'
        '<h2 id="c2">Chapitre II</h2><p>Deux.</p>'
        '<h2 id="c4">Part 3</h2><h3 id="c5">Chapter 4</h3><p>Quatre.</p>'
        '<h2 id="c6">Civil</h2><p>Not a number.</p>'
        '<h2 id="c7">2. The Road</h2><p>Numbered but named.</p>'
    ),
}
_STORY_TOC = [  # (depth, label, href)
    (0, "Preface", "title.xhtml"),
    (0, "A Story", "story.xhtml#s"),
    (1, "I", "story.xhtml#p1"),
    (1, "II", "story.xhtml#p2"),
    (1, "III.", "story.xhtml#p3"),
    (0, "Le Conte", "tale.xhtml#t"),
    (1, "Chapitre II", "tale.xhtml#c2"),
    (1, "Part 3", "tale.xhtml#c4"),
    (2, "Chapter 4", "tale.xhtml#c5"),
    (1, "Civil", "tale.xhtml#c6"),
    (1, "2. The Road", "tale.xhtml#c7"),
]
_STORY_CHAPTERS = [
    ("Preface", ("Some words before.",)),
    ("A Story — I", ("First part.",)),  # "A Story" has only its heading: no empty chapter of its own
    ("A Story — II", ("Second part.",)),
    ("A Story — III.", ("Third part.",)),
    ("Le Conte", ("Un avant-propos.",)),
    ("Le Conte — Chapitre II", ("Deux.",)),
    ("Le Conte — Part 3 — Chapter 4", ("Quatre.",)),
    ("Civil", ("Not a number.",)),
    ("2. The Road", ("Numbered but named.",)),
]


def _nested_nav(toc: list[tuple[int, str, str]]) -> str:
    def build(start: int, depth: int) -> tuple[str, int]:
        out, i = "", start
        while i < len(toc) and toc[i][0] == depth:
            _, label, href = toc[i]
            children, i = build(i + 1, depth + 1)
            out += _li(label, href, children)
        return out, i

    return build(0, 0)[0]


def _nested_ncx(toc: list[tuple[int, str, str]]) -> str:
    def build(start: int, depth: int) -> tuple[str, int]:
        out, i = "", start
        while i < len(toc) and toc[i][0] == depth:
            _, label, href = toc[i]
            children, j = build(i + 1, depth + 1)
            out += (
                f'<navPoint id="n{i}" playOrder="{i + 1}"><navLabel><text>{label}</text></navLabel>'
                f'<content src="{href}"/>{children}</navPoint>'
            )
            i = j
        return out, i

    return (
        '<?xml version="1.0"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">'
        f"<navMap>{build(0, 0)[0]}</navMap></ncx>"
    )


def test_numbered_entries_take_parent_title_nav(tmp_path: Path) -> None:
    book = read_epub(_book(tmp_path, dict(_STORY_DOCS), _nested_nav(_STORY_TOC)))
    assert [(c.title, c.paragraphs) for c in book.chapters] == _STORY_CHAPTERS


def test_numbered_entries_take_parent_title_ncx(tmp_path: Path) -> None:
    items = [(f"d{i}", href, "application/xhtml+xml", "") for i, href in enumerate(_STORY_DOCS)]
    items.append(("ncx", "toc.ncx", "application/x-dtbncx+xml", ""))
    files: dict[str, str | bytes] = {f"OEBPS/{h}": d for h, d in _STORY_DOCS.items()}
    files["OEBPS/toc.ncx"] = _nested_ncx(_STORY_TOC)
    spine = [(f"d{i}", True) for i in range(len(_STORY_DOCS))]
    files["OEBPS/content.opf"] = _opf(items, spine, version="2.0", toc="ncx")
    book = read_epub(_write(tmp_path / "b.epub", files))
    assert [(c.title, c.paragraphs) for c in book.chapters] == _STORY_CHAPTERS


@pytest.mark.parametrize(
    "label",
    ["I", "2", "IV.", "Part 3", "Chapitre II", "Chapter 4", "CHAPTER XIV", "Livre premier", "xlii", "Book One"],
)
def test_number_only_labels(label: str) -> None:
    assert is_number_only(label)


@pytest.mark.parametrize(
    "label", ["Civil", "Mild", "I. The Rabbi and the Diadem", "Chapter 4: Home", "Loomings", "Did", ""]
)
def test_named_labels_are_not_number_only(label: str) -> None:
    assert not is_number_only(label)


def test_inspect_json_names_numbered_parts_by_their_story(tmp_path: Path) -> None:
    """Through the real CLI: what a listener's chapter list shows for a story in numbered parts."""
    import json
    import os
    import subprocess
    import sys

    book = _book(tmp_path, dict(_STORY_DOCS), _nested_nav(_STORY_TOC))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBOOK2AUDIO_")}
    r = subprocess.run(
        [sys.executable, "-m", "ebook2audio", "inspect", str(book), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr
    titles = [c["title"] for c in json.loads(r.stdout)["chapters"]]
    assert titles == [t for t, _ in _STORY_CHAPTERS]
    assert titles[1:4] == ["A Story — I", "A Story — II", "A Story — III."]
