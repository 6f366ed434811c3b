"""The parallel AAC encode (AssemblyOptions.encode_jobs): same timing as a serial encode, sample for sample."""

from __future__ import annotations

import importlib
import io
import itertools
import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ebook2audio.audio import adts
from ebook2audio.audio.assemble import (
    AssemblyOptions,
    StreamingAssembler,
    assemble,
    layout_book,
    piece_bounds,
    probe,
    stream_pieces,
)
from ebook2audio.audio.ffmpeg import EncodeSpec, encode_command, encode_pcm
from ebook2audio.audio.pcm import CorruptAudioError, parse_wav
from ebook2audio.audio.pieces import PieceSpec, encode_piece, parse_piece, plan_pieces
from ebook2audio.errors import AssemblyError, ConfigError
from ebook2audio.model import Batch

from .tones import RATE, Book, make_book, tone

# Every test here runs with each ffmpeg build available (tests/audio/conftest.py).
pytestmark = pytest.mark.usefixtures("each_ffmpeg")

asm = importlib.import_module("ebook2audio.audio.assemble")  # the package exports a function of that name

# Chapters of very different sizes; 250 ms between sentences, 700 ms after titles and chapters.
CHAPTERS = [
    ("One", [1.3, 2.1, 0.9]),
    ("Two", [0.6]),
    ("Three", [2.2, 1.7, 1.1, 2.9, 0.8]),
    ("Four", [1.0, 1.4]),
]


# The same shapes, 10 times longer (~4 minutes, a chapter of 90 s): MP4 chapter times once overflowed there.
LONG = [(title, [d * 10 for d in durations]) for title, durations in CHAPTERS]


def decode(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]).astype(np.float64)


def onsets(audio: np.ndarray, threshold: float = 0.02) -> list[int]:
    """First sample of each sound after at least 100 ms of near-silence."""
    loud = np.abs(audio) > threshold
    idx = np.flatnonzero(loud)
    gaps = np.flatnonzero(np.diff(idx) > RATE // 10)
    return [int(idx[0]), *(int(idx[g + 1]) for g in gaps)]


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces of a second or two, so that a 25-second book is cut several times."""
    monkeypatch.setattr(asm, "MIN_PIECE_SECONDS", 1.0)


def test_piece_bounds_are_frame_aligned_cuts_in_silence() -> None:
    book = make_book(CHAPTERS)
    layout = layout_book(book.plan, book.samples)
    total = layout[-1].end
    assert piece_bounds(layout, 1, RATE) == (0, total)
    assert piece_bounds(layout, 4, RATE) == (0, total)  # 25 s of audio: shorter than one minimum piece
    bounds = piece_bounds(layout, 4, RATE, min_piece_seconds=1.0)
    assert bounds[0] == 0 and bounds[-1] == total and len(bounds) > 4
    spans = [s for ch in layout for s in ch.spans]
    for cut in bounds[1:-1]:
        assert cut % 1024 == 0
        # inside one chunk's pause, with 2048 silent samples on each side
        assert any(s.start + s.samples + asm.JOIN_GUARD <= cut <= s.end - asm.JOIN_GUARD for s in spans), cut
    assert list(bounds) == sorted(set(bounds))
    # no pause long enough: no cut at all
    tight = make_book(CHAPTERS, pauses=(50, 150))
    assert len(piece_bounds(layout_book(tight.plan, tight.samples), 4, RATE, 0.5)) == 2


def test_parallel_m4b_has_the_serial_timing(tmp_path: Path, small_pieces: None) -> None:
    book = make_book(LONG)
    serial = assemble(book.plan, book.read_chunk, tmp_path / "s" / "b.m4b", AssemblyOptions(subtitles=False))
    seen: list[int] = []
    par = assemble(
        book.plan,
        book.read_chunk,
        tmp_path / "p" / "b.m4b",
        AssemblyOptions(encode_jobs=3),
        progress=seen.append,
    )
    assert sorted(seen) == list(range(1, len(book.plan.chunks) + 1))
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["b.m4b", "b.srt", "b.vtt"]
    assert par.chapters == serial.chapters and par.duration == serial.duration

    ps, pp = probe(serial.outputs[0]), probe(par.outputs[0])
    expected = book.expected_chapter_starts()
    assert [c.start for c in pp.chapters] == pytest.approx(expected, abs=1e-3)
    assert pp.duration == pytest.approx(book.total_seconds(), abs=1024 / RATE)
    assert (pp.codec, pp.sample_rate, pp.tags["title"]) == ("aac", RATE, ps.tags["title"])

    a, b = decode(serial.outputs[0]), decode(par.outputs[0])
    assert abs(len(a) - len(b)) < 1024
    n = min(len(a), len(b))
    # the same sounds at the same samples: every onset within 2 samples, and a close waveform
    sa, sb = onsets(a), onsets(b)
    assert len(sa) == len(sb) == len(book.plan.chunks)
    assert max(abs(x - y) for x, y in zip(sa, sb, strict=True)) <= 2
    want = np.frombuffer(book.expected_pcm(), dtype="<i2").astype(np.float64) / 32768
    m = min(n, len(want))
    err_serial = np.sqrt(np.mean((a[:m] - want[:m]) ** 2))
    err_par = np.sqrt(np.mean((b[:m] - want[:m]) ** 2))
    assert err_par < 1.2 * err_serial + 1e-4
    assert np.max(np.abs(b[:m] - want[:m])) < 2 * np.max(np.abs(a[:m] - want[:m])) + 0.01  # no click


def test_parallel_split_parts_and_other_formats(tmp_path: Path, small_pieces: None) -> None:
    book = make_book(CHAPTERS)
    res = assemble(
        book.plan,
        book.read_chunk,
        tmp_path / "b.m4a",
        AssemblyOptions(format="m4a", encode_jobs=2, split_hours=12 / 3600, subtitles=False),
    )
    assert len(res.outputs) > 1
    for part in res.parts:
        assert probe(part.path).duration == pytest.approx(part.duration, abs=1024 / RATE)
    # mp3 has no parallel mode: it is encoded serially, and still right
    mp3 = assemble(
        book.plan, book.read_chunk, tmp_path / "b.mp3", AssemblyOptions(format="mp3", encode_jobs=4)
    )
    assert probe(mp3.outputs[0]).duration == pytest.approx(book.total_seconds(), abs=0.1)
    with pytest.raises(ConfigError):
        assemble(book.plan, book.read_chunk, tmp_path / "x.m4b", AssemblyOptions(encode_jobs=0))


def test_a_failing_piece_leaves_nothing(tmp_path: Path, small_pieces: None) -> None:
    book = make_book(CHAPTERS)
    bad = book.plan.chapters[2].chunk_ids[3]
    book.wavs[bad] = book.wavs[bad][:-10]  # truncated
    out = tmp_path / "b.m4b"
    out.write_bytes(b"old")
    with pytest.raises(AssemblyError, match=bad):
        assemble(book.plan, book.read_chunk, out, AssemblyOptions(encode_jobs=3), chunk_sizes=book.size)
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["b.m4b"]


def test_adts_frames_are_counted_and_skipped(tmp_path: Path) -> None:
    raw = tmp_path / "x.aac"
    encode_pcm([tone(1.0, 440)], raw, EncodeSpec("m4a", RATE, muxer="adts"))
    data = raw.read_bytes()
    out = io.BytesIO()
    frames = adts.copy_frames(io.BytesIO(data), out.write)
    assert frames == -(-RATE // 1024) + 1  # the samples in whole frames, plus the priming frame
    assert out.getvalue() == data
    rest = io.BytesIO()
    assert adts.copy_frames(io.BytesIO(data), rest.write, skip=1) == frames
    assert rest.getvalue() == data[adts.frame_length(data) :]
    with pytest.raises(adts.AdtsError):
        adts.copy_frames(io.BytesIO(data[:-3]), out.write)
    with pytest.raises(adts.AdtsError):
        adts.copy_frames(io.BytesIO(b"\x00" * 64), out.write)
    # a damaged header inside the stream (the third frame's sync word, or a length too short for
    # its header) is found too, not only the first
    third = adts.frame_length(data) + adts.frame_length(data, adts.frame_length(data))
    for pos, byte in ((third, 0x00), (third + 4, 0x00)):
        bad = bytearray(data)
        bad[pos] = byte
        if pos == third + 4:
            bad[third + 3] &= 0xFC
            bad[third + 5] &= 0x1F
        with pytest.raises(adts.AdtsError):
            adts.copy_frames(io.BytesIO(bytes(bad)), io.BytesIO().write)
    cmd = encode_command("ffmpeg", EncodeSpec("m4b", RATE, input="adts", input_delay=1024), tmp_path / "o")
    assert cmd[cmd.index("-itsoffset") + 1] == "-46440us" and cmd[cmd.index("-c:a") + 1] == "copy"
    with pytest.raises(ConfigError):
        encode_command("ffmpeg", EncodeSpec("mp3", RATE, input="adts"), tmp_path / "o")


# --------------------------------------------------------------------------- streaming


def with_batches(book: Book, size: int) -> Book:
    """The same book with its chunks grouped in batches of ``size`` consecutive chunks per chapter."""
    batches = []
    for ch in book.plan.chapters:
        ids = ch.chunk_ids
        for i in range(0, len(ids), size):
            group = ids[i : i + size]
            batches.append(Batch(id=f"b{ch.index}-{i}", chapter=ch.index, chunk_ids=group, chars=len(group)))
    return Book(replace(book.plan, batches=tuple(batches)), book.wavs)


def read_srt(path: Path) -> list[tuple[float, float]]:
    out = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        a, b = block.splitlines()[1].split(" --> ")

        def secs(t: str) -> float:
            h, m, x = t.replace(",", ".").split(":")
            return int(h) * 3600 + int(m) * 60 + float(x)

        out.append((secs(a), secs(b)))
    return out


def test_stream_pieces_cut_after_batches_in_long_pauses() -> None:
    book = with_batches(make_book(CHAPTERS), 2)
    pieces = stream_pieces(book.plan)
    assert [c.id for p in pieces for c in p] == [cid for ch in book.plan.chapters for cid in ch.chunk_ids]
    batch_of = {cid: b.id for b in book.plan.batches for cid in b.chunk_ids}
    for piece in pieces:
        assert (
            asm.ms_to_samples(piece[-1].pause_after_ms, RATE) >= asm.STREAM_CUT_PAUSE or piece is pieces[-1]
        )
        ends = [batch_of[c.id] != batch_of[n.id] for c, n in itertools.pairwise(piece)]
        assert not any(  # inside a piece, a batch boundary only where the pause is too short to cut
            e and asm.ms_to_samples(c.pause_after_ms, RATE) >= asm.STREAM_CUT_PAUSE
            for e, c in zip(ends, piece, strict=False)
        )
    assert len(pieces) == len(book.plan.batches)  # 250 ms and 700 ms pauses: every batch is a piece
    short = with_batches(make_book(CHAPTERS, pauses=(100, 700)), 2)
    # only the 700 ms pauses (titles, chapter ends) can hold a cut
    assert all(c[-1].pause_after_ms == 700 for c in stream_pieces(short.plan)[:-1])


def pcm_reader(book: Book) -> Callable[[str], bytes]:
    """A chunk's PCM from the book (its read counted), errors naming the chunk, like the pipeline's."""

    def read(cid: str) -> bytes:
        try:
            return parse_wav(book.read_chunk(cid))[1]
        except CorruptAudioError as exc:
            raise CorruptAudioError(f"chunk {cid}: {exc}", cid) from exc

    return read


def _worker_pieces(book: Book, codec: str = "aac/64k") -> dict[str, bytes]:
    """What the workers would store: every one-batch piece, encoded from the book's chunks."""
    out = {}
    for spec in plan_pieces(book.plan, codec):
        if spec.by_worker:
            out[spec.digest()] = encode_piece(spec, [book.wavs[c][44:] for c in spec.chunk_ids])
    return out


def test_streaming_assembler_joins_worker_pieces(tmp_path: Path) -> None:
    book = with_batches(make_book(LONG), 2)
    out = tmp_path / "b.m4b"
    for fmt in ("mp3", "opus", "flac"):
        assert StreamingAssembler.open(
            book.plan, out, AssemblyOptions(fmt), fetch_piece=lambda s: None, read_pcm=pcm_reader(book)
        ) is None
    stored = _worker_pieces(book)
    fetched: list[str] = []

    def fetch(spec: PieceSpec) -> bytes | None:
        fetched.append(spec.digest())
        return stored.get(spec.digest())

    book.reads.clear()
    sa = StreamingAssembler.open(
        book.plan, out, AssemblyOptions(encode_jobs=1), fetch_piece=fetch, read_pcm=pcm_reader(book)
    )
    assert sa is not None and sa.pieces == len(book.plan.batches)
    order = [b.id for b in book.plan.batches]
    random.Random(3).shuffle(order)
    for bid in order[:-3]:  # the last three batches are left to finish()
        sa.batch_done(bid)
    result = sa.finish()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.m4b", "b.srt", "b.vtt"]
    assert book.reads == [] and sa.coordinator_pieces == 0  # the join reads no chunk
    assert sorted(fetched) == sorted(stored)

    nominal = book.total_seconds()
    assert abs(result.duration - nominal) <= sa.pieces * 512 / RATE
    p = probe(out)
    assert [c.start for c in p.chapters] == pytest.approx([c.start for c in result.chapters], abs=1e-3)
    assert p.duration == pytest.approx(result.duration, abs=1024 / RATE)
    # every sentence sounds exactly where its cue (from the same layout as the marks) says
    cues = read_srt(out.with_suffix(".srt"))
    audio = decode(out)
    found = onsets(audio)
    assert len(found) == len(cues) == len(book.plan.chunks)
    assert max(abs(f / RATE - c[0]) for f, c in zip(found, cues, strict=True)) < 0.003
    # and the sound itself is the chunks' (no click at the cuts)
    serial = assemble(book.plan, book.read_chunk, tmp_path / "s" / "b.m4b", AssemblyOptions(subtitles=False))
    ref = decode(serial.outputs[0])
    assert np.max(np.abs(audio)) < np.max(np.abs(ref)) + 0.02
    # each pause differs from the plan by at most half a frame
    starts = [c[0] for c in cues]
    ref_starts = [o / RATE for o in onsets(ref)]
    gaps = np.diff(starts) - np.diff(ref_starts)
    assert np.max(np.abs(gaps)) <= 513 / RATE + 0.003


def test_chapter_marks_come_from_the_reported_counts(tmp_path: Path) -> None:
    """The marks follow the sample counts the pieces carry, not the plan's estimate or a chunk's size."""
    book = with_batches(make_book(CHAPTERS), 2)
    stored = _worker_pieces(book)
    sa = StreamingAssembler.open(
        book.plan,
        tmp_path / "b.m4b",
        AssemblyOptions(subtitles=False),
        fetch_piece=lambda spec: stored.get(spec.digest()),
        read_pcm=pcm_reader(book),
    )
    assert sa is not None
    result = sa.finish()
    # by hand: each chapter starts where the previous pieces' reported lengths end
    marks = [round(c.start * RATE) for c in result.chapters]
    specs = plan_pieces(book.plan, "aac/64k")
    pos, starts = 0, []
    first_of = {ch.chunk_ids[0] for ch in book.plan.chapters if ch.chunk_ids}
    for spec in specs:
        head = parse_piece(stored[spec.digest()], spec)
        at = pos + spec.lead
        for k, cid in enumerate(spec.chunk_ids):
            if cid in first_of:
                starts.append(at)
            at += head.samples[k] + (spec.pauses[k] if k < len(spec.chunk_ids) - 1 else head.tail)
        assert at == pos + head.length
        pos += head.length
    assert marks == starts
    assert [c.start for c in probe(result.outputs[0]).chapters] == pytest.approx(
        [s / RATE for s in starts], abs=1e-3
    )


def test_streaming_assembler_encodes_missing_and_multi_batch_pieces(tmp_path: Path) -> None:
    # 100 ms sentence pauses: only titles and chapter ends can be cut, so most pieces span batches
    book = with_batches(make_book(CHAPTERS, pauses=(100, 700)), 2)
    specs = plan_pieces(book.plan, "aac/64k")
    assert any(not s.by_worker for s in specs)
    book.reads.clear()
    sa = StreamingAssembler.open(
        book.plan, tmp_path / "b.m4b", AssemblyOptions(), fetch_piece=lambda s: None, read_pcm=pcm_reader(book)
    )
    assert sa is not None
    result = sa.finish()
    assert sa.coordinator_pieces == len(specs)
    assert sorted(book.reads) == sorted(book.wavs)  # every chunk read once, here
    cues = read_srt(tmp_path / "b.srt")
    found = onsets(decode(result.outputs[0]))
    assert max(abs(f / RATE - c[0]) for f, c in zip(found, cues, strict=True)) < 0.003


def test_streaming_assembler_abort_and_errors(tmp_path: Path) -> None:
    book = with_batches(make_book(CHAPTERS), 3)
    out = tmp_path / "b.m4b"
    out.write_bytes(b"old")
    stored = _worker_pieces(book)

    def opened(fetch: object) -> StreamingAssembler:
        sa = StreamingAssembler.open(
            book.plan, out, AssemblyOptions(encode_jobs=2), fetch_piece=fetch, read_pcm=pcm_reader(book)
        )
        assert sa is not None
        return sa

    with opened(lambda spec: stored.get(spec.digest())) as sa:
        sa.batch_done(book.plan.batches[0].id)
        sa.abort()
    assert [p.name for p in tmp_path.iterdir()] == ["b.m4b"] and out.read_bytes() == b"old"
    # a piece whose header disagrees with its plan (another book's, a damaged blob)
    first = plan_pieces(book.plan, "aac/64k")[1]
    wrong = dict(stored)
    wrong[first.digest()] = stored[plan_pieces(book.plan, "aac/64k")[2].digest()]
    with pytest.raises(AssemblyError, match="piece 2"):
        opened(lambda spec: wrong.get(spec.digest())).finish()
    assert [p.name for p in tmp_path.iterdir()] == ["b.m4b"] and out.read_bytes() == b"old"
    # a piece cut short (its frames do not add up)
    wrong[first.digest()] = stored[first.digest()][:-300]
    with pytest.raises(AssemblyError):
        opened(lambda spec: wrong.get(spec.digest())).finish()
    assert [p.name for p in tmp_path.iterdir()] == ["b.m4b"] and out.read_bytes() == b"old"
    # a truncated chunk, when a piece is encoded here
    bad = book.plan.chapters[2].chunk_ids[1]
    book.wavs[bad] = book.wavs[bad][:-10]
    sa = opened(lambda spec: None)
    for b in book.plan.batches:
        sa.batch_done(b.id)
    with pytest.raises(AssemblyError, match=bad):
        sa.finish()
    assert [p.name for p in tmp_path.iterdir()] == ["b.m4b"] and out.read_bytes() == b"old"
