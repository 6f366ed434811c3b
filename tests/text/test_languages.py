from __future__ import annotations

import pytest

from ebook2audio.text.languages import SUPPORTED_LANGUAGES, base_language, is_supported, language_info


@pytest.mark.parametrize(
    ("tag", "base"),
    [
        ("en-US", "en"),
        ("en", "en"),
        ("EN_gb", "en"),
        ("fr-CA", "fr"),
        ("pt-BR", "pt"),
        ("zh-Hant-TW", "zh"),
        ("fre", "fr"),
        ("eng", "en"),
        ("ger", "de"),
        ("iw", "he"),
        ("nb-NO", "nb"),
        (" de ", "de"),
        ("", ""),
        ("und", ""),
        ("x-klingon", ""),
        ("1234", ""),
        ("ελ", ""),
    ],
)
def test_base_language(tag: str, base: str) -> None:
    assert base_language(tag) == base


def test_language_info_known_and_unknown() -> None:
    en = language_info("en-US")
    assert en.code == "en" and en.first_class and not en.decimal_comma and en.num2words == "en"
    fr = language_info("fr-FR")
    assert fr.first_class and fr.decimal_comma and fr.pysbd == "fr"
    assert language_info("nb").num2words == "no"  # num2words calls Norwegian "no"
    unknown = language_info("tlh")
    assert unknown.code == "tlh" and unknown.num2words is None and unknown.pysbd is None
    assert is_supported("de-AT") and not is_supported("tlh") and not is_supported("")


def test_table_codes_exist_in_the_libraries() -> None:
    from num2words import CONVERTER_CLASSES
    from pysbd.languages import LANGUAGE_CODES

    for code, info in SUPPORTED_LANGUAGES.items():
        assert info.code == code
        assert info.num2words is None or info.num2words in CONVERTER_CLASSES, code
        assert info.pysbd is None or info.pysbd in LANGUAGE_CODES, code
    # every language num2words can spell (base codes) is in the table with its code
    spelled = {c for c in CONVERTER_CLASSES if "_" not in c}
    covered = {info.num2words for info in SUPPORTED_LANGUAGES.values()}
    assert spelled - covered <= {"ce", "tet"}  # Chechen and Tetum are not in the table
