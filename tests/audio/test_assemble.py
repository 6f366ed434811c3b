from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ebook2audio.audio.assemble import AssemblyOptions, assemble, layout_book, probe, split_parts
from ebook2audio.audio.ffmpeg import find_ffmpeg
from ebook2audio.audio.pcm import CorruptAudioError, parse_wav, wav_bytes
from ebook2audio.errors import AssemblyError, ConfigError
from ebook2audio.model import Cover

from .tones import RATE, make_book, tone

# Every test here runs with each ffmpeg build available (tests/audio/conftest.py).
pytestmark = pytest.mark.usefixtures("each_ffmpeg")

THREE = [("Chapter One", [1.0, 1.5]), ("Empty", []), ("Chapter Two", [0.7, 1.2, 2.0])]


@pytest.fixture(scope="module")
def jpeg(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("cover") / "cover.jpg"
    cmd = [find_ffmpeg(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=96x96:rate=1"]
    subprocess.run([*cmd, "-frames:v", "1", "-y", str(path)], check=True)
    data = path.read_bytes()
    assert data.startswith(b"\xff\xd8\xff")
    return data


def decode(path: Path) -> np.ndarray:
    """The first audio stream as float samples in [-1, 1] at its own rate (mono)."""
    import av

    with av.open(str(path)) as c:
        frames = [f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]
        fmt = c.streams.audio[0].codec_context.format.name
    pcm = np.concatenate(frames)
    return pcm.astype(np.float64) / 32768 if fmt.startswith("s16") else pcm.astype(np.float64)


def read_srt(path: Path) -> list[tuple[float, float, str]]:
    cues = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        lines = block.splitlines()
        a, b = lines[1].split(" --> ")

        def secs(t: str) -> float:
            h, m, s = t.replace(",", ".").split(":")
            return int(h) * 3600 + int(m) * 60 + float(s)

        cues.append((secs(a), secs(b), " ".join(lines[2:])))
    return cues


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_m4b_chapters_tags_cover_and_subtitles(tmp_path: Path, jpeg: bytes) -> None:
    book = make_book(THREE)
    out = tmp_path / "out" / "book.m4b"
    seen: list[int] = []
    result = assemble(
        book.plan, book.read_chunk, out, AssemblyOptions(), Cover(jpeg, "image/jpeg"), seen.append
    )

    assert result.outputs == (out,)
    assert files(out.parent) == ["book.m4b", "book.srt", "book.vtt"]  # no temporaries left
    assert seen == list(range(1, len(book.plan.chunks) + 1))
    expected = book.expected_chapter_starts()
    assert [c.title for c in result.chapters] == ["Chapter One", "Chapter Two"]
    assert [c.start for c in result.chapters] == pytest.approx(expected, abs=1e-9)
    assert result.duration == pytest.approx(book.total_seconds(), abs=1e-9)

    p = probe(out)
    assert (p.codec, p.sample_rate, p.has_cover) == ("aac", RATE, True)
    assert [c.title for c in p.chapters] == ["Chapter One", "Chapter Two"]
    assert [c.start for c in p.chapters] == pytest.approx(expected, abs=0.05)
    assert p.chapters[0].end == pytest.approx(p.chapters[1].start, abs=0.001)
    assert p.chapters[-1].end == pytest.approx(book.total_seconds(), abs=0.05)
    assert p.duration == pytest.approx(book.total_seconds(), abs=0.05)
    assert p.tags["title"] == p.tags["album"] == "The Test Book"
    assert p.tags["artist"] == p.tags["album_artist"] == "Ada Lovelace, Charles Babbage"
    assert p.tags["genre"] == "Audiobook"
    assert p.tags["date"].startswith("1843")
    assert p.tags["comment"] == book.plan.metadata.description  # '=', '#', '\\' and newline survive
    assert p.tags["media_type"] == "2"  # iTunes audiobook
    assert p.tags["language"] == "eng"

    # subtitles: one cue per chunk, at the exact sample offsets, pause excluded
    cues = read_srt(out.with_suffix(".srt"))
    assert len(cues) == len(book.plan.chunks)
    pos = 0
    spans = []
    for chunk in book.plan.chunks:
        n = book.samples(chunk.id)
        spans.append((pos / RATE, (pos + n) / RATE))
        pos += n + (chunk.pause_after_ms * RATE + 500) // 1000
    for (start, end, text), (s, e), chunk in zip(cues, spans, book.plan.chunks, strict=True):
        assert start == pytest.approx(s, abs=0.0006) and end == pytest.approx(e, abs=0.0006)
        assert text == chunk.display
    assert [c[2] for c in cues if c[2].startswith("Chapter")] == ["Chapter One", "Chapter Two"]
    assert len(read_srt_vtt := out.with_suffix(".vtt").read_text().split("\n\n")) >= len(cues)
    assert read_srt_vtt[0] == "WEBVTT"

    # the encoded audio is where the cues say: tone inside each cue, silence inside each pause
    audio = decode(out)
    assert len(audio) / RATE == pytest.approx(book.total_seconds(), abs=0.05)

    def rms(t0: float, t1: float) -> float:
        seg = audio[int(t0 * RATE) : int(t1 * RATE)]
        return float(np.sqrt(np.mean(seg**2)))

    for (s, e), nxt in zip(spans, [*(sp[0] for sp in spans[1:]), book.total_seconds()], strict=True):
        mid = (s + e) / 2
        assert rms(mid - 0.1, mid + 0.1) > 0.15
        assert rms(e + 0.07, nxt - 0.07) < 0.01


def test_lossless_wav_output_is_exactly_the_chunks_and_pauses(tmp_path: Path) -> None:
    book = make_book(THREE)
    out = tmp_path / "book.wav"
    assemble(book.plan, book.read_chunk, out, AssemblyOptions(format="wav", subtitles=False))
    assert len(book.reads) == 2 * len(book.plan.chunks)  # measured, then streamed
    rate, pcm = parse_wav(out.read_bytes())
    assert rate == RATE and pcm == book.expected_pcm()
    assert files(tmp_path) == ["book.wav"]

    # with chunk_sizes every chunk is read once, and the audio is the same
    book.reads.clear()
    out2 = tmp_path / "sized.wav"
    assemble(
        book.plan,
        book.read_chunk,
        out2,
        AssemblyOptions(format="wav", subtitles=False),
        chunk_sizes=book.size,
    )
    assert sorted(book.reads) == sorted(c.id for c in book.plan.chunks)
    assert parse_wav(out2.read_bytes())[1] == book.expected_pcm()


def test_flac_is_lossless_with_cover(tmp_path: Path, jpeg: bytes) -> None:
    book = make_book(THREE)
    out = tmp_path / "book.flac"
    assemble(book.plan, book.read_chunk, out, AssemblyOptions(format="flac"), Cover(jpeg, "image/jpeg"))
    p = probe(out)
    assert (p.codec, p.sample_rate, p.has_cover) == ("flac", RATE, True)
    assert p.tags["title"] == "The Test Book" and p.tags["genre"] == "Audiobook"
    expected = np.frombuffer(book.expected_pcm(), "<i2").astype(np.float64) / 32768
    assert np.array_equal(decode(out), expected)


def test_mp3_has_id3_chapters_tags_and_cover(tmp_path: Path, jpeg: bytes) -> None:
    book = make_book(THREE)
    out = tmp_path / "book.mp3"
    assemble(book.plan, book.read_chunk, out, AssemblyOptions(format="mp3"), Cover(jpeg, "image/jpeg"))
    p = probe(out)
    assert p.codec.startswith("mp3") and p.has_cover
    assert [c.title for c in p.chapters] == ["Chapter One", "Chapter Two"]
    assert [c.start for c in p.chapters] == pytest.approx(book.expected_chapter_starts(), abs=0.05)
    assert p.duration == pytest.approx(book.total_seconds(), abs=0.06)
    assert p.tags["artist"] == "Ada Lovelace, Charles Babbage"
    assert p.tags["date"] == "1843" and p.tags["genre"] == "Audiobook"
    assert out.read_bytes()[:3] == b"ID3"


@pytest.mark.parametrize(
    ("fmt", "codec"), [("opus", "opus"), ("ogg", "vorbis"), ("flac", "flac"), ("wav", "pcm_s16le")]
)
def test_other_formats_have_the_right_duration(tmp_path: Path, fmt: str, codec: str, jpeg: bytes) -> None:
    book = make_book(THREE)
    out = tmp_path / f"book.{fmt}"
    result = assemble(book.plan, book.read_chunk, out, AssemblyOptions(format=fmt), Cover(jpeg, "image/jpeg"))
    assert result.outputs == (out,)
    p = probe(out)
    assert p.codec == codec
    assert p.duration == pytest.approx(book.total_seconds(), abs=0.05)
    assert len(decode(out)) / p.sample_rate == pytest.approx(book.total_seconds(), abs=0.05)
    assert p.tags.get("title") == "The Test Book"
    if fmt == "opus":
        assert [c.title for c in p.chapters] == ["Chapter One", "Chapter Two"]


def test_split_hours_makes_parts_of_whole_chapters(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # chapters of 2.8 s, 2.8 s, 6.2 s and 2.7 s; parts of at most 5.76 s
    book = make_book([("A", [0.6]), ("B", [0.6]), ("C", [4.0]), ("D", [0.5])])
    out = tmp_path / "book.m4b"
    result = assemble(book.plan, book.read_chunk, out, AssemblyOptions(split_hours=0.0016))
    names = ["book - Part 1.m4b", "book - Part 2.m4b", "book - Part 3.m4b"]
    assert [o.name for o in result.outputs] == names
    assert files(tmp_path) == sorted(names + [n.replace(".m4b", s) for n in names for s in (".srt", ".vtt")])
    expected_titles = [["A", "B"], ["C"], ["D"]]
    total_cues = 0
    for part, titles, number in zip(result.parts, expected_titles, (1, 2, 3), strict=True):
        p = probe(part.path)
        assert [c.title for c in p.chapters] == titles == [c.title for c in part.chapters]
        assert p.chapters[0].start == pytest.approx(0, abs=0.001)
        assert p.duration == pytest.approx(part.duration, abs=0.05)
        assert p.tags["title"] == "The Test Book" and p.tags["track"] == f"{number}/3"
        cues = read_srt(part.path.with_suffix(".srt"))
        assert cues[0][0] == 0 and cues[0][2] == titles[0]
        total_cues += len(cues)
    assert total_cues == len(book.plan.chunks)
    assert sum(r.duration for r in result.parts) == pytest.approx(result.duration, abs=1e-9)
    assert result.parts[0].chapters[1].start == pytest.approx(book.expected_chapter_starts()[1], abs=1e-9)

    # a later run that makes fewer parts says so about the older ones
    with caplog.at_level(logging.WARNING, logger="ebook2audio.audio.assemble"):
        assemble(book.plan, book.read_chunk, out, AssemblyOptions(subtitles=False))
    assert "book - Part 3.m4b" in caplog.text and out.is_file()

    # a book shorter than the limit stays one file under the plain name
    small = tmp_path / "small"
    one = assemble(
        book.plan, book.read_chunk, small / "b.m4b", AssemblyOptions(split_hours=1, subtitles=False)
    )
    assert one.outputs == (small / "b.m4b",)


def test_split_parts_keeps_long_chapters_whole() -> None:
    book = make_book([("Long", [5.0]), ("S1", [0.2]), ("S2", [0.2]), ("S3", [0.2])])
    chapters = layout_book(book.plan, book.samples)
    parts = split_parts(chapters, 3 * RATE)
    assert [[c.title for c in p] for p in parts] == [["Long"], ["S1"], ["S2"], ["S3"]]
    parts = split_parts(chapters, 8 * RATE)
    assert [[c.title for c in p] for p in parts] == [["Long"], ["S1", "S2", "S3"]]
    assert split_parts(chapters, None) == (chapters,)


def test_failed_encode_keeps_the_previous_output(tmp_path: Path) -> None:
    book = make_book(THREE)
    out = tmp_path / "book.m4b"
    out.write_bytes(b"an earlier good audiobook")
    (tmp_path / "book.srt").write_text("old cues")
    with pytest.raises(AssemblyError, match=r"ffmpeg .* book\.m4b: .*lots"):
        assemble(book.plan, book.read_chunk, out, AssemblyOptions(bitrate="lots"))
    assert out.read_bytes() == b"an earlier good audiobook"
    assert (tmp_path / "book.srt").read_text() == "old cues"
    assert files(tmp_path) == ["book.m4b", "book.srt"]


def test_corrupt_chunk_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    book = make_book(THREE)
    bad = book.plan.chunks[3].id
    good = book.wavs[bad]
    book.wavs[bad] = good[:-100]
    out = tmp_path / "book.m4b"
    with pytest.raises(CorruptAudioError, match=bad) as info:
        assemble(book.plan, book.read_chunk, out)
    assert info.value.chunk_id == bad
    assert files(tmp_path) == []

    # sizes that lie: the corruption is found mid-stream, ffmpeg is stopped, the temp removed
    out.write_bytes(b"previous")
    sizes = {cid: len(data) for cid, data in book.wavs.items()} | {bad: len(good)}
    with pytest.raises(CorruptAudioError, match=bad):
        assemble(book.plan, book.read_chunk, out, chunk_sizes=sizes.__getitem__)
    assert out.read_bytes() == b"previous"
    assert files(tmp_path) == ["book.m4b"]

    # a chunk that storage does not hold
    with pytest.raises(CorruptAudioError, match="no audio") as info:
        assemble(book.plan, book.read_chunk, out, chunk_sizes=lambda cid: None if cid == bad else sizes[cid])
    assert info.value.chunk_id == bad

    # a chunk at another sample rate is as bad
    book.wavs[bad] = wav_bytes(tone(1.0, 440, 16000), 16000)
    with pytest.raises(CorruptAudioError, match="16000"):
        assemble(book.plan, book.read_chunk, tmp_path / "x.m4b")


def test_nothing_to_assemble_and_bad_options(tmp_path: Path) -> None:
    book = make_book([("Empty", []), ("Also empty", [])])
    with pytest.raises(AssemblyError, match="nothing to assemble"):
        assemble(book.plan, book.read_chunk, tmp_path / "b.m4b")
    book = make_book(THREE)
    with pytest.raises(ConfigError):
        assemble(book.plan, book.read_chunk, tmp_path / "b.m4b", AssemblyOptions(format="aiff"))
    with pytest.raises(ConfigError):
        assemble(book.plan, book.read_chunk, tmp_path / "b.m4b", AssemblyOptions(split_hours=0))
    assert files(tmp_path) == []


def test_undecodable_cover_is_skipped(tmp_path: Path) -> None:
    book = make_book(THREE)
    out = tmp_path / "book.m4b"
    assemble(book.plan, book.read_chunk, out, cover=Cover(b"\xff\xd8\xff garbage", "image/jpeg"))
    p = probe(out)
    assert not p.has_cover and len(p.chapters) == 2


def test_png_cover_in_m4b(tmp_path: Path, jpeg: bytes) -> None:
    png = tmp_path / "c.png"
    src = tmp_path / "c.jpg"
    src.write_bytes(jpeg)
    subprocess.run(
        [find_ffmpeg(), "-nostdin", "-loglevel", "error", "-i", str(src), "-y", str(png)], check=True
    )
    book = make_book([("Only", [0.3])])
    out = tmp_path / "book.m4b"
    assemble(book.plan, book.read_chunk, out, cover=Cover(png.read_bytes(), "image/png"))
    assert probe(out).has_cover


MEMORY_SCRIPT = textwrap.dedent(
    """
    import resource, sys, threading, time
    from pathlib import Path
    import numpy as np, psutil
    from ebook2audio.audio.assemble import AssemblyOptions, assemble
    from ebook2audio.audio.pcm import wav_bytes
    from ebook2audio.model import Chunk, Plan, PlannedChapter, VoiceSpec

    rate, hours, secs = 22050, 2.0, 10.0
    n = int(hours * 3600 / secs)
    t = np.arange(int(secs * rate)) / rate
    wav = wav_bytes((np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2").tobytes(), rate)
    chunks = tuple(Chunk(f"c{i:05d}", i // 30, i % 30, "x", f"Sentence {i}.", 0) for i in range(n))
    chapters = tuple(
        PlannedChapter(k, f"Chapter {k}", tuple(c.id for c in chunks if c.chapter == k)) for k in range(n // 30)
    )
    plan = Plan("mem", VoiceSpec(), rate, chapters, chunks, ())
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.01)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.time()
    res = assemble(plan, lambda cid: wav, Path(sys.argv[1]), AssemblyOptions(format=sys.argv[2]))
    stop.set()
    th.join()
    print(int(peak[0] - base), res.duration, time.time() - t0, Path(sys.argv[1]).stat().st_size)
    """
)


def test_memory_stays_bounded_for_two_hours_of_audio(tmp_path: Path) -> None:
    out = tmp_path / "long.wav"
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(out), "wav"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    growth, duration, _secs, size = done.stdout.split()
    assert float(duration) == pytest.approx(7200, abs=0.01)
    assert int(size) > 7200 * RATE * 2  # the whole book really went through
    assert int(growth) < 100 * 2**20, f"RSS grew by {int(growth) / 2**20:.0f} MiB"
