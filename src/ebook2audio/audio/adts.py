"""Raw AAC in ADTS framing: walking the frames of a file and copying them, some dropped. Pure (no ffmpeg).

Used by the parallel encoder of assemble.py: each piece of a book is encoded to ADTS by its own
ffmpeg, then the pieces' frames are joined, the first (priming) frame of every piece but the first
dropped, so that the joined stream has exactly the samples of the whole book. An ADTS frame is a
7-byte header (9 with a CRC) that holds the frame's length in bytes, then one AAC raw data block of
1024 samples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from ebook2audio.errors import AssemblyError

__all__ = ["SAMPLES_PER_FRAME", "AdtsError", "copy_frames", "frame_length"]

SAMPLES_PER_FRAME = 1024
_HEADER = 7
_READ_BLOCK = 1 << 20


class AdtsError(AssemblyError):
    """A byte stream that is not the ADTS AAC we expect (one raw data block per frame)."""


def frame_length(header: bytes | bytearray | memoryview, pos: int = 0) -> int:
    """The byte length of the ADTS frame whose header starts at ``pos`` (header included).

    Raises AdtsError on a missing sync word, a bad layer, a frame holding more than one raw data
    block (not 1024 samples), or an impossible length.
    """
    if len(header) - pos < _HEADER:
        raise AdtsError("truncated ADTS header")
    b0, b1, b3, b4, b5, b6 = (header[pos + i] for i in (0, 1, 3, 4, 5, 6))
    if b0 != 0xFF or (b1 & 0xF6) != 0xF0:  # 12-bit sync word, layer 00
        raise AdtsError("lost ADTS sync (not an ADTS AAC stream)")
    if b6 & 0x03:
        raise AdtsError("ADTS frame with several raw data blocks (not 1024 samples a frame)")
    length = ((b3 & 0x03) << 11) | (b4 << 3) | (b5 >> 5)
    if length < _HEADER + (0 if b1 & 0x01 else 2):
        raise AdtsError(f"impossible ADTS frame length {length}")
    return length


def copy_frames(src: BinaryIO, write: Callable[[bytes], None], skip: int = 0) -> int:
    """Copy the ADTS frames of ``src`` to ``write``, leaving out the first ``skip`` frames.

    Returns the number of frames read (skipped ones included). Memory stays bounded: ``src`` is
    read in blocks, and what is written is handed over in blocks of about 1 MiB. Every frame's header
    is checked as ``frame_length`` does (the walk is inlined: the coordinator walks every frame of a
    book, ~43 frames a second of audio at 44.1 kHz).
    """
    count = 0
    buf = b""
    while True:
        block = src.read(_READ_BLOCK)
        if not block:
            break
        buf = buf + block if buf else block
        pos = 0
        out_from = 0
        end = len(buf) - _HEADER
        while pos <= end:
            if buf[pos] != 0xFF or (buf[pos + 1] & 0xF6) != 0xF0 or buf[pos + 6] & 0x03:
                frame_length(buf, pos)  # raises the precise AdtsError
            length = ((buf[pos + 3] & 0x03) << 11) | (buf[pos + 4] << 3) | (buf[pos + 5] >> 5)
            if length < 9 and (length < _HEADER or not buf[pos + 1] & 0x01):
                frame_length(buf, pos)
            if pos + length > len(buf):
                break
            if count < skip:
                out_from = pos + length
            count += 1
            pos += length
        if pos > out_from:
            write(buf[out_from:pos])
        buf = buf[pos:]
    if buf:
        raise AdtsError(f"the ADTS stream ends inside a frame ({len(buf)} bytes left over)")
    return count
