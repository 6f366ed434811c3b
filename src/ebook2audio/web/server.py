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
from ..output import safe_name
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


# -- request bodies ------------------------------------------------------------------------------


class JobRequest(BaseModel):
    book_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    language: str = Field("", max_length=35)
    engine: str = Field("", max_length=64)
    voice: str = Field("", max_length=300)
    speed: float = Field(1.0, ge=0.25, le=4.0)
    format: str = Field("m4b", pattern=r"^(m4b|m4a|mp3|opus|ogg|flac|wav)$")
    chapters: str = Field("", max_length=2000, pattern=r"^[0-9,\- ]*$")


class MoveRequest(BaseModel):
    delta: int = Field(ge=-10_000, le=10_000)


class PreviewRequest(BaseModel):
    book_id: str = Field("", pattern=r"^([0-9a-f]{16})?$")
    text: str = Field("", max_length=500)
    language: str = Field("", max_length=35)
    engine: str = Field("", max_length=64)
    voice: str = Field("", max_length=300)
    speed: float = Field(1.0, ge=0.25, le=4.0)


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
        self.books_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.books_dir, prefix=".upload-", delete=False) as tmp:
            shutil.copyfileobj(upload.file, tmp, 1 << 20)
            tmp_path = Path(tmp.name)
        try:
            digest = book_digest(tmp_path)
            folder = self.books_dir / digest
            folder.mkdir(parents=True, exist_ok=True)
            final = folder / name
            tmp_path.replace(final)
        finally:
            tmp_path.unlink(missing_ok=True)
        return self.add_book_file(final, name)

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
        path = self.runner.output_dir(job.id) / name
        if not path.is_file():
            raise HTTPException(404, f"{name}: the file is gone")
        return path


def create_app(config: ServerConfig) -> FastAPI:
    studio = Studio(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        studio.runner.start()
        try:
            yield
        finally:
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

    # -- jobs --

    @app.post("/api/jobs", tags=["jobs"], status_code=201)
    def add_job(req: JobRequest, response: Response) -> dict[str, Any]:
        """Queue a book; the same book with the same settings already queued or done: that job (200)."""
        book = studio.queue.book(req.book_id)
        settings = JobSettings(**req.model_dump(exclude={"book_id"}))
        same = studio.queue.same_job(book.id, settings)
        if same is not None and (same.state != "done" or all(
            (studio.runner.output_dir(same.id) / n).is_file() for n in same.outputs
        )):  # fmt: skip
            response.status_code = 200
            return same.to_json()
        return studio.queue.add_job(book, settings).to_json()

    @app.get("/api/jobs", tags=["jobs"])
    def list_jobs() -> dict[str, Any]:
        return {"jobs": [j.to_json() for j in studio.queue.jobs()]}

    @app.get("/api/jobs/{job_id}", tags=["jobs"])
    def get_job(job_id: int) -> dict[str, Any]:
        return studio.queue.job(job_id).to_json()

    @app.delete("/api/jobs/{job_id}", tags=["jobs"])
    def cancel_job(job_id: int) -> dict[str, Any]:
        """Cancel: a running conversion is stopped; its finished sentences are kept for a retry."""
        return studio.runner.stop(job_id, "cancelled").to_json()

    @app.post("/api/jobs/{job_id}/pause", tags=["jobs"])
    def pause_job(job_id: int) -> dict[str, Any]:
        return studio.runner.stop(job_id, "paused").to_json()

    @app.post("/api/jobs/{job_id}/resume", tags=["jobs"])
    def resume_job(job_id: int) -> dict[str, Any]:
        return studio.runner.resume(job_id).to_json()

    @app.post("/api/jobs/{job_id}/retry", tags=["jobs"])
    def retry_job(job_id: int) -> dict[str, Any]:
        return studio.runner.retry(job_id).to_json()

    @app.post("/api/jobs/{job_id}/move", tags=["jobs"])
    def move_job(job_id: int, req: MoveRequest) -> dict[str, Any]:
        return studio.queue.move(job_id, req.delta).to_json()

    @app.get("/api/jobs/{job_id}/chapters", tags=["jobs"])
    def job_chapters(job_id: int) -> dict[str, Any]:
        return {"chapters": list(studio.queue.job(job_id).chapters)}

    @app.get("/api/jobs/{job_id}/files/{name}", tags=["jobs"])
    def job_file(job_id: int, name: str) -> Response:
        """Download a finished job's audiobook (m4b, ...) or subtitles (srt, vtt)."""
        path = studio.job_file(studio.queue.job(job_id), name)
        return FileResponse(path, filename=name)

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
                data = json.dumps({"jobs": [j.to_json() for j in studio.queue.jobs()]})
            else:
                job = studio.queue.job(job_id)
                data = json.dumps(job.to_json())
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
        request: dict[str, Any] = req.model_dump(exclude={"book_id"})
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
