"""A ``Job``: one conversion's scope in storage, the same object in the embedded and distributed modes.

A session (``<session>/`` in storage, by default derived from the book's bytes) holds the sentence
audio of every conversion of one book; chunk ids are content hashes, so conversions that differ only
in format, chapter selection or a few sentences share their chunks. Each conversion is a *job*: its
plan is registered under ``<session>/plans/<job>.json`` before it looks at what is done, and a job
that finishes removes its own plan, then deletes exactly the chunks of its plan that no plan still
registered needs (an interrupted run's plan stays registered, so its audio survives a later
``--chapters 1`` run or a run in another format). Registration (with the done-check that follows it)
and cleanup happen under the session's short lock, so a cleanup never deletes what a job that is
starting has just counted as done.

Locks (a :class:`JobLocks`):

- embedded mode (:class:`FileLocks`): ``flock`` files under ``<work dir>/.locks/``; the job's own lock
  is held for the whole run (the same conversion started twice at once: the second stops in one line),
  the session's only around registration and cleanup, so two conversions of one book (an m4b and an
  mp3) run side by side;
- distributed mode: the coordinator's Redis lock on the session, held for the whole run
  (:mod:`.executors.session_lock`); a coordinator that loses it stops at once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from .audio.pieces import pieces_prefix
from .errors import UserError
from .jobstore import chunk_keys, load_plan, plan_key, plans_prefix, save_plan, stored_chunk_sizes
from .model import Plan
from .poison import batch_marker, chunk_marker, substitute_key
from .storage.base import Storage
from .storage.local import os_error
from .verify import check_key

log = logging.getLogger(__name__)

SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class LockLostError(UserError):
    """This process no longer holds the lock of its job (another process may be running it)."""


class JobBusyError(UserError):
    """The same conversion is already running elsewhere."""


def check_session_id(value: str) -> str:
    """``value`` if it is a valid session id (1-64 of ``[A-Za-z0-9_-]``, starting alphanumeric)."""
    if not SESSION_ID.fullmatch(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise UserError(
            f"invalid session id {shown!r}: use 1 to 64 letters, digits, '_' or '-', starting with a "
            "letter or digit"
        )
    return value


def job_id(plan: Plan, target: str) -> str:
    """The id of converting ``plan`` into ``target`` (the output's path and format): 16 hex digits."""
    h = hashlib.sha256()
    # Without ``pieces``: a job keeps its id across bitrates and across the upgrade that added pieces
    # (their keys carry what they depend on).
    data = replace(plan, job="").to_json()
    data.pop("pieces", None)
    h.update(json.dumps(data, sort_keys=True, ensure_ascii=False).encode())
    h.update(b"\0" + target.encode())
    return h.hexdigest()[:16]


class JobLocks(Protocol):
    def hold_job(self, session: str, job: str, target: str) -> AbstractContextManager[None]:
        """Held for the whole run of one job."""
        ...

    def session_critical(self, session: str) -> AbstractContextManager[None]:
        """Held briefly around registration (+ done-check) and cleanup."""
        ...

    def check(self) -> None:
        """Raise :class:`LockLostError` when a lock this process took has been lost."""
        ...


class NoLocks:
    """For callers that already exclude every other process (a test, or a caller holding its own lock)."""

    @contextlib.contextmanager
    def hold_job(self, session: str, job: str, target: str) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def session_critical(self, session: str) -> Iterator[None]:
        yield

    def check(self) -> None:
        pass


class FileLocks:
    """``flock`` locks in ``<root>/.locks/`` (the embedded mode's work directory).

    A lock held by a killed process is released by the kernel, so a rerun never waits for a dead one.
    Lock files are removed by their holder on release; a process that locked a file unlinked meanwhile
    sees that its path no longer names that file and locks again, so two never hold one name.
    """

    def __init__(self, root: Path) -> None:
        self.dir = Path(root).expanduser() / ".locks"

    def _lock(self, name: str, *, blocking: bool) -> int | None:
        """An fd holding ``name``'s lock, or None when it is held elsewhere (``blocking`` False)."""
        path = self.dir / name
        while True:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except FileNotFoundError:
                continue  # the folder was removed between mkdir and open
            except OSError as exc:
                raise os_error(exc, "write", path) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    return None
                raise UserError(f"cannot lock {path}: {exc.strerror or exc}") from exc
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)  # its holder removed it while we waited: lock the new one

    def _unlock(self, name: str, fd: int) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.dir / name)
        os.close(fd)  # closing releases the flock
        with contextlib.suppress(OSError):
            self.dir.rmdir()  # only when empty

    @contextlib.contextmanager
    def hold_job(self, session: str, job: str, target: str) -> Iterator[None]:
        name = f"{session}.{job}.lock"
        fd = self._lock(name, blocking=False)
        if fd is None:
            holder = ""
            with contextlib.suppress(OSError):
                holder = (self.dir / name).read_text(errors="replace").strip()
            raise JobBusyError(
                f"{target} is already being made from this book by {holder or 'another process'}; "
                "wait for it to finish"
            )
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
            yield
        finally:
            self._unlock(name, fd)

    @contextlib.contextmanager
    def session_critical(self, session: str) -> Iterator[None]:
        name = f"{session}.lock"
        fd = self._lock(name, blocking=True)
        assert fd is not None
        try:
            yield
        finally:
            self._unlock(name, fd)

    def check(self) -> None:
        pass  # a flock cannot be taken away from a live process


@dataclass
class Job:
    """One conversion: its plan (carrying the job id), where it lives, and the locks that guard it."""

    storage: Storage
    plan: Plan
    locks: JobLocks

    @property
    def session(self) -> str:
        return self.plan.session

    @property
    def id(self) -> str:
        return self.plan.job

    @classmethod
    def for_plan(cls, storage: Storage, plan: Plan, target: str, locks: JobLocks) -> Job:
        return cls(storage=storage, plan=replace(plan, job=job_id(plan, target)), locks=locks)

    def register(self) -> dict[str, int]:
        """Save the plan where workers and later cleanups find it; {chunk id: WAV size} of the chunks
        already whole in storage (read under the session lock, so no cleanup can remove them after)."""
        with self.locks.session_critical(self.session):
            self.locks.check()
            save_plan(self.storage, self.plan)
            return stored_chunk_sizes(self.storage, self.plan)

    def other_plans(self) -> list[Plan]:
        """The plans of this session's other jobs still registered (unreadable ones are kept as a
        reason to keep everything: see cleanup)."""
        out: list[Plan] = []
        prefix = plans_prefix(self.session)
        for key in list(self.storage.list(prefix)):
            name = key[len(prefix) :]
            if not name.endswith(".json") or name[:-5] == self.id:
                continue
            out.append(load_plan(self.storage, self.session, name[:-5]))
        return out

    def cleanup(self, discard: bool = False) -> int:
        """Unregister this job and delete the chunks only it needed; the number of chunks deleted.

        With no other job registered, the whole session folder goes (cover, markers, old layouts);
        with ``discard``, where the storage can (a local or NFS folder), it is only moved aside in one
        rename, for the workers to delete (``purge_discarded``; see DistributedExecutor).
        """
        with self.locks.session_critical(self.session):
            self.locks.check()
            self.storage.delete(plan_key(self.session, self.id))
            try:
                others = self.other_plans()
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("session %s: an unreadable plan is registered (%s): keeping its audio", self.session, exc)
                return 0
            if not others:
                discard_prefix = getattr(self.storage, "discard_prefix", None)
                if discard and discard_prefix is not None and discard_prefix(f"{self.session}/"):
                    return len(self.plan.chunks)
                delete_prefix = getattr(self.storage, "delete_prefix", None)
                if delete_prefix is not None:
                    delete_prefix(f"{self.session}/")
                    return len(self.plan.chunks)
            needed = {c.id for p in others for c in p.chunks}
            mine = [c.id for c in self.plan.chunks if c.id not in needed]
            verified = any(c.verify is not None for c in self.plan.chunks)
            for cid in mine:
                for key in chunk_keys(self.session, cid):
                    self.storage.delete(key)
                self.storage.delete(substitute_key(self.session, cid))
                if verified:
                    self.storage.delete(check_key(self.session, cid))  # --verify's record of it
                self.storage.delete(chunk_marker(self.session, cid))
            for b in self.plan.batches:
                self.storage.delete(batch_marker(self.session, b.id))
            for key in list(self.storage.list(pieces_prefix(self.session, self.id))):
                self.storage.delete(key)  # this job's encoded pieces: no other job reads them
            return len(mine)

