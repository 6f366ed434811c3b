"""Encoded pieces of a book: runs of whole batches, each encoded to AAC frames on its own, then joined.

A book in m4b/m4a is cut into pieces after synthesis batches (:func:`stream_pieces`), where the pause
after a batch's last chunk is at least STREAM_CUT_PAUSE samples long. A piece that is exactly one
batch (the usual case) is encoded by the worker that synthesises the batch (``tasks.synthesize_batch``)
and stored next to the chunks; the coordinator only joins the pieces' frames (audio/assemble.py).
A piece of several batches (a batch end whose pause is too short to cut in, e.g. --sentence-pause 0)
is encoded by the coordinator from the stored chunks, with the same function (:class:`PieceWriter`).

So that a piece can be encoded knowing only its own chunks, it starts JOIN_GUARD samples into the
pause that precedes it (its *lead*, none for the book's first piece), and the pause after its last
chunk (its *tail*: the planned pause less the JOIN_GUARD that opens the next piece) is stretched or
shortened by at most FRAME // 2 samples so that the piece is a whole number of AAC frames; the book's
last piece keeps its pause. The real tail and every chunk's sample count travel with the piece (its
header), so the coordinator lays out the chapters, subtitles and marks from them, sample-exactly.

A stored piece is ``b"E2AP1\\n"`` + one line of JSON (``samples``: per chunk, ``tail``, ``length``) +
the ADTS frames (the encoder's priming frame first). Its key holds a digest of everything the bytes
depend on (codec, bitrate, sample rate, the chunk ids and planned pauses, lead, last-piece flag, and
the version of these rules), so a rerun with other settings never reuses a wrong piece, and a resume
reuses the right ones. Pure, except PieceWriter (ffmpeg).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ebook2audio.audio import adts
from ebook2audio.audio.ffmpeg import EncodeSpec, PcmEncoder, output_format
from ebook2audio.audio.pcm import ms_to_samples
from ebook2audio.errors import AssemblyError
from ebook2audio.model import Chunk, Plan

__all__ = [
    "JOIN_GUARD",
    "PIECE_RULES",
    "STREAM_CUT_PAUSE",
    "PieceSpec",
    "PieceWriter",
    "StoredPiece",
    "batch_pieces",
    "parse_piece",
    "piece_codec",
    "pieces_prefix",
    "plan_pieces",
    "stream_pieces",
    "stream_tail",
]

FRAME = adts.SAMPLES_PER_FRAME
JOIN_GUARD = 2 * FRAME  # silent samples needed on each side of a cut between two pieces
STREAM_CUT_PAUSE = 2 * JOIN_GUARD + FRAME // 2  # the shortest pause (samples) a cut can sit in
PIECE_RULES = "lead2048-tail512-v1"  # the lead/tail rule above: change it when they change
_MAGIC = b"E2AP1\n"


def piece_codec(format: str, bitrate: str, split: bool = False) -> str:
    """What workers encode pieces to for an output ``format`` ("aac/64k"), or "" for none.

    AAC only (m4b, m4a): its frames join sample-exactly once the priming frame is dropped. MP3 keeps
    the coordinator's encoder (LAME's delay of 1105 samples is not a whole number of 1152-sample
    frames, so independently encoded pieces cannot be joined on the sample), as do opus, ogg, flac
    and wav (no frame join), and a book split in parts (``split``: its cuts follow the real lengths).
    """
    if split or output_format(format).codec != "aac":
        return ""
    return f"aac/{bitrate}"


def pieces_prefix(session: str, job: str) -> str:
    return f"{session}/pieces/{job or '_'}/"


@dataclass(frozen=True)
class PieceSpec:
    """One piece of one book, as planned: everything its encoded bytes depend on."""

    index: int  # 0-based, in reading order
    batch_ids: tuple[str, ...]
    chunk_ids: tuple[str, ...]
    pauses: tuple[int, ...]  # planned pause after each chunk, in samples
    lead: int  # silent samples before the first chunk (JOIN_GUARD, 0 for the book's first piece)
    last: bool  # the book's last piece (keeps its pause as planned)
    codec: str  # "aac/64k"
    sample_rate: int

    @property
    def by_worker(self) -> bool:
        """A piece of exactly one batch is encoded by the worker that synthesises it."""
        return len(self.batch_ids) == 1

    @property
    def bitrate(self) -> str:
        return self.codec.partition("/")[2]

    def digest(self) -> str:
        h = hashlib.sha256()
        for part in (PIECE_RULES, self.codec, str(self.sample_rate), str(self.lead), str(self.last)):
            h.update(part.encode() + b"\0")
        for cid, pause in zip(self.chunk_ids, self.pauses, strict=True):
            h.update(f"{cid}:{pause}\0".encode())
        return h.hexdigest()[:32]

    def key(self, session: str, job: str) -> str:
        return f"{pieces_prefix(session, job)}{self.digest()}.adts"


def stream_tail(pos: int, pause: int, last: bool) -> int:
    """The silence that closes a piece holding ``pos`` samples before it (see the module). Pure."""
    if last:
        return pause
    pause -= JOIN_GUARD
    rest = (pos + pause) % FRAME
    return pause - rest if rest <= FRAME // 2 else pause + FRAME - rest


def stream_pieces(plan: Plan) -> list[list[Chunk]]:
    """The book's pieces: runs of whole batches, cut where a pause is long enough. Pure.

    A cut goes after a chunk that ends a batch (in reading order) when its pause is at least
    STREAM_CUT_PAUSE samples; chapters without chunks are skipped.
    """
    chunks = plan.chunk_map()
    batch_of = {cid: b.id for b in plan.batches for cid in b.chunk_ids}
    order = [chunks[cid] for ch in plan.chapters for cid in ch.chunk_ids if cid in chunks]
    pieces: list[list[Chunk]] = []
    current: list[Chunk] = []
    for i, chunk in enumerate(order):
        current.append(chunk)
        nxt = order[i + 1] if i + 1 < len(order) else None
        if nxt is None:
            break
        ends_batch = batch_of.get(chunk.id, chunk.id) != batch_of.get(nxt.id, nxt.id)
        if ends_batch and ms_to_samples(chunk.pause_after_ms, plan.sample_rate) >= STREAM_CUT_PAUSE:
            pieces.append(current)
            current = []
    if current:
        pieces.append(current)
    return pieces


def plan_pieces(plan: Plan, codec: str) -> list[PieceSpec]:
    """Every piece of ``plan`` for ``codec`` ("aac/64k"), in reading order. Pure."""
    batch_of = {cid: b.id for b in plan.batches for cid in b.chunk_ids}
    runs = stream_pieces(plan)
    out = []
    for k, run in enumerate(runs):
        batches = tuple(dict.fromkeys(batch_of.get(c.id, c.id) for c in run))
        out.append(
            PieceSpec(
                index=k,
                batch_ids=batches,
                chunk_ids=tuple(c.id for c in run),
                pauses=tuple(ms_to_samples(c.pause_after_ms, plan.sample_rate) for c in run),
                lead=JOIN_GUARD if k else 0,
                last=k == len(runs) - 1,
                codec=codec,
                sample_rate=plan.sample_rate,
            )
        )
    return out


def batch_pieces(plan: Plan) -> dict[str, PieceSpec]:
    """{batch id: its piece} for the batches whose piece their worker encodes (plan.pieces set). Pure."""
    if not plan.pieces:
        return {}
    return {p.batch_ids[0]: p for p in plan_pieces(plan, plan.pieces) if p.by_worker}


@dataclass(frozen=True)
class StoredPiece:
    """A piece's header (what the coordinator lays the book out from) and where its frames start."""

    samples: tuple[int, ...]  # per chunk
    tail: int  # the real pause after the last chunk
    length: int  # samples in all (lead + speech + pauses)
    offset: int  # where the ADTS frames start in the blob


def parse_piece(blob: bytes | memoryview, spec: PieceSpec) -> StoredPiece:
    """The header of a stored piece, checked against ``spec``; AssemblyError when it does not fit."""
    view = memoryview(blob)
    end = bytes(view[: 1 << 20]).find(b"\n", len(_MAGIC))
    if bytes(view[: len(_MAGIC)]) != _MAGIC or end < 0:
        raise AssemblyError(f"piece {spec.index + 1}: not an encoded piece")
    try:
        head = json.loads(bytes(view[len(_MAGIC) : end]))
        samples = tuple(int(n) for n in head["samples"])
        tail, length = int(head["tail"]), int(head["length"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AssemblyError(f"piece {spec.index + 1}: unreadable header ({exc})") from exc
    expected = spec.lead + sum(samples) + sum(spec.pauses[:-1]) + tail
    if len(samples) != len(spec.chunk_ids) or length != expected or min(samples, default=0) < 0:
        raise AssemblyError(f"piece {spec.index + 1}: its header does not match its plan")
    return StoredPiece(samples=samples, tail=tail, length=length, offset=end + 1)


class PieceWriter:
    """Encodes one piece as its chunks' PCM comes (``add``), then ``finish()`` gives the stored bytes.

    One ffmpeg process per piece, writing ADTS to a temporary file; ``abort()`` (or leaving a
    ``with`` block on an exception) stops it.
    """

    def __init__(self, spec: PieceSpec, label: str = "") -> None:
        self.spec = spec
        self._tmp = tempfile.TemporaryDirectory(prefix="ebook2audio-piece-")
        self._path = Path(self._tmp.name) / "piece.aac"
        enc = EncodeSpec(format="m4a", sample_rate=spec.sample_rate, bitrate=spec.bitrate, muxer="adts")
        self._encoder = PcmEncoder(enc, self._path, label=label or f"piece {spec.index + 1}")
        self._encoder.start()
        self._samples: list[int] = []
        self._pos = spec.lead
        self._tail = 0
        if spec.lead:
            self._encoder.write(bytes(2 * spec.lead))

    def add(self, pcm: bytes) -> None:
        """The next chunk's 16-bit mono PCM; its pause is written after it."""
        k = len(self._samples)
        if k >= len(self.spec.chunk_ids):
            raise AssemblyError(f"piece {self.spec.index + 1}: more chunks than planned")
        n = len(pcm) // 2
        self._encoder.write(pcm)
        self._samples.append(n)
        self._pos += n
        pause = self.spec.pauses[k]
        if k == len(self.spec.chunk_ids) - 1:
            pause = self._tail = stream_tail(self._pos, pause, self.spec.last)
        if pause:
            self._encoder.write(bytes(2 * pause))
        self._pos += pause

    def finish(self) -> bytes:
        """The stored form of the piece: header + ADTS frames (checked: whole frames + priming)."""
        try:
            if len(self._samples) != len(self.spec.chunk_ids):
                raise AssemblyError(f"piece {self.spec.index + 1}: {len(self._samples)} chunks written")
            self._encoder.finish()
            frames_data = self._path.read_bytes()
        finally:
            self.abort()
        head = json.dumps({"samples": self._samples, "tail": self._tail, "length": self._pos})
        return _MAGIC + head.encode() + b"\n" + frames_data

    def abort(self) -> None:
        self._encoder.abort()
        self._tmp.cleanup()

    def __enter__(self) -> PieceWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is not None:
            self.abort()


def encode_piece(spec: PieceSpec, pcms: Sequence[bytes]) -> bytes:
    """The stored form of piece ``spec`` from its chunks' PCM, in order."""
    with PieceWriter(spec) as writer:
        for pcm in pcms:
            writer.add(pcm)
        return writer.finish()
