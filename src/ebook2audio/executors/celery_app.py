"""The Celery side of the distributed mode: the app, its one task, and the worker.

The task ``ebook2audio.synthesize_batch(session, batch_id, chapter=, chars=, job=, strict=)`` is a
thin wrapper: its arguments are ids (``chapter`` and ``chars`` only make it readable in Flower;
``strict`` is ``--strict``); the worker loads the job's plan from shared storage (cached per job), the
engine the plan names (once per process) and calls
:func:`ebook2audio.tasks.synthesize_batch`, which is idempotent. The JSON result is a
:class:`~ebook2audio.model.BatchResult` (see :func:`result_to_json`).

Configuration (:func:`celery_config`): Redis as broker and result backend, JSON only (a pickled
message is refused), late acks + reject on worker loss + prefetch 1 (the queue balances the work),
a visibility timeout above the hard time limit (a batch whose process died is requeued, and counted by
its crash-safe delivery counter in Redis, :mod:`ebook2audio.poison`, so a poison sentence ends), task events on (Flower), STARTED states tracked
(the coordinator learns which worker holds which batch).

Only this module and :mod:`.distributed` import celery.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..audio.pieces import PieceSpec, batch_pieces
from ..distributed_config import (
    DistributedSettings,
    check_shared_directory,
    mask_url,
    open_shared_storage,
    split_ssl_query,
)
from ..engines.base import Engine
from ..errors import ConfigError, Ebook2AudioError, TransientError, VoiceError
from ..jobstore import chunk_keys, load_plan, plan_key
from ..logging_setup import SKIP_TEXT_CONSOLE, log_context, structured_logging_active
from ..model import Batch, BatchResult, Chunk, ChunkResult, EngineInfo, Plan
from ..poison import Attempts, BatchGuard, RedisAttempts
from ..storage.base import Storage
from ..tasks import synthesize_batch
from .local import single_thread_env

log = logging.getLogger(__name__)

TASK_NAME = "ebook2audio.synthesize_batch"
PURGE_TASK = "ebook2audio.purge_discarded"  # delete the session folders coordinators moved aside
PLAN_CACHE_SIZE = 4  # sessions whose plan a worker process keeps
RETRY_BACKOFF_MAX = 120  # seconds
MAX_RETRIES = 8


def celery_config(ds: DistributedSettings) -> dict[str, Any]:
    """The Celery settings for ``ds`` (pure: a dict for ``app.conf.update``)."""
    url, ssl_opts = split_ssl_query(ds.redis_url)
    transport = {"visibility_timeout": int(ds.visibility_timeout), "health_check_interval": 10}
    conf: dict[str, Any] = {
        "broker_url": url,
        "result_backend": url,
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": int(ds.visibility_timeout)},
        "task_soft_time_limit": ds.soft_time_limit,
        "task_time_limit": ds.time_limit,
        "worker_max_tasks_per_child": ds.max_tasks_per_child or None,
        "worker_concurrency": ds.worker_concurrency,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,  # a worker waits for Redis as long as it takes
        "broker_connection_timeout": 5,
        "result_expires": int(ds.result_expires),
        "result_extended": True,  # task name, args and worker stored with the result (Flower, debugging)
        "task_track_started": True,  # STARTED + hostname: which worker holds which batch
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_default_queue": ds.queue,
        "task_create_missing_queues": True,
        "worker_cancel_long_running_tasks_on_connection_loss": False,  # finishing is harmless: idempotent
        "worker_hijack_root_logger": True,
        "redis_socket_connect_timeout": 5,
        "redis_socket_timeout": 30,
        "redis_retry_on_timeout": True,
        "redis_backend_health_check_interval": 10,
        "enable_utc": True,
    }
    if ssl_opts is not None:
        conf["broker_use_ssl"] = dict(ssl_opts)
        conf["redis_backend_use_ssl"] = dict(ssl_opts)
    return conf


def retry_exceptions() -> tuple[type[BaseException], ...]:
    """What a task retries with exponential backoff: storage hiccups, Redis reconnects, GPU memory."""
    import redis.exceptions

    from ..engines.piper import CudaOutOfMemoryError

    return (
        TransientError,
        CudaOutOfMemoryError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        ConnectionError,
        TimeoutError,
    )


# -- results as JSON ----------------------------------------------------------------------------


def result_to_json(result: BatchResult, **extra: Any) -> dict[str, Any]:
    return {
        "batch_id": result.batch_id,
        "chunks": [[c.chunk_id, c.samples] for c in result.chunks],
        "skipped": result.skipped,
        "synth_seconds": round(result.synth_seconds, 4),
        "audio_seconds": round(result.audio_seconds, 4),
        **extra,
    }


def result_from_json(data: Mapping[str, Any]) -> BatchResult:
    return BatchResult(
        batch_id=str(data["batch_id"]),
        chunks=tuple(ChunkResult(chunk_id=str(cid), samples=int(n)) for cid, n in data.get("chunks", ())),
        skipped=int(data.get("skipped", 0)),
        synth_seconds=float(data.get("synth_seconds", 0.0)),
        audio_seconds=float(data.get("audio_seconds", 0.0)),
    )


def merge_results(batch_id: str, parts: Sequence[BatchResult]) -> BatchResult:
    return BatchResult(
        batch_id=batch_id,
        chunks=tuple(c for p in parts for c in p.chunks),
        skipped=sum(p.skipped for p in parts),
        synth_seconds=sum(p.synth_seconds for p in parts),
        audio_seconds=sum(p.audio_seconds for p in parts),
    )


def synthesize_halving(
    storage: Storage,
    session: str,
    batch_id: str,
    chunks: Sequence[Chunk],
    engine: Engine,
    guard: BatchGuard | None = None,
    piece: PieceSpec | None = None,
    job: str = "",
    stored: Collection[str] | None = None,
) -> BatchResult:
    """``synthesize_batch``; on CUDA out-of-memory, again as two halves (recursively), not a failure.

    Chunks already written by the failed attempt are skipped by the halves (idempotency); the batch's
    piece is then encoded from the stored chunks. A single chunk that still does not fit raises, and
    the task retries it later with backoff.
    """
    from ..engines.piper import CudaOutOfMemoryError

    try:
        return synthesize_batch(
            storage, session, batch_id, chunks, engine, guard=guard, piece=piece, job=job, stored=stored
        )
    except CudaOutOfMemoryError:
        if len(chunks) < 2:
            raise
        mid = len(chunks) // 2
        log.warning(
            "CUDA out of memory on batch %s (%d sentences): retrying it as two batches of %d and %d",
            batch_id,
            len(chunks),
            mid,
            len(chunks) - mid,
        )
        first = synthesize_halving(storage, session, batch_id, chunks[:mid], engine, guard)
        second = synthesize_halving(storage, session, batch_id, chunks[mid:], engine, guard)
        if piece is not None:  # every chunk is stored now: the piece is encoded from them
            synthesize_batch(storage, session, batch_id, chunks, engine, guard=guard, piece=piece, job=job)
        return merge_results(batch_id, [first, second])


# -- the worker process's state -----------------------------------------------------------------


@dataclass
class _PlanEntry:
    plan: Plan
    batches: dict[str, Batch]
    chunks: dict[str, Chunk]
    pieces: dict[str, PieceSpec]  # batch id -> the piece its worker encodes


@dataclass
class WorkerRuntime:
    """What one worker process keeps between tasks: storage, recent plans, its one loaded engine.

    Created in the worker's main process and inherited by each pool process; everything is built
    lazily and rebuilt when the process id changes, so nothing (an S3 client, an ONNX session) is
    shared across a fork.
    """

    settings: DistributedSettings
    _pid: int = field(default=0, init=False)
    _storage: Storage | None = field(default=None, init=False)
    _plans: OrderedDict[str, _PlanEntry] = field(default_factory=OrderedDict, init=False)
    _engine: Engine | None = field(default=None, init=False)
    _engine_key: tuple[EngineInfo, float, str] | None = field(default=None, init=False)
    _redis: Any = field(default=None, init=False)

    def _check_process(self) -> None:
        pid = os.getpid()
        if pid != self._pid:
            self._pid = pid
            self._redis = None  # never use a connection inherited across a fork
            self._storage = None
            self._plans = OrderedDict()
            self._engine = None  # never close an engine inherited from the parent: it is the parent's
            self._engine_key = None

    @property
    def storage(self) -> Storage:
        self._check_process()
        if self._storage is None:
            self._storage = open_shared_storage(self.settings)
        return self._storage

    @property
    def attempts(self) -> Attempts:
        """Crash-safe delivery counters in Redis (the broker): no request to the shared storage."""
        self._check_process()
        if self._redis is None:
            from .distributed import redis_client  # imported here: distributed imports this module

            self._redis = redis_client(self.settings)
        return RedisAttempts(self._redis)

    def plan_entry(self, session: str, batch_id: str, job: str = "") -> _PlanEntry | None:
        """The job's plan (cached), reloaded once when it does not know ``batch_id`` (a new plan)."""
        self._check_process()
        cache_key = f"{session}/{job}"
        entry = self._plans.get(cache_key)
        if entry is not None and batch_id in entry.batches:
            self._plans.move_to_end(cache_key)
            return entry
        try:
            plan = load_plan(self.storage, session, job)
        except (FileNotFoundError, KeyError):
            return None
        entry = _PlanEntry(plan, {b.id: b for b in plan.batches}, plan.chunk_map(), batch_pieces(plan))
        self._plans[cache_key] = entry
        while len(self._plans) > PLAN_CACHE_SIZE:
            self._plans.popitem(last=False)
        return entry

    def engine_for(self, info: EngineInfo, speed: float) -> Engine:
        """The engine for ``info`` at ``speed``, loaded once per process (the previous one is closed)."""
        self._check_process()
        key = (info, speed, self.settings.device)
        if self._engine is not None and self._engine_key == key:
            return self._engine
        from ..engines.registry import load_engine

        if self._engine is not None:
            self._engine.close()
            self._engine = None
        t0 = time.perf_counter()
        engine = load_engine(info, speed=speed, device=self.settings.device)
        log.warning(
            "process %d: %s voice %r loaded on %s in %.1f s (1 inference thread)",
            os.getpid(),
            info.engine,
            info.voice,
            describe_loaded_device(engine.device),
            time.perf_counter() - t0,
        )
        self._engine, self._engine_key = engine, key
        return engine

    def run(
        self,
        session: str,
        batch_id: str,
        hostname: str = "",
        strict: bool = False,
        job: str = "",
        stored: Sequence[int] | None = None,
    ) -> dict[str, Any]:
        """Synthesise one batch of one job; the JSON-safe result the coordinator reads.

        ``stored``: positions in the batch of the chunks the coordinator found stored when it sent
        the batch (first deliveries only: see ``tasks.synthesize_batch``); None: look them up.

        The delivery is counted in Redis before the engine loads (:class:`~ebook2audio.poison.BatchGuard`):
        a batch whose process died (Celery requeues it: ``reject_on_worker_lost``) is searched for
        the sentence that kills it after two deaths, and that sentence replaced (or, ``strict``, an
        error) instead of every worker crashing on it in turn.
        """
        entry = self.plan_entry(session, batch_id, job)
        where = {"hostname": hostname, "pid": os.getpid()}
        if entry is None:
            log.warning(
                "session %s has no plan in %s: skipping batch %s", session, self.storage.describe(), batch_id
            )
            return {"batch_id": batch_id, "missing": "plan", "storage": self.storage.describe(), **where}
        batch = entry.batches.get(batch_id)
        if batch is None:
            log.warning(
                "batch %s is not in the current plan of session %s: skipping (stale task)", batch_id, session
            )
            return {"batch_id": batch_id, "missing": "batch", "storage": self.storage.describe(), **where}
        plan = entry.plan
        if plan.engine is None:
            raise VoiceError(f"the plan of session {session} names no voice: rerun the coordinator")
        chunks = [entry.chunks[cid] for cid in batch.chunk_ids]
        info, speed = plan.engine, plan.voice.speed
        with BatchGuard.for_voice(
            self.attempts, self.storage, session, batch_id, len(chunks), info, speed, strict=strict
        ) as guard:
            if info.sample:  # --voice-sample: copied once from the job's storage into this machine's cache
                from ..engines.voice_sample import fetch

                fetch(self.storage, session, info.sample)
            engine = self.engine_for(info, speed)
            piece = entry.pieces.get(batch_id)
            known = None
            if stored is not None:
                known = {batch.chunk_ids[i] for i in stored if 0 <= i < len(batch.chunk_ids)}
            result = synthesize_halving(
                self.storage, session, batch_id, chunks, engine, guard, piece=piece, job=job, stored=known
            )
        self._drop_if_job_ended(session, job, result, piece)
        if structured_logging_active():  # for JSON lines and syslog: Celery's own line says it in text
            self._log_done(batch_id, result, engine.device)
        return result_to_json(result, device=engine.device, **where)

    def _log_done(self, batch_id: str, result: BatchResult, device: str) -> None:
        log.info(
            "batch %s synthesised: %d sentences, %.1f s of audio in %.2f s",
            batch_id, len(result.chunks), result.audio_seconds, result.synth_seconds,
            extra={
                "event": "batch.synthesized",
                SKIP_TEXT_CONSOLE: True,
                "data": {
                    "sentences": len(result.chunks),
                    "skipped": result.skipped,
                    "audio_seconds": round(result.audio_seconds, 3),
                    "task_seconds": round(result.synth_seconds, 3),
                    "device": device,
                },
            },
        )  # fmt: skip

    def _drop_if_job_ended(
        self, session: str, job: str, result: BatchResult, piece: PieceSpec | None = None
    ) -> None:
        """A late copy of a batch (its first copy was re-dispatched and the book finished meanwhile)
        may have written chunks after the coordinator's cleanup: with the job's plan gone, remove them.
        Chunks written before the cleanup went with it; those written after are removed here."""
        if not job or (not result.chunks and piece is None) or self.storage.exists(plan_key(session, job)):
            return
        for c in result.chunks:
            for key in chunk_keys(session, c.chunk_id):
                self.storage.delete(key)
        if piece is not None:
            self.storage.delete(piece.key(session, job))
        log.warning(
            "batch %s of session %s finished after its book was done: removed its %d late chunks",
            result.batch_id,
            session,
            len(result.chunks),
        )


def describe_loaded_device(device: str) -> str:
    if device.startswith("cuda"):
        index = device.partition(":")[2] or "0"
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        physical = ""
        if visible:
            ids = [v.strip() for v in visible.split(",")]
            if index.isdigit() and int(index) < len(ids):
                physical = f", physical GPU {ids[int(index)]} of CUDA_VISIBLE_DEVICES={visible}"
        return f"GPU {index} ({device}{physical})"
    if device == "cpu":
        return "the CPU"
    return device


def check_worker_device(device: str, env: Mapping[str, str] | None = None) -> str:
    """What the worker will run on, said before any model loads; VoiceError if it cannot be that.

    Nothing touches CUDA here (a CUDA context must not exist before the pool forks): the check is
    that onnxruntime has a CUDA provider and CUDA_VISIBLE_DEVICES does not hide every GPU. Each
    pool process says again, loudly, where its engine really loaded.
    """
    from ..engines._common import cuda_visible, parse_device

    env = os.environ if env is None else env
    request = parse_device(device)
    if request.kind == "cpu":
        return "the CPU"
    import onnxruntime

    providers = onnxruntime.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in providers
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if request.kind == "cuda":
        if not has_cuda:
            raise VoiceError(
                f"--device {device}: onnxruntime has no CUDA provider (it has {', '.join(providers)}); "
                "install onnxruntime-gpu or start the worker with --device cpu"
            )
        if not cuda_visible(env):
            raise VoiceError(f"--device {device}: CUDA_VISIBLE_DEVICES={visible!r} hides every GPU")
        return describe_loaded_device(f"cuda:{request.index}")
    if has_cuda and cuda_visible(env):
        return f"{describe_loaded_device('cuda:0')} (device auto)"
    return "the CPU (device auto: no usable CUDA)"


# -- the app and the worker ---------------------------------------------------------------------


def make_celery_app(ds: DistributedSettings) -> Any:
    """A Celery app configured for ``ds`` with the ``ebook2audio.synthesize_batch`` task registered.

    The app is not made the process's current app; the task closes over a :class:`WorkerRuntime`.
    """
    from celery import Celery

    app = Celery("ebook2audio", set_as_current=False)
    app.conf.update(celery_config(ds))
    runtime = WorkerRuntime(ds)

    @app.task(
        name=TASK_NAME,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        autoretry_for=retry_exceptions(),
        retry_backoff=2,
        retry_backoff_max=RETRY_BACKOFF_MAX,
        retry_jitter=True,
        max_retries=MAX_RETRIES,
    )
    def synthesize_batch_task(
        self: Any,
        session: str,
        batch_id: str,
        chapter: int | None = None,
        chars: int | None = None,
        strict: bool = False,
        job: str = "",
        stored: list[int] | None = None,
    ) -> dict[str, Any]:
        if self.request.retries or (self.request.delivery_info or {}).get("redelivered"):
            stored = None  # a retried or redelivered task: an earlier try may have stored some chunks
        with log_context(session=session, job=job, batch=batch_id, chapter=chapter):
            return runtime.run(
                session, batch_id, hostname=str(self.request.hostname or ""), strict=strict, job=job, stored=stored
            )

    @app.task(name=PURGE_TASK, ignore_result=True)
    def purge_discarded_task() -> int:
        """Delete the finished sessions' folders that coordinators moved aside (LocalStorage.discard_prefix)."""
        purge = getattr(runtime.storage, "purge_discarded", None)
        return purge() if purge is not None else 0

    return app


def default_hostname() -> str:
    return f"ebook2audio-{os.getpid()}@%h"


def run_worker(
    ds: DistributedSettings, *, loglevel: str = "INFO", keep_logging: bool = False, banner: bool = True
) -> int:
    """Run a worker until it is stopped (SIGTERM: warm shutdown); returns its exit code.

    ``keep_logging``: Celery keeps the handlers cli.py installed (JSON lines, syslog) instead of its
    own; ``banner`` False: no startup banner on stdout (JSON lines only)."""
    single_thread_env()  # inherited by every pool process, before onnxruntime or numpy start
    check_shared_directory(ds, create=ds.storage_type == "local")
    open_shared_storage(ds)  # fail now, in one line, on a missing bucket or refused credentials
    where = check_worker_device(ds.device)
    from celery.utils.nodenames import default_nodename, host_format

    hostname = host_format(default_nodename(ds.hostname or default_hostname()))
    log.warning(
        "worker %s: synthesis on %s, %d process(es) x 1 inference thread; broker %s; storage %s",
        hostname,
        where,
        ds.worker_concurrency,
        mask_url(ds.redis_url),
        ds.storage_type + ":" + (ds.storage_path if ds.storage_type != "s3" else f"s3://{ds.s3_bucket}"),
    )
    app = make_celery_app(ds)
    if keep_logging:
        app.conf.worker_hijack_root_logger = False
    try:
        worker = app.Worker(
            hostname=hostname,
            concurrency=ds.worker_concurrency,
            loglevel=loglevel,
            pool="prefork",
            queues=[ds.queue],
            send_events=True,
            optimization="fair",
            max_tasks_per_child=ds.max_tasks_per_child or None,
            without_mingle=True,  # nothing to sync at start (no revokes): saves a second per start
            without_gossip=True,  # the coordinator pings; Flower uses events
            quiet=not banner,
        )
        with log_context(worker=hostname):  # inherited by the pool processes (fork)
            worker.start()
    except Ebook2AudioError:
        raise
    except (OSError, ValueError) as exc:
        raise ConfigError(f"the worker could not start: {exc}") from exc
    return int(worker.exitcode or 0)
