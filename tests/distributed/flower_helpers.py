"""Start the real ``ebook2audio flower`` command on a free port and talk to it over HTTP."""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.s3_server import free_port

FLOWER_USER = "ops"
FLOWER_PASSWORD = "k3Xq-long-enough-secret"


@dataclass(frozen=True)
class FlowerProcess:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path)
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


def flower_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EBOOK2AUDIO_", "FLOWER_", "CELERY_"))}
    env.update(
        {"REDIS_URL": redis_url, "FLOWER_USER": FLOWER_USER, "FLOWER_PASSWORD": FLOWER_PASSWORD, **extra}
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.contextmanager
def running_flower(redis_url: str, log_dir: Path, timeout: float = 60.0) -> Iterator[FlowerProcess]:
    port = free_port()
    log = log_dir / f"flower-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ebook2audio", "flower", "--port", str(port), "--address", "127.0.0.1"],
            env=flower_env(redis_url),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        flower = FlowerProcess(url=f"http://127.0.0.1:{port}", proc=proc, log=log)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"flower exited with {proc.returncode}:\n{log.read_text(errors='replace')}"
                    )
                with contextlib.suppress(OSError):
                    if flower.get("/healthcheck")[0] == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"flower did not answer on port {port}:\n{log.read_text(errors='replace')}"
                    )
                time.sleep(0.2)
            yield flower
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
