"""``--voice-sample``: the recording a cloning engine imitates, checked, identified and carried to workers.

A sample is identified by the SHA-256 of its bytes: that digest is part of the resolved voice
(``EngineInfo.sample``, and the voice name), so chunk ids, resume and the finished book's fingerprint
change with the recording, never with its file name. Samples are decoded by the project's ffmpeg
adapter (WAV, FLAC, MP3, Ogg, M4A...: whatever ffmpeg reads) into 16-bit mono PCM.

Workers on other machines cannot read the coordinator's path: the coordinator stores the sample's
bytes in the job's storage under ``<session>/voice-samples/<sha256>`` (content-addressed, JSON on the
queue only names the digest), and a worker copies them once into its cache,
``$XDG_CACHE_HOME/ebook2audio/voice-samples/<sha256>``, checking the digest.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import Ebook2AudioError, VoiceError
from ..storage.base import Storage

log = logging.getLogger(__name__)

MIN_SECONDS = 3.0  # shorter recordings do not carry a voice (XTTS-v2 asks for 6 s or more)
MAX_SECONDS = 30.0  # XTTS-v2 reads at most 30 s of a reference; a longer one is an editing mistake
MAX_BYTES = 64 << 20  # a 30 s recording is far smaller even as 32-bit WAV; this stops a wrong file
DECODE_RATE = 22050  # what the cloning engines read references at (XTTS-v2's conditioning rate)
_SHA_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class VoiceSample:
    """A checked recording: where it is, its digest and its length."""

    path: Path
    sha256: str
    seconds: float


def file_sha256(path: Path) -> str:
    """The SHA-256 of a sample file; VoiceError (one line) when it cannot be read."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise VoiceError(f"voice sample {path} is not a file")
        if size > MAX_BYTES:
            raise VoiceError(
                f"voice sample {path} is {size / 1e6:.0f} MB: give a {MIN_SECONDS:.0f}-{MAX_SECONDS:.0f} s recording"
            )
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise VoiceError(f"cannot read voice sample {path}: {exc.strerror or exc}") from exc


def decode(path: Path, rate: int = DECODE_RATE) -> bytes:
    """The sample as 16-bit mono PCM at ``rate`` (ffmpeg adapter); VoiceError when it is not audio."""
    from ..audio.ffmpeg import decode_pcm

    try:
        return decode_pcm(path, rate)
    except Ebook2AudioError as exc:
        raise VoiceError(f"voice sample {path} is not a readable recording (WAV, FLAC, MP3...): {exc}") from exc


def read_sample(path: Path) -> VoiceSample:
    """Check that ``path`` is a recording of MIN_SECONDS..MAX_SECONDS with sound in it; VoiceError if not."""
    path = Path(path).expanduser()
    digest = file_sha256(path)
    pcm = decode(path)
    seconds = len(pcm) / 2 / DECODE_RATE
    if seconds < MIN_SECONDS or seconds > MAX_SECONDS:
        raise VoiceError(
            f"voice sample {path} lasts {seconds:.1f} s: give a recording of {MIN_SECONDS:.0f} to "
            f"{MAX_SECONDS:.0f} s of one voice speaking (6-15 s of clean speech works best)"
        )
    import numpy as np

    if int(np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32)).max()) < 33:  # under -60 dBFS
        raise VoiceError(f"voice sample {path} is silent")
    return VoiceSample(path=path.absolute(), sha256=digest, seconds=seconds)


def is_sha256(text: str) -> bool:
    return len(text) == 64 and set(text) <= _SHA_HEX


def sample_key(session: str, sha256: str) -> str:
    """Where the job's storage keeps a sample's bytes."""
    return f"{session}/voice-samples/{sha256}"


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "ebook2audio" / "voice-samples"


def cached(sha256: str, env: Mapping[str, str] | None = None) -> Path | None:
    """The cached copy of the sample of digest ``sha256`` on this machine, or None."""
    path = cache_dir(env) / sha256
    return path if is_sha256(sha256) and path.is_file() else None


def _write_cache(sha256: str, data: bytes, env: Mapping[str, str] | None) -> Path:
    if hashlib.sha256(data).hexdigest() != sha256:
        raise VoiceError(f"the stored voice sample {sha256[:12]}... does not match its SHA-256: convert again")
    folder = cache_dir(env)
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / sha256
    tmp = folder / f".{sha256}.{os.getpid()}.tmp"
    try:
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def store(storage: Storage, session: str, path: Path, sha256: str) -> None:
    """Put the bytes of the sample at ``path`` (digest ``sha256``) in the job's storage (once; the key is
    its digest), for the workers."""
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise VoiceError(f"voice sample {path} changed while the book was being converted")
    storage.put_bytes_if_absent(sample_key(session, sha256), data)


def fetch(storage: Storage, session: str, sha256: str, env: Mapping[str, str] | None = None) -> Path:
    """The sample of digest ``sha256`` on this machine: from the cache, else copied there from the
    job's storage (and checked). VoiceError when the storage does not have it."""
    if not is_sha256(sha256):
        raise VoiceError(f"{sha256!r} is not the SHA-256 of a voice sample")
    found = cached(sha256, env)
    if found is not None:
        return found
    try:
        data = storage.get_bytes(sample_key(session, sha256))
    except (FileNotFoundError, KeyError) as exc:
        raise VoiceError(
            f"the voice sample {sha256[:12]}... of session {session} is not in {storage.describe()}: "
            "run the coordinator again"
        ) from exc
    dest = _write_cache(sha256, data, env)
    log.warning("voice sample %s... copied from %s into %s", sha256[:12], storage.describe(), dest.parent)
    return dest


def locate(sha256: str, hint: str = "", env: Mapping[str, str] | None = None) -> Path:
    """The sample of digest ``sha256`` on this machine: the cache, else ``hint`` (the coordinator's
    path, right when it runs here) when its bytes have that digest (then cached). VoiceError if neither."""
    found = cached(sha256, env)
    if found is not None:
        return found
    if hint:
        path = Path(hint)
        try:
            data = path.read_bytes() if path.is_file() else b""
        except OSError:
            data = b""
        if data and hashlib.sha256(data).hexdigest() == sha256:
            return _write_cache(sha256, data, env)
    raise VoiceError(
        f"the voice sample {sha256[:12]}... is not on this machine (not in {cache_dir(env)}"
        + (f" and {hint} has other bytes or is missing" if hint else "")
        + ")"
    )
