"""Assembly: time to assemble and encode N hours of speech to m4b, serially and in parallel pieces.

The audio is real Piper speech: a few dozen sentences of Moby-Dick are synthesised once, then tiled
(in a shuffled order) into chapters of very different lengths up to N hours, with the usual pauses
(300 ms between sentences, 700 ms between paragraphs, 2 s after a chapter). Then
``ebook2audio.audio.assemble.assemble`` writes the m4b (tags, chapters, subtitles) once per mode:

- serial: one ffmpeg encodes the whole stream (``encode_jobs=1``, the default);
- parallel: the file is cut in pieces at frame-aligned silences, ``encode_jobs`` ffmpeg processes
  encode them at once, and one more joins the frames into the m4b (the join is timed on its own).

Each mode runs with the bundled ffmpeg (imageio-ffmpeg's, the default); when an ffmpeg is on PATH
(Debian's, say), serial and the first parallel mode run with it too (``EBOOK2AUDIO_FFMPEG``), and,
for a build older than 7, a parallel run with ffmpeg's default input queue of 8 packets: the command
line before the fix, whose join idled about a second per piece.

Chapter times are checked two ways against the sample-exact layout: the marks read back with
``audio.assemble.probe``, and the real position of each chapter's first sound in the decoded audio
(the first sample above -34 dBFS after the chapter pause), against the serial encode with the
bundled build. The drift is the largest difference, and the difference at the last chapter.

    .venv/bin/python bench/assembly.py --quick     # 0.5 h of audio, serial vs 2 jobs (~3 min with a system ffmpeg)
    .venv/bin/python bench/assembly.py             # 3 h of audio, serial vs 2 and 4 jobs, 2 rounds (~25 min)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

SENTENCE_MS, PARAGRAPH_MS, CHAPTER_MS, TITLE_MS = 300, 700, 2000, 1000


@dataclass
class Synthetic:
    plan: object  # ebook2audio.model.Plan
    wavs: dict[str, bytes]  # distinct sentence audio, by id
    source: dict[str, str]  # chunk id -> id in wavs

    def read(self, cid: str) -> bytes:
        return self.wavs[self.source[cid]]

    def size(self, cid: str) -> int:
        return len(self.wavs[self.source[cid]])


def speech_pool(count: int) -> tuple[dict[str, bytes], int]:
    """``count`` real sentences of Moby-Dick spoken by Piper: {id: WAV bytes}, and the sample rate."""
    from ebook2audio.audio.pcm import wav_bytes
    from ebook2audio.config import Settings
    from ebook2audio.engines.registry import load_engine
    from ebook2audio.ingest import read_book
    from ebook2audio.pipeline import plan_options, resolve, select_chapters
    from ebook2audio.plan import make_plan

    settings = Settings(engine="piper", chapters="3")
    book = select_chapters(read_book(c.CORPUS / "epub3_moby-dick_melville_en.epub"), "3")
    spec, info = resolve(book, settings)
    plan = make_plan(book, info, spec, "pool", plan_options(settings))
    engine = load_engine(info)
    texts = [ch.text for ch in plan.chunks if 20 <= len(ch.text) <= 250][:count]
    wavs = {f"s{i:03d}": wav_bytes(engine.synthesize(t), info.sample_rate) for i, t in enumerate(texts)}
    engine.close()
    return wavs, info.sample_rate


def synthetic_book(hours: float, wavs: dict[str, bytes], rate: int, seed: int = 7) -> Synthetic:
    """Chapters of very different lengths (a 1:12 spread), tiled from ``wavs`` up to ``hours``."""
    from ebook2audio.model import Chunk, Metadata, Plan, PlannedChapter, VoiceSpec

    rng = random.Random(seed)
    ids = sorted(wavs)
    seconds = {k: (len(v) - 44) / 2 / rate for k, v in wavs.items()}
    n_chapters = max(4, round(hours * 10))
    weights = [rng.uniform(1, 12) for _ in range(n_chapters)]
    budgets = [hours * 3600 * w / sum(weights) for w in weights]
    chunks, chapters, source = [], [], {}
    for ci, budget in enumerate(budgets):
        mine: list[str] = []
        spent = 0.0
        k = 0
        while spent < budget or k < 2:
            src = ids[0] if k == 0 else rng.choice(ids)  # every chapter opens with the same "title"
            pause = TITLE_MS if k == 0 else (PARAGRAPH_MS if rng.random() < 0.2 else SENTENCE_MS)
            cid = f"c{ci:03d}-{k:05d}"
            source[cid] = src
            chunks.append(Chunk(cid, ci, k, src, f"chapter {ci + 1} sentence {k + 1}", pause))
            mine.append(cid)
            spent += seconds[src] + pause / 1000
            k += 1
        last = chunks[-1]
        chunks[-1] = Chunk(last.id, ci, last.index, last.text, last.display, CHAPTER_MS)
        chapters.append(PlannedChapter(ci, f"Chapter {ci + 1}", tuple(mine)))
    plan = Plan(
        session="bench",
        voice=VoiceSpec(engine="piper", language="en"),
        sample_rate=rate,
        chapters=tuple(chapters),
        chunks=tuple(chunks),
        batches=(),
        metadata=Metadata(title="Assembly benchmark", authors=("ebook2audio",), language="en"),
    )
    return Synthetic(plan, wavs, source)


def chapter_onsets(path: Path, starts: list[int], rate: int, threshold: float = 0.02) -> list[int | None]:
    """The first sample above ``threshold`` at or after each of ``starts`` - 0.5 s (streamed decode)."""
    import av
    import numpy as np

    window = rate // 2
    found: list[int | None] = [None] * len(starts)
    pos = 0
    nxt = 0
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            pcm = frame.to_ndarray().reshape(-1)
            n = len(pcm)
            while nxt < len(starts) and starts[nxt] + 2 * window < pos:
                nxt += 1  # nothing loud within the window: leave None
            i = nxt
            while i < len(starts) and starts[i] - window < pos + n:
                if found[i] is None:
                    lo = max(0, starts[i] - window - pos)
                    hi = min(n, starts[i] + 2 * window - pos)
                    if hi > lo:
                        loud = np.flatnonzero(np.abs(pcm[lo:hi]) > threshold)
                        if loud.size:
                            found[i] = pos + lo + int(loud[0])
                i += 1
            pos += n
    return found


@dataclass(frozen=True)
class Mode:
    jobs: int
    build: str  # "bundled" or "system"
    queue: int | None = None  # forced -thread_queue_size of the AAC join (8 = ffmpeg's default)

    @property
    def key(self) -> str:
        return f"{self.build}-j{self.jobs}" + (f"-q{self.queue}" if self.queue else "")

    def label(self) -> str:
        what = "serial (1 ffmpeg)" if self.jobs == 1 else f"parallel, {self.jobs} jobs"
        if self.queue:
            what += f", join queue {self.queue} (before the fix)"
        return what


def ffmpeg_builds() -> dict[str, tuple[str, str]]:
    """{"bundled": (path, version), "system": (path, version) when an ffmpeg is on PATH}."""
    import imageio_ffmpeg

    from ebook2audio.audio.ffmpeg import ffmpeg_build

    found = {"bundled": str(imageio_ffmpeg.get_ffmpeg_exe())}
    system = shutil.which("ffmpeg")
    if system and os.path.realpath(system) != os.path.realpath(found["bundled"]):
        found["system"] = system
    return {k: (path, ffmpeg_build(path).version) for k, path in found.items()}


@contextlib.contextmanager
def using(ffmpeg: str, queue: int | None, joins: list[tuple[float, int]]) -> Iterator[None]:
    """Run with $EBOOK2AUDIO_FFMPEG = ``ffmpeg`` (and the join's queue forced to ``queue``), timing
    each join: (seconds, pieces) appended to ``joins``."""
    asm = importlib.import_module("ebook2audio.audio.assemble")
    ff = importlib.import_module("ebook2audio.audio.ffmpeg")
    join, depth, env = asm._join_pieces, ff.ADTS_QUEUE_PACKETS, os.environ.get("EBOOK2AUDIO_FFMPEG")

    def timed_join(spec: object, out: Path, label: str, pieces: Iterable[tuple[Path, int]]) -> None:
        ready = list(pieces)  # assemble() hands over pieces already encoded: only the join is timed
        t0 = time.perf_counter()
        join(spec, out, label, ready)
        joins.append((time.perf_counter() - t0, len(ready)))

    os.environ["EBOOK2AUDIO_FFMPEG"] = ffmpeg
    asm._join_pieces = timed_join
    if queue:
        ff.ADTS_QUEUE_PACKETS = queue
    try:
        yield
    finally:
        asm._join_pieces, ff.ADTS_QUEUE_PACKETS = join, depth
        if env is None:
            os.environ.pop("EBOOK2AUDIO_FFMPEG", None)
        else:
            os.environ["EBOOK2AUDIO_FFMPEG"] = env


def run_mode(book: Synthetic, mode: Mode, ffmpeg: str, out: Path) -> dict[str, float]:
    from ebook2audio.audio.assemble import AssemblyOptions, assemble

    joins: list[tuple[float, int]] = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    busy0 = c.busy_seconds()
    t0 = time.perf_counter()
    with using(ffmpeg, mode.queue, joins):
        options = AssemblyOptions(encode_jobs=mode.jobs)
        result = assemble(book.plan, book.read, out, options, chunk_sizes=book.size)
    wall = time.perf_counter() - t0
    busy = c.busy_seconds() - busy0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    me2 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) + (
        me2.ru_utime - me.ru_utime + me2.ru_stime - me.ru_stime
    )
    return {
        "wall": wall,
        "cpu": cpu,
        "duration": result.duration,
        "size": out.stat().st_size,
        "others": max(0.0, busy - cpu) / wall,
        "join": sum(t for t, _ in joins),
        "pieces": sum(n for _, n in joins),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="0.5 hour, serial vs 2 jobs, one round")
    p.add_argument("--hours", type=float, help="hours of audio (default 0.5 quick, 3 full)")
    p.add_argument(
        "--jobs", default=None, help="parallel job counts, comma-separated (default 2 quick, 2,4 full)"
    )
    p.add_argument("--rounds", type=int, help="rounds, best kept (default 1 quick, 2 full)")
    p.add_argument(
        "--wait-quiet", type=float, help="wait up to S s for other jobs to go quiet before each run"
    )
    p.add_argument(
        "--no-before", action="store_true", help="skip the run with the old join queue (ffmpeg < 7 on PATH)"
    )
    p.add_argument("--no-write", action="store_true", help="print the table, do not touch BENCHMARKS.md")
    args = p.parse_args()
    started = time.time()
    hours = args.hours or (0.5 if args.quick else 3.0)
    jobs_list = [int(j) for j in (args.jobs or ("2" if args.quick else "2,4")).split(",")]
    rounds = args.rounds or (1 if args.quick else 2)
    quiet = args.wait_quiet if args.wait_quiet is not None else (3.0 if args.quick else 30.0)

    from ebook2audio.audio.assemble import layout_book, probe

    t = time.perf_counter()
    wavs, rate = speech_pool(20 if args.quick else 40)
    print(f"{len(wavs)} Piper sentences synthesised in {time.perf_counter() - t:.1f} s")
    book = synthetic_book(hours, wavs, rate)
    layout = layout_book(book.plan, lambda cid: (book.size(cid) - 44) // 2)
    exact = [ch.start for ch in layout]
    total_s = (layout[-1].end - layout[0].start) / rate
    print(f"{len(layout)} chapters, {len(book.plan.chunks)} chunks, {total_s / 3600:.2f} h of audio")

    builds = ffmpeg_builds()
    for name, (path, version) in builds.items():
        print(f"ffmpeg {name}: {version} ({path})")
    modes = [Mode(j, "bundled") for j in [1, *jobs_list]]
    if "system" in builds:
        modes += [Mode(1, "system"), Mode(jobs_list[0], "system")]
        from ebook2audio.audio.ffmpeg import ffmpeg_build

        if ffmpeg_build(builds["system"][0]).libs.get("libavformat", (0, 0)) < (61, 0) and not args.no_before:
            modes.append(Mode(jobs_list[0], "system", queue=8))  # ffmpeg < 7: the sleeping input queue
    base = modes[0]
    times: dict[Mode, list[dict[str, float]]] = {m: [] for m in modes}
    checks: dict[Mode, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-assembly-", dir=c.ROOT) as tmpdir:
        tmp = Path(tmpdir)
        onsets: dict[Mode, list[int | None]] = {}
        for r in range(rounds):
            for m in modes:
                if r and m.queue:
                    continue  # the slow control row: one round is enough
                out = tmp / f"{m.key}.m4b"
                c.wait_quiet(quiet)
                res = run_mode(book, m, builds[m.build][0], out)
                times[m].append(res)
                join = f", join {res['join']:.2f} s for {res['pieces']:.0f} pieces" if res["pieces"] else ""
                print(
                    f"round {r + 1}: {m.build} {m.label()}: {res['wall']:.1f} s wall, {res['cpu']:.1f} s CPU"
                    f"{join}, other jobs {res['others']:.2f} cores",
                    flush=True,
                )
                if r == 0:
                    pr = probe(out)
                    marks = [round(mk.start * rate) for mk in pr.chapters]
                    onsets[m] = chapter_onsets(out, exact, rate)
                    checks[m] = {
                        "marks_max_ms": max(abs(a - b) for a, b in zip(marks, exact, strict=True))
                        / rate
                        * 1000,
                        "duration_diff_ms": (pr.duration - total_s) * 1000,
                    }
                out.unlink()
        ref = onsets[base]
        for m in modes:
            diffs = [
                (o - b) if (o is not None and b is not None) else None
                for o, b in zip(onsets[m], ref, strict=True)
            ]
            known = [d for d in diffs if d is not None]
            checks[m]["onset_max_ms"] = max(abs(d) for d in known) / rate * 1000 if known else float("nan")
            checks[m]["onset_last_ms"] = (diffs[-1] / rate * 1000) if diffs[-1] is not None else float("nan")
            checks[m]["onsets_found"] = len(known)
        serial_vs_exact = [o - e for o, e in zip(ref, exact, strict=True) if o is not None]
        lead = (
            (min(serial_vs_exact) / rate * 1000, max(serial_vs_exact) / rate * 1000) if serial_vs_exact else (0, 0)
        )

    best = {m: min(v, key=lambda x: x["wall"]) for m, v in times.items()}
    rows = []
    for m in modes:
        b = best[m]
        ck = checks[m]
        serial = best[Mode(1, m.build)]
        join = (
            f"{b['join']:.2f} ({b['pieces']:.0f}; {b['join'] / b['pieces'] * 1000:.0f} ms/piece)" if b["pieces"] else "-"
        )
        rows.append(
            [
                f"{m.build} {builds[m.build][1]}",
                m.label(),
                b["wall"],
                b["cpu"],
                join,
                f"{b['others']:.2f}",
                f"{serial['wall'] / b['wall']:.2f}x",
                f"{total_s / b['wall']:.0f}x",
                f"{ck['marks_max_ms']:.3f}",
                f"{ck['onset_max_ms']:.3f} ({ck['onsets_found']}/{len(exact)})",
                f"{ck['onset_last_ms']:.3f}",
                f"{ck['duration_diff_ms']:+.1f}",
            ]
        )
    lines = c.header(
        f"Assembly to m4b {'(quick)' if args.quick else '(full)'}",
        started,
        [
            f"audio: {total_s / 3600:.2f} h of real Piper speech ({len(wavs)} distinct sentences tiled), "
            f"{rate} Hz mono, {len(layout)} chapters of 1:12 spread lengths, {len(book.plan.chunks)} chunks; "
            "AAC 64 kb/s, tags, chapters, subtitles",
            "ffmpeg builds: "
            + "; ".join(f"{k}: {v} (`{p}`)" for k, (p, v) in builds.items())
            + "; `EBOOK2AUDIO_FFMPEG` names the one of each row",
            f"best of {rounds} round(s); all rounds (wall s): "
            + "; ".join(f"{m.key}: " + ", ".join(f"{x['wall']:.1f}" for x in v) for m, v in times.items()),
            "join: the final ffmpeg that copies the pieces' AAC frames into the m4b, s (pieces; per piece); "
            "speed-up: over the serial encode with the same build",
            "marks: chapter marks read back with `probe`, largest distance to the sample-exact start; "
            "onset: first sound of each chapter in the decoded audio, largest distance to the bundled "
            "serial encode's (found/chapters), and at the last chapter; duration: probe's duration minus the exact one",
            f"reference: in the bundled serial encode a chapter's first sound lies {lead[0]:.1f} to {lead[1]:.1f} ms "
            "after its mark (the voice's own lead-in; the same in every mode)",
        ],
    )
    lines += c.table(
        [
            "ffmpeg",
            "mode",
            "wall s",
            "CPU s",
            "join s",
            "other jobs' cores",
            "speed-up",
            "x real time",
            "marks drift ms",
            "onset drift vs serial ms",
            "last chapter ms",
            "duration ms",
        ],
        rows,
    )
    print("\n".join(lines))
    if not args.no_write:
        c.write_section("assembly-quick" if args.quick else "assembly", lines)


if __name__ == "__main__":
    main()
