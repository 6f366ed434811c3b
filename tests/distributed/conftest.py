"""Shared fixtures of the distributed tests: real redis-server processes (plain and TLS).

``redis_server`` / ``tls_redis_server`` start ``redis-server`` on a free port in a temporary directory
with AOF on (``--appendonly yes --save ""``) and a password, and yield a :class:`RedisServer`
(.url, .host, .port, .password, .restart(), .stop(), .kill(), .client()). Reused by other helpers'
tests (S3, Flower, deploy), so keep it general.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path, hostname: str = "localhost") -> TlsFiles:
    """A throwaway CA and a server certificate for ``hostname`` and 127.0.0.1, signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ebook2audio test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


class RedisServer:
    """A real redis-server in ``directory``: AOF on, no RDB snapshots, a password, optionally TLS only."""

    def __init__(
        self,
        directory: Path,
        *,
        password: str = "s3cret-Pw!",
        tls: TlsFiles | None = None,
        host: str = "localhost",
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.tls = tls
        self.host = host
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "redis.log"

    @property
    def scheme(self) -> str:
        return "rediss" if self.tls else "redis"

    def url_for(self, password: str | None = None, db: int = 0, query: str | None = None) -> str:
        pw = self.password if password is None else password
        auth = f":{quote(pw, safe='')}@" if pw else ""
        if query is None:
            query = f"ssl_cert_reqs=required&ssl_ca_certs={self.tls.ca_cert}" if self.tls else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}/{db}" + (f"?{query}" if query else "")

    @property
    def url(self) -> str:
        """The full URL: password included; for TLS, verification against the test CA."""
        return self.url_for()

    def _args(self) -> list[str]:
        args = [
            REDIS_SERVER,
            "--bind", "127.0.0.1", "-::1",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--requirepass", self.password,
            "--daemonize", "no",
            "--logfile", str(self.log),
        ]  # fmt: skip
        if self.tls:
            args += [
                "--port", "0",
                "--tls-port", str(self.port),
                "--tls-cert-file", str(self.tls.cert),
                "--tls-key-file", str(self.tls.key),
                "--tls-ca-cert-file", str(self.tls.ca_cert),
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        else:
            args += ["--port", str(self.port)]
        return args

    def client(self, **kwargs: Any) -> Any:
        import redis

        extra: dict[str, Any] = {}
        if self.tls:
            extra = {"ssl": True, "ssl_ca_certs": str(self.tls.ca_cert), "ssl_cert_reqs": "required"}
        return redis.Redis(
            host=self.host,
            port=self.port,
            password=self.password,
            socket_connect_timeout=2,
            **extra,
            **kwargs,
        )

    def start(self, timeout: float = 15.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = subprocess.Popen(self._args(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                log = self.log.read_text() if self.log.exists() else ""
                raise RuntimeError(f"redis-server exited ({self.proc.returncode}): {err}\n{log[-2000:]}")
            try:
                c = self.client()
                try:
                    if c.ping():
                        return
                finally:
                    c.close()
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer within {timeout} s")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: Redis flushes the AOF and exits."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop (gracefully), stay down ``down_seconds``, start again on the same port and data."""
        self.stop()
        if down_seconds:
            time.sleep(down_seconds)
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _tmp_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    # Short paths (unix socket limits, readable logs); a fresh one per test.
    return tmp_path_factory.mktemp(name, numbered=True)


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(_tmp_dir(tmp_path_factory, "redis"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def tls_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    directory = _tmp_dir(tmp_path_factory, "redis-tls")
    server = RedisServer(directory, tls=make_tls_files(directory / "tls"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(autouse=True)
def _no_inherited_distributed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's REDIS_URL, SHARED_STORAGE_PATH, ..."""
    from ebook2audio.distributed_config import ENV_VARS

    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
