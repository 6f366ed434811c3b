"""How a chunk's audio is stored: FLAC (lossless, about half the bytes of WAV), or WAV.

New chunks are FLAC (a chunk without a single sample, which FLAC cannot hold, is a 44-byte WAV);
chunks written by earlier versions are canonical WAV and stay readable, so a conversion resumes
across the upgrade. The format is told by the blob's first bytes, not by its key.

The done-check (:func:`blob_whole`) reads only a blob's first bytes. Every blob is written
atomically (a rename, or an S3 conditional put), so a half-written chunk never appears under its
key; the check is there for damage from outside (a truncated copy, a foreign file): a WAV's header
must give its exact size, a FLAC's STREAMINFO must describe 16-bit mono audio whose frames
(``ceil(samples / block size)``, each between the smallest and the largest frame size it records)
can fill exactly the bytes after the metadata. A FLAC cut inside its frames can pass this check
when its frame sizes vary a lot; the decoder then refuses it when it is read (CorruptAudioError).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ebook2audio.audio.flac import decode_flac, encode_flac
from ebook2audio.audio.pcm import WAV_HEADER_SIZE, CorruptAudioError, parse_wav, wav_bytes

__all__ = ["HEAD_BYTES", "StreamInfo", "blob_whole", "chunk_bytes", "chunk_pcm", "samples_from_head", "streaminfo"]

HEAD_BYTES = 512  # enough for a WAV header and the metadata blocks libsndfile writes before FLAC frames
_FLAC_MAGIC = b"fLaC"


@dataclass(frozen=True)
class StreamInfo:
    sample_rate: int
    channels: int
    bits: int
    samples: int
    min_block: int
    max_block: int
    min_frame: int  # bytes; 0 = unknown
    max_frame: int
    audio_offset: int | None  # where the frames start, when the head holds every metadata block


def streaminfo(head: bytes) -> StreamInfo | None:
    """The STREAMINFO of a FLAC file from its first bytes; None when it is not FLAC. Pure."""
    if len(head) < 42 or head[:4] != _FLAC_MAGIC or head[4] & 0x7F != 0:
        return None
    if int.from_bytes(head[5:8], "big") != 34:
        return None
    s = head[8:42]
    min_block, max_block = struct.unpack(">HH", s[:4])
    min_frame, max_frame = int.from_bytes(s[4:7], "big"), int.from_bytes(s[7:10], "big")
    v = int.from_bytes(s[10:18], "big")
    pos, last = 42, bool(head[4] & 0x80)
    while not last and pos + 4 <= len(head):
        last = bool(head[pos] & 0x80)
        pos += 4 + int.from_bytes(head[pos + 1 : pos + 4], "big")
    return StreamInfo(
        sample_rate=v >> 44,
        channels=((v >> 41) & 7) + 1,
        bits=((v >> 36) & 31) + 1,
        samples=v & ((1 << 36) - 1),
        min_block=min_block,
        max_block=max_block,
        min_frame=min_frame,
        max_frame=max_frame,
        audio_offset=pos if last and pos <= len(head) + 4096 else None,
    )


def _wav_whole(head: bytes, size: int) -> bool:
    if len(head) < WAV_HEADER_SIZE or head[:4] != b"RIFF" or head[8:12] != b"WAVE" or head[36:40] != b"data":
        return False
    riff_size = struct.unpack_from("<I", head, 4)[0]
    data_size = struct.unpack_from("<I", head, 40)[0]
    return riff_size == size - 8 and data_size == size - WAV_HEADER_SIZE


def blob_whole(head: bytes, size: int) -> bool:
    """True when a chunk blob of ``size`` bytes starting with ``head`` looks whole (see the module). Pure."""
    if head[:4] == b"RIFF":
        return _wav_whole(head, size)
    info = streaminfo(head)
    if info is None or info.channels != 1 or info.bits != 16 or info.samples <= 0 or info.max_block <= 0:
        return False
    if info.audio_offset is None or info.min_frame <= 0 or info.max_frame <= 0:
        return size > 42  # sizes unknown to the encoder: only the header can be checked
    frames = -(-info.samples // info.max_block)
    audio = size - info.audio_offset
    return frames * info.min_frame <= audio <= frames * info.max_frame


def samples_from_head(head: bytes, size: int) -> int:
    """The samples in a chunk blob of ``size`` bytes from its first bytes; CorruptAudioError if unknown."""
    info = streaminfo(head)
    if info is not None:
        return info.samples
    if head[:4] == b"RIFF" and _wav_whole(head, size):
        return (size - WAV_HEADER_SIZE) // 2
    raise CorruptAudioError(f"not a whole chunk ({size} bytes)")


def chunk_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """The stored form of a chunk's 16-bit mono PCM: FLAC, or a WAV when it holds no sample."""
    return encode_flac(pcm, sample_rate) if pcm else wav_bytes(pcm, sample_rate)


def chunk_pcm(data: bytes) -> tuple[int, bytes]:
    """``(sample_rate, pcm)`` of a stored chunk (FLAC or WAV); CorruptAudioError when unreadable."""
    if data[:4] == _FLAC_MAGIC:
        return decode_flac(data)
    return parse_wav(data)
