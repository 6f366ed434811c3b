"""Pure helpers for the chunk audio format: 16-bit mono PCM in a canonical 44-byte RIFF/WAVE file.

No ffmpeg and no numpy here. ``parse_wav`` is strict on purpose: a chunk whose header sizes do not
match its real length (a truncated upload, a half-written file) is rejected, so the caller can
synthesise it again instead of baking a click or a gap into the audiobook.
"""

from __future__ import annotations

import struct

from ebook2audio.errors import AssemblyError

__all__ = [
    "BYTES_PER_SAMPLE",
    "WAV_HEADER_SIZE",
    "CorruptAudioError",
    "is_valid_wav",
    "ms_to_samples",
    "parse_wav",
    "samples_from_wav_size",
    "silence",
    "wav_bytes",
]

WAV_HEADER_SIZE = 44  # the canonical header that wav_bytes writes
BYTES_PER_SAMPLE = 2  # 16-bit mono

_FORMAT_PCM = 0x0001
_FORMAT_EXTENSIBLE = 0xFFFE
# KSDATAFORMAT_SUBTYPE_PCM: the PCM sub-format GUID of WAVE_FORMAT_EXTENSIBLE files.
_SUBFORMAT_PCM = bytes.fromhex("0100000000001000800000aa00389b71")
_MAX_SAMPLE_RATE = 768_000


class CorruptAudioError(AssemblyError):
    """A chunk's audio is truncated, corrupt, or not 16-bit mono PCM.

    ``chunk_id`` names the chunk when the error comes from assembly, so the caller can
    synthesise that chunk again.
    """

    def __init__(self, message: str, chunk_id: str | None = None) -> None:
        super().__init__(message)
        self.chunk_id = chunk_id


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """Wrap 16-bit mono little-endian PCM in a canonical 44-byte WAV header."""
    if sample_rate <= 0 or sample_rate > _MAX_SAMPLE_RATE:
        raise ValueError(f"bad sample rate {sample_rate}")
    if len(pcm) % BYTES_PER_SAMPLE:
        raise ValueError(f"16-bit PCM must have an even number of bytes, got {len(pcm)}")
    data_size = len(pcm)
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_size,
        b"WAVE",
        b"fmt ",
        16,
        _FORMAT_PCM,
        1,  # channels
        sample_rate,
        sample_rate * BYTES_PER_SAMPLE,  # byte rate
        BYTES_PER_SAMPLE,  # block align
        8 * BYTES_PER_SAMPLE,  # bits per sample
        b"data",
        data_size,
    )
    return header + bytes(pcm)


def _check_fmt(body: bytes) -> int:
    """Validate a 'fmt ' chunk body; return the sample rate."""
    if len(body) < 16:
        raise CorruptAudioError(f"fmt chunk too short ({len(body)} bytes)")
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _FORMAT_EXTENSIBLE:
        if len(body) < 40 or body[24:40] != _SUBFORMAT_PCM:
            raise CorruptAudioError("WAVE_FORMAT_EXTENSIBLE file is not integer PCM")
    elif tag != _FORMAT_PCM:
        raise CorruptAudioError(f"not PCM audio (format tag {tag:#06x})")
    if channels != 1:
        raise CorruptAudioError(f"expected mono audio, got {channels} channels")
    if bits != 16:
        raise CorruptAudioError(f"expected 16-bit samples, got {bits}-bit")
    if not 0 < rate <= _MAX_SAMPLE_RATE:
        raise CorruptAudioError(f"bad sample rate {rate}")
    if block_align != BYTES_PER_SAMPLE or byte_rate != rate * BYTES_PER_SAMPLE:
        raise CorruptAudioError("inconsistent byte rate or block align in the fmt chunk")
    return rate


def parse_wav(data: bytes) -> tuple[int, bytes]:
    """Return ``(sample_rate, pcm)`` of a 16-bit mono PCM WAV file.

    Raises CorruptAudioError when the file is truncated or padded (the RIFF size and every chunk
    size must add up to the real length exactly), has no fmt or data chunk, or is not 16-bit mono
    PCM. Extra chunks (LIST, fact, ...) before or after the data are allowed.
    """
    view = memoryview(data)
    total = len(view)
    if total < 12:
        raise CorruptAudioError(f"not a WAV file: only {total} bytes")
    riff, riff_size, wave = struct.unpack_from("<4sI4s", view)
    if riff != b"RIFF" or wave != b"WAVE":
        raise CorruptAudioError("not a WAV file: no RIFF/WAVE header")
    if riff_size + 8 != total:
        raise CorruptAudioError(
            f"truncated or padded WAV: header says {riff_size + 8} bytes, file has {total}"
        )
    pos = 12
    rate: int | None = None
    pcm: memoryview | None = None
    while pos < total:
        if total - pos < 8:
            raise CorruptAudioError(f"truncated WAV: {total - pos} stray bytes at offset {pos}")
        chunk_id, size = struct.unpack_from("<4sI", view, pos)
        start = pos + 8
        end = start + size
        if end > total:
            raise CorruptAudioError(
                f"truncated WAV: chunk {chunk_id!r} needs {size} bytes, {total - start} remain"
            )
        if chunk_id == b"fmt ":
            if rate is not None:
                raise CorruptAudioError("two fmt chunks")
            rate = _check_fmt(bytes(view[start:end]))
        elif chunk_id == b"data":
            if pcm is not None:
                raise CorruptAudioError("two data chunks")
            if rate is None:
                raise CorruptAudioError("data chunk before the fmt chunk")
            if size % BYTES_PER_SAMPLE:
                raise CorruptAudioError(f"data chunk of {size} bytes is not whole 16-bit samples")
            pcm = view[start:end]
        pos = end + (size & 1)  # RIFF chunks are padded to an even size
        if pos > total:
            raise CorruptAudioError("truncated WAV: missing pad byte after the last chunk")
    if rate is None:
        raise CorruptAudioError("no fmt chunk")
    if pcm is None:
        raise CorruptAudioError("no data chunk")
    return rate, pcm.tobytes()


def is_valid_wav(data: bytes) -> bool:
    """True when ``parse_wav`` accepts ``data``."""
    try:
        parse_wav(data)
    except CorruptAudioError:
        return False
    return True


def samples_from_wav_size(size: int) -> int:
    """Samples in a canonical (44-byte header) 16-bit mono WAV file of ``size`` bytes."""
    if size < WAV_HEADER_SIZE or (size - WAV_HEADER_SIZE) % BYTES_PER_SAMPLE:
        raise CorruptAudioError(f"a {size}-byte file cannot be a canonical 16-bit mono WAV")
    return (size - WAV_HEADER_SIZE) // BYTES_PER_SAMPLE


def ms_to_samples(ms: int, sample_rate: int) -> int:
    """Whole samples in ``ms`` milliseconds (rounded half up); never negative."""
    if ms <= 0:
        return 0
    return (ms * sample_rate + 500) // 1000


def silence(ms: int, sample_rate: int) -> bytes:
    """Digital silence of ``ms`` milliseconds as 16-bit mono PCM."""
    return bytes(ms_to_samples(ms, sample_rate) * BYTES_PER_SAMPLE)
