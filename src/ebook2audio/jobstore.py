"""Where a conversion's state lives in Storage: the plan, the cover, and one WAV blob per chunk.

``<session>/plans/<job>.json`` (one per conversion of the book: see job.py), ``<session>/cover``,
``<session>/chunks/<id[:2]>/<id>.wav`` (shared by the session's jobs). Storage is the
truth about what is done: a chunk is done when its blob exists and its WAV header matches its size.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .model import Cover, Plan
from .storage.base import Storage

WAV_HEADER = 44


def plans_prefix(session: str) -> str:
    return f"{session}/plans/"


def plan_key(session: str, job: str = "") -> str:
    """Where a job's plan lives (``job`` empty: the single-plan layout of earlier versions)."""
    return f"{plans_prefix(session)}{job}.json" if job else f"{session}/plan.json"


def cover_key(session: str) -> str:
    return f"{session}/cover"


def chunk_key(session: str, chunk_id: str) -> str:
    return f"{session}/chunks/{chunk_id[:2]}/{chunk_id}.wav"


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


def header_ok(head: bytes, size: int) -> bool:
    """True when a WAV header says exactly ``size`` bytes in all (a truncated blob fails)."""
    if len(head) < WAV_HEADER or head[:4] != b"RIFF" or head[8:12] != b"WAVE" or head[36:40] != b"data":
        return False
    riff_size = struct.unpack_from("<I", head, 4)[0]
    data_size = struct.unpack_from("<I", head, 40)[0]
    return riff_size == size - 8 and data_size == size - WAV_HEADER


def chunk_whole(storage: Storage, key: str, size: int | None) -> bool:
    """The blob ``key`` of ``size`` bytes (None: missing) is a WAV whose header says that size."""
    if size is None or size < WAV_HEADER:
        return False
    try:
        head = storage.get_head(key, WAV_HEADER)
    except (FileNotFoundError, KeyError):
        return False
    return header_ok(head, size)


def chunk_done(storage: Storage, session: str, chunk_id: str) -> bool:
    key = chunk_key(session, chunk_id)
    return chunk_whole(storage, key, storage.size(key))


def stored_chunk_sizes(storage: Storage, plan: Plan) -> dict[str, int]:
    """{id: size in bytes} of the plan's chunks whose audio is stored and whole.

    A storage that can list sizes (S3: ``sizes(prefix)``, one request per 1,000 keys) is listed once
    instead of asked for each chunk's size; every chunk found is still checked by its header.
    """
    listing = getattr(storage, "sizes", None)
    listed: dict[str, int] | None = listing(f"{plan.session}/chunks/") if listing is not None else None
    out: dict[str, int] = {}
    for c in plan.chunks:
        key = chunk_key(plan.session, c.id)
        size = listed.get(key) if listed is not None else storage.size(key)
        if size is not None and chunk_whole(storage, key, size):
            out[c.id] = size
    return out


def done_chunks(storage: Storage, plan: Plan) -> set[str]:
    """Ids of the plan's chunks whose audio is stored and whole (see stored_chunk_sizes)."""
    return set(stored_chunk_sizes(storage, plan))


@dataclass
class ChunkListing:
    """The sizes of a session's stored chunks from one listing (``storage.sizes(prefix)``), taken again
    on demand but not more often than the caller allows: many batches are checked against one listing.

    ``has_all`` trusts the listed sizes (>= a WAV header), without reading headers: see
    ``DistributedExecutor._batch_in_storage`` for why that is safe there. A listing is taken again
    only for a chunk missing from the last one, and then at most once per ``min_interval`` seconds,
    stretched to 4 times what the last listing took (a listing of a long book costs one request per
    1,000 chunks: the coordinator spends at most a fifth of its time listing), capped at
    ``max_interval``.
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

    def _listed(self, keys: list[str]) -> bool:
        return all(self.sizes.get(k, 0) >= WAV_HEADER for k in keys)

    def has_all(self, chunk_ids: Iterable[str], min_interval: float, max_interval: float) -> bool:
        keys = [chunk_key(self.session, cid) for cid in chunk_ids]
        if self.listed_at is not None:
            if self._listed(keys):
                return True
            wait = min(max(min_interval, 4 * self.took), max_interval)
            if self.clock() - self.listed_at < wait:
                return False
        self.refresh()
        return self._listed(keys)
