from __future__ import annotations

from pathlib import Path

from ebook2audio.ingest.markdown import read_markdown, split_front_matter

BOOK = """---
title: "The Markdown Mariner"
author:
  - Ada Quill
  - name: Bo Pen
lang: en-GB
date: 2020-02-02
tags: [sea, "tales, short"]
description: >
  A small book
  in two chapters.
---

# The Markdown Mariner

## Chapter One

It was a *calm* morning and the **sea** lay [flat](http://example.com).[^1]
The crew slept.

![a ship](ship.png)

    The tide comes in,
    the tide goes out.

## Chapter Two

- First, the anchor.
- Then the `ropes`.

| Item  | Count |
|-------|-------|
| Ropes | 12    |

```python
print("a code block is read")
```

[^1]: A footnote that is never read.
"""


def test_markdown_book(tmp_path: Path) -> None:
    path = tmp_path / "mariner.md"
    path.write_text(BOOK, encoding="utf-8")
    book = read_markdown(path)
    assert [c.title for c in book.chapters] == ["Chapter One", "Chapter Two"]
    assert book.chapters[0].paragraphs == (
        "It was a calm morning and the sea lay flat. The crew slept.",
        "The tide comes in, the tide goes out.",  # an indented (code) block is read as text
    )
    assert book.chapters[1].paragraphs == (
        "First, the anchor.",
        "Then the ropes.",
        "Item, Count",
        "Ropes, 12",
        'print("a code block is read")',
    )
    md = book.metadata
    assert md.title == "The Markdown Mariner"
    assert md.authors == ("Ada Quill", "Bo Pen")
    assert md.language == "en-GB"
    assert md.date == "2020-02-02"
    assert md.subjects == ("sea", "tales, short")
    assert md.description == "A small book in two chapters."
    text = " ".join(p for c in book.chapters for p in c.paragraphs)
    assert "footnote" not in text and "*" not in text and "http" not in text
    assert book.source_format == "md"


def test_title_from_a_lone_top_heading_and_level_one_chapters(tmp_path: Path) -> None:
    path = tmp_path / "plain.md"
    path.write_text(
        "# The Only Title\n\n## One\n\nFirst chapter text goes here.\n\n## Two\n\nSecond chapter text.\n",
        encoding="utf-8",
    )
    book = read_markdown(path)
    assert book.metadata.title == "The Only Title"
    assert [c.title for c in book.chapters] == ["One", "Two"]

    setext = tmp_path / "setext.md"
    setext.write_text(
        "Part one\n========\n\nAlpha text.\n\nPart two\n========\n\nBeta text.\n", encoding="utf-8"
    )
    book = read_markdown(setext)
    assert [c.title for c in book.chapters] == ["Part one", "Part two"]
    assert book.metadata.title == ""  # two top headings: neither is the book's title


def test_pandoc_title_block() -> None:
    fields, body = split_front_matter("% The Title\n% Ann; Bob\n% 2001\n\nText.\n")
    assert fields == {"title": ["The Title"], "author": ["Ann", "Bob"], "date": ["2001"]}
    assert body.strip() == "Text."


def test_no_front_matter_and_an_unclosed_one() -> None:
    assert split_front_matter("Just text.\n") == ({}, "Just text.\n")
    fields, body = split_front_matter("---\nnot closed\n\nText.\n")
    assert fields == {} and "Text." in body


def test_the_registry_reads_markdown_with_this_reader(tmp_path: Path) -> None:
    from ebook2audio.ingest import read_book

    path = tmp_path / "mariner.md"
    path.write_text(BOOK, encoding="utf-8")
    book = read_book(path)
    assert book.source_format == "md"
    assert [c.title for c in book.chapters] == ["Chapter One", "Chapter Two"]
