from __future__ import annotations

from pathlib import Path

import pytest

from ebook2audio.ingest import read_book
from ebook2audio.ingest.common import decode_bytes
from ebook2audio.ingest.text import book_from_text, read_text

KAFKA = "txt_die-verwandlung_kafka_de.txt"


@pytest.fixture(scope="module")
def kafka(corpus: Path):
    return read_book(corpus / KAFKA)


def test_kafka_has_exactly_three_chapters(kafka) -> None:
    assert [c.title for c in kafka.chapters] == ["I.", "II.", "III."]
    assert kafka.chapters[0].paragraphs[0].startswith("Als Gregor Samsa eines Morgens aus unruhigen Träumen")
    assert kafka.chapters[1].paragraphs[0].startswith("Erst in der Abenddämmerung erwachte Gregor")
    assert kafka.chapters[2].paragraphs[-1].endswith("ihren jungen Körper dehnte.")


def test_kafka_metadata(kafka) -> None:
    assert kafka.metadata.title == "Die Verwandlung"
    assert kafka.metadata.authors == ("Franz Kafka",)
    assert kafka.metadata.language == "de"
    assert kafka.source_format == "txt"


def test_kafka_title_page_is_not_a_chapter_and_is_reported(kafka) -> None:
    text = " ".join(p for c in kafka.chapters for p in c.paragraphs)
    assert "WOLFF" not in text and "COPYRIGHT" not in text
    assert any("title page" in w for w in kafka.warnings)


def test_kafka_keeps_every_word_and_the_guillemets(corpus: Path, kafka) -> None:
    lines = (corpus / KAFKA).read_text(encoding="utf-8").splitlines()
    start = lines.index("I.")
    end = next(i for i, line in enumerate(lines) if line.startswith("End of the Project Gutenberg"))
    expected = sum(len(line.split()) for line in lines[start:end]) - 3  # minus "I." "II." "III."
    assert sum(c.words for c in kafka.chapters) == expected
    first = kafka.chapters[0].paragraphs[1]
    assert first.startswith("»Was ist mit mir geschehen?« dachte er.")
    assert "Gutenberg" not in " ".join(kafka.chapters[-1].paragraphs)


def test_hard_wrapped_lines_are_joined_into_paragraphs(kafka) -> None:
    para = kafka.chapters[0].paragraphs[0]
    assert "\n" not in para
    assert "fand er sich in seinem Bett" in para


def _book(text: str):
    return book_from_text(text)


def test_english_chapter_headings_with_titles() -> None:
    text = "\n\n".join(
        [
            "CHAPTER I",
            "Down the Rabbit-Hole",
            "Alice was beginning to get very tired of sitting by her sister on the bank.",
            "Chapter 2. The Pool of Tears",
            "Curiouser and curiouser, cried Alice.",
            "Chapter IV: The Rabbit Sends in a Little Bill",
            "It was the White Rabbit, trotting slowly back again.",
        ]
    )
    book = _book(text)
    assert [c.title for c in book.chapters] == [
        "CHAPTER I. Down the Rabbit-Hole",
        "Chapter 2. The Pool of Tears",
        "Chapter IV: The Rabbit Sends in a Little Bill",
    ]
    assert book.chapters[0].paragraphs == (
        "Alice was beginning to get very tired of sitting by her sister on the bank.",
    )


def test_french_and_german_headings() -> None:
    text = "\n\n".join(
        [
            "Chapitre 1",
            "Il était une fois une petite fille qui vivait dans la forêt.",
            "Chapitre II. Le loup",
            "Le loup arriva chez la grand-mère.",
            "Kapitel 3",
            "Es war einmal ein König.",
        ]
    )
    assert [c.title for c in _book(text).chapters] == ["Chapitre 1", "Chapitre II. Le loup", "Kapitel 3"]


def test_part_and_chapter_headings_merge_and_front_prose_is_kept() -> None:
    preface = "This preface is real prose that explains at some length, and in plain words, why the book was ever written."
    text = "\n\n".join(
        [
            "My Book",
            preface,
            "PART ONE",
            "CHAPTER 1",
            "It began on a Monday.",
            "CHAPTER 2",
            "It ended on a Tuesday.",
        ]
    )
    book = _book(text)
    assert book.metadata.title == "My Book"
    assert [c.title for c in book.chapters] == ["My Book", "PART ONE. CHAPTER 1", "CHAPTER 2"]
    assert book.chapters[0].paragraphs == (preface,)


def test_numeral_line_followed_by_a_short_title_is_joined() -> None:
    text = "\n\n".join(
        ["I.", "The Arrival", "They came at dawn, tired and cold.", "II.", "The Feast", "Then they ate."]
    )
    assert [c.title for c in _book(text).chapters] == ["I. The Arrival", "II. The Feast"]


def test_heading_inside_a_paragraph_is_not_a_chapter() -> None:
    text = "Some text\nCHAPTER 1\nmore text on the same block.\n\nPart of the story is here.\n"
    book = _book(text)
    assert len(book.chapters) == 1
    assert book.chapters[0].paragraphs[0] == "Some text CHAPTER 1 more text on the same block."


def test_gutenberg_header_and_footer_are_removed_and_parsed() -> None:
    text = (
        "The Project Gutenberg eBook of Example\r\n\r\n"
        "Title: An Example Book\r\n\r\nAuthor: Jane Doe\r\n\r\nLanguage: French\r\n\r\n"
        "*** START OF THE PROJECT GUTENBERG EBOOK AN EXAMPLE BOOK ***\r\n\r\n"
        "CHAPTER I\r\n\r\nLe texte commence ici.\r\n\r\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK AN EXAMPLE BOOK ***\r\n\r\nThe licence text.\r\n"
    )
    book = _book(text)
    assert book.metadata.title == "An Example Book"
    assert book.metadata.authors == ("Jane Doe",)
    assert book.metadata.language == "fr"
    assert [(c.title, c.paragraphs) for c in book.chapters] == [("CHAPTER I", ("Le texte commence ici.",))]


def test_dehyphenation_only_when_the_text_proves_it() -> None:
    text = "An example here. Another exam-\nple there. A well-\nknown fact and a cross-\nroads sign."
    para = _book(text).chapters[0].paragraphs[0]
    assert "Another example there." in para  # "example" occurs unhyphenated elsewhere
    assert "A well-known fact" in para  # no evidence: the hyphen is kept
    assert "cross-roads" in para
    assert "--" in _book("Samsa war Reisender --\nhing das Bild.").chapters[0].paragraphs[0]


def test_latin1_and_cp1252_text_is_decoded(tmp_path: Path) -> None:
    german = "Über dem Tisch hing das Bild. Als Gregor Samsa aus unruhigen Träumen erwachte, größer."
    french = "« Où est ma chatte ? » demanda-t-elle. C’était l’été — les enfants jouaient près de là."
    (tmp_path / "de.txt").write_bytes(german.encode("latin-1"))
    (tmp_path / "fr.txt").write_bytes(french.encode("cp1252"))
    assert read_text(tmp_path / "de.txt").chapters[0].paragraphs[0] == german
    assert read_text(tmp_path / "fr.txt").chapters[0].paragraphs[0] == french


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Так говорила в июле 1805 года известная Анна Павловна Шерер, и он не знал что сказать.", "cp1251"),
        ("Так говорила в июле 1805 года известная Анна Павловна Шерер, и он не знал что сказать.", "koi8_r"),
        ("Zażółć gęślą jaźń, powiedział i nie było go już tam, gdzie był.", "cp1250"),
        ("Hello “world” — it’s done…", "utf-16"),
    ],
)
def test_other_encodings(text: str, encoding: str) -> None:
    decoded, _ = decode_bytes(text.encode(encoding))
    assert decoded == text


def test_invalid_bytes_are_replaced_not_fatal(tmp_path: Path) -> None:
    data = ("Schöne Grüße aus München, " * 20).encode("utf-8") + b"\xff\xfe broken " + b"Ende."
    (tmp_path / "b.txt").write_bytes(data)
    book = read_text(tmp_path / "b.txt")
    assert "Schöne Grüße" in book.chapters[0].paragraphs[0]
    assert any("undecodable" in w for w in book.warnings)


def test_utf8_bom_and_crlf(tmp_path: Path) -> None:
    (tmp_path / "bom.txt").write_bytes("\ufeffChapter 1\r\n\r\nHello there,\r\nfriend.\r\n".encode())
    book = read_text(tmp_path / "bom.txt")
    assert [(c.title, c.paragraphs) for c in book.chapters] == [("Chapter 1", ("Hello there, friend.",))]


ALICE_CHAPTERS = ["Down the Rabbit-Hole", "The Pool of Tears", "A Caucus-Race and a Long Tale"]


def test_table_of_contents_in_one_block_is_skipped() -> None:
    contents = "\n".join(
        f" CHAPTER {n}.     {t}" for n, t in zip(("I", "II", "III"), ALICE_CHAPTERS, strict=True)
    )
    body = "\n\n".join(
        f"CHAPTER {n}.\n{t}\n\nThis is the text of chapter {n}, as it was written."
        for n, t in zip(("I", "II", "III"), ALICE_CHAPTERS, strict=True)
    )
    book = _book(f"Alice\n\nContents\n\n{contents}\n\n{body}")
    assert [c.title for c in book.chapters] == [
        f"CHAPTER {n}. {t}" for n, t in zip(("I", "II", "III"), ALICE_CHAPTERS, strict=True)
    ]
    assert book.chapters[0].paragraphs == ("This is the text of chapter I, as it was written.",)
    assert any("table of contents" in w for w in book.warnings)


def test_table_of_contents_spaced_with_blank_lines_is_skipped() -> None:
    numbers = ("I", "II", "III")
    contents = "\n\n".join(f"CHAPTER {n}.\n\n{t}" for n, t in zip(numbers, ALICE_CHAPTERS, strict=True))
    body = "\n\n".join(
        f"CHAPTER {n}.\n\n{t}\n\nThis is the text of chapter {n}, as it was written."
        for n, t in zip(numbers, ALICE_CHAPTERS, strict=True)
    )
    book = _book(f"{contents}\n\n{body}")
    assert [c.title for c in book.chapters] == [
        f"CHAPTER {n}. {t}" for n, t in zip(numbers, ALICE_CHAPTERS, strict=True)
    ]
    assert [c.paragraphs for c in book.chapters] == [
        (f"This is the text of chapter {n}, as it was written.",) for n in numbers
    ]


def test_leading_metadata_block_without_gutenberg_header() -> None:
    from ebook2audio.ingest.text import book_from_text

    book = book_from_text(
        "Title: A Small Tale\nAuthor: Jo Writer\nLanguage: French\n\nCHAPTER I\n\nIl était une fois.\n"
    )
    assert book.metadata.title == "A Small Tale"
    assert book.metadata.authors == ("Jo Writer",)
    assert book.metadata.language == "fr"
    assert [c.title for c in book.chapters] == ["CHAPTER I"]
    assert "Title" not in " ".join(book.chapters[0].paragraphs)
