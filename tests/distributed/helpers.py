"""Real `ebook2audio worker` and coordinator subprocesses for the distributed end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = (ROOT / ".." / "shared" / "corpus").resolve()


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBOOK2AUDIO_") or k == "EBOOK2AUDIO_VOICES_URL"}
    for var in ("REDIS_URL", "REDIS_PASSWORD", "SHARED_STORAGE_PATH", "SHARED_STORAGE_TYPE", "NUM_WORKERS",
                "DISTRIBUTED_MODE", "CELERY_WORKER_CONCURRENCY"):  # fmt: skip
        env.pop(var, None)
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    env["EBOOK2AUDIO_VOICES_DIR"] = str(tmp / "voices")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Worker:
    """``python -m ebook2audio worker`` in its own process group, logging to a file."""

    def __init__(self, tmp: Path, name: str, redis_url: str, shared: Path, *args: str, **env: str) -> None:
        self.name = name
        self.log = tmp / f"worker-{name}.log"
        self._fh = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ebook2audio", "worker", "--redis-url", redis_url,
             "--storage-path", str(shared), "--hostname", f"{name}@%h", *args],
            env=cli_env(tmp, **env),
            cwd=tmp,
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(rf"{re.escape(self.name)}@\S+ ready\.", self.text()):
                return
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"worker {self.name} exited {self.proc.returncode}:\n{self.text()[-3000:]}"
                )
            time.sleep(0.1)
        raise AssertionError(f"worker {self.name} not ready after {timeout} s:\n{self.text()[-3000:]}")

    def pool_pids(self) -> list[int]:
        """The worker's pool processes (its direct children: not the ffmpeg a task runs to encode)."""
        import psutil

        try:
            return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=False)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the whole process group: the main process and its pool, like a machine dying."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._fh.close()

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.kill()


def coordinator_args(book: Path, redis_url: str, shared: Path, *extra: str) -> list[str]:
    return [
        "convert",
        str(book),
        "--distributed",
        "--redis-url",
        redis_url,
        "--storage-path",
        str(shared),
        *extra,
    ]


def run_cli(args: list[str], tmp: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ebook2audio", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(tmp, **env),
        cwd=tmp,
        stdin=subprocess.DEVNULL,
    )


def start_cli(args: list[str], tmp: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ebook2audio", *args],
        env=cli_env(tmp, **env),
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def chunk_files(shared: Path) -> dict[Path, tuple[int, int]]:
    """Every chunk blob (FLAC, or an earlier version's WAV) under the shared storage: path -> (inode, mtime_ns)."""
    out = {}
    for p in (*shared.rglob("*.flac"), *shared.rglob("*.wav")):
        if ".trash" in p.relative_to(shared).parts:
            continue  # a finished session moved aside for the workers to delete: not in the storage
        st = p.stat()
        out[p] = (st.st_ino, st.st_mtime_ns)
    return out


def wait_purged(shared: Path, timeout: float = 60) -> None:
    """Wait until the workers have deleted the session folders coordinators moved to ``.trash``."""
    import time

    deadline = time.monotonic() + timeout
    trash = shared / ".trash"
    while trash.exists() and any(trash.iterdir()):
        if time.monotonic() > deadline:
            raise AssertionError(f"the workers left {sorted(p.name for p in trash.iterdir())} in {trash}")
        time.sleep(0.1)


def write_book(path: Path, chapters: int = 4, paragraphs: int = 3) -> Path:
    """A small plain-text book: ``chapters`` chapters of ``paragraphs`` distinct paragraphs each."""
    words = ["whale", "sea", "ship", "captain", "harbour", "rope", "sail", "storm", "island", "voyage", "lantern", "compass", "anchor", "tide", "gull", "wind", "deck", "mast", "crew", "map"]  # fmt: skip
    parts = []
    for c in range(chapters):
        parts.append(f"CHAPTER {c + 1}")
        for p in range(paragraphs):
            sentences = []
            for s in range(3):
                picked = [words[(c * 7 + p * 5 + s * 3 + k) % len(words)] for k in range(6 + s)]
                sentences.append(
                    f"Paragraph {p + 1} of chapter {c + 1} says {' '.join(picked)} number {s + 1}."
                )
            parts.append(" ".join(sentences))
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


SUMMARY = re.compile(r"\((\d+) synthesised, (\d+) resumed\)")


def chunk_samples(head: bytes, size: int) -> int:
    """The samples in a stored chunk from its first bytes (FLAC STREAMINFO) or its size (WAV)."""
    from ebook2audio.audio.chunkfmt import streaminfo

    info = streaminfo(head)
    return info.samples if info is not None else (size - 44) // 2


def file_samples(path: Path) -> int:
    with path.open("rb") as fh:
        return chunk_samples(fh.read(512), path.stat().st_size)
