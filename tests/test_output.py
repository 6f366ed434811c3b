"""Output names, the pre-synthesis write check, and fingerprints read back from real files."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from ebook2audio.audio.ffmpeg import FORMATS, EncodeSpec, encode_pcm, ffmetadata
from ebook2audio.errors import UserError
from ebook2audio.model import EngineInfo
from ebook2audio.output import (
    MAX_NAME_BYTES,
    NAME_MAX,
    check_writable,
    cut_utf8,
    existing_output,
    fingerprint,
    fingerprint_tags,
    longest_name,
    output_settings,
    read_output,
    safe_name,
)

JAPANESE = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。" * 10  # 300+ characters
INFO = EngineInfo(engine="sim", voice="sim", language="en", sample_rate=22050, max_chars=400)


def _nbytes(s: str) -> int:
    return len(s.encode("utf-8"))


def test_a_300_character_japanese_title_is_cut_to_the_byte_limit_on_a_character_boundary() -> None:
    assert len(JAPANESE) >= 300 and _nbytes(JAPANESE) > 3 * MAX_NAME_BYTES
    name = safe_name(JAPANESE)
    assert 0 < _nbytes(name) <= MAX_NAME_BYTES
    assert _nbytes(name) > MAX_NAME_BYTES - 4  # cut at the limit, not at a character count
    assert JAPANESE.startswith(name)  # whole characters, in order


def test_every_name_derived_from_the_longest_base_fits_name_max() -> None:
    base = safe_name(JAPANESE)
    for fmt in FORMATS:
        assert _nbytes(longest_name(base, fmt)) <= NAME_MAX
        assert _nbytes(f"{base} - Part 9999.{fmt}") <= NAME_MAX


@pytest.mark.parametrize(
    "control", ["\u202e", "\u202a", "\u202d", "\u2066", "\u2069", "\u200e", "\u200f", "\u200b", "\ufeff", "\x07", "\x1b"]
)
def test_control_and_format_characters_are_removed(control: str) -> None:
    name = safe_name(f"Evil{control}Title{control}gpj.exe")
    assert name == "EvilTitlegpj.exe"
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name)


def test_line_breaks_and_unsafe_characters_become_single_spaces() -> None:
    assert safe_name('A/B\\C: "D"\n\u2028E?*<>|F') == "A B C D E F"
    assert safe_name("  ..Title..  ") == "Title"
    assert safe_name("\u202e\x00 ./") == "audiobook"


def test_a_cut_never_strands_a_combining_mark() -> None:
    # q + dot below + dot above has no precomposed form: NFC keeps the marks as separate code points
    cluster = "q\u0323\u0307"
    text = cluster * 100
    for limit in range(1, 40):
        cut = cut_utf8(text, limit)
        assert _nbytes(cut) <= limit
        assert len(cut) % 3 == 0, (limit, cut)  # whole clusters only
    assert safe_name("\u0301abc") == "abc"  # a leading lone mark is dropped


def test_emoji_and_four_byte_characters_are_never_split() -> None:
    name = safe_name("😀" * 100)
    assert name == "😀" * (MAX_NAME_BYTES // 4)


def test_check_writable_creates_and_removes_a_probe(tmp_path: Path) -> None:
    out = tmp_path / "new" / "folder"
    check_writable(out, safe_name(JAPANESE), "m4b")
    assert out.is_dir() and list(out.iterdir()) == []


def test_check_writable_refuses_a_name_the_file_system_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="too long"):
        check_writable(tmp_path, "x" * 300, "m4b")
    assert list(tmp_path.iterdir()) == []


def test_check_writable_refuses_a_folder_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot create output directory"):
        check_writable(tmp_path / "file" / "out", "book", "mp3")


def _fp(book: str = "a" * 64, info: EngineInfo = INFO, **changes: object) -> str:
    options: dict[str, object] = {
        "speed": 1.0, "pauses": (300, 700, 2000), "chapters": (), "format": "m4b", "bitrate": "64k",
        "split_hours": 0.0, "subtitles": True,
    }  # fmt: skip
    options.update(changes)
    return fingerprint(book, output_settings(info, **options))  # type: ignore[arg-type]


def test_the_fingerprint_changes_with_every_output_setting_and_the_book() -> None:
    ref = _fp()
    assert ref == _fp() and len(ref) == 32
    changes: list[dict[str, object]] = [
        {"speed": 1.25}, {"pauses": (300, 700, 1000)}, {"chapters": (0, 2)}, {"format": "mp3"},
        {"bitrate": "96k"}, {"split_hours": 2.0}, {"subtitles": False},
    ]  # fmt: skip
    variants = [_fp("b" * 64), _fp(info=EngineInfo("piper", "en_US-joe-medium", "en-US", 22050, 400))]
    variants += [_fp(**c) for c in changes]
    assert ref not in variants and len(set(variants)) == len(variants)
    # the bitrate of a lossless format does not change its bytes
    assert _fp(format="flac", bitrate="64k") == _fp(format="flac", bitrate="96k")


def _encode(path: Path, fmt: str, tags: dict[str, str]) -> None:
    meta = path.with_suffix(".ffmeta")
    meta.write_text(ffmetadata({"title": "T", **tags}, [], 22050), encoding="utf-8")
    spec = EncodeSpec(format=fmt, sample_rate=22050, metadata_file=meta)
    encode_pcm([bytes(2 * 22050)], path, spec)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_the_fingerprint_tag_is_read_back_from_every_format(tmp_path: Path, fmt: str) -> None:
    fp = "0123456789abcdef" * 2
    path = tmp_path / f"book.{fmt}"
    _encode(path, fmt, fingerprint_tags(fmt, fp, "1.2.3"))
    assert read_output(path).fingerprint == fp
    other = tmp_path / f"plain.{fmt}"
    _encode(other, fmt, {})
    assert read_output(other).fingerprint is None


def test_existing_output_states(tmp_path: Path) -> None:
    fp, fp2 = "1" * 32, "2" * 32
    out = tmp_path / "book.mp3"
    assert existing_output(out, fp, split=False, subtitles=False).state == "absent"
    _encode(out, "mp3", fingerprint_tags("mp3", fp))
    assert existing_output(out, fp, split=False, subtitles=False).state == "done"
    assert existing_output(out, fp, split=False, subtitles=True).state == "partial"  # no .srt/.vtt
    (tmp_path / "book.srt").write_text("")
    (tmp_path / "book.vtt").write_text("")
    assert existing_output(out, fp, split=False, subtitles=True).paths == (out,)
    other = existing_output(out, fp2, split=False, subtitles=True)
    assert other.state == "other" and other.paths == (out,)
    out.write_bytes(b"not audio at all")
    assert existing_output(out, fp, split=False, subtitles=False).state == "other"


def test_existing_split_parts_need_every_part(tmp_path: Path) -> None:
    fp = "3" * 32
    out = tmp_path / "book.m4b"
    for n in (1, 2):
        _encode(tmp_path / f"book - Part {n}.m4b", "m4b", {**fingerprint_tags("m4b", fp), "track": f"{n}/3"})
    assert existing_output(out, fp, split=True, subtitles=False).state == "partial"
    _encode(tmp_path / "book - Part 3.m4b", "m4b", {**fingerprint_tags("m4b", fp), "track": "3/3"})
    done = existing_output(out, fp, split=True, subtitles=False)
    assert done.state == "done" and [p.name for p in done.paths] == [f"book - Part {n}.m4b" for n in (1, 2, 3)]


def test_check_writable_refuses_a_folder_with_the_outputs_name(tmp_path: Path) -> None:
    (tmp_path / "book.m4b").mkdir()
    with pytest.raises(UserError, match=r"book\.m4b: a folder has that name"):
        check_writable(tmp_path, "book", "m4b")


def test_the_index_recalls_a_finished_conversion_by_book_and_command(tmp_path: Path) -> None:
    from dataclasses import asdict, replace

    from ebook2audio.config import Settings
    from ebook2audio.output import Record, recall, remember, request_key

    settings = Settings(output_dir=tmp_path / "out", engine="sim")
    key = request_key("a" * 64, settings)
    assert recall(tmp_path, key) is None
    record = Record(tmp_path / "out" / "b.m4b", "4" * 32, False, True, asdict(INFO))
    remember(tmp_path, key, record)
    assert recall(tmp_path, key) == record
    assert [p.name for p in tmp_path.iterdir()] == [f"{key}.json"]
    # what changes the output, or where it goes, changes the key; how the work is done does not
    for change in ({"speed": 1.1}, {"output_name": "x"}, {"output_dir": tmp_path}, {"chapters": "1"}):
        assert request_key("a" * 64, replace(settings, **change)) != key  # type: ignore[arg-type]
    assert request_key("b" * 64, settings) != key
    assert request_key("a" * 64, replace(settings, workers=3, encode_jobs=1, batch_chars=99)) == key
    (tmp_path / f"{key}.json").write_text("{not json")
    assert recall(tmp_path, key) is None
