"""Where a conversion's state lives in Storage: the plan, the cover, one audio blob per chunk, the pieces.

``<session>/plans/<job>.json`` (one per conversion of the book: see job.py), ``<session>/cover``,
``<session>/chunks/<id[:2]>/<id>.flac`` (shared by the session's jobs; ``.wav`` from earlier versions
is still read), ``<session>/pieces/<job>/<digest>.adts`` (a batch's encoded audio: audio/pieces.py).
Storage is the truth about what is done: a chunk is done when its blob exists and looks whole
(audio/chunkfmt.py: blob_whole).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .audio.chunkfmt import HEAD_BYTES, blob_whole, chunk_pcm
from .audio.pcm import CorruptAudioError
from .model import Cover, Plan
from .storage.base import Storage

CHUNK_EXTS = (".flac", ".wav")  # what new chunks are, then what earlier versions wrote
WAV_HEADER = 44  # no whole chunk blob (FLAC or WAV) is smaller


def plans_prefix(session: str) -> str:
    return f"{session}/plans/"


def plan_key(session: str, job: str = "") -> str:
    """Where a job's plan lives (``job`` empty: the single-plan layout of earlier versions)."""
    return f"{plans_prefix(session)}{job}.json" if job else f"{session}/plan.json"


def cover_key(session: str) -> str:
    return f"{session}/cover"


def chunk_key(session: str, chunk_id: str, ext: str = ".flac") -> str:
    """Where a chunk's audio is written (``ext`` ".wav": where earlier versions wrote it)."""
    return f"{session}/chunks/{chunk_id[:2]}/{chunk_id}{ext}"


def chunk_keys(session: str, chunk_id: str) -> tuple[str, ...]:
    """Every key a chunk's audio may be under, the current one first."""
    return tuple(chunk_key(session, chunk_id, ext) for ext in CHUNK_EXTS)


def save_plan(storage: Storage, plan: Plan) -> None:
    storage.put_bytes(plan_key(plan.session, plan.job), json.dumps(plan.to_json(), ensure_ascii=False).encode())


def load_plan(storage: Storage, session: str, job: str = "") -> Plan:
    return Plan.from_json(json.loads(storage.get_bytes(plan_key(session, job))))


def save_cover(storage: Storage, session: str, cover: Cover) -> None:
    storage.put_bytes(cover_key(session), cover.mime.encode() + b"\n" + cover.data)


def load_cover(storage: Storage, session: str) -> Cover | None:
    try:
        raw = storage.get_bytes(cover_key(session))
    except (FileNotFoundError, KeyError):
        return None
    mime, _, data = raw.partition(b"\n")
    return Cover(data=data, mime=mime.decode())


def chunk_whole(storage: Storage, key: str, size: int | None) -> bool:
    """The blob ``key`` of ``size`` bytes (None: missing) looks like whole chunk audio (FLAC or WAV)."""
    if size is None or size < WAV_HEADER:
        return False
    try:
        head = storage.get_head(key, HEAD_BYTES)
    except (FileNotFoundError, KeyError):
        return False
    return blob_whole(head, size)


def stored_chunk(storage: Storage, session: str, chunk_id: str) -> tuple[str, int] | None:
    """(key, size) of a chunk's whole audio in storage, or None (a HEAD per possible key)."""
    for key in chunk_keys(session, chunk_id):
        size = storage.size(key)
        if size is not None:
            return (key, size) if chunk_whole(storage, key, size) else None
    return None


def chunk_done(storage: Storage, session: str, chunk_id: str) -> bool:
    return stored_chunk(storage, session, chunk_id) is not None


def read_chunk_pcm(storage: Storage, session: str, chunk_id: str, sample_rate: int) -> bytes:
    """A stored chunk's 16-bit mono PCM (FLAC or an earlier version's WAV); CorruptAudioError (with
    ``chunk_id``) when it is missing, unreadable, or at another sample rate."""
    for key in chunk_keys(session, chunk_id):
        try:
            data = storage.get_bytes(key)
        except (FileNotFoundError, KeyError):
            continue
        try:
            rate, pcm = chunk_pcm(data)
        except CorruptAudioError as exc:
            raise CorruptAudioError(f"chunk {chunk_id}: {exc}", chunk_id=chunk_id) from exc
        if rate != sample_rate:
            raise CorruptAudioError(
                f"chunk {chunk_id}: sample rate {rate} Hz, the plan says {sample_rate} Hz", chunk_id
            )
        return pcm
    raise CorruptAudioError(f"chunk {chunk_id}: no audio stored", chunk_id=chunk_id)


def listed_chunks(storage: Storage, session: str) -> dict[str, tuple[str, int]] | None:
    """{chunk id: (key, size)} of every chunk blob of ``session`` from one listing, or None when the
    storage cannot list sizes. A FLAC blob wins over an earlier version's WAV of the same chunk."""
    listing = getattr(storage, "sizes", None)
    if listing is None:
        return None
    out: dict[str, tuple[str, int]] = {}
    for key, size in sorted(listing(f"{session}/chunks/").items(), key=lambda kv: kv[0].endswith(".flac")):
        name = key.rsplit("/", 1)[-1]
        for ext in CHUNK_EXTS:
            if name.endswith(ext):
                out[name[: -len(ext)]] = (key, size)
    return out


def stored_chunk_sizes(storage: Storage, plan: Plan, verify: bool = True) -> dict[str, int]:
    """{id: size in bytes} of the plan's chunks whose audio is stored and whole.

    A storage that can list sizes (local, S3: ``sizes(prefix)``, one request per 1,000 keys) is
    listed once instead of asked for each chunk's size. ``verify``: every chunk found is also
    checked by its first bytes (chunkfmt.blob_whole: one small read each); without it the listing
    alone decides (for chunks this run's workers wrote: writes are atomic).
    """
    listed = listed_chunks(storage, plan.session)
    out: dict[str, int] = {}
    for c in plan.chunks:
        if listed is not None:
            found = listed.get(c.id)
            if found is not None and (not verify or chunk_whole(storage, *found)):
                out[c.id] = found[1]
        else:
            stored = stored_chunk(storage, plan.session, c.id) if verify else None
            if stored is not None:
                out[c.id] = stored[1]
            elif not verify:
                for key in chunk_keys(plan.session, c.id):
                    size = storage.size(key)
                    if size is not None:
                        out[c.id] = size
                        break
    return out


def done_chunks(storage: Storage, plan: Plan) -> set[str]:
    """Ids of the plan's chunks whose audio is stored and whole (see stored_chunk_sizes)."""
    return set(stored_chunk_sizes(storage, plan))


def stored_pieces(storage: Storage, session: str, job: str) -> set[str]:
    """The keys of the job's encoded pieces in storage (one listing)."""
    from .audio.pieces import pieces_prefix

    return set(storage.list(pieces_prefix(session, job)))


@dataclass
class ChunkListing:
    """The sizes of a session's stored chunks from one listing (``storage.sizes(prefix)``), taken again
    on demand but not more often than the caller allows: many batches are checked against one listing.

    ``has_all`` trusts the listed sizes (>= a WAV header; a chunk may be FLAC or an earlier
    version's WAV), without reading headers: see ``DistributedExecutor._batch_in_storage`` for why
    that is safe there. A listing is taken again only for a chunk missing from the last one, and then
    at most once per ``min_interval`` seconds, stretched to 4 times what the last listing took (a
    listing of a long book costs one request per 1,000 chunks: the coordinator spends at most a fifth
    of its time listing), capped at ``max_interval``.
    """

    storage: Storage  # one with sizes(prefix)
    session: str
    clock: Callable[[], float]
    sizes: dict[str, int] = field(default_factory=dict)
    listed_at: float | None = None
    took: float = 0.0
    listings: int = 0

    def refresh(self) -> None:
        start = self.clock()
        lister: Callable[[str], dict[str, int]] = self.storage.sizes  # type: ignore[attr-defined]
        self.sizes = lister(f"{self.session}/chunks/")
        self.listed_at = self.clock()
        self.took = self.listed_at - start
        self.listings += 1

    def _listed(self, chunk_ids: list[str]) -> bool:
        return all(
            any(self.sizes.get(k, 0) >= WAV_HEADER for k in chunk_keys(self.session, cid)) for cid in chunk_ids
        )

    def has_all(self, chunk_ids: Iterable[str], min_interval: float, max_interval: float) -> bool:
        ids = list(chunk_ids)
        if self.listed_at is not None:
            if self._listed(ids):
                return True
            wait = min(max(min_interval, 4 * self.took), max_interval)
            if self.clock() - self.listed_at < wait:
                return False
        self.refresh()
        return self._listed(ids)
