"""Where chunk audio and job state live: a directory (local disk or NFS mount) or an S3 bucket."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Storage
from .local import LocalStorage
from .s3 import S3Storage  # boto3 itself is imported only when an S3 storage is opened

__all__ = ["STORAGE_TYPES", "LocalStorage", "S3Storage", "Storage", "open_storage"]

STORAGE_TYPES = ("local", "nfs", "s3")


def open_storage(
    kind: str,
    path: str,
    *,
    s3_endpoint_url: str | None = None,
    bucket: str | None = None,
    region: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    prefix: str = "",
) -> Storage:
    """The storage named by SHARED_STORAGE_TYPE: ``local``/``nfs`` -> a directory, ``s3`` -> a bucket.

    ``local`` and ``nfs`` are the same code: an NFS share is a mounted directory, ``path``. For ``s3``,
    ``path`` is unused; the bucket is checked now, so a missing bucket or refused credentials fail at
    once with one line rather than in the middle of a job. Without ``access_key``/``secret_key``, the
    credentials come from boto3's own chain; with them, ``session_token`` goes with them when given.
    """
    kind = (kind or "local").strip().lower()
    if kind in ("local", "nfs"):
        if not path:
            raise ConfigError(f"{kind} storage needs a directory: set SHARED_STORAGE_PATH or --storage-path")
        return LocalStorage(path)
    if kind == "s3":
        from .s3 import open_s3_storage

        return open_s3_storage(
            bucket or "",
            endpoint_url=s3_endpoint_url,
            region=region,
            access_key=access_key,
            secret_key=secret_key,
            session_token=session_token,
            prefix=prefix,
        )
    raise ConfigError(f"unknown storage type {kind!r} (choose from {', '.join(STORAGE_TYPES)})")
