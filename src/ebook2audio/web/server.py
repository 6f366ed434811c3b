"""The HTTP API and the page (FastAPI; the only module that imports it). docs/web.md describes it.

Every error is JSON ``{"error": "one line"}``; a stack trace never leaves the server. A book is read
(``inspect`` data, cover, voice preview) in a child process (:mod:`.child`), like every conversion
(:mod:`.runner`): a hostile book costs a child, never the server.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import VoiceError
from ..output import safe_name
from . import library as weblib
from .queue import FINISHED, Book, Job, JobSettings, Queue, QueueError
from .runner import Runner, RunnerConfig

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
BOOK_EXTENSIONS = (".epub", ".pdf", ".docx", ".odt", ".rtf", ".mobi", ".azw", ".azw3", ".fb2", ".html",
                   ".htm", ".xhtml", ".md", ".markdown", ".txt", ".zip")  # fmt: skip
PROBE_TIMEOUT = 120.0
PREVIEW_TIMEOUT = 120.0
JSON_BODY_LIMIT = 1 << 20
WATCH_SETTLE_S = 2.0  # a watched folder's file modified more recently waits for the next scan

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    output_dir: Path
    input_dir: Path | None = None
    user: str = ""
    password: str = ""
    max_upload_bytes: int = 200 << 20
    distributed: bool = False
    slots: int = 1
    extra_args: tuple[str, ...] = ()
    flower_url: str = ""
    child_env: Mapping[str, str] | None = None  # the conversions' environment (default: the server's)
    library_interval: float = 300.0  # seconds between two scans of a watched library folder


# -- request bodies ------------------------------------------------------------------------------


class JobRequest(BaseModel):
    book_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    language: str = Field("", max_length=35)
    engine: str = Field("", max_length=64)
    voice: str = Field("", max_length=300)
    speed: float = Field(1.0, ge=0.25, le=4.0)
    format: str = Field("m4b", pattern=r"^(m4b|m4a|mp3|opus|ogg|flac|wav)$")
    chapters: str = Field("", max_length=2000, pattern=r"^[0-9,\- ]*$")
    voice_sample: str = Field("", pattern=r"^([0-9a-f]{64})?$")  # a sample's SHA-256 (POST /api/voice-samples)


class LibraryRequest(BaseModel):
    path: str = Field("", max_length=1000)  # a folder of the input folder ("" = the input folder)
    language: str = Field("", max_length=35)
    engine: str = Field("", max_length=64)
    voice: str = Field("", max_length=300)
    speed: float = Field(1.0, ge=0.25, le=4.0)
    format: str = Field("m4b", pattern=r"^(m4b|m4a|mp3|opus|ogg|flac|wav)$")
    watch: bool = False  # keep rescanning it (every --library-interval seconds), queueing new books


class MoveRequest(BaseModel):
    delta: int = Field(ge=-10_000, le=10_000)


class PreviewRequest(BaseModel):
    book_id: str = Field("", pattern=r"^([0-9a-f]{16})?$")
    text: str = Field("", max_length=500)
    language: str = Field("", max_length=35)
    engine: str = Field("", max_length=64)
    voice: str = Field("", max_length=300)
    speed: float = Field(1.0, ge=0.25, le=4.0)
    voice_sample: str = Field("", pattern=r"^([0-9a-f]{64})?$")  # a sample's SHA-256 (POST /api/voice-samples)


# -- errors --------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:500] or "error"


def _error(status: int, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": _one_line(text)}, status_code=status, headers=headers)


async def _send_error(send: Send, status: int, text: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": text}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


# -- middleware (plain ASGI: they also guard streamed bodies and responses) ------------------------


class BasicAuth:
    """HTTP Basic on every request when a user and password are configured."""

    def __init__(self, app: ASGIApp, user: str, password: str) -> None:
        self.app = app
        self.expected = f"{user}:{password}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        given = b""
        if header[:6].lower() == b"basic ":
            try:
                given = base64.b64decode(header[6:].strip(), validate=True)
            except (binascii.Error, ValueError):
                given = b""
        if not secrets.compare_digest(given, self.expected):
            return await _send_error(
                send, 401, "authentication required", {"WWW-Authenticate": 'Basic realm="ebook2audio"'}
            )
        return await self.app(scope, receive, send)


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class SameOrigin:
    """Refuses what a browser sends on another site's behalf (HTTP 403): a change (POST, DELETE)
    whose Origin is not this server, and, on a loopback server without a login, a request whose Host
    is not a loopback name (a DNS-rebinding page)."""

    def __init__(self, app: ASGIApp, *, loopback_only: bool) -> None:
        self.app = app
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if self.loopback_only and host:
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in LOOPBACK_HOSTS and not name.startswith("127."):
                return await _send_error(send, 403, f"host {host!r} refused: this server answers on loopback only")
        origin = headers.get(b"origin")
        if origin is not None and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            seen = origin.decode("latin-1").lower().split("://", 1)[-1]
            if seen != host:
                return await _send_error(send, 403, "cross-site request refused")
        return await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Request bodies bounded: uploads to ``upload_limit`` bytes, anything else to 1 MiB (HTTP 413)."""

    def __init__(self, app: ASGIApp, upload_limit: int) -> None:
        self.app = app
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        limit = self.upload_limit if scope["path"] == "/api/books" else JSON_BODY_LIMIT
        what = f"the upload is larger than the limit of {limit} bytes"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await _send_error(send, 413, what)
        state = {"received": 0, "over": False}

        async def limited() -> MutableMapping[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["over"] = True
                    raise _TooLarge()
            return message

        async def guarded(message: MutableMapping[str, Any]) -> None:
            if not state["over"]:
                await send(message)

        with suppress(_TooLarge):
            await self.app(scope, limited, guarded)
        if state["over"]:
            await _send_error(send, 413, what)


# -- child processes -----------------------------------------------------------------------------


WEB_SECRETS = ("EBOOK2AUDIO_WEB_USER", "EBOOK2AUDIO_WEB_PASSWORD")


def child_environment(base: Mapping[str, str] | None) -> dict[str, str]:
    """The environment of every child process: the server's, without the web login."""
    return {k: v for k, v in (os.environ if base is None else base).items() if k not in WEB_SECRETS}


def _child(
    args: list[str], stdin: bytes | None, timeout: float, env: Mapping[str, str]
) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "ebook2audio.web.child", str(os.getpid()), *args],
            input=stdin, capture_output=True, timeout=timeout, env=dict(env),
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise HTTPException(422, f"reading the book took more than {timeout:.0f} s") from exc


def _child_error(r: subprocess.CompletedProcess[bytes]) -> str:
    lines = [ln for ln in r.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    text = lines[-1] if lines else f"the reader stopped with exit code {r.returncode}"
    return _one_line(text.removeprefix("error: "))


def book_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def spool_upload(upload: UploadFile, folder: Path) -> Path:
    """An upload's bytes in a new hidden temporary file of ``folder`` (made if missing), for the caller
    to check and rename into place (or delete)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".upload-", delete=False) as tmp:
        shutil.copyfileobj(upload.file, tmp, 1 << 20)
        return Path(tmp.name)


def safe_upload_name(name: str) -> str:
    base = Path(name.replace("\\", "/")).name
    stem, dot, ext = base.rpartition(".")
    if not dot or not ext.isalnum() or len(ext) > 8:
        stem, ext = base, "book"
    return f"{safe_name(stem, limit=120, fallback='book')}.{ext.lower()}"


# -- the app -------------------------------------------------------------------------------------


class Studio:
    """The state behind the routes: the queue, the runner, the folders."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.books_dir = config.data_dir / "books"
        self.queue = Queue(config.data_dir / "queue.sqlite3")
        self.child_env = child_environment(config.child_env)
        self.runner = Runner(
            self.queue,
            RunnerConfig(
                output_dir=config.output_dir,
                work_dir=config.data_dir / "work",
                slots=config.slots,
                extra_args=config.extra_args,
                env=self.child_env,
            ),
        )
        self._voices: list[dict[str, Any]] | None = None
        self._celery: Any = None
        self._library_lock = threading.Lock()  # one scan-and-queue at a time: no book queued twice
        self._reports: dict[Path, tuple[int, dict[str, Any] | None]] = {}
        self.watcher = weblib.Watcher(self.queue, config.library_interval, self._rescan)

    # -- library mode --

    def library_folder(self, relative: str) -> Path:
        """A folder of the input folder (``""``: the input folder itself); 403 outside it."""
        root = self.config.input_dir
        if root is None:
            raise HTTPException(400, "this server has no input folder (serve --input-dir DIR)")
        root = root.resolve()
        if "\x00" in relative:
            raise HTTPException(422, "path: not a folder name")
        candidate = (root / relative).resolve()
        if not candidate.is_relative_to(root):
            raise HTTPException(403, f"{relative}: outside the input folder")
        if not candidate.is_dir():
            raise HTTPException(404, f"{relative}: no such folder in the input folder")
        return candidate

    def library(self, relative: str, settings: JobSettings, *, dry_run: bool, settle_s: float = 0.0) -> dict[str, Any]:
        folder = self.library_folder(relative)
        with self._library_lock:
            try:
                found = weblib.scan(
                    folder, self.config.output_dir, self.runner.config.work_dir, settings, self.child_env,
                    self.config.extra_args,
                )  # fmt: skip
            except weblib.LibraryError as exc:
                raise HTTPException(422, str(exc)) from exc
            result = weblib.queue_books(
                self.queue, folder, found, settings, relative_to=folder, dry_run=dry_run, settle_s=settle_s
            )  # fmt: skip
        for book in result["books"]:
            book["destination"] = weblib._shown(book["destination"], self.config.output_dir.resolve())
        result["queued"] = [self.job_json(j) for j in result["queued"]]
        return {"path": folder.relative_to(self.config.input_dir.resolve()).as_posix().removeprefix("."), **result}  # type: ignore[union-attr]

    def _rescan(self, relative: str, settings: JobSettings) -> None:
        try:
            result = self.library(relative, settings, dry_run=False, settle_s=WATCH_SETTLE_S)
        except HTTPException as exc:
            raise weblib.LibraryError(str(exc.detail)) from exc
        if result["queued"]:
            log.info("watched library %r: %d new book(s) queued", relative or ".", len(result["queued"]))

    # -- a job as the API shows it --

    def job_json(self, job: Job) -> dict[str, Any]:
        """The job, with (when done) the summary of its ``NAME.report.json`` and the name of its
        ``NAME.report.html`` when they exist beside the audiobook."""
        data = job.to_json()
        data["report"] = None
        data["report_html"] = ""
        audio = self.job_audio(job)
        if audio is None:
            return data
        report = audio.with_name(f"{audio.stem}.report.json")
        try:
            stamp = report.stat().st_mtime_ns
        except OSError:
            stamp = -1
        cached = self._reports.get(report)
        if cached is None or cached[0] != stamp:
            cached = (stamp, weblib.report_summary(report) if stamp >= 0 else None)
            self._reports[report] = cached
        data["report"] = cached[1]
        if audio.with_name(f"{audio.stem}.report.html").is_file():
            data["report_html"] = f"{audio.stem}.report.html"
        return data

    def job_audio(self, job: Job) -> Path | None:
        if job.state != "done":
            return None
        audio = [n for n in job.outputs if not n.endswith((".srt", ".vtt", ".json"))]
        return self.runner.job_dir(job) / audio[0] if audio else None

    def add_book_file(self, path: Path, name: str) -> Book:
        digest = book_digest(path)
        folder = self.books_dir / digest
        r = _child(["probe", str(path), str(folder)], None, PROBE_TIMEOUT, self.child_env)
        info: dict[str, Any] = {}
        error = ""
        if r.returncode == 0:
            try:
                info = json.loads(r.stdout)
            except ValueError:
                error = "the reader answered nonsense"
        else:
            error = _child_error(r)
        book = Book(id=digest, path=str(path), name=name, added=time.time(), info=info, error=error)
        return self.queue.add_book(book)

    def store_upload(self, upload: UploadFile) -> Book:
        name = safe_upload_name(upload.filename or "book")
        tmp_path = spool_upload(upload, self.books_dir)
        try:
            digest = book_digest(tmp_path)
            folder = self.books_dir / digest
            folder.mkdir(parents=True, exist_ok=True)
            final = folder / name
            tmp_path.replace(final)
        finally:
            tmp_path.unlink(missing_ok=True)
        return self.add_book_file(final, name)

    def store_voice_sample(self, upload: UploadFile) -> dict[str, Any]:
        """Keep an uploaded voice sample under its SHA-256, once checked (3-30 s of readable audio)."""
        from ..engines.voice_sample import read_sample

        folder = self.config.data_dir / "voice-samples"
        tmp_path = spool_upload(upload, folder)
        try:
            try:
                sample = read_sample(tmp_path)
            except VoiceError as exc:
                shown = upload.filename or "the sample"
                raise HTTPException(422, str(exc).replace(str(tmp_path), shown).replace(tmp_path.name, shown)) from exc
            tmp_path.replace(folder / sample.sha256)
        finally:
            tmp_path.unlink(missing_ok=True)
        return {"sample": sample.sha256, "seconds": round(sample.seconds, 2)}

    def voice_sample_path(self, sha256: str) -> str:
        """The stored sample of SHA-256 ``sha256`` ("" for none); 404 when it was never uploaded."""
        if not sha256:
            return ""
        path = self.config.data_dir / "voice-samples" / sha256
        if not path.is_file():
            raise HTTPException(404, f"no voice sample {sha256[:12]}...: upload it with POST /api/voice-samples")
        return str(path.resolve())

    def input_path(self, relative: str) -> Path:
        root = self.config.input_dir
        if root is None:
            raise HTTPException(400, "this server has no input folder (serve --input-dir DIR)")
        root = root.resolve()
        candidate = (root / relative).resolve()
        if not candidate.is_relative_to(root) or candidate == root:
            raise HTTPException(403, f"{relative}: outside the input folder")
        if not candidate.is_file():
            raise HTTPException(404, f"{relative}: no such book in the input folder")
        return candidate

    def input_books(self) -> list[str]:
        root = self.config.input_dir
        if root is None or not root.is_dir():
            return []
        root = root.resolve()
        out = []
        for p in sorted(root.rglob("*")):
            if len(out) >= 5000:
                break
            if p.suffix.lower() in BOOK_EXTENSIONS and p.is_file() and p.resolve().is_relative_to(root):
                out.append(p.relative_to(root).as_posix())
        return out

    def voices(self) -> list[dict[str, Any]]:
        if self._voices is None:
            from ..engines.registry import list_voices

            self._voices = [
                {k: v for k, v in asdict(e).items() if k != "path"} for e in list_voices(warnings=[])
            ]
        return self._voices

    def workers(self) -> list[str]:
        """The cluster's workers that answer a ping within a second (distributed mode)."""
        if not self.config.distributed:
            return []
        if self._celery is None:
            from ..distributed_config import load_distributed_settings
            from ..executors.celery_app import make_celery_app

            self._celery = make_celery_app(load_distributed_settings({}, env=self.child_env))
        try:
            replies = self._celery.control.ping(timeout=1.0) or []
        except Exception as exc:  # Redis unreachable: said in one line
            raise HTTPException(503, f"cannot reach the cluster: {type(exc).__name__}") from exc
        return sorted(name for reply in replies for name in reply)

    def job_file(self, job: Job, name: str) -> Path:
        if name not in job.outputs:
            raise HTTPException(404, f"job {job.id} has no file {name!r}")
        path = self.runner.job_dir(job) / name
        if not path.resolve().is_relative_to(self.runner.job_dir(job).resolve()) or not path.is_file():
            raise HTTPException(404, f"{name}: the file is gone")
        return path


def create_app(config: ServerConfig) -> FastAPI:
    studio = Studio(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        studio.runner.start()
        studio.watcher.start()
        try:
            yield
        finally:
            await asyncio.to_thread(studio.watcher.close)
            await asyncio.to_thread(studio.runner.close)
            studio.queue.close()
            if studio._celery is not None:
                studio._celery.close()

    app = FastAPI(
        title="ebook2audio",
        version=__version__,
        description="Convert ebooks to audiobooks: a persistent queue of books (docs/web.md).",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.studio = studio

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request")

    @app.exception_handler(QueueError)
    async def queue_error(_: Request, exc: QueueError) -> JSONResponse:
        status = 404 if str(exc).startswith("no ") else 409
        return _error(status, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _error(500, f"unexpected {type(exc).__name__}: {exc}")

    # -- the page --

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(404, f"no file {name}")
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name])

    # -- server --

    @app.get("/api/health", tags=["server"])
    def health() -> dict[str, Any]:
        return {
            "ok": True,
            "version": __version__,
            "distributed": config.distributed,
            "flower_url": config.flower_url,
            "running": studio.runner.running(),
            "input_folder": config.input_dir is not None,
            "max_upload_bytes": config.max_upload_bytes,
        }

    @app.get("/api/voices", tags=["server"])
    def voices() -> dict[str, Any]:
        from ..engines.registry import engine_names

        return {"engines": list(engine_names()), "voices": studio.voices()}

    @app.get("/api/workers", tags=["server"])
    def workers() -> dict[str, Any]:
        """Distributed mode: the workers that answer a ping (empty on a single machine)."""
        return {"distributed": config.distributed, "workers": studio.workers()}

    # -- books --

    @app.get("/api/input", tags=["books"])
    def input_books() -> dict[str, Any]:
        return {"books": studio.input_books()}

    @app.post("/api/books", tags=["books"])
    def add_books(
        files: list[UploadFile] | None = File(None),  # noqa: B008
        path: list[str] | None = Form(None),  # noqa: B008
    ) -> dict[str, Any]:
        """Upload books (several ``files``) and/or add books of the input folder (``path``, relative)."""
        files, path = files or [], path or []
        if not files and not path:
            raise HTTPException(422, "give files to upload or a path in the input folder")
        chosen = [studio.input_path(p) for p in path]  # every path checked before anything is added
        books = [studio.store_upload(f) for f in files]
        books += [studio.add_book_file(p, p.name) for p in chosen]
        return {"books": [asdict(b) for b in books]}

    @app.get("/api/books", tags=["books"])
    def list_books() -> dict[str, Any]:
        return {"books": [asdict(b) for b in studio.queue.books()]}

    @app.get("/api/books/{book_id}", tags=["books"])
    def get_book(book_id: str) -> dict[str, Any]:
        return asdict(studio.queue.book(book_id))

    @app.get("/api/books/{book_id}/cover", tags=["books"])
    def book_cover(book_id: str) -> Response:
        book = studio.queue.book(book_id)
        name = book.info.get("cover") or ""
        if name not in ("cover.jpg", "cover.png"):
            raise HTTPException(404, "this book has no cover")
        return FileResponse(studio.books_dir / book.id / name)

    @app.post("/api/voice-samples", tags=["voices"])
    def add_voice_sample(file: UploadFile = File(...)) -> dict[str, Any]:  # noqa: B008
        """Upload a voice sample for a cloning engine (``engine: xtts``); answers its ``sample`` id."""
        return studio.store_voice_sample(file)

    # -- jobs --

    @app.post("/api/jobs", tags=["jobs"], status_code=201)
    def add_job(req: JobRequest, response: Response) -> dict[str, Any]:
        """Queue a book; the same book with the same settings already queued or done: that job (200)."""
        book = studio.queue.book(req.book_id)
        sample = studio.voice_sample_path(req.voice_sample)
        settings = JobSettings(**req.model_dump(exclude={"book_id", "voice_sample"}), voice_sample=sample)
        same = studio.queue.same_job(book.id, settings)
        if same is not None and (same.state != "done" or all(
            (studio.runner.output_dir(same.id) / n).is_file() for n in same.outputs
        )):  # fmt: skip
            response.status_code = 200
            return studio.job_json(same)
        return studio.job_json(studio.queue.add_job(book, settings))

    @app.get("/api/jobs", tags=["jobs"])
    def list_jobs() -> dict[str, Any]:
        return {"jobs": [studio.job_json(j) for j in studio.queue.jobs()]}

    @app.get("/api/jobs/{job_id}", tags=["jobs"])
    def get_job(job_id: int) -> dict[str, Any]:
        return studio.job_json(studio.queue.job(job_id))

    @app.delete("/api/jobs/{job_id}", tags=["jobs"])
    def cancel_job(job_id: int) -> dict[str, Any]:
        """Cancel: a running conversion is stopped; its finished sentences are kept for a retry."""
        return studio.job_json(studio.runner.stop(job_id, "cancelled"))

    @app.post("/api/jobs/{job_id}/pause", tags=["jobs"])
    def pause_job(job_id: int) -> dict[str, Any]:
        return studio.job_json(studio.runner.stop(job_id, "paused"))

    @app.post("/api/jobs/{job_id}/resume", tags=["jobs"])
    def resume_job(job_id: int) -> dict[str, Any]:
        return studio.job_json(studio.runner.resume(job_id))

    @app.post("/api/jobs/{job_id}/retry", tags=["jobs"])
    def retry_job(job_id: int) -> dict[str, Any]:
        return studio.job_json(studio.runner.retry(job_id))

    @app.post("/api/jobs/{job_id}/move", tags=["jobs"])
    def move_job(job_id: int, req: MoveRequest) -> dict[str, Any]:
        return studio.job_json(studio.queue.move(job_id, req.delta))

    @app.get("/api/jobs/{job_id}/chapters", tags=["jobs"])
    def job_chapters(job_id: int) -> dict[str, Any]:
        return {"chapters": list(studio.queue.job(job_id).chapters)}

    @app.get("/api/jobs/{job_id}/files/{name:path}", tags=["jobs"])
    def job_file(job_id: int, name: str) -> Response:
        """Download a finished job's audiobook (m4b, ...) or subtitles (srt, vtt)."""
        path = studio.job_file(studio.queue.job(job_id), name)
        return FileResponse(path, filename=name)

    @app.get("/api/jobs/{job_id}/report.html", tags=["jobs"], include_in_schema=True)
    def job_report_html(job_id: int) -> Response:
        """The job's ``NAME.report.html`` (beside its audiobook), sandboxed: it runs no script."""
        job = studio.queue.job(job_id)
        audio = studio.job_audio(job)
        path = audio.with_name(f"{audio.stem}.report.html") if audio is not None else None
        if path is None or not path.is_file():
            raise HTTPException(404, f"job {job_id} has no report.html")
        return FileResponse(path, media_type="text/html", headers={
            "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            "X-Content-Type-Options": "nosniff",
        })  # fmt: skip

    # -- library --

    @app.get("/api/library/folders", tags=["library"])
    def library_folders() -> dict[str, Any]:
        """The folders of the input folder a library may be scanned in ("" = the input folder)."""
        if config.input_dir is None:
            raise HTTPException(400, "this server has no input folder (serve --input-dir DIR)")
        return {"folders": weblib.library_folders(config.input_dir, config.output_dir)}

    @app.post("/api/library/scan", tags=["library"])
    def library_scan(req: LibraryRequest) -> dict[str, Any]:
        """The books of a folder (a folder tree or a Calibre library) with their state: new, converted,
        queued, failed or unreadable. Queues nothing."""
        return studio.library(req.path, JobSettings(**req.model_dump(exclude={"path", "watch"})), dry_run=True)

    @app.post("/api/library", tags=["library"])
    def library_queue(req: LibraryRequest) -> dict[str, Any]:
        """Queue every book of the folder with no audiobook yet; its audiobook goes to the output
        folder in Audiobookshelf's layout. ``watch``: rescan it every few minutes, and after restarts."""
        settings = JobSettings(**req.model_dump(exclude={"path", "watch"}))
        result = studio.library(req.path, settings, dry_run=False)
        if req.watch:
            result["watch"] = studio.queue.add_watch(result["path"], settings).to_json()
        return result

    @app.get("/api/library/watches", tags=["library"])
    def library_watches() -> dict[str, Any]:
        return {"interval": config.library_interval, "watches": [w.to_json() for w in studio.queue.watches()]}

    @app.delete("/api/library/watches/{watch_id}", tags=["library"])
    def library_unwatch(watch_id: int) -> dict[str, Any]:
        studio.queue.remove_watch(watch_id)
        return {"removed": watch_id}

    async def _events(job_id: int | None, request: Request) -> AsyncIterator[str]:
        version = -1
        last = ""
        quiet = 0.0
        while not await request.is_disconnected():
            if studio.queue.version == version:
                await asyncio.sleep(0.25)
                quiet += 0.25
                if quiet >= 15:
                    quiet = 0.0
                    yield ": keep-alive\n\n"
                continue
            version = studio.queue.version
            finished = False
            if job_id is None:
                data = json.dumps({"jobs": [studio.job_json(j) for j in studio.queue.jobs()]})
            else:
                job = studio.queue.job(job_id)
                data = json.dumps(studio.job_json(job))
                finished = job.state in FINISHED
            if data != last:
                last, quiet = data, 0.0
                yield f"data: {data}\n\n"
            if finished:
                return

    @app.get("/api/jobs/{job_id}/events", tags=["jobs"])
    async def job_events(job_id: int, request: Request) -> StreamingResponse:
        """Server-sent events: the job (as GET /api/jobs/{id}) each time it changes, until it ends."""
        studio.queue.job(job_id)
        return StreamingResponse(_events(job_id, request), media_type="text/event-stream")

    @app.get("/api/events", tags=["jobs"])
    async def all_events(request: Request) -> StreamingResponse:
        """Server-sent events: the whole queue (as GET /api/jobs) each time a job changes."""
        return StreamingResponse(_events(None, request), media_type="text/event-stream")

    # -- preview --

    @app.post("/api/preview", tags=["voices"], response_class=Response)
    def preview(req: PreviewRequest) -> Response:
        """A few seconds of the voice reading the book's first sentence (or ``text``), as WAV."""
        request: dict[str, Any] = req.model_dump(exclude={"book_id", "voice_sample"})
        request["sample"] = studio.voice_sample_path(req.voice_sample)
        if req.book_id:
            request["book"] = studio.queue.book(req.book_id).path
        elif not req.text.strip():
            raise HTTPException(422, "give a book_id or a text to preview")
        r = _child(["preview"], json.dumps(request).encode(), PREVIEW_TIMEOUT, studio.child_env)
        if r.returncode != 0:
            raise HTTPException(422, _child_error(r))
        return Response(r.stdout, media_type="audio/wav")

    wrapped: Any = BodyLimit(app, config.max_upload_bytes)
    wrapped = SameOrigin(wrapped, loopback_only=not (config.user and config.password))
    if config.user and config.password:
        wrapped = BasicAuth(wrapped, config.user, config.password)
    app.state.asgi = wrapped
    return app
