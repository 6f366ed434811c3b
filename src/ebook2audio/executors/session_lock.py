"""One coordinator per session: a lock in Redis, held while a coordinator converts a book.

Two coordinators on the same session (the same book, hence the same session id, and the same Redis)
would overwrite each other's plan in the shared storage, and the first to finish would delete the
session's audio while the other still assembles it. So ``convert --distributed`` takes
``lock:<session>`` (SET NX with a TTL, refreshed by a thread) before anything else and frees it at
the end. The holder is described in the value (host, pid, start time), so:

- a second coordinator waits up to ``wait`` seconds (the TTL and a margin: a live holder keeps it,
  a dead one's lock lapses), then stops with one line naming the holder;
- a holder on this same machine *and pid namespace* whose process no longer exists (a coordinator that
  was killed) is replaced at once, so that rerunning a killed command resumes without waiting for the
  TTL. The hostname alone is not enough: containers may share one, each with its own pids, so the
  holder's identity also carries the machine id, the boot id and the pid namespace;
- a coordinator that loses its lock (paused past the TTL, then taken over) stops at once:
  :meth:`SessionLock.check` (called by the coordinator's loop) raises ``LockLostError``.

:class:`RedisLocks` is the distributed mode's ``job.JobLocks``: the session lock for the whole run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from ..errors import UserError
from ..job import LockLostError

log = logging.getLogger(__name__)

LOCK_PREFIX = "lock:"
# Compare-and-set primitives: only the holder (same token) refreshes or frees the lock.
_REFRESH = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_REPLACE = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0"
)


class SessionBusyError(UserError):
    """Another coordinator is converting this session."""


def lock_key(session: str) -> str:
    return f"{LOCK_PREFIX}{session}"


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def describe_holder(raw: Any) -> str:
    """'host pid N since T' from a lock value (or the raw text if it is not ours)."""
    try:
        h = json.loads(_text(raw))
        return f"{h['host']} pid {h['pid']} since {h['started']}"
    except (ValueError, KeyError, TypeError):
        return _text(raw)[:80]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return True
    return True


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def process_space() -> str:
    """Who can see this process's pid: the machine (machine id, boot id) and the pid namespace."""
    try:
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = ""
    parts = (
        socket.gethostname(),
        _read("/etc/machine-id"),
        _read("/proc/sys/kernel/random/boot_id"),
        pidns,
    )
    return "|".join(parts)


def is_stale_here(raw: Any, space: str, alive: Callable[[int], bool] = pid_alive) -> bool:
    """True when the lock's holder ran in this process ``space`` (see process_space) and its process
    is gone. A holder with no recorded space (or another one) is never judged here. Pure apart from
    ``alive``."""
    try:
        h = json.loads(_text(raw))
        return (
            bool(h["space"])
            and h["space"] == space
            and isinstance(h["pid"], int)
            and not alive(h["pid"])
        )
    except (ValueError, KeyError, TypeError):
        return False


class SessionLock:
    """``lock:<session>`` in Redis for the lifetime of one coordinator (a context manager)."""

    def __init__(
        self,
        client: Any,
        session: str,
        *,
        ttl: float = 20.0,
        wait: float | None = None,
        notify: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.session = session
        self.key = lock_key(session)
        self.ttl_ms = max(1000, int(ttl * 1000))
        self.wait = ttl + 5.0 if wait is None else wait
        self.notify = notify or (lambda text: log.warning("%s", text))
        self.clock, self.sleep = clock, sleep
        self.host = socket.gethostname()
        self.space = process_space()
        self.token = json.dumps(
            {
                "host": self.host,
                "space": self.space,
                "pid": os.getpid(),
                "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "nonce": secrets.token_hex(4),
            }
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False
        self._verified = 0.0

    def acquire(self) -> None:
        deadline = self.clock() + self.wait
        said = False
        while True:
            if self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
                break
            holder = self.client.get(self.key)
            if holder is not None and is_stale_here(holder, self.space):
                if self.client.eval(_REPLACE, 1, self.key, holder, self.token, self.ttl_ms):
                    self.notify(
                        f"session {self.session}: the coordinator that held it ({describe_holder(holder)}) "
                        "is gone; taking over"
                    )
                    break
                continue
            if holder is not None and not said:
                self.notify(
                    f"session {self.session} is being converted by another coordinator "
                    f"({describe_holder(holder)}): waiting up to {self.wait:.0f} s for it"
                )
                said = True
            if self.clock() >= deadline:
                raise SessionBusyError(
                    f"session {self.session} is being converted by another coordinator "
                    f"({describe_holder(holder) if holder is not None else 'unknown'}); wait for it to "
                    "finish, or give this run its own --session"
                )
            self.sleep(0.5)
        self._thread = threading.Thread(target=self._keep, name="session-lock", daemon=True)
        self._thread.start()

    def _keep(self) -> None:
        period = self.ttl_ms / 1000 / 4
        while not self._stop.wait(period):
            try:
                if not self.client.eval(_REFRESH, 1, self.key, self.token, self.ttl_ms):
                    if not self.lost:
                        log.warning("lost the lock of session %s (expired or taken over)", self.session)
                    self.lost = True
            except Exception:  # Redis away for a moment: the coordinator's own checks report that
                log.debug("could not refresh the session lock", exc_info=True)

    def check(self, *, every: float = 1.0) -> None:
        """Raise ``LockLostError`` if the lock is no longer ours (asks Redis at most every ``every`` s)."""
        now = self.clock()
        if not self.lost and self._thread is not None and now - self._verified >= every:
            self._verified = now
            try:
                holder = self.client.get(self.key)
            except Exception:  # Redis away: the coordinator's own outage handling reports it
                holder = self.token
            if holder is None or _text(holder) != self.token:
                self.lost = True
        if self.lost:
            raise LockLostError(
                f"lost the lock of session {self.session} (this coordinator was paused or cut off past its "
                f"{self.ttl_ms // 1000} s lease; another may be running it): stopping; the work done so far is "
                "kept: rerun the same command to resume"
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with contextlib.suppress(Exception):
            self.client.eval(_RELEASE, 1, self.key, self.token)

    def __enter__(self) -> SessionLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class RedisLocks:
    """``job.JobLocks`` for a coordinator: the session's Redis lock, held for the whole run.

    One coordinator per session, so the session's short critical sections need nothing more.
    """

    def __init__(self, client: Any, notify: Callable[[str], None] | None = None, ttl: float = 20.0) -> None:
        self.client = client
        self.notify = notify
        self.ttl = ttl
        self.lock: SessionLock | None = None

    @contextlib.contextmanager
    def hold_job(self, session: str, job: str, target: str) -> Iterator[None]:
        lock = SessionLock(self.client, session, ttl=self.ttl, notify=self.notify)
        lock.acquire()
        self.lock = lock
        try:
            yield
        finally:
            lock.release()
            self.lock = None

    @contextlib.contextmanager
    def session_critical(self, session: str) -> Iterator[None]:
        yield

    def check(self) -> None:
        if self.lock is not None:
            self.lock.check()
