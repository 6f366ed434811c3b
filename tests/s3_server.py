"""A real S3-compatible server for tests: moto in server mode, on a free localhost port.

Use the ``s3_server`` fixture (session scope) through ``from tests.s3_server import s3_server`` in a
conftest, and ``s3_bucket`` for a fresh, empty bucket per test.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import subprocess
import sys
import time
import urllib.error
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


class ForwardingProxy(http.server.BaseHTTPRequestHandler):
    """A real HTTP proxy in front of the S3 server: every request is forwarded unchanged unless
    ``intercept`` answers it itself (subclasses set ``upstream`` and override ``intercept``)."""

    upstream = ""
    protocol_version = "HTTP/1.1"  # answers "Expect: 100-continue" at once

    def intercept(self, body: bytes | None) -> bool:
        """Answer the request here (True) instead of forwarding it."""
        return False

    def answer_error(self, status: int, code: str, message: str) -> None:
        payload = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.intercept(body):
            return
        req = urllib.request.Request(self.upstream + self.path, data=body, method=self.command)
        for k, v in self.headers.items():
            if k.lower() not in ("host", "content-length", "connection", "expect"):
                req.add_header(k, v)
        if body is not None and "Content-Type" not in self.headers:
            # urllib would say form-urlencoded, and the server would parse the body away as a form.
            req.add_header("Content-Type", "binary/octet-stream")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, headers, data = resp.status, resp.headers.items(), resp.read()
        except urllib.error.HTTPError as err:
            status, headers, data = err.code, err.headers.items(), err.read()
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    def log_message(self, *args: object) -> None:
        pass
