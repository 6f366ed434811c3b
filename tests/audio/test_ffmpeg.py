from __future__ import annotations

import os
from pathlib import Path

import pytest

from ebook2audio.audio.ffmpeg import (
    FORMATS,
    EncodeSpec,
    MetaChapter,
    encode_command,
    encode_pcm,
    escape_ffmetadata,
    ffmetadata,
    find_ffmpeg,
    image_ok,
    probe,
)
from ebook2audio.errors import AssemblyError, ConfigError

from .tones import tone


def test_find_ffmpeg_prefers_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = find_ffmpeg()
    assert os.access(real, os.X_OK)
    fake = tmp_path / "my-ffmpeg"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("EBOOK2AUDIO_FFMPEG", str(fake))
    assert find_ffmpeg() == str(fake)
    monkeypatch.setenv("EBOOK2AUDIO_FFMPEG", str(tmp_path / "missing"))
    with pytest.raises(ConfigError):
        find_ffmpeg()


def test_find_ffmpeg_falls_back_to_imageio(monkeypatch: pytest.MonkeyPatch) -> None:
    import imageio_ffmpeg

    monkeypatch.setenv("PATH", "/nonexistent")
    assert find_ffmpeg() == imageio_ffmpeg.get_ffmpeg_exe()


def test_ffmetadata_escaping() -> None:
    assert escape_ffmetadata("a=b;c#d\\e\nf") == "a\\=b\\;c\\#d\\\\e\\\nf"
    doc = ffmetadata(
        {"title": "T=1", "artist": "", "comment": "x\r\ny"}, [MetaChapter("One; two", 0, 22050)], 22050
    )
    assert doc.splitlines()[:3] == [";FFMETADATA1", "title=T\\=1", "comment=x\\"]
    assert "artist" not in doc  # empty values are dropped
    assert "[CHAPTER]\nTIMEBASE=1/22050\nSTART=0\nEND=22050\ntitle=One\\; two\n" in doc
    with pytest.raises(ValueError):
        ffmetadata({}, [MetaChapter("bad", 10, 5)], 1000)


def test_encode_command_per_format(tmp_path: Path) -> None:
    meta, cover = tmp_path / "m.txt", tmp_path / "c.jpg"
    for name, fmt in FORMATS.items():
        cmd = encode_command("ffmpeg", EncodeSpec(name, 22050, "48k", meta, cover), tmp_path / f"o{fmt.ext}")
        assert cmd[cmd.index("-f") + 1] == "s16le" and "pipe:0" in cmd
        assert cmd[-3:] == ["-f", fmt.muxer, str(tmp_path / f"o{fmt.ext}")]
        assert ("-b:a" in cmd) == fmt.lossy
        assert (str(cover) in cmd) == (fmt.cover is not None)
        assert cmd[cmd.index("-map_chapters") : cmd.index("-map_chapters") + 2] == ["-map_chapters", "1"]
    mp3 = encode_command("ffmpeg", EncodeSpec("mp3", 22050, cover_file=cover), tmp_path / "o.mp3")
    assert "-id3v2_version" in mp3 and "attached_pic" not in mp3
    with pytest.raises(ConfigError):
        encode_command("ffmpeg", EncodeSpec("aiff", 22050), tmp_path / "o.aiff")


def test_encode_failure_carries_ffmpeg_stderr(tmp_path: Path) -> None:
    out = tmp_path / "x.m4a"
    with pytest.raises(AssemblyError, match=r"ffmpeg .*x\.m4a: .*\S"):
        encode_pcm([tone(0.5, 440)] * 3, out, EncodeSpec("m4a", 22050, bitrate="lots"))


def test_encode_pcm_roundtrip(tmp_path: Path) -> None:
    out = tmp_path / "x.flac"
    blocks = [tone(0.5, 440), tone(0.25, 880)]
    assert encode_pcm(blocks, out, EncodeSpec("flac", 22050)) == sum(len(b) for b in blocks)
    p = probe(out)
    assert p.codec == "flac" and p.sample_rate == 22050
    assert p.duration == pytest.approx(0.75, abs=0.01)


def test_image_ok_and_probe_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8\xff" + b"not really a jpeg" * 10)
    assert not image_ok(junk)
    text = tmp_path / "notes.m4b"
    text.write_text("just some words, not audio\n" * 20)
    with pytest.raises(AssemblyError, match=r"notes\.m4b"):
        probe(text)
