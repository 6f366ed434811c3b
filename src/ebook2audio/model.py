"""Plain, frozen, JSON-safe dataclasses passed between the pipeline stages.

book file -> ingest -> Book -> plan -> Plan (chapters of Chunks, grouped into Batches)
          -> execute (writes chunk audio to Storage) -> assemble -> audio file
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Metadata:
    title: str = ""
    authors: tuple[str, ...] = ()
    language: str = ""  # BCP 47 tag as the book declares it, e.g. "en-US", "fr"
    publisher: str = ""
    date: str = ""
    description: str = ""
    identifiers: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()

    @property
    def year(self) -> str:
        return self.date[:4] if len(self.date) >= 4 and self.date[:4].isdigit() else ""


@dataclass(frozen=True)
class Chapter:
    """One chapter: a title and its paragraphs of plain text (no markup), in reading order."""

    title: str
    paragraphs: tuple[str, ...]

    @property
    def words(self) -> int:
        return sum(len(p.split()) for p in self.paragraphs)


@dataclass(frozen=True)
class Cover:
    data: bytes
    mime: str  # "image/jpeg" or "image/png"


@dataclass(frozen=True)
class Book:
    metadata: Metadata
    chapters: tuple[Chapter, ...]
    cover: Cover | None = None
    source_format: str = ""  # "epub", "txt", "html", "fb2", ...
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class VoiceSpec:
    """What voice speaks, as chosen by the user (resolved to an installed voice by engines.registry)."""

    engine: str = "piper"
    voice: str = ""  # "" = the engine's default for the language
    language: str = "en"
    speed: float = 1.0  # > 1 is faster
    sample: str = ""  # --voice-sample: the recording a cloning engine imitates (a path); "" = none

    def key(self) -> str:
        key = f"{self.engine}|{self.voice}|{self.language}|{self.speed:.3f}"
        return f"{key}|sample {self.sample}" if self.sample else key


@dataclass(frozen=True)
class EngineInfo:
    """A resolved voice: what the planner needs to know, known without loading the model."""

    engine: str  # registry name: "piper", "espeak", "sim"
    voice: str  # the resolved voice id, e.g. "en_US-joe-medium" or "fr" (espeak)
    language: str  # the language the voice speaks, e.g. "en-US"
    sample_rate: int  # Hz, 16-bit mono PCM
    max_chars: int  # longest text one synthesize() call accepts
    description: str = ""
    path: str = ""  # model file, when the engine has one (piper)
    min_chars: int = 0  # sentences shorter than this are spoken with a neighbour of their paragraph
    sample: str = ""  # a cloning engine's voice sample: the SHA-256 of its bytes (engines/voice_sample.py)


@dataclass(frozen=True)
class Mastering:
    """How each chunk is mastered where it is made (audio/master.py): part of the chunk's recipe."""

    loudness: float = -19.0  # LUFS, every chunk's integrated loudness (and so the book's)
    true_peak: float = -3.0  # dBTP, the ceiling

    def key(self) -> str:
        return f"master {self.loudness:.2f} {self.true_peak:.2f}"


@dataclass(frozen=True)
class Verification:
    """How each chunk is checked by speech recognition where it is made (``--verify``, verify.py):
    part of the chunk's recipe (the take kept depends on it)."""

    language: str = "en"  # what the recogniser listens for
    model: str = ""  # "" = by language (asr.py); else a model folder or name
    takes: int = 3  # at most this many syntheses of a sentence (other seeds, then a slower one)
    max_wer: float = 0.8  # word error rate above which a take fails (texts of 3 words or more)
    max_cer: float = 0.4  # character error rate above which a take fails
    min_duration: float = 0.4  # x the voice's usual duration for the text: shorter = truncated
    max_duration: float = 2.5  # longer = run-on, noise or babble

    def key(self) -> str:
        return (
            f"verify {self.language} {self.model} {self.takes} {self.max_wer:.3f} {self.max_cer:.3f} "
            f"{self.min_duration:.3f} {self.max_duration:.3f}"
        )


@dataclass(frozen=True)
class Chunk:
    """The unit of synthesis: one sentence (or a piece of a long one) of one chapter."""

    id: str  # content hash of (voice key, spoken text): stable across runs, changes with the voice
    chapter: int  # index into Plan.chapters
    index: int  # position of the chunk inside its chapter
    text: str  # normalised text given to the engine
    display: str  # the original text, for subtitles
    pause_after_ms: int  # silence after this chunk (sentence, paragraph or chapter pause)
    master: Mastering | None = None  # None: stored as the engine made it (--no-master)
    verify: Verification | None = None  # None: not checked by speech recognition (no --verify)


@dataclass(frozen=True)
class Batch:
    """Consecutive chunks of one chapter: one task for an executor."""

    id: str
    chapter: int
    chunk_ids: tuple[str, ...]
    chars: int  # cost estimate, used to dispatch the longest first


@dataclass(frozen=True)
class PlannedChapter:
    index: int
    title: str
    chunk_ids: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    session: str
    voice: VoiceSpec
    sample_rate: int
    chapters: tuple[PlannedChapter, ...]
    chunks: tuple[Chunk, ...]
    batches: tuple[Batch, ...]
    metadata: Metadata = field(default_factory=Metadata)
    engine: EngineInfo | None = None  # the voice resolved by the coordinator: workers load exactly this
    job: str = ""  # the conversion this plan belongs to (job.py): its key in storage
    pieces: str = ""  # what workers encode their batch's piece to ("aac/64k", audio/pieces.py); "" = none
    respelled: int = 0  # words the pronunciation lexicon replaced

    def chunk_map(self) -> dict[str, Chunk]:
        return {c.id: c for c in self.chunks}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        md = data.get("metadata") or {}
        return cls(
            session=data["session"],
            voice=VoiceSpec(**data["voice"]),
            sample_rate=int(data["sample_rate"]),
            chapters=tuple(
                PlannedChapter(index=c["index"], title=c["title"], chunk_ids=tuple(c["chunk_ids"]))
                for c in data["chapters"]
            ),
            chunks=tuple(_chunk(c) for c in data["chunks"]),
            batches=tuple(
                Batch(id=b["id"], chapter=b["chapter"], chunk_ids=tuple(b["chunk_ids"]), chars=b["chars"])
                for b in data["batches"]
            ),
            metadata=Metadata(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in md.items()}),
            engine=EngineInfo(**data["engine"]) if data.get("engine") else None,
            job=str(data.get("job") or ""),
            pieces=str(data.get("pieces") or ""),
            respelled=int(data.get("respelled") or 0),
        )


def _chunk(data: dict[str, Any]) -> Chunk:
    master = data.get("master")
    verify = data.get("verify")
    return Chunk(
        **{
            **data,
            "master": Mastering(**master) if master else None,
            "verify": Verification(**verify) if verify else None,
        }
    )


@dataclass(frozen=True)
class ChunkResult:
    chunk_id: str
    samples: int  # number of 16-bit mono samples written


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    chunks: tuple[ChunkResult, ...]
    skipped: int  # chunks that were already done (resume / duplicate delivery)
    synth_seconds: float  # time spent inside the engine
    audio_seconds: float  # audio produced by this call


@dataclass(frozen=True)
class ChapterMark:
    title: str
    start: float  # seconds from the start of the output file
    end: float
