"""Paragraphs of real corpus books, read without the ingest package (so these tests stay about text)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from lxml import html


def epub_paragraphs(path: Path) -> list[str]:
    """The text of every <p> and heading of an EPUB's XHTML files, whitespace collapsed."""
    paragraphs: list[str] = []
    with zipfile.ZipFile(path) as archive:
        for name in sorted(archive.namelist()):
            if not name.endswith((".xhtml", ".html", ".htm")):
                continue
            document = html.fromstring(archive.read(name))
            for element in document.iter("p", "h1", "h2", "h3", "h4"):
                text = " ".join(element.text_content().split())
                if text:
                    paragraphs.append(text)
    return paragraphs


def text_paragraphs(path: Path) -> list[str]:
    """Blank-line separated paragraphs of a plain-text book, lines joined."""
    raw = path.read_text(encoding="utf-8")
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", raw) if block.strip()]


@pytest.fixture(scope="session")
def moby_paragraphs(corpus: Path) -> list[str]:
    return epub_paragraphs(corpus / "epub3_moby-dick_melville_en.epub")


@pytest.fixture(scope="session")
def esprit_paragraphs(corpus: Path) -> list[str]:
    return epub_paragraphs(corpus / "epub2_esprit-des-lois_montesquieu_fr.epub")


@pytest.fixture(scope="session")
def kusamakura_paragraphs(corpus: Path) -> list[str]:
    return epub_paragraphs(corpus / "epub3_kusamakura_natsume-soseki_ja.epub")


@pytest.fixture(scope="session")
def kafka_paragraphs(corpus: Path) -> list[str]:
    return text_paragraphs(corpus / "txt_die-verwandlung_kafka_de.txt")
