"""Settings of the distributed mode (coordinator and workers): flags > environment > defaults.

The environment names are those of the distributed guide (``ENV_VARS``); a few tuning knobs that the
guide does not name use the package prefix (``TUNING_ENV_VARS``). Pure: no Celery, no Redis here.

Passwords never reach a log line or an error message: print URLs through :func:`mask_url`.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from .errors import ConfigError

if TYPE_CHECKING:
    from .storage.base import Storage

#: Every environment variable of the distributed guide, exactly (docker compose and .env name the same).
ENV_VARS: tuple[str, ...] = (
    "DISTRIBUTED_MODE",
    "NUM_WORKERS",
    "REDIS_URL",
    "REDIS_PASSWORD",
    "SHARED_STORAGE_TYPE",
    "SHARED_STORAGE_PATH",
    "S3_ENDPOINT_URL",
    "S3_BUCKET_NAME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "CELERY_WORKER_CONCURRENCY",
    "CELERY_WORKER_MAX_TASKS_PER_CHILD",
    "FLOWER_USER",
    "FLOWER_PASSWORD",
)

#: Tuning knobs outside the guide (seconds).
TUNING_ENV_VARS: tuple[str, ...] = (
    "EBOOK2AUDIO_WORKER_TIMEOUT",
    "EBOOK2AUDIO_VISIBILITY_TIMEOUT",
    "EBOOK2AUDIO_TASK_SOFT_TIME_LIMIT",
    "EBOOK2AUDIO_TASK_TIME_LIMIT",
    "EBOOK2AUDIO_RESULT_EXPIRES",
    "EBOOK2AUDIO_QUEUE",
    "EBOOK2AUDIO_MAX_IN_FLIGHT",
    "EBOOK2AUDIO_SESSION_LOCK_TTL",
)

STORAGE_TYPES = ("local", "nfs", "s3")
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
SSL_QUERY_KEYS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")
_CERT_REQS = {
    "none": ssl.CERT_NONE,
    "cert_none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "cert_optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
    "cert_required": ssl.CERT_REQUIRED,
}


@dataclass(frozen=True)
class DistributedSettings:
    enabled: bool = False  # DISTRIBUTED_MODE / --distributed
    num_workers: int = 1  # NUM_WORKERS / --num-workers: workers the coordinator waits for
    redis_url: str = DEFAULT_REDIS_URL  # REDIS_URL (REDIS_PASSWORD inserted): broker and result backend
    storage_type: str = "local"  # SHARED_STORAGE_TYPE: local | nfs | s3
    storage_path: str = "/mnt/shared"  # SHARED_STORAGE_PATH (a directory; not used with s3)
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    aws_access_key_id: str = ""
    aws_secret_access_key: str = ""
    aws_session_token: str = ""  # AWS_SESSION_TOKEN: the third part of temporary (STS/SSO) credentials
    aws_region: str = ""
    worker_concurrency: int = 1  # CELERY_WORKER_CONCURRENCY: processes per worker (one per GPU)
    max_tasks_per_child: int = 0  # CELERY_WORKER_MAX_TASKS_PER_CHILD: 0 = never recycle
    flower_user: str = ""
    flower_password: str = ""
    worker_timeout: float = 300.0  # how long the coordinator waits for workers (at start, or to come back)
    visibility_timeout: float = 3600.0  # Redis redelivers an unacked task after this: above the longest task
    soft_time_limit: float = 1800.0  # a batch taking longer is interrupted (SoftTimeLimitExceeded)
    time_limit: float = 2400.0  # ... and its process killed after this (hard limit)
    result_expires: float = 86400.0
    queue: str = "ebook2audio"
    # EBOOK2AUDIO_MAX_IN_FLIGHT / --max-in-flight: batches of one job queued or running at once
    # (0 = auto: twice the task slots of the live workers, plus 2), so that jobs share the queue
    max_in_flight: int = 0
    # EBOOK2AUDIO_SESSION_LOCK_TTL: the coordinator's session lock lapses this long after its holder
    # stops refreshing it; a second coordinator on the same session waits this plus 5 s, then stops
    session_lock_ttl: float = 20.0
    device: str = "cpu"  # the worker's device: cpu | auto | cuda | cuda:N
    hostname: str = ""  # the worker's node name ("" = ebook2audio-<pid>@<host>)

    def validated(self) -> DistributedSettings:
        scheme = urlsplit(self.redis_url).scheme
        if scheme not in ("redis", "rediss"):
            raise ConfigError(
                f"REDIS_URL must start with redis:// or rediss://, not {mask_url(self.redis_url)!r}"
            )
        if self.storage_type not in STORAGE_TYPES:
            raise ConfigError(
                f"unknown shared storage type {self.storage_type!r} (choose from {', '.join(STORAGE_TYPES)})"
            )
        if self.storage_type == "s3" and not self.s3_bucket:
            raise ConfigError("shared storage s3 needs a bucket: set S3_BUCKET_NAME or --s3-bucket")
        if self.storage_type != "s3" and not self.storage_path:
            raise ConfigError("shared storage needs a directory: set SHARED_STORAGE_PATH or --storage-path")
        if self.num_workers < 1:
            raise ConfigError("--num-workers must be 1 or more")
        if self.worker_concurrency < 1:
            raise ConfigError("--concurrency must be 1 or more")
        if self.max_tasks_per_child < 0:
            raise ConfigError("--max-tasks-per-child must be 0 (never) or more")
        if self.max_in_flight < 0:
            raise ConfigError("--max-in-flight must be 0 (auto) or more")
        if self.worker_timeout <= 0:
            raise ConfigError("--worker-timeout must be positive")
        if not 0 < self.soft_time_limit < self.time_limit:
            raise ConfigError("the task time limits must satisfy 0 < soft limit < hard limit")
        if self.visibility_timeout <= self.time_limit:
            raise ConfigError(
                "the visibility timeout must exceed the hard task time limit, or Redis delivers long tasks twice"
            )
        if self.session_lock_ttl < 1:
            raise ConfigError("EBOOK2AUDIO_SESSION_LOCK_TTL must be 1 second or more")
        if self.result_expires <= 0:
            raise ConfigError("the result expiry must be positive")
        if not re.fullmatch(r"[A-Za-z0-9_.:-]+", self.queue):
            raise ConfigError(f"invalid queue name {self.queue!r}")
        return self

    @property
    def redis_display(self) -> str:
        return mask_url(self.redis_url)

    @property
    def redis_endpoint(self) -> str:
        host, port = redis_host_port(self.redis_url)
        return f"{host}:{port}"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never be printed."""
        pw = urlsplit(self.redis_url).password
        found = [
            unquote(pw) if pw else "",
            pw or "",
            self.aws_secret_access_key,
            self.aws_session_token,
            self.flower_password,
        ]
        return tuple(s for s in found if s)


_FIELDS = {f.name: f for f in fields(DistributedSettings)}

# environment variable -> field
_ENV_FIELDS = {
    "DISTRIBUTED_MODE": "enabled",
    "NUM_WORKERS": "num_workers",
    "REDIS_URL": "redis_url",
    "SHARED_STORAGE_TYPE": "storage_type",
    "SHARED_STORAGE_PATH": "storage_path",
    "S3_ENDPOINT_URL": "s3_endpoint_url",
    "S3_BUCKET_NAME": "s3_bucket",
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_SESSION_TOKEN": "aws_session_token",
    "AWS_REGION": "aws_region",
    "CELERY_WORKER_CONCURRENCY": "worker_concurrency",
    "CELERY_WORKER_MAX_TASKS_PER_CHILD": "max_tasks_per_child",
    "FLOWER_USER": "flower_user",
    "FLOWER_PASSWORD": "flower_password",
    "EBOOK2AUDIO_WORKER_TIMEOUT": "worker_timeout",
    "EBOOK2AUDIO_VISIBILITY_TIMEOUT": "visibility_timeout",
    "EBOOK2AUDIO_TASK_SOFT_TIME_LIMIT": "soft_time_limit",
    "EBOOK2AUDIO_TASK_TIME_LIMIT": "time_limit",
    "EBOOK2AUDIO_RESULT_EXPIRES": "result_expires",
    "EBOOK2AUDIO_QUEUE": "queue",
    "EBOOK2AUDIO_MAX_IN_FLIGHT": "max_in_flight",
    "EBOOK2AUDIO_SESSION_LOCK_TTL": "session_lock_ttl",
    "EBOOK2AUDIO_DEVICE": "device",
}

# command-line flag (argparse dest) -> field, where the names differ
_FLAG_FIELDS = {
    "distributed": "enabled",
    "concurrency": "worker_concurrency",
    "s3_bucket": "s3_bucket",
    "s3_region": "aws_region",
}


def _coerce(name: str, value: Any, source: str) -> Any:
    default = getattr(DistributedSettings(), name)
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            low = str(value).strip().lower()
            if low in ("1", "true", "yes", "on", "distributed"):
                return True
            if low in ("0", "false", "no", "off", "", "embedded", "local"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(str(value).strip())
        if isinstance(default, float):
            return float(str(value).strip())
        return str(value).strip()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid value for {source}: {value!r}") from exc


def load_distributed_settings(
    flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> DistributedSettings:
    """Defaults < environment (``ENV_VARS``, ``TUNING_ENV_VARS``) < flags (None = not given).

    REDIS_PASSWORD (or ``redis_password`` in flags) goes into the Redis URL when the URL has none.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for var, name in _ENV_FIELDS.items():
        raw = env.get(var)
        if raw is not None and raw.strip() != "":
            values[name] = _coerce(name, raw, var)
    for key, value in (flags or {}).items():
        if value is None:
            continue
        name = _FLAG_FIELDS.get(key, key)
        if name in _FIELDS:
            values[name] = _coerce(name, value, "--" + key.replace("_", "-"))
    settings = replace(DistributedSettings(), **values)
    password = (flags or {}).get("redis_password") or env.get("REDIS_PASSWORD", "")
    if password:
        settings = replace(settings, redis_url=with_password(settings.redis_url, password))
    return settings.validated()


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` inserted, unless it already carries one."""
    parts = urlsplit(url)
    if parts.password or not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (``redis://:pw@h:6379/0`` -> ``redis://:***@h:6379/0``)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    query = parts.query
    if query:
        pairs = [
            (k, "***" if "pass" in k.lower() else v) for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(pairs, safe="*/")
    netloc = parts.netloc
    if password is not None:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***`` (for library error messages)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def redis_host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port or 6379
    except ValueError as exc:
        raise ConfigError(f"invalid port in Redis URL {mask_url(url)}") from exc
    return parts.hostname or "localhost", port


def split_ssl_query(url: str) -> tuple[str, dict[str, Any] | None]:
    """(URL without the ``ssl_*`` query options, the TLS options) for a rediss:// URL.

    ``?ssl_cert_reqs=none|optional|required`` (also CERT_NONE, ...; default required),
    ``ssl_ca_certs=/path/ca.pem``, ``ssl_certfile``, ``ssl_keyfile``: the keys Celery's
    ``broker_use_ssl`` / ``redis_backend_use_ssl`` and redis-py take. None for redis:// URLs.
    """
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    keep = [(k, v) for k, v in pairs if k not in SSL_QUERY_KEYS]
    opts = {k: v for k, v in pairs if k in SSL_QUERY_KEYS}
    clean = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(keep), parts.fragment))
    if parts.scheme != "rediss":
        if opts:
            raise ConfigError(f"TLS options given for a plain redis:// URL ({mask_url(url)}): use rediss://")
        return clean, None
    reqs_raw = opts.get("ssl_cert_reqs", "required").strip().lower()
    if reqs_raw not in _CERT_REQS:
        raise ConfigError(f"ssl_cert_reqs must be none, optional or required, not {opts['ssl_cert_reqs']!r}")
    ssl_opts: dict[str, Any] = {"ssl_cert_reqs": _CERT_REQS[reqs_raw]}
    for key in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
        if opts.get(key):
            ssl_opts[key] = opts[key]
    return clean, ssl_opts


def open_shared_storage(ds: DistributedSettings) -> Storage:
    """The storage that the coordinator and every worker share (the truth about finished chunks)."""
    from . import storage as storage_pkg

    opener = getattr(storage_pkg, "open_storage", None)
    if opener is not None:
        return opener(  # type: ignore[no-any-return]
            ds.storage_type,
            ds.storage_path,
            s3_endpoint_url=ds.s3_endpoint_url or None,
            bucket=ds.s3_bucket or None,
            region=ds.aws_region or None,
            access_key=ds.aws_access_key_id or None,
            secret_key=ds.aws_secret_access_key or None,
            session_token=ds.aws_session_token or None,
        )
    if ds.storage_type == "s3":  # pragma: no cover - until storage.open_storage exists
        raise ConfigError("shared storage s3 is not available in this build")
    from .storage.local import LocalStorage

    return LocalStorage(ds.storage_path)


def check_shared_directory(ds: DistributedSettings, *, create: bool) -> None:
    """A local/NFS shared directory must exist (an NFS mount is never created); s3 is not checked here."""
    if ds.storage_type == "s3":
        return
    path = os.path.expanduser(ds.storage_path)
    if os.path.isdir(path):
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"shared storage {path} is not writable by this user")
        return
    if ds.storage_type == "nfs" or not create:
        raise ConfigError(
            f"shared storage {path} does not exist: mount it or set SHARED_STORAGE_PATH / --storage-path"
        )
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create shared storage {path}: {exc.strerror}") from exc
