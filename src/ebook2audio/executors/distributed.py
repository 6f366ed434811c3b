"""The coordinator's executor: every pending batch goes to Celery workers; storage says when it is done.

``DistributedExecutor.run(plan, batches, on_batch)`` (the Executor protocol, driven by
``pipeline.convert`` exactly like the embedded pool):

1. waits for ``num_workers`` workers (``inspect ping``), saying how many are connected;
2. writes ``checkpoint:<session>`` in Redis (total, done, started, status, updated), repaired from
   storage when it is corrupt or disagrees (storage is the truth);
3. dispatches the pending batches, longest first, keeping at most a window of them queued or running
   (``--max-in-flight``; auto: twice the live workers' task slots, plus 2) and sending the next one
   as soon as one finishes. The queue, with prefetch 1, balances the work; and since every job on
   the cluster holds only its window in the first-in-first-out queue, two jobs started one after
   the other share the workers batch by batch instead of the second waiting for the whole first;
4. polls the result backend for its own tasks in pages (no chord, no waiting on thousands of
   AsyncResults), verifies each success against storage and calls ``on_batch``;
5. watches liveness: a worker that stops answering pings while it holds a batch (its STARTED state
   names it) gets that batch re-dispatched at once (with late acks, Redis would otherwise hide it for
   the whole visibility timeout); batches lost elsewhere (queue empty, never started) are
   re-dispatched too. Duplicates are harmless: a batch is idempotent. With no worker alive it says so
   within seconds and fails (exit 2, work kept) if none comes back within ``worker_timeout``.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ..distributed_config import DistributedSettings, mask_text, split_ssl_query
from ..errors import SynthesisError, TransientError, UserError
from ..jobstore import ChunkListing, chunk_done, done_chunks
from ..logging_setup import SKIP_TEXT_CONSOLE
from ..metrics import NO_METRICS, Metrics
from ..model import Batch, BatchResult, ChunkResult, Plan
from ..plan import dispatch_order
from ..storage.base import Storage
from .base import OnBatch
from .celery_app import PURGE_TASK, TASK_NAME, result_from_json

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint:"
CHECKPOINT_TTL = 7 * 86400  # a finished or failed job's checkpoint stays a week for monitors
STATUSES = ("waiting", "running", "done", "failed", "stalled")
USER_ERROR_TYPES = frozenset(
    {
        "UserError",
        "VoiceError",
        "ConfigError",
        "BookError",
        "UnsupportedFormatError",
        "DRMError",
        "PoisonSentenceError",  # --strict: a sentence kills the synthesis process
        "StoragePermissionError",  # permanent: a worker may not read/write the shared storage
        "InvalidKeyError",
    }
)
# Failures that say nothing about the batch (Redis or storage briefly away): retried without counting.
TRANSIENT_ERROR_TYPES = frozenset(
    {
        "ConnectionError",
        "TimeoutError",
        "OperationalError",
        "StorageError",
        "TransientError",
        "BusyLoadingError",
    }
)


class NoWorkerError(UserError):
    """No Celery worker answers: the job cannot progress (the work done so far is kept)."""


class RedisUnavailableError(UserError):
    """Redis (or, mid-job, the shared storage) cannot be reached, or refuses our credentials."""


# -- the checkpoint (pure) ------------------------------------------------------------------------


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Checkpoint:
    """Live progress of one session in Redis. Storage stays the truth; this is what monitors read."""

    session: str
    total: int
    done: int
    started: str  # ISO 8601 UTC
    status: str  # one of STATUSES
    updated: str

    def to_mapping(self) -> dict[str, str]:
        return {
            "session": self.session,
            "total": str(self.total),
            "done": str(self.done),
            "started": self.started,
            "status": self.status,
            "updated": self.updated,
        }


def checkpoint_key(session: str) -> str:
    return f"{CHECKPOINT_PREFIX}{session}"


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def parse_checkpoint(raw: object) -> Checkpoint:
    """A checkpoint from a Redis hash (bytes or str keys); ValueError when it is corrupt."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"a {raw if isinstance(raw, str) else type(raw).__name__}, not a hash")
    try:
        data = {_text(k): _text(v) for k, v in raw.items()}
    except UnicodeDecodeError as exc:
        raise ValueError("not UTF-8") from exc
    missing = [k for k in ("total", "done", "started", "status", "updated") if k not in data]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    try:
        total, done = int(data["total"]), int(data["done"])
        for stamp in (data["started"], data["updated"]):
            datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError as exc:
        raise ValueError(f"unparseable field ({exc})") from exc
    if total < 0 or not 0 <= done <= total:
        raise ValueError(f"impossible counts done={done} total={total}")
    if data["status"] not in STATUSES:
        raise ValueError(f"unknown status {data['status']!r}")
    return Checkpoint(data.get("session", ""), total, done, data["started"], data["status"], data["updated"])


def repair_checkpoint(
    raw: object | None, *, session: str, total: int, done: int, now: str
) -> tuple[Checkpoint, str | None]:
    """The checkpoint to write as a run starts, and a note on what was repaired (None: nothing).

    ``raw`` is what Redis holds (None: nothing; a mapping: the hash; a string: the key's wrong type).
    Storage's counts always win; a corrupt checkpoint is rebuilt, keeping nothing from it.
    """
    fresh = Checkpoint(session, total, done, now, "running", now)
    if raw is None or (isinstance(raw, Mapping) and not raw):
        return fresh, None
    try:
        old = parse_checkpoint(raw)
    except ValueError as exc:
        return fresh, f"checkpoint:{session} was corrupt ({exc}): rebuilt from storage, {done}/{total} done"
    note = None
    if (old.total, old.done) != (total, done):
        note = (
            f"checkpoint:{session} said {old.done}/{old.total} done; storage has {done}/{total}: storage wins"
        )
    return Checkpoint(session, total, done, old.started, "running", now), note


# -- bookkeeping of dispatched batches (pure) -----------------------------------------------------


@dataclass
class Track:
    """One pending batch: the tasks sent for it and what the result backend last said."""

    batch: Batch
    task_ids: list[str] = field(default_factory=list)
    dispatched: float = 0.0  # clock time of the latest dispatch
    state: str = "PENDING"  # state of the latest task (PENDING until the backend knows it)
    state_since: float = 0.0
    holder: str = ""  # worker that STARTED the latest task
    failures: int = 0
    transient_failures: int = 0  # Redis or storage away: counted apart, with a higher limit
    stall_marks: int = 0  # consecutive liveness checks that found it lost
    orphan_marks: int = 0  # consecutive checks that found it STARTED but active on no worker
    unverified_since: float | None = None  # a success whose audio storage does not show yet
    verify_failures: int = 0


def lost_to_dead_workers(
    tracks: Iterable[Track], last_seen: Mapping[str, float], now: float, dead_after: float
) -> list[Track]:
    """Batches STARTED by a worker not heard from for ``dead_after`` seconds.

    Heard from: a ping reply, or starting the batch itself (``state_since``). A worker whose link
    comes back takes tasks again before its control channel answers pings (seconds later): its new
    batches are not given away while it works on them.
    """
    out = []
    for t in tracks:
        if t.state != "STARTED" or not t.holder:
            continue
        seen = max(last_seen.get(t.holder, t.state_since), t.state_since)
        if now - seen >= dead_after:
            out.append(t)
    return out


def lost_in_transit(
    tracks: Iterable[Track], queue_length: int, now: float, grace: float, retry_grace: float
) -> list[Track]:
    """Batches neither queued nor running: never started (or retrying too long) while the queue is empty.

    Each must be found lost on two consecutive checks (a task between delivery and STARTED is not
    lost). Mutates ``stall_marks``.
    """
    out = []
    for t in tracks:
        age = now - max(t.dispatched, t.state_since)
        lost = queue_length == 0 and (
            (t.state == "PENDING" and age >= grace) or (t.state == "RETRY" and age >= retry_grace)
        )
        t.stall_marks = t.stall_marks + 1 if lost else 0
        if t.stall_marks >= 2:
            out.append(t)
    return out


@dataclass
class Window:
    """How many batches of one job may be queued or running at once.

    ``configured`` > 0 is the user's fixed window; 0 means auto: ``2 x slots + 2``, where slots are the
    task slots (pool processes) of the workers seen alive. Twice the slots keeps a batch queued behind
    every running one, so that no worker waits for the coordinator's next poll; the window keeps the
    job from filling the shared queue, so that another job's batches wait behind a window, not a book.
    """

    configured: int = 0
    slots: dict[str, int] = field(default_factory=dict)  # worker -> its task slots

    @property
    def size(self) -> int:
        if self.configured > 0:
            return self.configured
        return 2 * max(1, sum(self.slots.values())) + 2


def pool_slots(stats: Mapping[str, Any] | None) -> dict[str, int]:
    """Worker -> task slots, from ``inspect().stats()`` replies (a worker without a readable pool: 1)."""
    out = {}
    for name, info in (stats or {}).items():
        pool = info.get("pool") if isinstance(info, Mapping) else None
        slots = pool.get("max-concurrency") if isinstance(pool, Mapping) else None
        out[str(name)] = slots if isinstance(slots, int) and slots > 0 else 1
    return out


# -- Redis access ---------------------------------------------------------------------------------


def connection_errors() -> tuple[type[BaseException], ...]:
    import kombu.exceptions
    import redis.exceptions

    return (
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        kombu.exceptions.OperationalError,
        ConnectionError,
        TimeoutError,
        OSError,
    )


def redis_client(ds: DistributedSettings) -> Any:
    """A redis-py client for ``ds.redis_url`` (TLS options from the URL query), with short timeouts."""
    import ssl

    import redis

    url, ssl_opts = split_ssl_query(ds.redis_url)
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
        "health_check_interval": 10,
    }
    if ssl_opts:
        kwargs.update(ssl_opts)
        if ssl_opts.get("ssl_cert_reqs") == ssl.CERT_NONE:
            kwargs["ssl_check_hostname"] = False
    return redis.Redis.from_url(url, **kwargs)


def _reason(exc: BaseException, ds: DistributedSettings) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "Connection refused" in text:
        text = "connection refused"
    elif "timed out" in text.lower() or "Timeout" in type(exc).__name__:
        text = "timed out"
    return mask_text(text, ds.secrets)[:200]


def check_redis(ds: DistributedSettings, client: Any | None = None) -> None:
    """Raise RedisUnavailableError (one line: host, port, reason; no password) unless Redis answers."""
    import redis.exceptions

    own = client is None
    client = client or redis_client(ds)
    try:
        client.ping()
    except (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError) as exc:
        raise RedisUnavailableError(
            f"Redis at {ds.redis_endpoint} refused the credentials ({_reason(exc, ds)}): "
            "check REDIS_PASSWORD or the password in --redis-url"
        ) from None
    except redis.exceptions.ResponseError as exc:
        if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            raise RedisUnavailableError(
                f"Redis at {ds.redis_endpoint} needs a password: set REDIS_PASSWORD or put it in --redis-url"
            ) from None
        raise RedisUnavailableError(
            f"Redis at {ds.redis_endpoint} answered an error: {_reason(exc, ds)}"
        ) from None
    except connection_errors() as exc:
        raise RedisUnavailableError(
            f"cannot reach Redis at {ds.redis_endpoint} ({_reason(exc, ds)}): start redis-server there "
            f"or fix --redis-url / REDIS_URL (now {ds.redis_display})"
        ) from None
    finally:
        if own:
            client.close()


# -- the executor ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """The coordinator's clocks, in seconds (tests shorten them)."""

    poll: float = 0.25  # result backend polls
    liveness: float = 2.0  # worker pings
    ping_timeout: float = 1.0
    full_ping_every: int = 5  # every 5th ping waits the whole timeout (finds new workers)
    dead_after: float = 6.0  # a worker silent this long is dead
    lost_grace: float = 6.0  # a never-started task older than this, with the queue empty, is lost
    retry_grace: float = 300.0
    orphan_after: float = 30.0  # a batch STARTED this long is checked against the workers' active tasks
    verify_grace: float = 30.0  # how long a success may wait for its audio to appear (NFS caches)
    sweep: float = 15.0  # check storage for batches whose result never came
    checkpoint: float = 1.0
    redis_down_limit: float = 120.0
    max_failures: int = 3


def default_notify(text: str) -> None:
    log.info("%s", text)


@dataclass
class DistributedExecutor:
    app: Any  # a Celery app from celery_app.make_celery_app
    settings: DistributedSettings
    storage: Storage
    notify: Callable[[str], None] = default_notify
    timing: Timing = Timing()
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    strict: bool = False  # --strict: the workers stop on a sentence that kills their process
    _client: Any = field(default=None, init=False, repr=False)
    _last_seen: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _nonce: str = field(default_factory=lambda: secrets.token_hex(3), init=False)
    _next_orphan_check: float = field(default=0.0, init=False, repr=False)
    # Raises job.LockLostError when this coordinator no longer holds its session (checked every loop).
    check_lock: Callable[[], None] = lambda: None
    _listing: ChunkListing | None = field(default=None, init=False, repr=False)
    _stored_at_start: set[str] | None = field(default=None, init=False, repr=False)
    metrics: Metrics = NO_METRICS  # --metrics-port: dispatches, failures, workers, queue (metrics.py)

    # -- Redis helpers

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = redis_client(self.settings)
        return self._client

    def purge_discarded_later(self) -> None:
        """Have a worker delete the session folders this storage moved aside (Job.cleanup's discard):
        one message; the unlinking of every chunk then costs the workers, not the coordinator."""
        if not hasattr(self.storage, "discard_prefix"):
            return
        try:
            self.app.send_task(PURGE_TASK, queue=self.settings.queue)
        except Exception as exc:  # the book is written; the folder waits in .trash for the next purge
            log.warning("could not ask the workers to delete the finished session's files: %s", exc)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def ping_workers(self, expect: int | None = None) -> set[str]:
        """The workers that answer a ping within ``ping_timeout``; with ``expect``, returns as soon as
        that many have answered (others may exist: only a full ping finds newcomers)."""
        replies = self.app.control.ping(timeout=self.timing.ping_timeout, limit=expect) or []
        alive = {name for reply in replies for name in reply}
        if expect is None or len(alive) >= expect:  # a full count (a limited ping may stop early)
            self.metrics.workers_connected(len(alive))
        now = self.clock()
        for name in alive:
            self._last_seen[name] = now
        return alive

    def learn_slots(self, window: Window, names: Iterable[str] | None) -> None:
        """Add the task slots of workers ``names`` (None: every worker that answers within the ping
        timeout) to an auto ``window``, from one ``inspect stats`` broadcast."""
        if window.configured > 0:
            return
        wanted = None if names is None else sorted(set(names) - set(window.slots))
        if wanted == []:
            return
        try:
            inspect = self.app.control.inspect(
                destination=wanted, timeout=self.timing.ping_timeout, limit=len(wanted) if wanted else None
            )
            stats = inspect.stats()
        except Exception:  # no reply is no harm: each unknown worker counts one slot
            log.debug("could not read the workers' pool sizes", exc_info=True)
            stats = None
        found = pool_slots(stats)
        window.slots.update(found if wanted is None else {n: found.get(n, 1) for n in wanted})

    def _refill(
        self, plan: Plan, tracks: OrderedDict[str, Track], waiting: deque[Track], window: Window
    ) -> None:
        """Dispatch waiting batches, in order, until ``window.size`` are queued or running."""
        if not waiting or len(tracks) >= window.size:
            return
        with self.app.producer_or_acquire() as producer:
            while waiting and len(tracks) < window.size:
                t = waiting[0]
                self._dispatch(plan, t, producer)  # taken off ``waiting`` only once it is sent
                waiting.popleft()
                tracks[t.batch.id] = t

    def queue_length(self) -> int:
        q = self.settings.queue
        names = [q] + [f"{q}\x06\x16{p}" for p in (3, 6, 9)]
        pipe = self.client.pipeline(transaction=False)
        for n in names:
            pipe.llen(n)
        return sum(int(x) for x in pipe.execute())

    def write_checkpoint(self, cp: Checkpoint, *, replace_key: bool = False) -> None:
        key = checkpoint_key(cp.session)
        pipe = self.client.pipeline(transaction=True)
        if replace_key:
            pipe.delete(key)
        pipe.hset(key, mapping=cp.to_mapping())
        pipe.execute()

    def read_checkpoint(self, session: str) -> object | None:
        key = checkpoint_key(session)
        kind = _text(self.client.type(key))
        if kind == "none":
            return None
        if kind != "hash":
            return kind
        return self.client.hgetall(key)

    # -- phases

    def wait_for_workers(self) -> set[str]:
        want = self.settings.num_workers
        deadline = self.clock() + self.settings.worker_timeout
        said = -1
        while True:
            alive = self.ping_workers(expect=want)
            if len(alive) >= want:
                self.notify(
                    f"{len(alive)} worker{'s' if len(alive) > 1 else ''} connected: {', '.join(sorted(alive))}"
                )
                return alive
            if len(alive) != said:
                self.notify(f"waiting for {want} worker{'s' if want > 1 else ''}, {len(alive)} connected")
                said = len(alive)
            if self.clock() >= deadline:
                if alive:
                    self.notify(
                        f"warning: only {len(alive)} of {want} workers connected after "
                        f"{self.settings.worker_timeout:g} s; starting with them (more can join at any time)"
                    )
                    return alive
                raise NoWorkerError(
                    f"no worker connected to Redis at {self.settings.redis_endpoint} within "
                    f"{self.settings.worker_timeout:g} s: start `ebook2audio worker` on each machine with the same "
                    "--redis-url and shared storage, then rerun this command"
                )
            self.sleep(0.5)

    def _dispatch(self, plan: Plan, track: Track, producer: Any = None) -> None:
        b = track.batch
        if track.task_ids:
            # The copy sent before is superseded: a worker that has not started it drops it. One that
            # runs it (paused, cut off) may still finish: its chunks are then no-ops (first writer wins).
            try:
                self.app.control.revoke(track.task_ids[-1])
            except Exception:  # a broadcast that cannot go out now changes nothing above
                log.debug("could not revoke %s", track.task_ids[-1], exc_info=True)
        task_id = f"{plan.session}.{self._nonce}.{b.id}.{len(track.task_ids) + 1}"
        kwargs: dict[str, Any] = {"chapter": b.chapter + 1, "chars": b.chars, "job": plan.job, "strict": self.strict}
        if not track.task_ids and self._stored_at_start is not None:
            # First copy: which of its chunks the start's listing found stored, so that the worker
            # asks storage nothing before synthesising (a copy sent again looks everything up).
            kwargs["stored"] = [i for i, cid in enumerate(b.chunk_ids) if cid in self._stored_at_start]
        self.app.tasks[TASK_NAME].apply_async(
            args=(plan.session, b.id),
            kwargs=kwargs,
            task_id=task_id,
            queue=self.settings.queue,
            producer=producer,
        )
        self.metrics.dispatched(again=bool(track.task_ids))
        if track.task_ids:
            log.info(
                "batch %s dispatched again (attempt %d)", b.id, len(track.task_ids) + 1,
                extra={"event": "batch.redispatched", "batch": b.id, "chapter": b.chapter + 1,
                       "data": {"attempt": len(track.task_ids) + 1}, SKIP_TEXT_CONSOLE: True},
            )  # fmt: skip
        now = self.clock()
        track.task_ids.append(task_id)
        track.dispatched = now
        track.state, track.state_since, track.holder, track.stall_marks = "PENDING", now, "", 0

    def run(self, plan: Plan, batches: Sequence[Batch], on_batch: OnBatch) -> None:
        if not batches:
            return
        session = plan.session
        check_redis(self.settings, self.client)
        initial_done = done_chunks(self.storage, plan)
        self._stored_at_start = initial_done
        total = len(plan.chunks)
        raw = self.read_checkpoint(session)
        cp, note = repair_checkpoint(raw, session=session, total=total, done=len(initial_done), now=utc_now())
        if note:
            log.warning("%s", note)
        self.write_checkpoint(replace(cp, status="waiting"), replace_key=raw is not None)
        done_count = len(initial_done)
        status = "failed"
        tracks: OrderedDict[str, Track] = OrderedDict()  # dispatched: queued or running
        # Every batch given is dispatched: one whose chunks are all stored may still lack its piece.
        waiting = deque(Track(batch=b) for b in dispatch_order(batches))  # not sent yet, in order
        window = Window(self.settings.max_in_flight)
        try:
            alive = self.wait_for_workers()
            self.learn_slots(window, alive)
            self._refill(plan, tracks, waiting, window)
            if waiting and window.configured == 0:
                # The ping above stops at --num-workers replies: others may be up. Their slots are
                # read (a 1 s broadcast) while the first batches already run, and the window widened.
                self.learn_slots(window, None)
                self._refill(plan, tracks, waiting, window)
            log.info(
                "dispatched %d of %d batches of session %s to queue %s (at most %d in flight)",
                len(tracks), len(tracks) + len(waiting), session, self.settings.queue, window.size,
                extra={"event": "batches.dispatched", "session": session,
                       "data": {"batches": len(tracks), "total": len(tracks) + len(waiting),
                                "window": window.size, "queue": self.settings.queue}},
            )  # fmt: skip
            cp = replace(cp, status="running", done=done_count, updated=utc_now())
            self.write_checkpoint(cp)

            def finished(track: Track, result: BatchResult) -> None:
                nonlocal done_count
                tracks.pop(track.batch.id, None)
                try:  # the next batch goes out at once, before this one's piece is handled
                    self._refill(plan, tracks, waiting, window)
                except (*connection_errors(), TransientError):
                    log.debug("refill deferred to the next poll", exc_info=True)
                fresh = [c for c in track.batch.chunk_ids if c not in initial_done]
                done_count += len(fresh)
                on_batch(self._rebuild(plan, track.batch, result, initial_done))

            def refill(joined: Iterable[str] = (), gone: Iterable[str] = ()) -> None:
                for name in gone:
                    window.slots.pop(name, None)
                self.learn_slots(window, joined)
                self._refill(plan, tracks, waiting, window)

            self._loop(plan, tracks, finished, lambda: replace(cp, done=done_count), refill, waiting)
            status = "done"
        except NoWorkerError:
            status = "stalled"
            raise
        except KeyboardInterrupt:  # SIGINT/SIGTERM: queued copies are dropped; finished audio is kept
            status = "stalled"
            self._revoke_outstanding(tracks)
            raise
        finally:
            try:
                self.write_checkpoint(replace(cp, done=done_count, status=status, updated=utc_now()))
                self.client.expire(checkpoint_key(session), CHECKPOINT_TTL)
            except connection_errors():
                log.debug("could not write the final checkpoint", exc_info=True)

    def _revoke_outstanding(self, tracks: Mapping[str, Track]) -> None:
        """Revoke this run's unfinished tasks (a batch already running finishes; its audio is kept)."""
        ids = [tid for t in tracks.values() for tid in t.task_ids]
        if not ids:
            return
        try:
            self.app.control.revoke(ids)
        except (*connection_errors(), OSError):
            log.debug("could not revoke the outstanding tasks", exc_info=True)

    def _rebuild(self, plan: Plan, batch: Batch, result: BatchResult, initial_done: set[str]) -> BatchResult:
        """The batch's result as this run sees it: every chunk not done at the start counts as made."""
        samples = {c.chunk_id: c.samples for c in result.chunks}
        chunks = []
        for cid in batch.chunk_ids:
            if cid in initial_done:
                continue
            # A chunk another copy wrote: its length is not known here (only progress shows it).
            chunks.append(ChunkResult(chunk_id=cid, samples=samples.get(cid, 0)))
        audio = sum(c.samples for c in chunks) / plan.sample_rate if plan.sample_rate else 0.0
        return BatchResult(
            batch_id=batch.id,
            chunks=tuple(chunks),
            skipped=len(batch.chunk_ids) - len(chunks),
            synth_seconds=result.synth_seconds,
            audio_seconds=audio,
        )

    def _batch_in_storage(self, plan: Plan, batch: Batch) -> bool:
        """Every chunk of ``batch`` is in storage, from one listing of the session shared by all batches.

        A storage that lists sizes (S3) is listed once for many batches: each batch is checked against
        the newest listing, and one missing from it makes a new listing, at most once per poll of
        the results (see ``ChunkListing``), so the requests per finished batch do not grow with its
        chunk count (on S3: ceil(chunks of the book / 1,000) per poll that finds new work, shared by
        every batch that poll completes; before, a HEAD and a ranged GET per chunk). Its sizes are trusted
        here: every writer writes a whole chunk in one atomic PUT/rename/link, so a listed size >= the
        WAV header is what the worker wrote. The coordinator never reads the chunks of a batch whose
        worker encoded its piece; where it does read chunks (a stretch it encodes itself, or a format
        it encodes), a damaged one fails to decode, naming the chunk. A storage without a listing (a local or NFS directory: a stat
        and a 44-byte read per chunk, no request to count) checks each chunk's header here.
        """
        if not hasattr(self.storage, "sizes"):
            return all(chunk_done(self.storage, plan.session, cid) for cid in batch.chunk_ids)
        listing = self._listing
        if listing is None or listing.session != plan.session:
            listing = self._listing = ChunkListing(self.storage, plan.session, self.clock)
        # Listed again at most once per poll (or 4x the listing's own time), and at least 4 times
        # within verify_grace, so that a finished batch is never taken for a lost one.
        return listing.has_all(batch.chunk_ids, self.timing.poll, self.timing.verify_grace / 4)

    def _loop(
        self,
        plan: Plan,
        tracks: OrderedDict[str, Track],
        finished: Callable[[Track, BatchResult], None],
        checkpoint: Callable[[], Checkpoint],
        refill: Callable[..., None] = lambda joined=(), gone=(): None,
        waiting: Sequence[Track] = (),
    ) -> None:
        """Poll, recover and refill until no batch is in flight (``tracks``) or waiting to be sent.

        ``refill(joined, gone)`` sends waiting batches up to the window, told which workers joined or
        were given up since the last call (the auto window follows the cluster's task slots).
        """
        tm = self.timing
        errors = connection_errors()
        next_live = self.clock() + tm.liveness
        next_sweep = self.clock() + tm.sweep
        next_cp = 0.0
        cursor = 0
        no_worker_since: float | None = None
        outage_since: float | None = None
        known: set[str] = set(self._last_seen)
        joined: set[str] = set()  # workers that joined or were given up since the last refill
        gone: set[str] = set()
        pings = 0
        while tracks or waiting:
            now = self.clock()
            self.check_lock()
            try:
                cursor = self._poll(plan, tracks, finished, cursor)
                if now >= next_live:
                    next_live = now + tm.liveness
                    # A full ping (the whole timeout) every few checks finds workers that joined, and
                    # whenever a batch is held by a worker not known yet; between them, the ping returns
                    # as soon as every known worker has answered, so that results are not read late.
                    pings += 1
                    holders = {t.holder for t in tracks.values() if t.state == "STARTED" and t.holder}
                    full = (pings - 1) % tm.full_ping_every == 0 or not known or not holders <= known
                    alive = self.ping_workers(expect=None if full else len(known))
                    for name in sorted(alive - known):
                        self.notify(f"worker {name} joined")
                        joined.add(name)
                    for name in sorted(known - alive):
                        if now - self._last_seen.get(name, now) >= tm.dead_after:
                            self.notify(f"worker {name} stopped answering: its batches go to the others")
                            known.discard(name)
                            gone.add(name)
                    known |= alive
                    if not alive:
                        if no_worker_since is None:
                            no_worker_since = now
                            self.notify(
                                "no worker is alive: start `ebook2audio worker` "
                                f"(waiting up to {self.settings.worker_timeout:g} s for one)"
                            )
                        elif now - no_worker_since >= self.settings.worker_timeout:
                            raise NoWorkerError(
                                f"no worker has been alive for {now - no_worker_since:.0f} s: start "
                                "`ebook2audio worker`; the work done so far is kept: rerun the same command to resume"
                            )
                    else:
                        if no_worker_since is not None:
                            self.notify(f"{len(alive)} worker(s) alive again")
                        no_worker_since = None
                        self._recover(plan, tracks, now)
                if now >= next_sweep:
                    next_sweep = now + tm.sweep
                    self._sweep(plan, tracks, finished, now)
                refill(joined, gone)
                joined, gone = set(), set()
                if now >= next_cp:
                    next_cp = now + tm.checkpoint
                    running = sum(1 for t in tracks.values() if t.state == "STARTED")
                    self.metrics.in_flight(queued=len(tracks) - running, running=running)
                    self.write_checkpoint(replace(checkpoint(), status="running", updated=utc_now()))
                if outage_since is not None:
                    self.notify("Redis and the shared storage answer again")
                    outage_since = None
            except (*errors, TransientError) as exc:
                storage_error = isinstance(exc, TransientError)
                where = "shared storage" if storage_error else f"Redis at {self.settings.redis_endpoint}"
                if outage_since is None:
                    outage_since = now
                    self.notify(f"lost {where} ({_reason(exc, self.settings)}): waiting for it to come back")
                elif now - outage_since >= max(tm.redis_down_limit, self.settings.worker_timeout):
                    error = f"{_reason(exc, self.settings)}" if storage_error else "cannot reach it"
                    raise RedisUnavailableError(
                        f"lost {where} for {now - outage_since:.0f} s ({error}); "
                        "the work done so far is kept: rerun the same command to resume"
                    ) from None
                self.sleep(1.0)
                continue
            if tracks or waiting:
                self.sleep(tm.poll)

    def _poll(
        self,
        plan: Plan,
        tracks: OrderedDict[str, Track],
        finished: Callable[[Track, BatchResult], None],
        cursor: int,
    ) -> int:
        """Read the backend state of the first batches in flight and of a rotating page of the rest."""
        head_n, page_n = 256, 512
        items = list(tracks.values())
        chosen = items[:head_n]
        rest = items[head_n:]
        if rest:
            cursor %= len(rest)
            chosen += rest[cursor : cursor + page_n]
            cursor += page_n
        pairs = [(t, tid) for t in chosen for tid in t.task_ids]
        if not pairs:
            return cursor
        backend = self.app.backend
        raw = self.client.mget([backend.get_key_for_task(tid) for _, tid in pairs])
        best: dict[str, tuple[str, Any, str]] = {}
        for (t, tid), value in zip(pairs, raw, strict=True):
            if value is None:
                continue
            try:
                meta = json.loads(value)
            except ValueError:
                continue
            status = str(meta.get("status", "PENDING"))
            prev = best.get(t.batch.id)
            if prev is not None and prev[0] == "SUCCESS":
                continue  # any success of any of its tasks completes a batch
            if status == "SUCCESS" or prev is None or tid == t.task_ids[-1]:
                best[t.batch.id] = (status, meta, tid)
        now = self.clock()
        for bid, (status, meta, tid) in best.items():
            t = tracks.get(bid)
            if t is None:
                continue
            self._observe(plan, tracks, t, status, meta, tid, now, finished)
        return cursor

    def _observe(
        self,
        plan: Plan,
        tracks: OrderedDict[str, Track],
        t: Track,
        status: str,
        meta: Mapping[str, Any],
        tid: str,
        now: float,
        finished: Callable[[Track, BatchResult], None],
    ) -> None:
        result = meta.get("result")
        if status == "SUCCESS":
            if not isinstance(result, Mapping):
                return
            if result.get("missing"):
                raise UserError(
                    f"worker {result.get('hostname', '?')} does not find session {plan.session}'s "
                    f"{'plan' if result['missing'] == 'plan' else 'current plan'} in its shared storage "
                    f"({result.get('storage', '?')}), but this coordinator wrote it to {self.storage.describe()}: "
                    "give the coordinator and every worker the same shared storage (--storage-path / SHARED_STORAGE_PATH)"
                )
            if self._batch_in_storage(plan, t.batch):
                finished(t, result_from_json(result))
                return
            if t.unverified_since is None:
                t.unverified_since = now
            elif now - t.unverified_since >= self.timing.verify_grace:
                t.verify_failures += 1
                if t.verify_failures >= 2:
                    raise UserError(
                        f"worker {result.get('hostname', '?')} reports batch {t.batch.id} done but its audio is not in "
                        f"{self.storage.describe()}: do the coordinator and the workers share the same storage?"
                    )
                t.unverified_since = None
                log.warning("batch %s: reported done but not in storage; dispatching it again", t.batch.id)
                self._dispatch(plan, t)
            return
        if tid != t.task_ids[-1]:
            return  # the state of a superseded task: only its success matters
        if status == "FAILURE":
            exc_type = str(result.get("exc_type", "Error")) if isinstance(result, Mapping) else "Error"
            message = str(result.get("exc_message", result)) if isinstance(result, Mapping) else str(result)
            if isinstance(result, Mapping) and isinstance(result.get("exc_message"), list | tuple):
                message = " ".join(str(m) for m in result["exc_message"])
            worker = meta.get("worker") or "a worker"
            self.metrics.batch_failed()
            if exc_type in USER_ERROR_TYPES:
                raise UserError(f"{worker}: {message}")
            if exc_type in TRANSIENT_ERROR_TYPES:
                t.transient_failures += 1
            else:
                t.failures += 1
            if (
                t.failures >= self.timing.max_failures
                or t.transient_failures >= 10 * self.timing.max_failures
            ):
                raise SynthesisError(
                    f"batch {t.batch.id} (chapter {t.batch.chapter + 1}) failed {t.failures + t.transient_failures} times, last on "
                    f"{worker}: {exc_type}: {message}; the work done so far is kept: rerun to resume"
                )
            log.warning(
                "batch %s failed on %s (%s: %s): dispatching it again", t.batch.id, worker, exc_type, message
            )
            self._dispatch(plan, t)
            return
        if status != t.state:
            log.debug("batch %s: %s -> %s (%s)", t.batch.id, t.state, status, tid)
            t.state, t.state_since = status, now
        if status == "STARTED" and isinstance(result, Mapping):
            t.holder = str(result.get("hostname", "")) or t.holder

    def _recover(self, plan: Plan, tracks: OrderedDict[str, Track], now: float) -> None:
        tm = self.timing
        dead = lost_to_dead_workers(tracks.values(), self._last_seen, now, tm.dead_after)
        for t in dead:
            self.notify(f"worker {t.holder} is gone while holding batch {t.batch.id}: dispatching it again")
            self._dispatch(plan, t)
        self._orphans(plan, tracks, now)
        queued = self.queue_length()
        self.metrics.queue_length(queued)
        lost = lost_in_transit(tracks.values(), queued, now, tm.lost_grace, tm.retry_grace)
        if lost:
            log.warning("%d batches are neither queued nor running (lost): dispatching them again", len(lost))
            for t in lost:
                if self._batch_in_storage(plan, t.batch):
                    continue  # the sweep or the next poll completes it
                self._dispatch(plan, t)

    def _orphans(self, plan: Plan, tracks: OrderedDict[str, Track], now: float) -> None:
        """Batches STARTED long ago that no worker runs (e.g. a worker restarted under the same name)."""
        tm = self.timing
        old = [t for t in tracks.values() if t.state == "STARTED" and now - t.state_since >= tm.orphan_after]
        if not old or now < self._next_orphan_check:
            return
        self._next_orphan_check = now + tm.orphan_after
        replies = self.app.control.inspect(timeout=tm.ping_timeout).active() or {}
        active = {str(task.get("id")) for tasks in replies.values() for task in tasks or ()}
        for t in old:
            t.orphan_marks = 0 if t.task_ids[-1] in active else t.orphan_marks + 1
            if t.orphan_marks >= 2:
                self.notify(f"batch {t.batch.id} is held by no worker: dispatching it again")
                t.orphan_marks = 0
                self._dispatch(plan, t)

    def _sweep(
        self,
        plan: Plan,
        tracks: OrderedDict[str, Track],
        finished: Callable[[Track, BatchResult], None],
        now: float,
    ) -> None:
        """Complete batches whose audio is in storage although no result said so (a lost result)."""
        for t in list(tracks.values())[:200]:
            if now - t.dispatched < self.timing.sweep:
                continue
            if self._batch_in_storage(plan, t.batch):
                finished(
                    t,
                    BatchResult(
                        batch_id=t.batch.id, chunks=(), skipped=0, synth_seconds=0.0, audio_seconds=0.0
                    ),
                )
