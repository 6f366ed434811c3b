"""The FLAC adapter: the only user of ``soundfile`` (libsndfile, bundled in its wheel; BSD-3 / LGPL-2.1).

Chunks are stored as FLAC (lossless: the PCM read back is the PCM written, bit for bit), encoded and
decoded in the process: no ffmpeg per chunk. 16-bit mono only, like every chunk.
"""

from __future__ import annotations

import io

from ebook2audio.audio.pcm import BYTES_PER_SAMPLE, CorruptAudioError

__all__ = ["decode_flac", "encode_flac"]


def encode_flac(pcm: bytes, sample_rate: int) -> bytes:
    """16-bit mono little-endian PCM (at least one sample) as a FLAC file."""
    import numpy as np
    import soundfile

    if not pcm or len(pcm) % BYTES_PER_SAMPLE:
        raise ValueError(f"FLAC needs whole 16-bit samples, at least one: got {len(pcm)} bytes")
    buf = io.BytesIO()
    soundfile.write(buf, np.frombuffer(pcm, dtype="<i2"), sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def decode_flac(data: bytes) -> tuple[int, bytes]:
    """``(sample_rate, pcm)`` of a 16-bit mono FLAC file; CorruptAudioError when it is not one."""
    import soundfile

    try:
        with soundfile.SoundFile(io.BytesIO(data)) as f:
            if f.channels != 1:
                raise CorruptAudioError(f"expected mono audio, got {f.channels} channels")
            if f.subtype != "PCM_16":
                raise CorruptAudioError(f"expected 16-bit samples, got {f.subtype}")
            frames = f.read(dtype="int16")
            rate = f.samplerate
            expected = f.frames
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise CorruptAudioError(f"not a readable FLAC file: {exc}") from exc
    if len(frames) != expected:
        raise CorruptAudioError(f"truncated FLAC: {len(frames)} samples of {expected}")
    return rate, frames.astype("<i2", copy=False).tobytes()
