from __future__ import annotations

import io
import struct
import wave

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebook2audio.audio.pcm import (
    CorruptAudioError,
    is_valid_wav,
    ms_to_samples,
    parse_wav,
    samples_from_wav_size,
    silence,
    wav_bytes,
)
from ebook2audio.errors import AssemblyError

PCM = struct.pack("<6h", 0, 1000, -1000, 32767, -32768, 5)


def test_wav_bytes_roundtrip_and_canonical_header() -> None:
    data = wav_bytes(PCM, 22050)
    assert len(data) == 44 + len(PCM)
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    assert parse_wav(data) == (22050, PCM)
    assert samples_from_wav_size(len(data)) == 6


def test_python_wave_module_agrees_both_ways() -> None:
    with wave.open(io.BytesIO(wav_bytes(PCM, 16000))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 16000, 6)
        assert w.readframes(6) == PCM
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(24000)
        w.writeframes(PCM)
    assert parse_wav(buf.getvalue()) == (24000, PCM)


def test_extra_chunks_are_allowed_when_sizes_add_up() -> None:
    base = wav_bytes(PCM, 8000)
    info = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\x00"  # odd size: one pad byte
    body = base[12:36] + info + base[36:]
    data = b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body
    assert parse_wav(data) == (8000, PCM)


def _with(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


GOOD = wav_bytes(PCM, 22050)
BAD = {
    "empty": b"",
    "not riff": b"RIFX" + GOOD[4:],
    "truncated by one byte": GOOD[:-1],
    "truncated by one sample": GOOD[:-2],
    "header only, data promised": GOOD[:44],
    "padded": GOOD + b"\x00\x00",
    "riff size too big": _with(GOOD, 4, "<I", len(GOOD)),
    "data size too big": _with(GOOD, 40, "<I", len(PCM) + 2),
    "data size too small": _with(GOOD, 40, "<I", len(PCM) - 2),
    "streaming size 0xFFFFFFFF": _with(GOOD, 40, "<I", 0xFFFFFFFF),
    "stereo": _with(_with(GOOD, 22, "<H", 2), 32, "<H", 4),
    "8-bit": _with(GOOD, 34, "<H", 8),
    "float": _with(GOOD, 20, "<H", 3),
    "zero rate": _with(GOOD, 24, "<I", 0),
    "wrong byte rate": _with(GOOD, 28, "<I", 12345),
    "odd data size": wav_bytes(PCM, 22050)[:40] + struct.pack("<I", 11) + PCM[:11] + b"\x00",
}


@pytest.mark.parametrize("name", list(BAD))
def test_corrupt_files_are_rejected(name: str) -> None:
    with pytest.raises(CorruptAudioError):
        parse_wav(BAD[name])
    assert not is_valid_wav(BAD[name])


def test_corrupt_audio_error_is_an_assembly_error_with_chunk_id() -> None:
    err = CorruptAudioError("x", chunk_id="abc")
    assert isinstance(err, AssemblyError) and err.chunk_id == "abc"


@settings(max_examples=200, deadline=None)
@given(
    pcm=st.binary(max_size=400).map(lambda b: b[: len(b) // 2 * 2]),
    cut=st.integers(min_value=1, max_value=500),
)
def test_any_truncation_is_detected(pcm: bytes, cut: int) -> None:
    data = wav_bytes(pcm, 11025)
    assert parse_wav(data) == (11025, pcm)
    cut = min(cut, len(data))
    assert not is_valid_wav(data[:-cut])


def test_silence_and_rounding() -> None:
    assert silence(0, 22050) == b""
    assert silence(-5, 22050) == b""
    assert silence(1000, 22050) == bytes(44100)
    assert ms_to_samples(250, 22050) == 5513  # 5512.5 rounds half up
    assert ms_to_samples(1, 8000) == 8
    assert len(silence(250, 22050)) == 2 * 5513


def test_wav_bytes_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        wav_bytes(b"\x00", 22050)
    with pytest.raises(ValueError):
        wav_bytes(b"", 0)
    with pytest.raises(CorruptAudioError):
        samples_from_wav_size(45)
    with pytest.raises(CorruptAudioError):
        samples_from_wav_size(10)
