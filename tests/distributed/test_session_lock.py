"""The one-coordinator-per-session lock, on a real redis-server; and two real coordinators on one book."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from ebook2audio.executors.session_lock import (
    SessionBusyError,
    SessionLock,
    describe_holder,
    is_stale_here,
    lock_key,
    process_space,
)
from ebook2audio.job import LockLostError

from .conftest import RedisServer
from .helpers import SUMMARY, Worker, coordinator_args, run_cli, start_cli, write_book


def _holder(host: str, pid: int, space: str | None = None) -> str:
    return json.dumps(
        {
            "host": host,
            "space": process_space() if space is None else space,
            "pid": pid,
            "started": "2026-11-28T10:00:00Z",
            "nonce": "x",
        }
    )


def test_stale_holder_is_only_a_dead_process_in_this_pid_space() -> None:
    here = "h|m|b|pid:[1]"
    assert is_stale_here(_holder("h", 42, here), here, alive=lambda pid: False)
    assert not is_stale_here(_holder("h", 42, here), here, alive=lambda pid: True)
    # same hostname, other container (own pid namespace): its pid means nothing here
    assert not is_stale_here(_holder("h", 42, "h|m|b|pid:[2]"), here, alive=lambda pid: False)
    assert not is_stale_here(_holder("h", 42, ""), "", alive=lambda pid: False)  # unknown space
    legacy = json.dumps({"host": "h", "pid": 42, "started": "x"})  # no space recorded: never judged here
    assert not is_stale_here(legacy, here, alive=lambda pid: False)
    assert not is_stale_here(b"not json", here, alive=lambda pid: False)
    assert describe_holder(_holder("h", 42).encode()) == "h pid 42 since 2026-11-28T10:00:00Z"
    space = process_space()
    assert socket.gethostname() in space and "pid:[" in space


def test_a_lost_lock_stops_its_holder(redis_server: RedisServer) -> None:
    client = redis_server.client()
    lock = SessionLock(client, "lost1", ttl=1.0)
    lock.acquire()
    try:
        lock.check()  # held: nothing happens
        # another coordinator took the session while this one was paused past its lease
        client.set(lock_key("lost1"), _holder("elsewhere", 1, "x"), px=60_000)
        with pytest.raises(LockLostError, match=r"lost the lock of session lost1 .* rerun the same command"):
            lock.check(every=0)
        with pytest.raises(LockLostError):
            lock.check()  # and stays lost
    finally:
        lock.release()
    assert client.get(lock_key("lost1")) is not None  # the new holder's lock is left alone


def test_lock_excludes_refreshes_and_frees(redis_server: RedisServer) -> None:
    client = redis_server.client()
    first = SessionLock(client, "s1", ttl=1.0)
    first.acquire()
    try:
        said: list[str] = []
        with pytest.raises(
            SessionBusyError, match=r"session s1 is being converted by another coordinator \(.* pid \d+"
        ):
            SessionLock(client, "s1", ttl=1.0, wait=0.6, notify=said.append).acquire()
        assert said and "waiting up to" in said[0]
        time.sleep(2.5)  # over twice the TTL: the holder's thread keeps it
        assert client.get(lock_key("s1")).decode() == first.token
        assert client.pttl(lock_key("s1")) > 0
    finally:
        first.release()
    assert client.get(lock_key("s1")) is None
    with SessionLock(client, "s1", ttl=1.0, wait=0) as again:  # free again
        assert client.get(lock_key("s1")).decode() == again.token
    # a lock nobody refreshes (its holder froze on another host) lapses after its TTL: the next waits for it
    client.set(lock_key("s2"), _holder("elsewhere", 1), px=1500)
    t0 = time.monotonic()
    with SessionLock(client, "s2", ttl=1.0, wait=10):
        assert 1.0 <= time.monotonic() - t0 < 5
    # a holder on this host whose process is gone (a killed coordinator) is replaced at once
    dead = subprocess.Popen(["true"])
    dead.wait()
    client.set(lock_key("s3"), _holder(socket.gethostname(), dead.pid), px=60_000)
    said = []
    t0 = time.monotonic()
    with SessionLock(client, "s3", ttl=1.0, wait=0, notify=said.append):
        assert time.monotonic() - t0 < 1
    assert said and "is gone; taking over" in said[0]
    # ... but not while that process lives
    client.set(lock_key("s4"), _holder(socket.gethostname(), os.getpid()), px=60_000)
    with pytest.raises(SessionBusyError):
        SessionLock(client, "s4", ttl=1.0, wait=0).acquire()


@pytest.mark.slow
def test_second_coordinator_on_the_same_book_stops_and_the_first_finishes(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    # A 4 s lease (EBOOK2AUDIO_SESSION_LOCK_TTL, default 20 s): the second coordinator waits 4 + 5 s.
    lease = {"EBOOK2AUDIO_SESSION_LOCK_TTL": "4"}
    # about 27 s of synthesis: the first is still converting when the second gives up
    book = write_book(tmp_path / "book.txt", chapters=3, paragraphs=2)
    shared = tmp_path / "shared"
    w = Worker(tmp_path, "w1", redis_server.url, shared, EBOOK2AUDIO_SIM_MS_PER_CHAR="20")
    try:
        w.wait_ready()
        args = coordinator_args(
            book, redis_server.url, shared, "--engine", "sim", "--batch-chars", "150", "-o", "out"
        )
        first = start_cli(args, tmp_path, **lease)
        deadline = time.monotonic() + 60
        while not list(shared.glob("*/plans/*.json")) and time.monotonic() < deadline:
            assert first.poll() is None, first.communicate()[1]
            time.sleep(0.1)
        t0 = time.monotonic()
        second = run_cli([*args, "-o", "out2"], tmp_path, timeout=120, **lease)
        waited = time.monotonic() - t0
        assert second.returncode == 2, second.stderr
        lines = [x for x in second.stderr.splitlines() if x.startswith("error:")]
        assert len(lines) == 1 and "is being converted by another coordinator" in lines[0], second.stderr
        assert "waiting up to 9 s" in " ".join(second.stderr.split()), second.stderr
        assert "Traceback" not in second.stderr
        assert 9 <= waited < 40  # it waited for the lock's TTL and a margin, then gave up
        assert not (tmp_path / "out2").exists() or not any((tmp_path / "out2").iterdir())
        assert first.poll() is None  # still converting, undisturbed
        _out, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
        assert SUMMARY.search(err)
        assert len(list((tmp_path / "out").glob("*.m4b"))) == 1
        assert redis_server.client().keys("lock:*") == []  # freed at the end
    finally:
        w.stop()
