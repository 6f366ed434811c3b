"""Security of the distributed mode: JSON only (a pickled message is refused), TLS, no leaked passwords."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest

from ebook2audio.distributed_config import load_distributed_settings

from .conftest import RedisServer, free_port
from .helpers import Worker, chunk_files, coordinator_args, run_cli, write_book

pytestmark = pytest.mark.slow


class _Exploit:
    """Unpickling this runs os.mkdir(marker): proof that someone deserialised a pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (str(self.marker),))


def _push_pickled_task(url: str, marker: Path, task_id: str) -> None:
    from kombu import Connection, Exchange, Queue

    exchange = Exchange("ebook2audio", type="direct")
    queue = Queue("ebook2audio", exchange, routing_key="ebook2audio")
    with Connection(url) as conn:
        producer = conn.Producer(serializer="pickle")
        producer.publish(
            (
                (_Exploit(marker), "batch"),
                {},
                {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
            ),
            exchange=exchange,
            routing_key="ebook2audio",
            declare=[queue],
            headers={
                "lang": "py",
                "task": "ebook2audio.synthesize_batch",
                "id": task_id,
                "root_id": task_id,
                "parent_id": None,
                "group": None,
                "argsrepr": "(<exploit>,)",
                "kwargsrepr": "{}",
                "origin": "attacker",
                "retries": 0,
                "eta": None,
                "expires": None,
                "timelimit": [None, None],
                "shadow": None,
                "ignore_result": False,
            },
        )
        assert producer.serializer == "pickle"


def test_pickled_message_is_refused(redis_server: RedisServer, tmp_path: Path) -> None:
    selftest = tmp_path / "selftest"
    pickle.loads(pickle.dumps(_Exploit(selftest)))
    assert selftest.is_dir()  # the payload is live: whoever unpickles it runs os.mkdir
    marker = tmp_path / "pwned"
    shared = tmp_path / "shared"
    w = Worker(tmp_path, "w1", redis_server.url, shared)
    try:
        w.wait_ready()
        _push_pickled_task(redis_server.url, marker, "evil-1")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "Refusing to deserialize" not in w.text():
            time.sleep(0.1)
        log = w.text()
        assert "Refusing to deserialize untrusted content of type pickle" in log, log[-3000:]
        assert "ContentDisallowed" in log or "invalid task message" in log.lower()
        time.sleep(1.0)
        assert not marker.exists()  # never unpickled, in the worker nor its pool
        assert "evil-1] succeeded" not in log and "evil-1] received" not in log
        assert redis_server.client().llen("ebook2audio") == 0  # discarded, not requeued forever
        assert w.proc.poll() is None

        # and the worker still works: a real job after the attack
        book = write_book(tmp_path / "book.txt", chapters=1, paragraphs=1)
        r = run_cli(coordinator_args(book, redis_server.url, shared, "--engine", "sim", "-o", "out"), tmp_path,
                    EBOOK2AUDIO_SIM_MS_PER_CHAR="0")  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert not marker.exists()
    finally:
        w.stop()


def test_tls_redis(tls_redis_server: RedisServer, tmp_path: Path) -> None:
    """rediss://: the coordinator verifies the server against the test CA, the worker with ssl_cert_reqs=none."""
    shared = tmp_path / "shared"
    verified = tls_redis_server.url
    assert verified.startswith("rediss://") and "ssl_ca_certs=" in verified
    unverified = tls_redis_server.url_for(query="ssl_cert_reqs=CERT_NONE")
    w = Worker(tmp_path, "tls", unverified, shared, EBOOK2AUDIO_SIM_MS_PER_CHAR="0")
    try:
        w.wait_ready()
        book = write_book(tmp_path / "book.txt", chapters=2, paragraphs=1)
        r = run_cli(
            coordinator_args(book, verified, shared, "--engine", "sim", "-o", "out", "--keep-work"), tmp_path
        )
        assert r.returncode == 0, r.stderr
        assert list((tmp_path / "out").glob("*.m4b"))
        assert len(chunk_files(shared)) >= 2
        assert tls_redis_server.password not in r.stderr + w.text()
    finally:
        w.stop()


def test_tls_rejects_an_unknown_certificate_authority(tls_redis_server: RedisServer, tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.txt", chapters=1, paragraphs=1)
    url = tls_redis_server.url_for(query="ssl_cert_reqs=required")  # the system CAs do not know the test CA
    r = run_cli(coordinator_args(book, url, tmp_path / "shared", "--engine", "sim"), tmp_path, timeout=60)
    assert r.returncode == 2, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot reach Redis at localhost:{tls_redis_server.port}")
    assert "certificate" in line.lower()


def test_unreachable_redis_is_one_line_exit_2_without_the_password(tmp_path: Path) -> None:
    port = free_port()
    book = write_book(tmp_path / "book.txt", chapters=1, paragraphs=1)
    url = f"redis://:Sup3rSecretPw@localhost:{port}/0"
    t0 = time.monotonic()
    r = run_cli(coordinator_args(book, url, tmp_path / "shared", "--engine", "sim"), tmp_path, timeout=60)
    assert r.returncode == 2
    assert time.monotonic() - t0 < 20
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot reach Redis at localhost:{port}"), line
    assert "connection refused" in line and "redis://:***@localhost" in line
    assert "Sup3rSecretPw" not in r.stderr + r.stdout


def test_wrong_password_is_one_line_exit_2(redis_server: RedisServer, tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.txt", chapters=1, paragraphs=1)
    url = redis_server.url_for(password="not-the-password")
    r = run_cli(coordinator_args(book, url, tmp_path / "shared", "--engine", "sim"), tmp_path, timeout=60)
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert f"localhost:{redis_server.port}" in line and "REDIS_PASSWORD" in line
    assert "not-the-password" not in r.stderr


def test_redis_password_from_the_environment(redis_server: RedisServer) -> None:
    from ebook2audio.executors.distributed import check_redis

    ds = load_distributed_settings(
        {}, {"REDIS_URL": redis_server.url_for(password=""), "REDIS_PASSWORD": redis_server.password}
    )
    check_redis(ds)  # no exception: the password went into the URL
