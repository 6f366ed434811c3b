"""An S3 bucket as storage (AWS S3, MinIO, Ceph, any S3-compatible server), through boto3.

Only this module imports boto3/botocore. Atomicity comes from S3 itself: one PUT makes an object
visible whole or not at all, so ``put_bytes`` is a single PUT (no multipart upload). Library errors
are translated here: a missing bucket or refused credentials is a ``UserError`` (one line, nothing to
retry), a network or server hiccup is a ``StorageError`` (transient: the executors retry it), and a
missing key is ``FileNotFoundError``, as with ``LocalStorage``.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import StorageError, UserError
from .base import check_key, check_prefix

log = logging.getLogger(__name__)

DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes
CONFLICT_RETRIES = 5  # conditional PUTs tried again on 409 ConditionalRequestConflict (~1.5 s in all)
_COPY_BLOCK = 1 << 20

# Error codes that mean "the bucket is not there" or "you may not use it": the user must act.
_NO_BUCKET = frozenset({"NoSuchBucket"})
_DENIED = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AccountProblem",
        "403",
        "Forbidden",
    }
)
_NO_KEY = frozenset({"NoSuchKey", "404", "NotFound"})


def mask_endpoint(url: str | None) -> str:
    """An endpoint URL without any ``user:password@`` part (for logs)."""
    if not url:
        return "AWS"
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def _is_client_error(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError)


def _normalise_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    if ".." in PurePosixPath(prefix).parts:
        raise UserError(f"invalid S3 key prefix {prefix!r}")
    return f"{prefix}/" if prefix else ""


class S3Storage:
    """Blobs as objects ``<prefix><key>`` in one bucket. Build it with :func:`open_s3_storage`.

    ``client`` is a ready boto3 S3 client (configured with retries); this class holds no other state.
    ``page_size`` keys are listed per ListObjectsV2 request and deleted per DeleteObjects request.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        page_size: int = DELETE_BATCH,
    ) -> None:
        if not 1 <= page_size <= DELETE_BATCH:
            raise ValueError(f"page_size must be 1-{DELETE_BATCH}")
        self.client = client
        self.page_size = page_size
        self.bucket = bucket
        self.prefix = _normalise_prefix(prefix)
        self.endpoint_url = endpoint_url
        self.conditional_writes = True  # False once the server answers 501 to If-None-Match

    # -- error translation -------------------------------------------------------------------

    def _where(self) -> str:
        return f"s3://{self.bucket} at {mask_endpoint(self.endpoint_url)}"

    def _translate(self, exc: Exception, action: str, key: str | None = None) -> Exception:
        """Our exception for a boto3/botocore one (the caller raises it ``from exc``)."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        what = f"{action} {key!r} in {self._where()}" if key is not None else f"{action} {self._where()}"
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return UserError(
                f"no S3 credentials to {what}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(and AWS_SESSION_TOKEN for temporary ones), or AWS_PROFILE, or run where an instance role applies"
            )
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _NO_BUCKET:
                return UserError(
                    f"S3 bucket {self.bucket!r} does not exist at {mask_endpoint(self.endpoint_url)}"
                )
            if code in _DENIED or status == 403:
                return UserError(
                    f"S3 access denied ({code or status}) to {what}: check AWS_ACCESS_KEY_ID, "
                    "AWS_SECRET_ACCESS_KEY and the bucket policy"
                )
            if key is not None and (code in _NO_KEY or status == 404):
                return FileNotFoundError(f"{self._where()}: no object {key!r}")
            message = err.get("Message") or code or f"HTTP {status}"
            return StorageError(f"cannot {what}: {message}")
        if isinstance(exc, BotoCoreError):
            return StorageError(f"cannot {what}: {exc}")
        return StorageError(f"cannot {what}: {type(exc).__name__}: {exc}")

    def _errors(self) -> tuple[type[Exception], ...]:
        from botocore.exceptions import BotoCoreError, ClientError

        return (BotoCoreError, ClientError)

    def _object(self, key: str) -> str:
        check_key(key)
        return self.prefix + key

    # -- the Storage protocol --------------------------------------------------------------------

    def check_bucket(self) -> None:
        """Raise a one-line ``UserError`` now if the bucket is missing or refused (HEAD bucket)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except self._errors() as exc:
            from botocore.exceptions import ClientError

            if isinstance(exc, ClientError):
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in ("404", "NoSuchBucket", "NotFound"):
                    raise UserError(
                        f"S3 bucket {self.bucket!r} does not exist at {mask_endpoint(self.endpoint_url)}"
                    ) from exc
            raise self._translate(exc, "open") from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        name = self._object(key)
        try:
            self.client.put_object(Bucket=self.bucket, Key=name, Body=data, ContentLength=len(data))
        except self._errors() as exc:
            raise self._translate(exc, "write", key) from exc

    def put_bytes_if_absent(self, key: str, data: bytes) -> bool:
        """A conditional PUT (``If-None-Match: *``): S3 refuses it when the object exists.

        412 PreconditionFailed: another writer stored it first (False). 409 ConditionalRequestConflict:
        a conditional write of the same key is in flight; it may yet fail, so ours is tried again a
        few times (then a transient StorageError: the task is retried and finds the winner's blob).
        A server without conditional writes (501 NotImplemented) gets :meth:`_put_if_absent_unsafe`.
        """
        from botocore.exceptions import ClientError

        if not self.conditional_writes:
            return self._put_if_absent_unsafe(key, data)
        name = self._object(key)
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=name, Body=data, ContentLength=len(data), IfNoneMatch="*"
                )
                return True
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if code == "PreconditionFailed" or status == 412:
                    return False
                if code == "ConditionalRequestConflict" or status == 409:
                    if attempt < CONFLICT_RETRIES:
                        time.sleep(0.05 * 2**attempt)
                        continue
                    raise StorageError(
                        f"cannot write {key!r} in {self._where()}: another conditional write of it is "
                        "still in progress"
                    ) from exc
                if code == "NotImplemented" or status == 501:
                    log.warning(
                        "%s does not implement conditional writes (If-None-Match): a chunk is checked, "
                        "then written; duplicate batches may replace one another's chunks",
                        self._where(),
                    )
                    self.conditional_writes = False
                    return self._put_if_absent_unsafe(key, data)
                raise self._translate(exc, "write", key) from exc
            except self._errors() as exc:
                raise self._translate(exc, "write", key) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _put_if_absent_unsafe(self, key: str, data: bytes) -> bool:
        """For servers without conditional writes: HEAD, then a plain PUT if nothing is there.

        Not atomic: two writers between the HEAD and the PUT both write, and the last PUT stays. What
        it still guarantees rests on S3 itself (every PUT is whole: readers never see a partial blob)
        and on the engines (a chunk id gives the same samples on every worker, so the blob that stays
        is the same audio). AWS S3, MinIO and Ceph RGW implement ``If-None-Match: *``.
        """
        if self.size(key) is not None:
            return False
        self.put_bytes(key, data)
        return True

    def get_bytes(self, key: str) -> bytes:
        name = self._object(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=name)
            body = response["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
        except self._errors() as exc:
            raise self._translate(exc, "read", key) from exc
        return data

    def get_head(self, key: str, n: int) -> bytes:
        if n <= 0:
            if not self.exists(key):
                raise FileNotFoundError(f"{self._where()}: no object {key!r}")
            return b""
        name = self._object(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=name, Range=f"bytes=0-{n - 1}")
            body = response["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
        except self._errors() as exc:
            from botocore.exceptions import ClientError

            if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""  # the object exists and is empty
            raise self._translate(exc, "read", key) from exc
        return data[:n]  # a server that ignores Range sends the whole object

    def size(self, key: str) -> int | None:
        name = self._object(key)
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=name)
        except self._errors() as exc:
            translated = self._translate(exc, "stat", key)
            if isinstance(translated, FileNotFoundError):
                return None
            raise translated from exc
        return int(response["ContentLength"])

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def _objects(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under ``prefix``, a page of keys per request."""
        full = self.prefix + prefix
        cut = len(self.prefix)
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            pages = paginator.paginate(
                Bucket=self.bucket, Prefix=full, PaginationConfig={"PageSize": self.page_size}
            )
            for page in pages:
                for obj in page.get("Contents", ()):
                    yield obj["Key"][cut:], int(obj["Size"])
        except self._errors() as exc:
            raise self._translate(exc, f"list {prefix!r} in") from exc

    def list(self, prefix: str) -> Iterator[str]:
        for key, _size in self._objects(prefix):
            yield key

    def sizes(self, prefix: str) -> dict[str, int]:
        """{key: size} of every object under ``prefix``: one request per page of keys (a listing),
        where ``size()`` costs a request per key."""
        return dict(self._objects(prefix))

    def delete(self, key: str) -> None:
        name = self._object(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=name)
        except self._errors() as exc:
            translated = self._translate(exc, "delete", key)
            if isinstance(translated, FileNotFoundError):
                return
            raise translated from exc

    def delete_prefix(self, prefix: str) -> None:
        """Delete every key in the folder ``prefix`` names, with batched DeleteObjects requests.

        Empty, ``.``, ``..`` and absolute prefixes are refused (:func:`check_prefix`), whatever the
        storage's own prefix: never the whole bucket, nor the whole shared area in it.
        """
        batch: list[str] = []
        for key in self.list(check_prefix(prefix)):
            batch.append(self.prefix + key)
            if len(batch) == self.page_size:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, names: list[str]) -> None:
        try:
            response = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": n} for n in names], "Quiet": True},
            )
        except self._errors() as exc:
            translated = self._translate(exc, "delete objects in")
            if isinstance(translated, UserError) or not _is_client_error(exc):
                raise translated from exc
            # Some S3-compatible servers refuse DeleteObjects (e.g. they want a Content-MD5 header
            # that botocore no longer sends): delete one object at a time instead.
            log.debug("DeleteObjects refused (%s): deleting %d objects one by one", exc, len(names))
            for name in names:
                try:
                    self.client.delete_object(Bucket=self.bucket, Key=name)
                except self._errors() as exc2:
                    one = self._translate(exc2, "delete", name[len(self.prefix) :])
                    if not isinstance(one, FileNotFoundError):
                        raise one from exc2
            return
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise StorageError(
                f"cannot delete {len(errors)} objects in {self._where()}: "
                f"{first.get('Key')}: {first.get('Code')} {first.get('Message', '')}".rstrip()
            )

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """Download the object to a temporary file, removed when the block ends."""
        name = self._object(key)
        with tempfile.TemporaryDirectory(prefix="ebook2audio-s3-") as tmp:
            path = Path(tmp) / (PurePosixPath(key).name or "blob")
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=name)
                body = response["Body"]
                try:
                    with path.open("wb") as fh:
                        for block in iter(lambda: body.read(_COPY_BLOCK), b""):
                            fh.write(block)
                finally:
                    body.close()
            except self._errors() as exc:
                raise self._translate(exc, "download", key) from exc
            except OSError as exc:
                raise StorageError(f"cannot download {key!r} to {path}: {exc.strerror or exc}") from exc
            yield path

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix} at {mask_endpoint(self.endpoint_url)}"

    def __repr__(self) -> str:
        return f"S3Storage({self.describe()})"


def open_s3_storage(
    bucket: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    prefix: str = "",
    max_attempts: int = 5,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    check: bool = True,
    session: Any = None,
) -> S3Storage:
    """A ready :class:`S3Storage`: a boto3 client with standard-mode retries, the bucket checked.

    Credentials: with ``access_key`` and ``secret_key``, those (and ``session_token``, the third part of
    temporary STS/SSO credentials); with neither, boto3's own chain, untouched (a token alone is left
    to it): the AWS_* environment
    variables (AWS_SESSION_TOKEN included), AWS_PROFILE and ~/.aws (SSO, assume-role, credential_process),
    container and instance roles, refreshed by boto3 when they expire. ``endpoint_url`` selects MinIO
    or another S3-compatible server. ``session`` is an optional boto3 Session to build the client from
    (it caches the service model).
    """
    if not bucket:
        raise UserError("S3 storage needs a bucket: set S3_BUCKET_NAME or --s3-bucket")
    access_key, secret_key = access_key or None, secret_key or None
    session_token = session_token or None
    if (access_key is None) != (secret_key is None):
        raise UserError("give both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither")
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError as exc:
        raise UserError("S3 storage needs boto3: pip install 'ebook2audio[distributed]'") from exc
    extra: dict[str, Any] = {}
    if endpoint_url:
        extra = {
            # Path-style addressing works with MinIO and any endpoint without wildcard DNS.
            "s3": {"addressing_style": "path"},
            # botocore >= 1.36 adds CRC32 checksum headers to every upload by default, which several
            # S3-compatible servers reject (botocore #3352): send checksums only where S3 requires them.
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }
    config = Config(
        retries={"total_max_attempts": max_attempts, "mode": "standard"},  # first try included
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        **extra,
    )
    try:
        client = (session or boto3.session.Session()).client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            aws_session_token=session_token if access_key is not None else None,
            config=config,
        )
    except (BotoCoreError, ValueError) as exc:
        raise UserError(f"cannot configure S3 client for {mask_endpoint(endpoint_url)}: {exc}") from exc
    storage = S3Storage(client, bucket, prefix=prefix, endpoint_url=endpoint_url)
    if check:
        storage.check_bucket()
    log.debug("storage: %s", storage.describe())
    return storage
