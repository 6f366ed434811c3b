"""What the web app asks of a book in a child process (:mod:`.child`): its ``inspect`` data and
cover, and a few seconds of a voice reading one of its sentences.

    probe BOOK COVER_DIR   -> the inspect data as JSON on stdout (plus an estimated duration per
                              chapter); the cover, if any, written as COVER_DIR/cover.jpg|png
    preview                -> reads {"book", "text", "language", "engine", "voice", "speed"} as JSON
                              on stdin; a WAV on stdout

Bad input: one line on stderr, exit 2 (the server shows that line).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..errors import Ebook2AudioError, UserError

WORDS_PER_MINUTE = 155.0  # a narrator's pace at speed 1.0 (audiobooks: 150-160)
PREVIEW_CHARS = 220


def estimated_seconds(words: int, speed: float = 1.0) -> float:
    return round(words * 60.0 / WORDS_PER_MINUTE / max(speed, 0.25), 1)


def book_info(path: Path, cover_dir: Path | None = None) -> dict[str, Any]:
    """The data of ``ebook2audio inspect --json`` and an estimated duration (pure but for reading)."""
    from ..ingest import read_book

    book = read_book(path)
    md = book.metadata
    cover = ""
    if book.cover is not None and cover_dir is not None:
        ext = "png" if book.cover.mime == "image/png" else "jpg"
        cover_dir.mkdir(parents=True, exist_ok=True)
        (cover_dir / f"cover.{ext}").write_bytes(book.cover.data)
        cover = f"cover.{ext}"
    chapters = [
        {"index": i + 1, "title": ch.title, "words": ch.words, "seconds": estimated_seconds(ch.words)}
        for i, ch in enumerate(book.chapters)
    ]
    return {
        "title": md.title,
        "authors": list(md.authors),
        "language": md.language,
        "publisher": md.publisher,
        "date": md.date,
        "description": md.description[:2000],
        "format": book.source_format,
        "cover": cover,
        "words": sum(c["words"] for c in chapters),
        "seconds": estimated_seconds(sum(c["words"] for c in chapters)),
        "chapters": chapters,
        "warnings": list(book.warnings)[:20],
    }


def preview_text(path: Path, language: str, limit: int = PREVIEW_CHARS) -> str:
    """The first sentences of the book's first chapter with text, up to ``limit`` characters."""
    from ..ingest import read_book
    from ..text.segment import split_sentences

    book = read_book(path)
    lang = language or book.metadata.language or "en"
    for chapter in book.chapters:
        for paragraph in chapter.paragraphs:
            out = ""
            for sentence in split_sentences(paragraph, lang):
                if out and len(out) + len(sentence) > limit:
                    return out
                out = f"{out} {sentence}".strip()
                if len(out) >= limit // 2:
                    return out[:limit]
            if len(out.split()) >= 4:
                return out[:limit]
    raise UserError(f"{path.name}: no sentence to read aloud")


def preview_wav(request: dict[str, Any]) -> bytes:
    from ..audio.pcm import wav_bytes
    from ..engines.registry import load_engine, resolve_voice
    from ..model import VoiceSpec
    from ..text.normalize import normalize
    from ..text.segment import chunk_text

    text = str(request.get("text") or "").strip()
    language = str(request.get("language") or "")
    if not text:
        book = request.get("book")
        if not book:
            raise UserError("give a book or a text to preview")
        text = preview_text(Path(book), language)
        if not language:
            from ..ingest import read_book

            language = read_book(Path(book)).metadata.language
    text = text[:PREVIEW_CHARS]
    spec = VoiceSpec(
        engine=str(request.get("engine") or "piper"),
        voice=str(request.get("voice") or ""),
        language=language or "en",
        speed=float(request.get("speed") or 1.0),
        sample=str(request.get("sample") or ""),
    )
    info = resolve_voice(spec)
    engine = load_engine(info, speed=spec.speed)
    try:
        pcm = b"".join(engine.synthesize(piece) for piece in chunk_text(normalize(text, spec.language), info.max_chars))
    finally:
        engine.close()
    return wav_bytes(pcm, info.sample_rate)


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["probe"] and len(argv) == 3:
            info = book_info(Path(argv[1]), Path(argv[2]))
            sys.stdout.write(json.dumps(info, ensure_ascii=False))
            return 0
        if argv[:1] == ["preview"]:
            data = preview_wav(json.loads(sys.stdin.read() or "{}"))
            sys.stdout.buffer.write(data)
            return 0
        print("error: usage: probe BOOK COVER_DIR | preview", file=sys.stderr)
        return 2
    except Ebook2AudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a reader's bug on a hostile book: still one line
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
