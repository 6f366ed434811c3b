"""Pieces: what the workers' encoded pieces cost, what the coordinator's join costs, and that it stays exact.

The book is bench/assembly.py's (real Piper speech tiled into chapters of very different lengths,
300/700/2000 ms pauses), grouped in batches of about 80 s of speech per chapter, as the planner does.
Each batch's piece is encoded as a worker would (``audio.pieces.encode_piece``, ``--jobs`` at once:
the workers' side), then the coordinator's side is timed alone: ``StreamingAssembler`` fetching the
stored pieces and joining them (stream copy), tags, chapters and subtitles written. A serial encode
of the same book is the reference.

Checks, as in bench/assembly.py: the chapter marks read back with ``probe`` against the joined
file's own sample-exact layout (what the pieces reported); the first sound of every chapter in the
decoded audio, measured from its mark, against the same in the serial encode (the voice's lead-in
must be the same: a drift would show); the duration. Also reported: the bytes the coordinator reads
and the bytes the workers write per hour of audio (pieces, and chunks as FLAC), the coordinator's
CPU seconds per hour of audio.

    .venv/bin/python bench/pieces.py --quick     # 0.5 h of audio (~2 min on 2 cores)
    .venv/bin/python bench/pieces.py --hours 3   # the full bench/assembly.py book
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
from assembly import Synthetic, chapter_onsets, speech_pool, synthetic_book

BATCH_SECONDS = 80.0  # about the planner's 1,200 characters


def with_batches(book: Synthetic, rate: int) -> Synthetic:
    """The book with batches of about BATCH_SECONDS of speech per chapter (every pause can hold a cut)."""
    from ebook2audio.model import Batch

    batches = []
    for ch in book.plan.chapters:
        group: list[str] = []
        spent = 0.0
        for cid in ch.chunk_ids:
            group.append(cid)
            spent += (book.size(cid) - 44) / 2 / rate
            if spent >= BATCH_SECONDS:
                batches.append(Batch(f"b{len(batches)}", ch.index, tuple(group), len(group)))
                group, spent = [], 0.0
        if group:
            batches.append(Batch(f"b{len(batches)}", ch.index, tuple(group), len(group)))
    return Synthetic(replace(book.plan, batches=tuple(batches)), book.wavs, book.source)


def cpu_now() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="0.5 hour of audio")
    p.add_argument("--hours", type=float, help="hours of audio (default 0.5 quick, 3 full)")
    p.add_argument("--jobs", type=int, default=2, help="pieces encoded at once on the workers' side")
    p.add_argument("--no-write", action="store_true", help="print the table, do not touch BENCHMARKS.md")
    args = p.parse_args()
    started = time.time()
    hours = args.hours or (0.5 if args.quick else 3.0)

    from ebook2audio.audio.assemble import AssemblyOptions, StreamingAssembler, assemble, probe
    from ebook2audio.audio.chunkfmt import chunk_bytes
    from ebook2audio.audio.pcm import parse_wav
    from ebook2audio.audio.pieces import encode_piece, plan_pieces

    wavs, rate = speech_pool(20 if args.quick else 40)
    book = with_batches(synthetic_book(hours, wavs, rate), rate)
    plan = book.plan
    pcm = {k: parse_wav(v)[1] for k, v in wavs.items()}
    specs = plan_pieces(plan, "aac/64k")
    print(f"{len(plan.chapters)} chapters, {len(plan.chunks)} chunks, {len(plan.batches)} batches, {len(specs)} pieces")

    # The workers' side: every piece encoded from its chunks' PCM; chunks stored as FLAC.
    t0, cpu0 = time.perf_counter(), cpu_now()
    with ThreadPoolExecutor(args.jobs) as pool:
        blobs = dict(
            zip(
                [s.digest() for s in specs],
                pool.map(lambda s: encode_piece(s, [pcm[book.source[cid]] for cid in s.chunk_ids]), specs),
                strict=True,
            )
        )
    worker_wall, worker_cpu = time.perf_counter() - t0, cpu_now() - cpu0
    flac = {k: len(chunk_bytes(v, rate)) for k, v in pcm.items()}
    chunk_bytes_total = sum(flac[book.source[c.id]] for c in plan.chunks)
    wav_bytes_total = sum(book.size(c.id) for c in plan.chunks)

    with tempfile.TemporaryDirectory(prefix="bench-pieces-", dir=c.ROOT) as tmpdir:
        tmp = Path(tmpdir)
        read = 0

        def fetch(spec: object) -> bytes:
            nonlocal read
            blob = blobs[spec.digest()]  # type: ignore[attr-defined]
            read += len(blob)
            return blob

        # The coordinator's side: fetch every piece and join.
        out = tmp / "pieces.m4b"
        t0, cpu0 = time.perf_counter(), cpu_now()
        sa = StreamingAssembler.open(
            plan, out, AssemblyOptions(encode_jobs=2), fetch_piece=fetch, read_pcm=lambda cid: b""
        )
        assert sa is not None
        for b in plan.batches:
            sa.batch_done(b.id)
        result = sa.finish()
        join_wall, join_cpu = time.perf_counter() - t0, cpu_now() - cpu0
        assert sa.coordinator_pieces == 0

        serial_out = tmp / "serial.m4b"
        serial = assemble(plan, book.read, serial_out, AssemblyOptions(subtitles=False), chunk_sizes=book.size)

        marks = [round(ch.start * rate) for ch in result.chapters]
        probed = [round(m.start * rate) for m in probe(out).chapters]
        marks_ms = max(abs(a - b) for a, b in zip(probed, marks, strict=True)) / rate * 1000
        exact = [round(ch.start * rate) for ch in serial.chapters]
        ons = chapter_onsets(out, marks, rate)
        ref = chapter_onsets(serial_out, exact, rate)
        drift = [
            (o - m) - (r - e)
            for o, m, r, e in zip(ons, marks, ref, exact, strict=True)
            if o is not None and r is not None
        ]
        duration_ms = (probe(out).duration - result.duration) * 1000

    audio_h = result.duration / 3600
    rows = [
        [
            f"{result.duration / 3600:.2f} h, {len(specs)} pieces",
            f"{worker_cpu / audio_h:.1f}",
            f"{join_cpu / audio_h:.2f}",
            f"{join_wall:.1f}",
            f"{read / 1e6 / audio_h:.1f}",
            f"{(sum(map(len, blobs.values())) + chunk_bytes_total) / 1e6 / audio_h:.1f}",
            f"{chunk_bytes_total / wav_bytes_total:.3f}",
            f"{marks_ms:.3f}",
            f"{max(map(abs, drift)) / rate * 1000:.3f} ({len(drift)}/{len(marks)})",
            f"{duration_ms:+.1f}",
        ]
    ]
    lines = c.header(
        f"Pieces: workers encode, the coordinator joins {'(quick)' if args.quick else ''}".strip(),
        started,
        [
            f"audio: real Piper speech tiled ({len(wavs)} sentences), {rate} Hz, AAC 64 kb/s, batches of "
            f"~{BATCH_SECONDS:.0f} s; workers' side: {args.jobs} pieces at once (wall {worker_wall:.1f} s)",
            "CPU s/h: CPU seconds per hour of audio (workers: encoding the pieces; coordinator: fetch + join "
            "+ tags/chapters/subtitles); MB/h read: what the coordinator reads; MB/h written: pieces + FLAC chunks",
            "marks: probe's chapter marks against the joined file's own layout; onset drift: a chapter's first "
            "sound measured from its mark, against the same in a serial encode",
        ],
    )
    lines += c.table(
        [
            "book",
            "workers CPU s/h",
            "coordinator CPU s/h",
            "join wall s",
            "coordinator reads MB/h",
            "workers write MB/h",
            "FLAC / WAV",
            "marks ms",
            "onset drift ms",
            "duration ms",
        ],
        rows,
    )
    print("\n".join(lines))
    if not args.no_write:
        c.write_section("pieces-quick" if args.quick else "pieces", lines)


if __name__ == "__main__":
    main()
