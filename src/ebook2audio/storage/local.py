"""A directory as storage: a local disk or a mounted NFS path (the same code).

Files get the modes the process's umask allows (0644 under umask 022, 0664 under 002), like any file
``open()`` creates, so that a coordinator and workers running as different users of one group can read
each other's files on NFS; directories likewise (0755/0775). A permission error is permanent: it is a
:class:`StoragePermissionError` (one line naming the path), never a retried :class:`StorageError`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import StorageError, StoragePermissionError
from .base import check_key, check_prefix

TRASH = ".trash"  # discard_prefix's folder under the root (no session is named so: ids start with a letter or digit)


def process_umask() -> int:
    """This process's umask, read without changing it (``/proc/self/status``, Linux >= 4.7).

    Elsewhere it falls back to setting and restoring it once, which is racy only against threads that
    create files at that very moment: call it once, before starting any (LocalStorage does, when built).
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def os_error(exc: OSError, action: str, path: Path | str) -> Exception:
    """Our exception for an OSError: a permission error is permanent, anything else transient."""
    if isinstance(exc, PermissionError):
        return StoragePermissionError(
            f"permission denied to {action} {path}: this user may not; on shared storage give the "
            "coordinator's and the workers' users access (one group and umask 002, or one user)"
        )
    return StorageError(f"cannot {action} {path}: {exc.strerror or exc}")


class LocalStorage:
    """Blobs as files under ``root``; writes go to a temp file in the same directory, then rename
    (``put_bytes``) or link (``put_bytes_if_absent``). ``umask`` defaults to the process's, read once."""

    def __init__(self, root: Path | str, *, umask: int | None = None) -> None:
        self.root = Path(root).expanduser()
        self.file_mode = 0o666 & ~(process_umask() if umask is None else umask)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).parts)

    def _write_temp(self, path: Path, data: bytes) -> str:
        """A new temp file beside ``path`` holding ``data``, fsynced, with the umask's mode (not 0600)."""
        for attempt in range(20):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)  # mkdir applies the umask: 0755/0775
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
                break
            except (FileNotFoundError, FileExistsError):
                # ``delete`` of a folder's last key (another process) pruned the folder while we made
                # it or before our mkstemp: make it again.
                if attempt == 19:
                    raise
        try:
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), self.file_mode)  # mkstemp makes 0600 whatever the umask
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            tmp = self._write_temp(path, data)
            try:
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise os_error(exc, "write", path) from exc

    def put_bytes_if_absent(self, key: str, data: bytes) -> bool:
        """Temp file, then ``link`` to the final name: the link fails if a blob is already there.

        ``link`` is atomic on local file systems and on NFS (the server creates the name or refuses
        it), so of concurrent writers exactly one wins, and readers see no blob or a whole one. The
        temp file is removed either way.
        """
        path = self._path(key)
        try:
            tmp = self._write_temp(path, data)
            try:
                os.link(tmp, path)
            except FileExistsError:
                # On NFS a retransmitted LINK whose first reply was lost answers EEXIST although it
                # succeeded: the temp file's link count says which (the open(2) man page's recipe).
                return os.stat(tmp).st_nlink == 2
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            return True
        except OSError as exc:
            raise os_error(exc, "write", path) from exc

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise os_error(exc, "read", path) from exc

    def get_head(self, key: str, n: int) -> bytes:
        path = self._path(key)
        try:
            with path.open("rb") as fh:
                return fh.read(n)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise os_error(exc, "read", path) from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int | None:
        path = self._path(key)
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise os_error(exc, "stat", path) from exc

    def list(self, prefix: str) -> Iterator[str]:
        base = self.root
        # Walk only the deepest directory the prefix names.
        head, _, _ = prefix.rpartition("/")
        start = self._path(head) if head else base
        if not start.is_dir():
            return
        for dirpath, dirs, files in os.walk(start):
            if dirpath == str(base) and TRASH in dirs:
                dirs.remove(TRASH)  # discarded folders are no longer in the storage
            for name in files:
                if name.startswith(".") and name.endswith(".tmp"):
                    continue
                rel = Path(dirpath, name).relative_to(base).as_posix()
                if rel.startswith(prefix):
                    yield rel

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise os_error(exc, "delete", path) from exc
        # Folders the key emptied go too (up to the root), so deleting every key leaves no tree behind.
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def delete_prefix(self, prefix: str) -> None:
        """Delete the folder ``prefix`` names; empty, ``.``, ``..``, absolute prefixes are refused."""
        import shutil

        path = self.root.joinpath(*check_prefix(prefix).rstrip("/").split("/"))
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)

    def discard_prefix(self, prefix: str) -> bool:
        """Move the folder ``prefix`` names out of the way in one rename, into ``<root>/.trash/``, for
        ``purge_discarded`` to delete later (a worker does, so that the coordinator does not spend its
        CPU unlinking every chunk of a finished book: ~2,000 files for 2.5 hours of audio, a quarter of
        its CPU, and one round trip each on NFS). False (nothing moved) where the folder is missing or
        cannot be renamed; the caller then deletes it."""
        import uuid

        path = self.root.joinpath(*check_prefix(prefix).rstrip("/").split("/"))
        if not path.is_dir() or path.is_symlink():
            return False
        trash = self.root / TRASH
        try:
            trash.mkdir(exist_ok=True)
            os.rename(path, trash / f"{path.name}-{uuid.uuid4().hex}")
        except OSError:
            return False
        return True

    def purge_discarded(self) -> int:
        """Delete what ``discard_prefix`` moved aside (by any process); the number of folders deleted.
        Safe to run in several processes at once."""
        import shutil

        trash = self.root / TRASH
        try:
            entries = list(os.scandir(trash))
        except OSError:
            return 0
        for entry in entries:
            shutil.rmtree(entry.path, ignore_errors=True)
        return len(entries)

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(path)
        yield path

    def describe(self) -> str:
        return f"local:{self.root}"
