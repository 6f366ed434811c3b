"""The web API clones a voice: a sample uploaded to the real `serve`, checked and kept under its SHA-256,
then a job with ``engine: xtts`` reads a book with it (tiny random XTTS-v2 built here)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import pytest

from ebook2audio.audio.assemble import probe

from ..engines.xtts_fixture import build_tiny_xtts, piper_recording, xtts_entry_point
from .helpers import running_server, tiny_text_book
from .test_api import one_line_error

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("TTS") is None, reason="needs ebook2audio[clone]"),
]


def test_upload_a_sample_and_clone(tmp_path: Path) -> None:
    model = build_tiny_xtts(tmp_path / "xtts-v2")
    env = {"EBOOK2AUDIO_XTTS_DIR": str(model), "EBOOK2AUDIO_WORKERS": "1"}
    folder = xtts_entry_point(tmp_path / "entry")
    if folder is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    book = tiny_text_book(tmp_path / "tiny.md", "Tiny", 2, 1)
    sample = piper_recording(tmp_path / "me.wav", "The old keeper walked slowly along the rocky shore, counting ships.")
    digest = hashlib.sha256(sample.read_bytes()).hexdigest()
    with running_server(tmp_path, **env) as server, server.client() as c:
        bad = c.post("/api/voice-samples", files={"file": ("notes.wav", b"not a recording", "audio/wav")})
        assert "notes.wav is not a readable recording" in one_line_error(bad, 422)
        up = c.post("/api/voice-samples", files={"file": ("me.wav", sample.read_bytes(), "audio/wav")})
        assert up.status_code == 200, up.text
        assert up.json()["sample"] == digest and 3 <= up.json()["seconds"] <= 30
        assert (server.data_dir / "voice-samples" / digest).read_bytes() == sample.read_bytes()
        preview = c.post("/api/preview", json={"text": "Hello there.", "engine": "xtts", "voice_sample": digest})
        assert preview.status_code == 200 and preview.content[:4] == b"RIFF", preview.text
        with book.open("rb") as fh:
            b = c.post("/api/books", files={"files": ("tiny.md", fh, "text/markdown")}).json()["books"][0]
        unknown = c.post("/api/jobs", json={"book_id": b["id"], "engine": "xtts", "voice_sample": "0" * 64})
        assert "no voice sample 000000000000" in one_line_error(unknown, 404)
        r = c.post("/api/jobs", json={"book_id": b["id"], "engine": "xtts", "language": "en", "voice_sample": digest})
        assert r.status_code == 201, r.text
        job = server.wait_job(c, r.json()["id"], timeout=300)
        assert job["state"] == "done", job
        (audio,) = [n for n in job["outputs"] if n.endswith(".m4b")]
        got = c.get(f"/api/jobs/{job['id']}/files/{audio}")
        assert got.status_code == 200
        (tmp_path / "got.m4b").write_bytes(got.content)
        p = probe(tmp_path / "got.m4b")
        assert [ch.title for ch in p.chapters] == ["Chapter 1", "Chapter 2"] and p.duration > 2
