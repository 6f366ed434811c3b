from __future__ import annotations

from pathlib import Path

from ebook2audio.audio.subtitles import Cue, format_timestamp, render_srt, render_vtt, write_subtitles

CUES = [Cue(0.0, 1.25, "Chapter One"), Cue(1.5, 3723.0014, "He said:\n\n  <b>stop</b> & go --> now")]


def test_timestamps() -> None:
    assert format_timestamp(0) == "00:00:00,000"
    assert format_timestamp(3723.4564) == "01:02:03,456"
    assert format_timestamp(59.9996, ".") == "00:01:00.000"
    assert format_timestamp(-0.01) == "00:00:00,000"
    assert format_timestamp(100 * 3600 + 1.5) == "100:00:01,500"


def test_srt_blocks() -> None:
    text = "".join(render_srt(CUES))
    blocks = text.strip().split("\n\n")
    assert len(blocks) == 2  # the blank line inside the second text did not split its cue
    assert blocks[0] == "1\n00:00:00,000 --> 00:00:01,250\nChapter One"
    assert blocks[1].splitlines()[:2] == ["2", "00:00:01,500 --> 01:02:03,001"]
    assert text.endswith("\n\n")


def test_vtt_header_and_escaping() -> None:
    text = "".join(render_vtt(CUES))
    assert text.startswith("WEBVTT\n\n")
    blocks = text.strip().split("\n\n")[1:]
    assert len(blocks) == 2
    assert "00:00:01.500 --> 01:02:03.001" in blocks[1]
    body = blocks[1].splitlines()[2:]
    assert body == ["He said:", "&lt;b&gt;stop&lt;/b&gt; &amp; go --&gt; now"]


def test_write_is_atomic_and_leaves_no_temp(tmp_path: Path) -> None:
    out = tmp_path / "book.srt"
    out.write_text("old")
    write_subtitles(out, CUES)
    assert out.read_text().startswith("1\n00:00:00,000")
    vtt = write_subtitles(tmp_path / "book.vtt", CUES)
    assert vtt.read_text().startswith("WEBVTT")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.srt", "book.vtt"]
