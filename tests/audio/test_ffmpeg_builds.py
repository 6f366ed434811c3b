"""Which ffmpeg is used, the version check, and no idling with any build (the bundled one, Debian's).

ffmpeg before 7 reads its inputs in threads when there are several, through a queue of 8 packets by
default, and sleeps 10 ms whenever the queue of the stdin input is empty: a join (one packet = one
1024-sample AAC frame) or a WAV encode (one packet = 1024 samples) was held to about 8 packets per
10 ms. The speed tests below bound the time per 1024 samples well under that pace (and a slow
test checks, on such a build, that the old queue depth does exceed the bound).
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ebook2audio.audio import ffmpeg as ff
from ebook2audio.audio.assemble import probe
from ebook2audio.audio.ffmpeg import (
    EncodeSpec,
    FfmpegBuild,
    MetaChapter,
    check_ffmpeg,
    encode_command,
    encode_pcm,
    ffmetadata,
    find_ffmpeg,
    parse_version,
)
from ebook2audio.errors import ConfigError

from .conftest import build_path
from .tones import RATE, tone

asm = importlib.import_module("ebook2audio.audio.assemble")  # the package exports a function of that name

FRAME = 1024
# Seconds per 1024 samples that a join or a WAV encode may take: a quarter of the 8-packets-per-10-ms
# pace (0.31 ms/frame); the old queue measured 0.85 ms/frame with Debian's 5.1 on 2 loaded cores, the
# deep one 0.03 (bundled 9.0) to 0.09 (Debian 5.1).
MAX_PER_FRAME = 0.25e-3

DEBIAN_12 = """\
ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026 the FFmpeg developers
built with gcc 12 (Debian 12.2.0-14+deb12u1)
configuration: --prefix=/usr --extra-version=0+deb12u1 --toolchain=hardened
libavutil      57. 28.100 / 57. 28.100
libavcodec     59. 37.100 / 59. 37.100
libavformat    59. 27.100 / 59. 27.100
libswresample   4.  7.100 /  4.  7.100
"""
DEBIAN_11 = """\
ffmpeg version 4.3.8-0+deb11u1 Copyright (c) 2000-2024 the FFmpeg developers
libavutil      56. 51.100 / 56. 51.100
libavcodec     58. 91.100 / 58. 91.100
libavformat    58. 45.100 / 58. 45.100
"""
GIT_BUILD = """\
ffmpeg version N-113000-g1234abcd Copyright (c) 2000-2024 the FFmpeg developers
libavutil      59.  8.100 / 59.  8.100
libavcodec     61.  3.100 / 61.  3.100
libavformat    61.  1.100 / 61.  1.100
"""
FFMPEG_4_4 = "ffmpeg version 4.4\nlibavcodec     58.134.100 / 58.134.100\nlibavformat    58. 76.100 / 58. 76.100\n"


def fake_ffmpeg(folder: Path, version_text: str, name: str = "ffmpeg") -> Path:
    """An executable that answers ``-version`` like an ffmpeg would, and fails at anything else
    (shell built-ins only: it works whatever PATH holds)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    (folder / f"{name}.txt").write_text(version_text)
    path.write_text(
        textwrap.dedent(f"""\
            #!/bin/sh
            for a in "$@"; do
              if [ "$a" = -version ]; then
                while IFS= read -r line; do printf '%s\\n' "$line"; done < '{folder / f"{name}.txt"}'
                exit 0
              fi
            done
            echo "fake ffmpeg: only -version" >&2; exit 1
            """)
    )
    path.chmod(0o755)
    return path


# --------------------------------------------------------------------------- choice and version


def test_version_text_is_parsed_and_compared_by_library_versions() -> None:
    deb12 = parse_version("/usr/bin/ffmpeg", DEBIAN_12)
    assert deb12.version == "5.1.9-0+deb12u1"
    assert deb12.libs["libavcodec"] == (59, 37) and deb12.libs["libavformat"] == (59, 27)
    assert deb12.recent_enough
    assert parse_version("x", FFMPEG_4_4).recent_enough  # the minimum itself
    assert parse_version("x", GIT_BUILD).recent_enough  # a git build's version says nothing; its libraries do
    assert not parse_version("x", DEBIAN_11).recent_enough
    assert not parse_version("x", "ffmpeg version 4.4\n").recent_enough  # no libraries listed: refused
    assert parse_version("x", "garbage").version == "of unknown version"


def test_the_bundled_build_is_used_unless_the_environment_names_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = build_path("bundled")
    assert bundled is not None
    on_path = fake_ffmpeg(tmp_path / "bin", DEBIAN_12)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    assert find_ffmpeg() == bundled  # an ffmpeg on PATH is not taken by itself
    monkeypatch.setenv("EBOOK2AUDIO_FFMPEG", "ffmpeg")  # a name is looked up on PATH
    assert find_ffmpeg() == str(on_path)
    assert check_ffmpeg().version == "5.1.9-0+deb12u1"
    # an env mapping given explicitly wins over os.environ
    assert find_ffmpeg({"PATH": "/nonexistent"}) == bundled


def test_path_ffmpeg_is_the_fallback_without_a_bundled_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import imageio_ffmpeg

    def missing() -> str:
        raise RuntimeError("no ffmpeg exe could be found")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing)
    on_path = fake_ffmpeg(tmp_path / "bin", DEBIAN_11)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    assert find_ffmpeg() == str(on_path)
    with pytest.raises(ConfigError, match=r"^ffmpeg 4\.3\.8-0\+deb11u1 .* needs ffmpeg 4\.4 or newer; set EBOOK2AUDIO_FFMPEG"):
        check_ffmpeg()


def test_a_too_old_ffmpeg_stops_the_conversion_at_once(tmp_path: Path) -> None:
    """Through the CLI: one line naming the version and the minimum, exit 2, before any synthesis."""
    old = fake_ffmpeg(tmp_path / "old", DEBIAN_11)
    book = tmp_path / "book.txt"
    book.write_text("A Title\n\nChapter 1\n\nOne sentence to read. And another one.\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EBOOK2AUDIO_") or k == "EBOOK2AUDIO_VOICES_URL"},
        "EBOOK2AUDIO_FFMPEG": str(old),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    cli = [sys.executable, "-m", "ebook2audio", "convert", str(book), "--engine", "sim"]
    done = subprocess.run(
        [*cli, "-o", str(tmp_path / "out"), "--work-dir", str(tmp_path / "work")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0] == (
        f"error: ffmpeg 4.3.8-0+deb11u1 ({old}) is too old: ebook2audio needs ffmpeg 4.4 or newer; "
        "unset EBOOK2AUDIO_FFMPEG to use the bundled build"
    )
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()


def test_every_stdin_input_gets_a_deep_packet_queue(tmp_path: Path) -> None:
    meta, cover = tmp_path / "m.txt", tmp_path / "c.jpg"
    specs = [
        EncodeSpec("m4b", RATE, metadata_file=meta, cover_file=cover),
        EncodeSpec("mp3", RATE, metadata_file=meta, cover_file=cover),
        EncodeSpec("wav", RATE, metadata_file=meta),
        EncodeSpec("m4b", RATE, muxer="adts"),
        EncodeSpec("m4b", RATE, metadata_file=meta, cover_file=cover, input="adts", input_delay=FRAME),
    ]
    for spec in specs:
        cmd = encode_command("ffmpeg", spec, tmp_path / "o")
        assert cmd.count("-thread_queue_size") == 1, cmd
        at = cmd.index("-thread_queue_size")
        assert cmd.index("-i") > at and cmd[cmd.index("-i") + 1] == "pipe:0"  # on the stdin input, before it
        assert int(cmd[at + 1]) >= 1024


# --------------------------------------------------------------------------- with each build


def pieces_of(tmp_path: Path, count: int, frames: int) -> list[tuple[Path, int]]:
    """``count`` ADTS pieces of ``frames`` x 1024 samples of tone (one encode, copied), as (path, samples).

    Whole frames, as the assembler cuts them: the join then holds exactly the pieces' samples.
    """
    pcm = tone(frames * FRAME / RATE, 440)
    assert len(pcm) == 2 * frames * FRAME
    first = tmp_path / "piece-0.aac"
    encode_pcm([pcm], first, EncodeSpec("m4b", RATE, muxer="adts"))
    paths = [first] + [tmp_path / f"piece-{k}.aac" for k in range(1, count)]
    for path in paths[1:]:
        shutil.copyfile(first, path)
    return [(p, len(pcm) // 2) for p in paths]


def timed_join(tmp_path: Path, pieces: list[tuple[Path, int]]) -> tuple[float, Path, list[int]]:
    """Join ``pieces`` into an m4b with one chapter per piece; (seconds, the file, exact chapter starts)."""
    starts = [sum(n for _, n in pieces[:k]) for k in range(len(pieces))]
    total = sum(n for _, n in pieces)
    meta = tmp_path / "book.ffmeta"
    chapters = [MetaChapter(f"Part {k + 1}", s, e) for k, (s, e) in enumerate(zip(starts, [*starts[1:], total], strict=True))]
    meta.write_text(ffmetadata({"title": "Joined"}, chapters, RATE))
    out = tmp_path / "joined.m4b"
    t0 = time.perf_counter()
    asm._join_pieces(EncodeSpec("m4b", RATE, metadata_file=meta), out, out.name, pieces)
    return time.perf_counter() - t0, out, starts


def test_join_copies_at_copy_speed_with_exact_marks(tmp_path: Path, each_ffmpeg: FfmpegBuild) -> None:
    pieces = pieces_of(tmp_path, 6, 860)  # 4 minutes
    frames = sum(-(-n // FRAME) for _, n in pieces)
    seconds, out, starts = timed_join(tmp_path, pieces)
    got = probe(out)
    marks = [ch.start for ch in got.chapters]
    exact = [s / RATE for s in starts]
    # The bundled build keeps the chapters' own time base: sample-exact marks. Older builds (Debian's
    # 5.1) write the MP4 chapter track in milliseconds: each mark is the exact time rounded to 1 ms.
    assert marks == pytest.approx(exact, abs=1e-9) or marks == pytest.approx([round(t, 3) for t in exact], abs=1e-9)
    if each_ffmpeg.path == build_path("bundled"):
        assert [round(m * RATE) for m in marks] == starts
    # the whole of every piece, not a frame more or less (older builds give the duration in ms too)
    assert got.duration == pytest.approx(sum(n for _, n in pieces) / RATE, abs=0.5e-3)
    assert not any(p.exists() for p, _ in pieces)  # each piece removed once copied
    assert seconds < frames * MAX_PER_FRAME, f"join of {frames} frames with ffmpeg {each_ffmpeg.version}: {seconds:.2f} s"


def test_wav_encode_with_metadata_is_not_held_back(tmp_path: Path, each_ffmpeg: FfmpegBuild) -> None:
    """A fast encoder fed through stdin next to an ffmetadata input (WAV: no encoding at all)."""
    pcm = tone(240.0, 440)
    meta = tmp_path / "m.ffmeta"
    meta.write_text(ffmetadata({"title": "T"}, [MetaChapter("One", 0, len(pcm) // 2)], RATE))
    out = tmp_path / "book.wav"
    t0 = time.perf_counter()
    encode_pcm([pcm[i : i + (1 << 20)] for i in range(0, len(pcm), 1 << 20)], out, EncodeSpec("wav", RATE, metadata_file=meta))
    seconds = time.perf_counter() - t0
    assert probe(out).duration == pytest.approx(240.0, abs=1 / RATE)
    blocks = len(pcm) // 2 / FRAME
    assert seconds < blocks * MAX_PER_FRAME, f"wav of {blocks:.0f}x1024 samples with ffmpeg {each_ffmpeg.version}: {seconds:.2f} s"


@pytest.mark.slow
def test_the_bound_catches_the_old_queue_on_a_build_that_sleeps(
    tmp_path: Path, each_ffmpeg: FfmpegBuild, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ffmpeg's default queue (8 packets) a build before 7 exceeds the join test's bound."""
    if each_ffmpeg.libs.get("libavformat", (0, 0)) >= (61, 0):
        pytest.skip(f"ffmpeg {each_ffmpeg.version} (7 or newer) does not sleep on an empty input queue")
    monkeypatch.setattr(ff, "ADTS_QUEUE_PACKETS", 8)
    # The old queue's cost varies from run to run (measured 1.4 to over 2 s for 5,160 frames here):
    # the slowest of up to three joins (each of new pieces: a join removes its pieces) must clear the
    # bound with a margin.
    tries: list[float] = []
    for k in range(3):
        folder = tmp_path / f"try{k}"
        folder.mkdir()
        pieces = pieces_of(folder, 6, 860)
        frames = sum(-(-n // FRAME) for _, n in pieces)
        seconds, _, _ = timed_join(folder, pieces)
        tries.append(seconds)
        if seconds > frames * MAX_PER_FRAME * 1.3:
            break
    assert max(tries) > frames * MAX_PER_FRAME * 1.3, f"{[round(t, 2) for t in tries]} s for {frames} frames"
