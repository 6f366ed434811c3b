"""Poison sentences: a sentence that kills its synthesis process (a segfault in a native library, an
out-of-memory kill) must not loop forever. Counting survives the death because it is written first.

How a batch is run (:class:`BatchGuard`, used by every executor around ``tasks.synthesize_batch``):

1. On entry its *delivery counter* is incremented (``Attempts.mark``) BEFORE any risky work; a normal
   exit (success or a Python exception) clears it. So a counter found at ``n`` on entry means the
   batch's process died ``n - 1`` times.
2. After ``SUSPECT_AFTER_DEATHS`` deaths the batch runs *suspect*: each chunk is marked before its
   synthesis and cleared once stored, so the next delivery knows which sentence was being spoken when
   the process died (a linear search: the first death in suspect mode names the sentence).
3. :func:`chunk_action` decides from a chunk's deaths: the main voice again, then the fallback engine
   (espeak-ng, same language, resampled to the plan's rate), then silence of the estimated length;
   with ``--strict``, an error (:class:`~ebook2audio.errors.PoisonSentenceError`, exit 2) instead.
4. Each replacement is recorded in storage (``<session>/substitutes/<chunk id>.json``) by whatever
   process made it; the pipeline lists them at the end for the summary and the report.

Counters live where the executor has them at hand: the embedded mode writes small files in the job's
storage (:class:`StorageAttempts`), the distributed workers use Redis (:class:`RedisAttempts`: no
request to shared storage, so S3 request counts do not change).
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

from .engines.base import Engine
from .errors import PoisonSentenceError
from .model import Chunk, EngineInfo, Plan
from .storage.base import Storage

R = TypeVar("R")

log = logging.getLogger(__name__)

SUSPECT_AFTER_DEATHS = 2  # a batch whose process died this many times is searched chunk by chunk
FALLBACK_AFTER_DEATHS = 2  # a sentence that killed the main voice this many times goes to the fallback
SILENCE_AFTER_DEATHS = 3  # ... and, if the fallback killed its process too, to silence
SECONDS_PER_CHAR = 0.065  # a voice's usual pace (about 15 characters a second): the silence's length
REDIS_TTL = 7 * 86400


class Action(enum.Enum):
    MAIN = "main"  # the plan's voice
    FALLBACK = "fallback"  # espeak-ng in the same language
    SILENCE = "silence"
    FAIL = "fail"  # --strict: stop with an error


def chunk_action(deaths: int, *, strict: bool, fallback: bool = True) -> Action:
    """What speaks a chunk whose synthesis killed its process ``deaths`` times (suspect mode only)."""
    if deaths < FALLBACK_AFTER_DEATHS:
        return Action.MAIN
    if strict:
        return Action.FAIL
    if fallback and deaths < SILENCE_AFTER_DEATHS:
        return Action.FALLBACK
    return Action.SILENCE


def max_batch_deaths(chunks: int) -> int:
    """Deaths after which a batch fails instead of being delivered again.

    In suspect mode each death is charged to a chunk, and a chunk absorbs at most
    ``SILENCE_AFTER_DEATHS`` of them before it is silence (which cannot die): so a batch that died
    more often than this dies outside any sentence (its engine's load, say) and must stop.
    """
    return SUSPECT_AFTER_DEATHS + SILENCE_AFTER_DEATHS * max(1, chunks) + 2


def silence_samples(chunk: Chunk, sample_rate: int, speed: float = 1.0) -> int:
    """The samples a voice would likely have spoken ``chunk`` in (its characters at a usual pace)."""
    chars = len(chunk.text.strip())
    return max(1, round(chars * SECONDS_PER_CHAR / max(speed, 0.01) * sample_rate)) if chars else 0


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """16-bit mono PCM from ``from_rate`` to ``to_rate`` Hz (linear interpolation; fine for speech)."""
    if from_rate == to_rate or not pcm:
        return pcm
    import numpy as np

    src = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
    count = max(1, round(len(src) * to_rate / from_rate))
    positions = np.arange(count, dtype=np.float64) * (from_rate / to_rate)
    out = np.interp(positions, np.arange(len(src), dtype=np.float64), src)
    return np.clip(np.rint(out), -32768, 32767).astype("<i2").tobytes()


# -- where the counters and the records live ------------------------------------------------------


def batch_marker(session: str, batch_id: str) -> str:
    return f"{session}/attempts/b-{batch_id}"


def chunk_marker(session: str, chunk_id: str) -> str:
    return f"{session}/attempts/c-{chunk_id}"


def substitute_key(session: str, chunk_id: str) -> str:
    return f"{session}/substitutes/{chunk_id}.json"


def substitutes_prefix(session: str) -> str:
    return f"{session}/substitutes/"


def job_keys(plan: Plan) -> list[str]:
    """Every storage key this module may have written for ``plan``'s chunks and batches (for a cleanup
    that deletes exactly what a plan made): substitution records and the embedded mode's counters."""
    s = plan.session
    return [
        *(substitute_key(s, c.id) for c in plan.chunks),
        *(chunk_marker(s, c.id) for c in plan.chunks),
        *(batch_marker(s, b.id) for b in plan.batches),
    ]


class Attempts(Protocol):
    """Crash-safe counters: ``mark`` is durable when it returns, before the risky work starts."""

    def mark(self, name: str) -> int:
        """Increment the counter ``name``; its new value."""
        ...

    def unmark(self, name: str) -> None:
        """Undo this delivery's ``mark`` (it ended without a death, and the count must stay)."""
        ...

    def clear(self, name: str) -> None: ...


@dataclass
class StorageAttempts:
    """Counters as small blobs in the job's storage (embedded mode: local files, atomic writes)."""

    storage: Storage

    def mark(self, name: str) -> int:
        try:
            count = int(self.storage.get_bytes(name).decode() or "0")
        except (FileNotFoundError, KeyError, ValueError, UnicodeDecodeError):
            count = 0
        self.storage.put_bytes(name, str(count + 1).encode())
        return count + 1

    def unmark(self, name: str) -> None:
        try:
            count = int(self.storage.get_bytes(name).decode() or "0")
        except (FileNotFoundError, KeyError, ValueError, UnicodeDecodeError):
            return
        if count <= 1:
            self.clear(name)
        else:
            self.storage.put_bytes(name, str(count - 1).encode())

    def clear(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError, KeyError):
            self.storage.delete(name)


@dataclass
class RedisAttempts:
    """Counters in Redis (distributed workers): INCR + EXPIRE in one round trip, DEL to clear."""

    client: Any  # a redis.Redis
    ttl: int = REDIS_TTL

    def mark(self, name: str) -> int:
        key = f"ebook2audio:attempts:{name}"
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, self.ttl)
        count, _ = pipe.execute()
        return int(count)

    def unmark(self, name: str) -> None:
        self.client.decr(f"ebook2audio:attempts:{name}")

    def clear(self, name: str) -> None:
        self.client.delete(f"ebook2audio:attempts:{name}")


# -- the record of a replaced sentence ------------------------------------------------------------


@dataclass(frozen=True)
class Substitution:
    """One sentence that could not be spoken by the plan's voice, and what speaks it instead."""

    chunk_id: str
    chapter: int  # 0-based, as in the plan
    index: int  # 0-based position in its chapter
    text: str
    reason: str  # e.g. "the synthesis process died 2 times (piper en_US-joe-medium)"
    replacement: str  # "espeak-ng en-us" or "silence (2.3 s)"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Substitution:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})

    def describe(self) -> str:
        text = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return (
            f"chapter {self.chapter + 1}, sentence {self.index + 1} {text!r}: "
            f"{self.replacement} ({self.reason})"
        )

    def report_entry(self, chapter_title: str = "") -> dict[str, Any]:
        """The report.json form: 1-based chapter and sentence numbers, as `inspect` counts them."""
        return {
            "chapter": self.chapter + 1,
            "chapter_title": chapter_title,
            "index": self.index + 1,
            "chunk_id": self.chunk_id,
            "text": self.text,
            "reason": self.reason,
            "replacement": self.replacement,
        }


def save_substitution(storage: Storage, session: str, sub: Substitution) -> None:
    storage.put_bytes(
        substitute_key(session, sub.chunk_id), json.dumps(sub.to_json(), ensure_ascii=False).encode()
    )


def load_records(storage: Storage, plan: Plan, prefix: str, parse: Callable[[Any], R], what: str) -> list[R]:
    """The JSON records (``<prefix><chunk id>.json``) of ``plan``'s chunks, parsed, in reading order
    (one listing of storage); an unreadable one is a warning naming it (``what``: the kind of record)."""
    wanted = {c.id for c in plan.chunks}
    out = []
    for key in storage.list(prefix):
        cid = key.rsplit("/", 1)[-1].removesuffix(".json")
        if cid not in wanted:
            continue
        try:
            out.append(parse(json.loads(storage.get_bytes(key))))
        except (FileNotFoundError, KeyError, ValueError, TypeError) as exc:
            log.warning("unreadable %s record %s: %s", what, key, exc)
    return sorted(out, key=lambda r: (r.chapter, r.index))  # type: ignore[attr-defined]


def load_substitutions(storage: Storage, plan: Plan) -> list[Substitution]:
    """The replacements recorded for ``plan``'s chunks, in reading order (one listing of storage)."""
    return load_records(storage, plan, substitutes_prefix(plan.session), Substitution.from_json, "substitution")


def report_data(plan: Plan, subs: list[Substitution], output: str) -> dict[str, Any]:
    titles = {c.index: c.title for c in plan.chapters}
    return {
        "output": output,
        "session": plan.session,
        "voice": plan.engine.voice if plan.engine else plan.voice.voice,
        "engine": plan.engine.engine if plan.engine else plan.voice.engine,
        "substituted": [s.report_entry(titles.get(s.chapter, "")) for s in subs],
    }


# -- one delivery of a batch ----------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """What speaks one chunk in this delivery, and how often the chunk killed its process before."""

    action: Action
    deaths: int


EngineLoader = Callable[[], Engine]


def fallback_info(main: EngineInfo) -> EngineInfo:
    """The espeak-ng voice of ``main``'s language (VoiceError when espeak-ng has none)."""
    from .engines.registry import resolve_voice
    from .model import VoiceSpec

    return resolve_voice(VoiceSpec(engine="espeak", language=main.language or "en"))


def load_fallback(main: EngineInfo, speed: float) -> Engine:
    from .engines.registry import load_engine

    return load_engine(fallback_info(main), speed=speed, device="cpu")


@dataclass
class BatchGuard:
    """One delivery of one batch: counts it on entry (durably), clears it on a normal exit.

    Use as a context manager around the engine's load and ``synthesize_batch(..., guard=guard)``::

        with BatchGuard(attempts, storage, session, batch_id, len(chunks), strict=strict) as guard:
            synthesize_batch(storage, session, batch_id, chunks, engine, guard=guard)

    ``fallback``: loads the fallback engine (called at most once, only when a sentence needs it).
    """

    attempts: Attempts
    storage: Storage
    session: str
    batch_id: str
    chunks: int
    strict: bool = False
    fallback: EngineLoader | None = None
    deaths: int = field(default=0, init=False)
    _fallback_engine: Engine | None = field(default=None, init=False, repr=False)
    _fallback_error: str = field(default="", init=False, repr=False)

    @classmethod
    def for_voice(
        cls,
        attempts: Attempts,
        storage: Storage,
        session: str,
        batch_id: str,
        chunks: int,
        info: EngineInfo,
        speed: float,
        *,
        strict: bool = False,
    ) -> BatchGuard:
        """The guard of a batch spoken by ``info`` at ``speed``, with espeak-ng as its fallback voice."""
        return cls(
            attempts, storage, session, batch_id, chunks, strict=strict, fallback=lambda: load_fallback(info, speed)
        )

    @property
    def suspect(self) -> bool:
        return self.deaths >= SUSPECT_AFTER_DEATHS

    def __enter__(self) -> BatchGuard:
        from .errors import SynthesisError

        self.deaths = self.attempts.mark(batch_marker(self.session, self.batch_id)) - 1
        if self.deaths > max_batch_deaths(self.chunks):
            raise SynthesisError(
                f"batch {self.batch_id} killed its synthesis process {self.deaths} times, "
                "not while speaking a sentence (the engine's load?): giving up on it"
            )
        if self.suspect:
            log.warning(
                "batch %s: its process died %d times: looking for the sentence that kills it",
                self.batch_id,
                self.deaths,
            )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, PoisonSentenceError):
            # --strict stopped it: not a death, but the count of deaths stays, so that a rerun
            # goes straight back to the same sentence and the same decision
            self.attempts.unmark(batch_marker(self.session, self.batch_id))
        else:
            self.attempts.clear(batch_marker(self.session, self.batch_id))
        if self._fallback_engine is not None:
            with contextlib.suppress(Exception):
                self._fallback_engine.close()
            self._fallback_engine = None

    @contextlib.contextmanager
    def chunk(self, chunk: Chunk) -> Iterator[Turn]:
        """Around one chunk's synthesis and store: what must speak it (MAIN outside suspect mode).

        In suspect mode the chunk is marked before and cleared after: a death in between is its own.
        """
        if not self.suspect:
            yield Turn(Action.MAIN, 0)
            return
        name = chunk_marker(self.session, chunk.id)
        deaths = self.attempts.mark(name) - 1
        action = chunk_action(deaths, strict=self.strict, fallback=self.fallback is not None)
        if action is Action.FAIL:
            self.attempts.unmark(name)  # stopping is no death: the next run counts the same
            raise PoisonSentenceError(
                f"sentence {chunk.index + 1} of chapter {chunk.chapter + 1} kills the synthesis process "
                f"({deaths} times) and --strict is set: {_short(chunk.text)!r}; the work done so far is "
                "kept: rerun without --strict to replace it with the fallback voice or silence"
            )
        try:
            yield Turn(action, deaths)
        except PoisonSentenceError:
            raise
        except BaseException:
            self.attempts.clear(name)
            raise
        self.attempts.clear(name)

    def fallback_engine(self) -> Engine | None:
        """The fallback engine, loaded once; None when it cannot load (the reason is kept)."""
        if self._fallback_engine is None and not self._fallback_error and self.fallback is not None:
            try:
                self._fallback_engine = self.fallback()
            except Exception as exc:  # any failure to load means: silence instead
                self._fallback_error = f"{type(exc).__name__}: {exc}"
                log.warning("the fallback engine cannot load: %s", self._fallback_error)
        return self._fallback_engine

    def fallback_error(self) -> str:
        return self._fallback_error

    def record(self, sub: Substitution) -> None:
        log.warning("replaced %s", sub.describe())
        save_substitution(self.storage, self.session, sub)


def _short(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def report_path(output: Path) -> Path:
    """``NAME.report.json`` beside the audiobook ``NAME.EXT``."""
    return output.with_name(f"{output.stem}.report.json")


def write_report(output: Path, plan: Plan, subs: list[Substitution]) -> Path | None:
    """Write the report of the replaced sentences beside ``output`` (None and a stale one removed
    when nothing was replaced)."""
    path = report_path(output)
    if not subs:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    data = report_data(plan, subs, str(output))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
