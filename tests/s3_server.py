"""A real S3-compatible server for tests: moto in server mode, on a free localhost port.

Use the ``s3_server`` fixture (session scope) through ``from tests.s3_server import s3_server`` in a
conftest, and ``s3_bucket`` for a fresh, empty bucket per test.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key-0123456789"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    url: str
    port: int
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION
    session: Any = field(default=None, compare=False, repr=False)  # a boto3 Session, reused for speed

    def env(self, bucket: str) -> dict[str, str]:
        """The distributed-mode environment variables that point at this server."""
        return {
            "SHARED_STORAGE_TYPE": "s3",
            "S3_ENDPOINT_URL": self.url,
            "S3_BUCKET_NAME": bucket,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
        }

    def client(self) -> Any:
        """A plain boto3 client on this server, to look behind the storage's back."""
        return self.session.client(
            "s3",
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_s3_server(log_dir: Path, timeout: float = 30.0) -> Iterator[S3Server]:
    """Start ``python -m moto.server`` and wait until it answers; stop it afterwards."""
    port = free_port()
    log = (log_dir / f"moto-{port}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on port {port}") from None
                time.sleep(0.1)
        import boto3

        yield S3Server(url=url, port=port, session=boto3.session.Session())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with running_s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket on the test server."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    return name
