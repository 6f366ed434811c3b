"""The distributed mode's command line: ``convert --distributed`` (the coordinator) and ``worker``.

Coordinator::

    ebook2audio convert BOOK --distributed --num-workers 2 --redis-url redis://host:6379/0 \\
        --storage-path /mnt/shared [-o OUT] [--session ID] [--worker-timeout 300]

Worker (one per GPU, or per CPU core)::

    ebook2audio worker --redis-url redis://host:6379/0 --storage-path /mnt/shared \\
        [--device cpu|auto|cuda|cuda:N] [--concurrency 1] [--hostname gpu0@%h]

Every flag has an environment variable (distributed_config.ENV_VARS): REDIS_URL, REDIS_PASSWORD,
NUM_WORKERS, SHARED_STORAGE_TYPE/PATH, S3_*, AWS_*, CELERY_WORKER_CONCURRENCY, ...
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from .distributed_config import check_shared_directory, load_distributed_settings, open_shared_storage
from .errors import UserError
from .metrics import NO_METRICS, Metrics


def _env_distributed() -> bool:
    return os.environ.get("DISTRIBUTED_MODE", "").strip().lower() in ("1", "true", "yes", "on", "distributed")


def _storage_flags(g: Any) -> None:
    g.add_argument(
        "--storage-type",
        choices=["local", "nfs", "s3"],
        help="shared storage (SHARED_STORAGE_TYPE, default local)",
    )
    g.add_argument(
        "--storage-path",
        help="shared directory for local or nfs storage (SHARED_STORAGE_PATH, default /mnt/shared; not used with s3)",
    )
    g.add_argument(
        "--s3-endpoint-url", help="S3-compatible endpoint, e.g. http://minio:9000 (S3_ENDPOINT_URL)"
    )
    g.add_argument("--s3-bucket", help="bucket for s3 shared storage (S3_BUCKET_NAME)")
    g.add_argument("--s3-region", help="region for s3 (AWS_REGION)")


def _redis_flag(g: Any) -> None:
    g.add_argument(
        "--redis-url",
        help="broker and result backend (REDIS_URL, default redis://localhost:6379/0; the password may come "
        "from REDIS_PASSWORD; TLS: rediss://...?ssl_cert_reqs=required&ssl_ca_certs=/path/ca.pem)",
    )


def add_convert_flags(parser: argparse.ArgumentParser) -> None:
    """The coordinator's flags on ``convert``."""
    g = parser.add_argument_group("distributed mode (Celery + Redis workers)")
    g.add_argument(
        "--distributed",
        action=argparse.BooleanOptionalAction,
        default=_env_distributed(),
        help="synthesise on `ebook2audio worker` processes through Redis (DISTRIBUTED_MODE)",
    )
    g.add_argument(
        "--num-workers", type=int, help="workers to wait for before starting (NUM_WORKERS, default 1)"
    )
    _redis_flag(g)
    _storage_flags(g)
    g.add_argument(
        "--worker-timeout",
        type=float,
        metavar="S",
        help="how long to wait for workers, at the start or when none is alive (default 300)",
    )
    g.add_argument(
        "--max-in-flight", type=int, metavar="N",
        help="batches of this job queued or running at once, so that jobs on one cluster share the workers "
        "(EBOOK2AUDIO_MAX_IN_FLIGHT; default 0 = auto: 2 x the live workers' task slots + 2)",
    )  # fmt: skip


def add_commands(subparsers: Any) -> None:
    w = subparsers.add_parser(
        "worker",
        help="run a synthesis worker for distributed conversions (one per GPU or core)",
        description="Run a Celery worker that synthesises batches for `convert --distributed` coordinators.",
    )
    _redis_flag(w)
    w.add_argument(
        "--concurrency", type=int, help="synthesis processes (CELERY_WORKER_CONCURRENCY, default 1)"
    )
    w.add_argument("--device", help="cpu (default), auto, cuda or cuda:N; never silently falls back")
    w.add_argument(
        "--max-tasks-per-child",
        type=int,
        help="recycle a process after N batches (CELERY_WORKER_MAX_TASKS_PER_CHILD)",
    )
    w.add_argument("--hostname", help="node name, e.g. gpu0@%%h (default ebook2audio-<pid>@<host>)")
    _storage_flags(w)
    w.set_defaults(handler=run_worker_command)
    try:  # `ebook2audio flower`: the monitoring UI, behind a password (flower.py)
        from .flower import add_flower_command
    except ImportError:
        return
    add_flower_command(subparsers)


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if v is not None}


def run_worker_command(args: argparse.Namespace) -> int:
    from .executors.celery_app import run_worker
    from .logging_setup import json_console, structured_logging_active

    ds = load_distributed_settings(_flags(args))
    return run_worker(
        ds,
        loglevel="DEBUG" if getattr(args, "debug", False) else "INFO",
        keep_logging=structured_logging_active(),  # JSON lines / syslog: Celery keeps our handlers
        banner=not json_console(),
    )


def run_coordinator(args: argparse.Namespace, metrics: Metrics = NO_METRICS) -> int:
    """``convert --distributed``: the embedded pipeline with shared storage and Celery workers."""
    result, reporter = coordinate(args, metrics)
    for line in result.summary():
        reporter.message(line)
    return 0


def coordinate(args: argparse.Namespace, metrics: Metrics = NO_METRICS) -> tuple[Any, Any]:
    """Convert ``args.book`` through the cluster: (the pipeline's ConvertResult, the reporter)."""
    from .config import load_settings
    from .executors.celery_app import make_celery_app
    from .executors.distributed import (
        DistributedExecutor,
        RedisUnavailableError,
        check_redis,
        connection_errors,
        redis_client,
    )
    from .executors.session_lock import RedisLocks
    from .job import check_session_id
    from .pipeline import book_session_id, convert
    from .progress import make_reporter

    flags = _flags(args)
    settings = load_settings(flags, config_file=getattr(args, "config", None))
    ds = load_distributed_settings(flags)
    book: Path = args.book
    if not book.exists():
        raise UserError(f"{book}: no such file")
    if book.is_dir():
        raise UserError(f"{book} is a directory, not a book")
    if settings.session:
        check_session_id(settings.session)
    check_redis(ds)
    check_shared_directory(ds, create=ds.storage_type == "local")
    storage = open_shared_storage(ds)
    reporter = make_reporter(quiet=getattr(args, "quiet", False), metrics=metrics)
    reporter.message(f"distributed: Redis {ds.redis_display}, shared storage {storage.describe()}")
    app = make_celery_app(ds)

    # One coordinator per session: the Redis lock, held for the whole run (RedisLocks); a coordinator
    # that loses it stops at once (the executor's loop and the pipeline check it).
    lock_client = redis_client(ds)
    locks = RedisLocks(lock_client, notify=reporter.message, ttl=ds.session_lock_ttl)

    def factory(store: Any, info: Any, s: Any) -> DistributedExecutor:
        return DistributedExecutor(
            app, ds, store, notify=reporter.message, strict=s.strict, check_lock=locks.check, metrics=metrics
        )

    session = settings.session or book_session_id(book)
    try:
        try:
            result = convert(
                book,
                replace(settings, session=session),
                reporter,
                storage=storage,
                executor_factory=factory,
                parallel=ds.num_workers,
                locks=locks,
            )
        except connection_errors() as exc:
            raise RedisUnavailableError(
                f"lost Redis at {ds.redis_endpoint} ({exc.__class__.__name__})"
            ) from None
    finally:
        app.close()
        lock_client.close()
    return result, reporter
