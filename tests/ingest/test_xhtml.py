"""The (X)HTML-to-paragraphs helper, on trees from lxml's XML parser and from its HTML parser."""

from __future__ import annotations

import lxml.html

from ebook2audio.ingest.safety import parse_xml
from ebook2audio.ingest.xhtml import (
    Anchor,
    Block,
    blocks_from_element,
    inline_text,
    normalize_space,
    paragraphs_from_element,
)


def _xml(body: str) -> object:
    doc = (
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        f"<head><title>T</title><style>p {{}}</style></head><body>{body}</body></html>"
    )
    return parse_xml(doc.encode(), "test")


def test_blocks_end_paragraphs_and_inline_elements_do_not() -> None:
    root = _xml(
        "<h1>Title <em>here</em></h1><p>One <b>bold</b> and <i>italic</i>.</p>"
        "<div>Loose text<p>inner</p>tail text</div><blockquote><p>Quote.</p></blockquote>"
        "<dl><dt>Term</dt><dd>Definition</dd></dl><pre>  keep\n  words  </pre>"
    )
    assert paragraphs_from_element(root) == [
        "Title here",
        "One bold and italic.",
        "Loose text",
        "inner",
        "tail text",
        "Quote.",
        "Term",
        "Definition",
        "keep words",
    ]


def test_headings_are_marked_and_anchors_split() -> None:
    root = _xml('<section id="a"><h2>A</h2><p>x <span id="mid"/>y</p></section><h3 id="b">B</h3><p>z</p>')
    assert blocks_from_element(root, {"a", "mid", "b"}) == [
        Anchor("a"),
        Block("A", 2),
        Block("x", 0),
        Anchor("mid"),
        Block("y", 0),
        Anchor("b"),
        Block("B", 3),
        Block("z", 0),
    ]


def test_notes_ruby_pagebreaks_and_front_matter_are_not_read() -> None:
    root = _xml(
        '<section epub:type="titlepage"><h1>Big Title</h1></section>'
        '<p><ruby>東<rt>とう</rt>京<rt>きょう</rt></ruby>へ<a epub:type="noteref" href="#n">*</a>行く。</p>'
        '<p>Word<a href="#fn1">[12]</a> and<sup><a href="#fn2">ii</a></sup> end'
        '<span epub:type="pagebreak" title="3"/><span class="pagenum">[Pg 3]</span>.</p>'
        '<aside epub:type="footnote" id="n"><p>The note.</p></aside>'
        '<section epub:type="endnotes"><p>Endnote.</p></section>'
        '<p><a href="other.xhtml#c2">Chapter two</a> is a real link.</p>'
    )
    assert paragraphs_from_element(root) == ["東京へ行く。", "Word and end.", "Chapter two is a real link."]


def test_works_on_html_parser_trees() -> None:
    root = lxml.html.fromstring(
        "<html><body><p>Caf&eacute; <span epub:type='noteref'><a href='#n1'>1</a></span>ok</p>"
        "<p>Line<br>break<br><br>New</p><table><tr><td>a.</td><td>b</td></tr></table>"
        "<div class='pgheader'>The Project Gutenberg eBook</div></body></html>"
    )
    assert paragraphs_from_element(root) == ["Café ok", "Line break", "New", "a. b"]


def test_inline_text_and_normalize_space() -> None:
    root = _xml('<p id="x"><a href="#c1">1</a></p>')
    link = next(el for el in root.iter() if el.tag.endswith("}a"))
    assert inline_text(link) == "1"  # a TOC label "1" is not a note marker
    assert normalize_space(" a\u00a0 b\u00adc\u200b\n d ") == "a bc d"
    assert normalize_space("日本 語\nです") == "日本語です"
    assert normalize_space("日本 and 語") == "日本 and 語"
