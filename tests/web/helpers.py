"""Start the real `ebook2audio serve` in a subprocess on a free port, and talk to it with httpx."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.e2e.helpers import ROOT, cli_env

FINISHED = ("done", "failed", "cancelled")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def tiny_text_book(path: Path, title: str, chapters: int, sentences: int = 3) -> Path:
    """A Markdown book: ``chapters`` chapters of ``sentences`` short sentences each."""
    parts = [f"# {title}\n"]
    for c in range(1, chapters + 1):
        parts.append(f"## Chapter {c}\n")
        parts.append(" ".join(f"Sentence {s} of chapter {c} is spoken here." for s in range(1, sentences + 1)) + "\n")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    log: Path
    auth: tuple[str, str] | None = None

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=self.auth, timeout=120, **kw)  # type: ignore[arg-type]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def wait_job(self, client: httpx.Client, job_id: int, until: tuple[str, ...] = FINISHED, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = client.get(f"/api/jobs/{job_id}").json()
            if job["state"] in until:
                return job
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")


def start_server(
    tmp: Path, *args: str, host: str = "127.0.0.1", port: int | None = None, auth: tuple[str, str] | None = None,
    data_dir: Path | None = None, app_py: bool = False, **env: str,
) -> Server:
    """``ebook2audio serve`` (or, with ``app_py``, the guide's ``python app.py``, its data in the
    default folder under $XDG_DATA_HOME)."""
    port = port or free_port(host)
    log = tmp / f"serve-{port}-{time.monotonic_ns()}.log"
    full_env = cli_env(tmp, **env)
    if auth:
        full_env.update(EBOOK2AUDIO_WEB_USER=auth[0], EBOOK2AUDIO_WEB_PASSWORD=auth[1])
    if app_py:
        full_env["XDG_DATA_HOME"] = str(tmp / "xdg-data")
        data_dir = tmp / "xdg-data" / "ebook2audio" / "web"
        command = [sys.executable, str(ROOT / "app.py"), "--host", host, "--port", str(port), *args]
    else:
        data_dir = data_dir or tmp / "data"
        command = [sys.executable, "-m", "ebook2audio", "serve", "--host", host, "--port", str(port),
                   "--data-dir", str(data_dir), *args]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=full_env, cwd=tmp, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    shown = f"[{host}]" if ":" in host else host
    server = Server(proc, f"http://{shown}:{port}", data_dir, log, auth)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + "/api/health", auth=auth, timeout=2).status_code == 200:
                return server
        time.sleep(0.2)
    server.stop(signal.SIGKILL)
    raise AssertionError(f"serve did not answer: {log.read_text()}")


@contextlib.contextmanager
def running_server(tmp: Path, *args: str, **kw: object) -> Iterator[Server]:
    server = start_server(tmp, *args, **kw)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


def sim_env() -> dict[str, str]:
    return {"EBOOK2AUDIO_SIM_MS_PER_CHAR": os.environ.get("TEST_SIM_MS", "0"), "EBOOK2AUDIO_WORKERS": "1"}
