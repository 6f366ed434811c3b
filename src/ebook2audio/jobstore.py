"""Where a conversion's state lives in Storage: the plan, the cover, and one WAV blob per chunk.

``<session>/plans/<job>.json`` (one per conversion of the book: see job.py), ``<session>/cover``,
``<session>/chunks/<id[:2]>/<id>.wav`` (shared by the session's jobs). Storage is the
truth about what is done: a chunk is done when its blob exists and its WAV header matches its size.
"""

from __future__ import annotations

import json
import struct

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
