"""The HTTP API against the real `ebook2audio serve` (a subprocess on a free port)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import jsonschema
import pytest

from tests.e2e.helpers import cli_env, inspect_json
from tests.hostile.generate import zip_bomb_1gib

from .helpers import free_port, running_server, sim_env, tiny_text_book

pytestmark = pytest.mark.slow

ROUTES = {
    "/api/books": {"get", "post"},
    "/api/books/{book_id}": {"get"},
    "/api/books/{book_id}/cover": {"get"},
    "/api/jobs": {"get", "post"},
    "/api/jobs/{job_id}": {"get", "delete"},
    "/api/jobs/{job_id}/pause": {"post"},
    "/api/jobs/{job_id}/resume": {"post"},
    "/api/jobs/{job_id}/retry": {"post"},
    "/api/jobs/{job_id}/move": {"post"},
    "/api/jobs/{job_id}/events": {"get"},
    "/api/events": {"get"},
    "/api/jobs/{job_id}/chapters": {"get"},
    "/api/jobs/{job_id}/files/{name}": {"get"},
    "/api/preview": {"post"},
    "/api/voices": {"get"},
    "/api/voice-samples": {"post"},
    "/api/input": {"get"},
    "/api/health": {"get"},
    "/api/workers": {"get"},
    "/api/jobs/{job_id}/report.html": {"get"},
    "/api/library": {"post"},
    "/api/library/scan": {"post"},
    "/api/library/folders": {"get"},
    "/api/library/watches": {"get"},
    "/api/library/watches/{watch_id}": {"delete"},
}


def check_openapi(schema: dict) -> None:
    """The structure OpenAPI 3.1 requires, and every schema in it a valid JSON Schema (2020-12)."""
    assert schema["openapi"].startswith("3.1.")
    assert schema["info"]["title"] == "ebook2audio" and schema["info"]["version"]
    assert {p: set(ops) for p, ops in schema["paths"].items()} == ROUTES
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            assert op["responses"] and all(str(code).isdigit() for code in op["responses"]), (path, method)
            for param in op.get("parameters", []):
                assert param["in"] in ("path", "query", "header", "cookie") and param["name"], (path, param)
                if param["in"] == "path":
                    assert "{" + param["name"] + "}" in path and param["required"] is True
    components = schema["components"]["schemas"]
    for name, sub in components.items():
        jsonschema.Draft202012Validator.check_schema(sub)
        assert name
    refs = [r for r in json.dumps(schema).split('"$ref": "')[1:]]
    for ref in refs:
        target = ref.split('"', 1)[0]
        assert target.startswith("#/components/schemas/") and target.rsplit("/", 1)[1] in components, target


def one_line_error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and "Traceback" not in body["error"], body
    return body["error"]


def test_api_queue_safety_and_zip_bomb(tmp_path: Path, corpus: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "shelf").mkdir(parents=True)
    tiny_text_book(inbox / "shelf" / "tiny.md", "Tiny", 2, 2)
    (tmp_path / "secret.md").write_text("# Secret\n\nNot yours.\n", encoding="utf-8")
    (inbox / "link.md").symlink_to(tmp_path / "secret.md")
    bomb = zip_bomb_1gib(tmp_path)
    assert bomb.stat().st_size < 2_000_000
    with running_server(tmp_path, "--input-dir", str(inbox), "--max-upload-mb", "2", **sim_env()) as server, \
            server.client() as c:  # fmt: skip
        check_openapi(c.get("/openapi.json").json())

        # Uploads are bounded: refused before anything is stored, the server still serves.
        big = {"files": ("big.txt", b"word " * 500_000, "text/plain")}
        assert "larger than the limit" in one_line_error(c.post("/api/books", files=big), 413)
        assert not list((server.data_dir / "books").glob("*/big*"))
        # Input-folder paths cannot leave the folder (.., absolute, a link pointing outside).
        for escape in ("../secret.md", str(tmp_path / "secret.md"), "link.md", "shelf/../../secret.md"):
            assert "outside the input folder" in one_line_error(c.post("/api/books", data={"path": escape}), 403)
        assert c.get("/api/input").json() == {"books": ["shelf/tiny.md"]}
        tiny = c.post("/api/books", data={"path": "shelf/tiny.md"}).json()["books"][0]
        assert tiny["info"]["title"] == "Tiny" and [ch["words"] for ch in tiny["info"]["chapters"]] == [16, 16]

        # A real EPUB: its metadata, cover and chapters (the `inspect` numbers) with estimated durations.
        epub = corpus / "epub3_childrens-literature_curry-clippinger_en.epub"
        with epub.open("rb") as fh:
            real = c.post("/api/books", files={"files": (epub.name, fh, "application/epub+zip")}).json()["books"][0]
        assert real["info"]["title"] == "Children's Literature" and real["error"] == ""
        assert real["info"]["authors"][0] == "Charles Madison Curry"
        chapters = real["info"]["chapters"]
        assert len(chapters) > 10 and all(ch["seconds"] == round(ch["words"] * 60 / 155, 1) for ch in chapters)
        inspected = inspect_json(epub, tmp_path)
        assert [(ch["index"], ch["title"], ch["words"]) for ch in chapters] == [
            (ch["index"], ch["title"], ch["words"]) for ch in inspected["chapters"]
        ]
        cover = c.get(f"/api/books/{real['id']}/cover")
        assert cover.status_code == 200 and cover.content[:4] == b"\x89PNG"
        # A zip bomb is a book that cannot be read, then one failed job with one line; nothing else breaks.
        with bomb.open("rb") as fh:
            added = c.post("/api/books", files=[("files", ("../../bomb.epub", fh, "application/epub+zip"))])
        bad = added.json()["books"][0]
        assert bad["path"].startswith(str(server.data_dir / "books")) and bad["name"] == "bomb.epub"
        assert bad["error"] and "\n" not in bad["error"]
        failed = c.post("/api/jobs", json={"book_id": bad["id"], "engine": "sim"}).json()
        good = c.post("/api/jobs", json={"book_id": tiny["id"], "engine": "sim", "chapters": "2"}).json()
        failed = server.wait_job(c, failed["id"])
        assert failed["state"] == "failed" and failed["error"] and "\n" not in failed["error"], failed
        assert "Traceback" not in failed["error"]
        good = server.wait_job(c, good["id"])
        assert good["state"] == "done", good
        same = c.post("/api/jobs", json={"book_id": tiny["id"], "engine": "sim", "chapters": "2"})
        assert same.status_code == 200 and same.json()["id"] == good["id"]  # queued once
        assert good["sentences_done"] == good["sentences_total"] == 3 and good["realtime"] > 0
        assert [ch["title"] for ch in good["chapters"]] == ["Chapter 2"]
        m4b = good["outputs"][0]
        assert m4b.endswith(".m4b") and {Path(n).suffix for n in good["outputs"]} == {".m4b", ".srt", ".vtt"}
        audio = c.get(f"/api/jobs/{good['id']}/files/{m4b}")
        assert audio.status_code == 200 and len(audio.content) > 5000
        (tmp_path / "dl.m4b").write_bytes(audio.content)
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_chapters", "-of", "json", str(tmp_path / "dl.m4b")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert [ch["tags"]["title"] for ch in json.loads(probe.stdout)["chapters"]] == ["Chapter 2"]
        # Only the job's own files are served.
        one_line_error(c.get(f"/api/jobs/{good['id']}/files/..%2F..%2Fqueue.sqlite3"), 404)
        # Retry of the failed job fails the same way; move, pause and cancel of waiting jobs.
        assert c.post(f"/api/jobs/{failed['id']}/retry").json()["state"] == "queued"
        assert server.wait_job(c, failed["id"])["error"] == failed["error"]
        one_line_error(c.post(f"/api/jobs/{good['id']}/pause"), 409)
        one_line_error(c.get("/api/jobs/notanumber"), 422)
        one_line_error(c.post("/api/jobs", json={"book_id": tiny["id"], "speed": 9}), 422)
        one_line_error(c.post("/api/jobs", json={"book_id": "0" * 16}), 404)
        # What another site's page would make a browser send: refused.
        evil = {"Origin": "http://evil.example"}
        assert "cross-site" in one_line_error(c.post(f"/api/jobs/{good['id']}/retry", headers=evil), 403)
        assert "loopback only" in one_line_error(c.get("/api/jobs", headers={"Host": "evil.example"}), 403)
        assert c.get("/api/workers").json() == {"distributed": False, "workers": []}
        # Server-sent events: the finished job, then the stream ends.
        with c.stream("GET", f"/api/jobs/{good['id']}/events") as events:
            assert events.headers["content-type"].startswith("text/event-stream")
            lines = [ln for ln in events.iter_lines() if ln.startswith("data: ")]
        assert json.loads(lines[-1][6:])["state"] == "done"
        assert c.get("/api/health").json()["ok"] is True


def _lan_address() -> str | None:
    """This machine's address on its network (not loopback), if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET: nothing is sent (UDP connect only picks a route)
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_login_required_beyond_loopback(tmp_path: Path) -> None:
    # Without a login, any address beyond loopback is refused in one line, before listening.
    for host in ("0.0.0.0", "::", _lan_address() or "192.0.2.1"):
        r = subprocess.run(
            [sys.executable, "-m", "ebook2audio", "serve", "--host", host, "--port", str(free_port()),
             "--data-dir", str(tmp_path / "d")],
            capture_output=True, text=True, env=cli_env(tmp_path), timeout=60,
        )  # fmt: skip
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert "EBOOK2AUDIO_WEB_USER" in r.stderr and "Traceback" not in r.stderr
    # With a login, every request needs it (here on the machine's real network address when it has
    # one, else on loopback: the rule is the same).
    host = _lan_address() or "127.0.0.1"
    # Started as the guide starts it: `python app.py` without --script_mode headless.
    with running_server(tmp_path, host=host, auth=("reader", "s3cret-long-pass"), app_py=True) as server:
        for auth in (None, ("reader", "wrong"), ("other", "s3cret-long-pass")):
            for path in ("/", "/api/jobs", "/openapi.json", "/api/jobs/1/events"):
                r = httpx.get(server.url + path, auth=auth, timeout=30)
                assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic"), path
                assert r.json() == {"error": "authentication required"}
        with server.client() as c:
            assert c.get("/api/jobs").json() == {"jobs": []}
            assert "<title>ebook2audio</title>" in c.get("/").text
        assert (server.data_dir / "queue.sqlite3").is_file()
    assert "s3cret-long-pass" not in server.log.read_text()
