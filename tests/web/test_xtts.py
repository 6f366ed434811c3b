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


def clone_setup(tmp_path: Path) -> tuple[dict[str, str], Path, Path, str]:
    """The server's environment (a tiny random XTTS-v2 built here), a 2-chapter book, a Piper recording
    as the voice sample, and the sample's SHA-256."""
    model = build_tiny_xtts(tmp_path / "xtts-v2")
    env = {"EBOOK2AUDIO_XTTS_DIR": str(model), "EBOOK2AUDIO_WORKERS": "1"}
    folder = xtts_entry_point(tmp_path / "entry")
    if folder is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    book = tiny_text_book(tmp_path / "tiny.md", "Tiny", 2, 1)
    sample = piper_recording(tmp_path / "me.wav", "The old keeper walked slowly along the rocky shore, counting ships.")
    return env, book, sample, hashlib.sha256(sample.read_bytes()).hexdigest()


def test_upload_a_sample_and_clone(tmp_path: Path) -> None:
    env, book, sample, digest = clone_setup(tmp_path)
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


def test_the_page_clones_a_voice(tmp_path: Path) -> None:
    """In headless Chromium: choosing the xtts engine swaps the voice list for a sample upload; a file
    that is not a recording is refused in the card's status line; a recording is checked and used by
    the preview and by the conversion (the job carries its SHA-256)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from .test_browser import browser_session, shoot, wait_for

    env, book, sample, digest = clone_setup(tmp_path)
    junk = tmp_path / "notes.wav"
    junk.write_bytes(b"not a recording")
    with running_server(tmp_path, **env) as server, server.client() as c, browser_session() as page:
        with book.open("rb") as fh:
            c.post("/api/books", files={"files": ("tiny.md", fh, "text/markdown")}).raise_for_status()
        page.get(server.url)
        card = wait_for(lambda: (found := page.find_elements(By.CSS_SELECTOR, ".book")) and found[0], 30, "book card")
        field = card.find_element(By.CSS_SELECTOR, ".sample-field")
        assert not field.is_displayed() and card.find_element(By.CSS_SELECTOR, ".voice-field").is_displayed()
        Select(card.find_element(By.CSS_SELECTOR, ".engine")).select_by_value("xtts")
        assert field.is_displayed() and not card.find_element(By.CSS_SELECTOR, ".voice-field").is_displayed()
        status = card.find_element(By.CSS_SELECTOR, ".book-status")
        upload = card.find_element(By.CSS_SELECTOR, ".voice-sample")
        upload.send_keys(str(junk))
        wait_for(lambda: status.text.startswith("refused: voice sample notes.wav is not a readable recording"), 30,
                 "the junk file refused")  # fmt: skip
        assert ".upload-" not in status.text  # the server's temporary name is not shown
        upload.send_keys(str(sample))
        wait_for(lambda: status.text.startswith("voice sample me.wav: "), 30, "sample accepted")
        assert page.execute_script("return arguments[0].dataset.voiceSample", card) == digest
        card.find_element(By.CSS_SELECTOR, ".preview-btn").click()
        seconds = wait_for(lambda: page.execute_script(
            "const a = arguments[0].querySelector('.preview-audio');"
            "return !a.hidden && a.readyState >= 1 && a.duration", card), 120, "preview audio")  # fmt: skip
        assert seconds > 0.1
        shoot(page, tmp_path / "screenshots", "xtts-sample")
        card.find_element(By.CSS_SELECTOR, ".convert-btn").click()
        job_id = wait_for(lambda: (j := c.get("/api/jobs").json()["jobs"]) and j[0]["id"], 30, "a job")
        job = server.wait_job(c, job_id, timeout=300)
        assert job["state"] == "done", job
        assert job["settings"]["engine"] == "xtts"
        assert Path(job["settings"]["voice_sample"]) == server.data_dir / "voice-samples" / digest
