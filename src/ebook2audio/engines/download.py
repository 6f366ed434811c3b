"""Piper voices fetched from the public voice repository: resumable, checked, moved into place atomically.

The repository (``$EBOOK2AUDIO_VOICES_URL``, default Hugging Face ``rhasspy/piper-voices``) lays voices
out as ``<lang>/<lang_REGION>/<name>/<quality>/<voice>.onnx`` (+ ``.onnx.json``) and lists every file
in ``voices.json`` with its size (``size_bytes``) and MD5 (``md5_digest``): both are checked. Hugging
Face also states each large file's SHA-256 (the ``X-Linked-Etag`` header of its resolve URL): it is
checked whenever the server says it.

A file is written to ``<voices dir>/.partial/<file>.part``; a broken connection keeps the part, and the
next attempt (in the same call or a later one) asks only for the rest (HTTP ``Range``). Only a complete,
verified file is renamed into the voices directory (model first, config last: a voice exists once its
config does). A file that fails its checks is deleted, never installed.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import VoiceError

log = logging.getLogger(__name__)

VOICES_URL_ENV = "EBOOK2AUDIO_VOICES_URL"
DEFAULT_VOICES_URL = "https://huggingface.co/rhasspy/piper-voices/resolve/main"
NO_FETCH = frozenset({"off", "none", "no", "0", "false"})  # EBOOK2AUDIO_VOICES_URL=off: never fetch
PARTIAL_DIR = ".partial"
TIMEOUT_S = 20.0
ATTEMPTS = 3
CHUNK = 1 << 16
_SHA256_RE = re.compile(r'^(?:W/)?"?([0-9a-f]{64})"?$')

Progress = Callable[[str, int, int | None], None]  # (file name, bytes so far, total or None)


class OfflineError(VoiceError):
    """The repository could not be reached (no network, refused, timed out, dropped too often)."""


class IntegrityError(VoiceError):
    """A downloaded file is not the one the repository describes (size or checksum): refused."""


class UnknownVoiceError(VoiceError):
    """The repository has no voice of that name."""


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: where from, where to, and what it must be."""

    url: str
    dest: Path
    size: int | None = None
    md5: str = ""
    sha256: str = ""  # known in advance (optional); the server's X-Linked-Etag is checked too


def voices_url(env: Mapping[str, str]) -> str | None:
    """The repository's base URL, or None when fetching is turned off (``EBOOK2AUDIO_VOICES_URL=off``)."""
    configured = env.get(VOICES_URL_ENV, "").strip()
    if configured.lower() in NO_FETCH:
        return None
    return (configured or DEFAULT_VOICES_URL).rstrip("/")


def _first_line(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    cause = reason if isinstance(reason, (str, OSError)) else exc
    if isinstance(cause, OSError) and cause.strerror:
        cause = cause.strerror  # "Connection refused", not "[Errno 111] Connection refused"
    text = str(cause) or type(exc).__name__
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


class _RememberSha256(urllib.request.HTTPRedirectHandler):
    """Keeps the X-Linked-Etag (the LFS SHA-256) a redirecting resolve URL states before the CDN."""

    def __init__(self) -> None:
        self.sha256 = ""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        self.sha256 = _sha256_header(headers) or self.sha256
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _sha256_header(headers: Any) -> str:
    match = _SHA256_RE.match((headers.get("X-Linked-Etag") or "").strip().lower())
    return match.group(1) if match else ""


def _open(url: str, headers: dict[str, str], timeout_s: float) -> tuple[Any, str]:
    remember = _RememberSha256()
    opener = urllib.request.build_opener(remember)
    request = urllib.request.Request(url, headers={"User-Agent": "ebook2audio", **headers})
    response = opener.open(request, timeout=timeout_s)
    return response, _sha256_header(response.headers) or remember.sha256


def fetch_json(url: str, *, timeout_s: float = TIMEOUT_S) -> Any:
    """A JSON document; OfflineError when it cannot be fetched, VoiceError when it is not JSON."""
    try:
        response, _ = _open(url, {}, timeout_s)
        with response:
            data = response.read()
    except urllib.error.HTTPError as exc:
        raise OfflineError(f"{url}: HTTP {exc.code}") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise OfflineError(_first_line(exc)) from exc
    try:
        return json.loads(data)
    except ValueError as exc:
        raise VoiceError(f"{url} is not a JSON document: {exc}") from exc


def _hashes(path: Path) -> tuple[str, str]:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            md5.update(block)
            sha.update(block)
    return md5.hexdigest(), sha.hexdigest()


def _verify(part: Path, remote: RemoteFile, server_sha256: str) -> None:
    name = remote.dest.name
    size = part.stat().st_size
    problem = ""
    if remote.size is not None and size != remote.size:
        problem = f"{size} bytes instead of {remote.size}"
    else:
        md5, sha = _hashes(part)
        for label, want, got in (
            ("MD5", remote.md5, md5),
            ("SHA-256", remote.sha256, sha),
            ("SHA-256", server_sha256, sha),
        ):
            if want and want.lower() != got:
                problem = f"{label} {got} instead of {want.lower()}"
                break
    if problem:
        part.unlink(missing_ok=True)
        raise IntegrityError(f"downloaded {name} is corrupt ({problem}): refused, nothing installed")


def fetch_file(
    remote: RemoteFile,
    *,
    progress: Progress | None = None,
    attempts: int = ATTEMPTS,
    timeout_s: float = TIMEOUT_S,
) -> Path:
    """Download ``remote`` into ``<dest dir>/.partial/<name>.part``, resuming what an earlier attempt
    left there, and check it; returns the verified part (the caller renames it into place).

    OfflineError when the server cannot be reached or keeps dropping the connection (the part is kept
    for the next try); IntegrityError when the file is not what ``remote`` says (the part is deleted).
    """
    part = remote.dest.parent / PARTIAL_DIR / f"{remote.dest.name}.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    server_sha256 = ""
    last: BaseException | None = None
    for _ in range(max(1, attempts)):
        have = part.stat().st_size if part.exists() else 0
        if remote.size is not None and have > remote.size:
            part.unlink()
            have = 0
        if remote.size is not None and have == remote.size and have > 0:
            break  # complete already: only the checks are left
        try:
            response, sha = _open(remote.url, {"Range": f"bytes={have}-"} if have else {}, timeout_s)
            with response:
                server_sha256 = sha or server_sha256
                resumed = have > 0 and response.status == 206
                done = have if resumed else 0
                length = response.headers.get("Content-Length")
                total = done + int(length) if length and length.isdigit() else remote.size
                with part.open("ab" if resumed else "wb") as out:
                    while block := response.read(CHUNK):
                        out.write(block)
                        done += len(block)
                        if progress is not None:
                            progress(remote.dest.name, done, total)
                if total is not None and done < total:
                    raise http.client.IncompleteRead(b"", total - done)
            last = None
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have and remote.size == have:
                last = None
                break
            if exc.code == 404:
                raise UnknownVoiceError(f"{remote.url}: not found (HTTP 404)") from exc
            last = exc
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, cut short
            last = exc
        log.debug("download of %s interrupted: %s", remote.url, last)
    if last is not None:
        raise OfflineError(_first_line(last)) from last
    _verify(part, remote, server_sha256)
    return part


def install(parts: list[tuple[Path, Path]]) -> None:
    """Rename verified parts into place, in order (same file system: each rename is atomic)."""
    for part, dest in parts:
        os.replace(part, dest)


@dataclass(frozen=True)
class PiperVoiceFiles:
    """Where a voice's model and config are in the repository, and what they must be."""

    name: str
    model: RemoteFile
    config: RemoteFile


def piper_voice_files(name: str, base_url: str, directory: Path, catalogue: Mapping[str, Any]) -> PiperVoiceFiles:
    """The model and config of voice ``name`` as ``voices.json`` (``catalogue``) lists them."""
    entry = catalogue.get(name)
    if not isinstance(entry, Mapping):
        raise UnknownVoiceError(f"the voice repository {base_url} has no Piper voice {name!r}")
    files = entry.get("files") if isinstance(entry.get("files"), Mapping) else {}
    found: dict[str, RemoteFile] = {}
    for rel, meta in files.items():
        for ext in (".onnx", ".onnx.json"):
            if str(rel).endswith(f"/{name}{ext}") or str(rel) == f"{name}{ext}":
                meta = meta if isinstance(meta, Mapping) else {}
                size = meta.get("size_bytes")
                found[ext] = RemoteFile(
                    url=f"{base_url}/{rel}",
                    dest=directory / f"{name}{ext}",
                    size=int(size) if isinstance(size, int) else None,
                    md5=str(meta.get("md5_digest") or ""),
                )
    if set(found) != {".onnx", ".onnx.json"}:
        raise UnknownVoiceError(f"the voice repository lists no model and config for {name!r}")
    return PiperVoiceFiles(name, found[".onnx"], found[".onnx.json"])


def fetch_piper_voice(
    name: str,
    directory: Path,
    base_url: str,
    *,
    progress: Progress | None = None,
    attempts: int = ATTEMPTS,
    timeout_s: float = TIMEOUT_S,
) -> Path:
    """Fetch Piper voice ``name`` from ``base_url`` into ``directory``; its model path.

    OfflineError (unreachable), UnknownVoiceError (not in the repository), IntegrityError (corrupt).
    """
    catalogue = fetch_json(f"{base_url}/voices.json", timeout_s=timeout_s)
    if not isinstance(catalogue, Mapping):
        raise VoiceError(f"{base_url}/voices.json does not list voices")
    files = piper_voice_files(name, base_url, directory, catalogue)
    directory.mkdir(parents=True, exist_ok=True)
    size = files.model.size
    log.info(
        "fetching Piper voice %s%s from %s",
        name,
        f" ({size / 1e6:.0f} MB)" if size else "",
        base_url,
    )
    model = fetch_file(files.model, progress=progress, attempts=attempts, timeout_s=timeout_s)
    config = fetch_file(files.config, progress=progress, attempts=attempts, timeout_s=timeout_s)
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        config.unlink(missing_ok=True)
        raise IntegrityError(f"downloaded {name}.onnx.json is not JSON: refused, nothing installed") from exc
    install([(model, files.model.dest), (config, files.config.dest)])
    return files.model.dest


def console_progress(enabled: bool) -> Progress | None:
    """A progress bar on stderr (rich) when ``enabled`` (stderr is a terminal), else None."""
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    bars: dict[str, Any] = {}
    display = Progress(
        "{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=True,
    )

    def update(name: str, done: int, total: int | None) -> None:
        if name not in bars:
            if not bars:
                display.start()
            bars[name] = display.add_task(name, total=total)
        display.update(bars[name], completed=done, total=total)
        if total is not None and done >= total:
            display.stop_task(bars[name])
            if all(display.tasks[i].finished for i in range(len(display.tasks))):
                display.stop()

    return update
