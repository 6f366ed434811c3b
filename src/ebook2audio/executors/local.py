"""The embedded executor: a pool of processes, each with its model loaded once and one inference thread.

Measured on 2 cores: 2 processes x 1 thread give ~2x the throughput of one process, while one process
with 2 threads gives ~1.6x. So parallelism is processes. The pool is started with ``spawn`` so that no
process inherits onnxruntime's threads from a fork.

The pool is this module's own (not ``ProcessPoolExecutor``, which kills every process when one dies):
each process runs one batch at a time, so a process that dies (a segfault in a native library, an
out-of-memory kill) is charged to exactly its batch; it is replaced and the batch sent again, and the
batch's crash-safe markers make the next deliveries find and replace the sentence that kills it
(:mod:`ebook2audio.poison`). Every count is bounded, so a run always ends.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_any
from multiprocessing.process import BaseProcess
from pathlib import Path

from ..engines.base import Engine, EngineInfo
from ..errors import Ebook2AudioError, SynthesisError, UserError
from ..interrupts import ignore_in_child, raise_soon
from ..model import Batch, BatchResult, Chunk, Plan
from ..plan import dispatch_order
from ..poison import BatchGuard, StorageAttempts, max_batch_deaths
from ..storage.local import LocalStorage
from ..tasks import synthesize_batch
from .base import OnBatch

log = logging.getLogger(__name__)


def single_thread_env() -> None:
    """One inference thread per process (set before onnxruntime/numpy start their pools)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def guarded_batch(
    storage: LocalStorage,
    session: str,
    batch_id: str,
    chunks: Sequence[Chunk],
    engine: Engine,
    *,
    strict: bool = False,
    speed: float = 1.0,
) -> BatchResult:
    """``synthesize_batch`` counted by crash-safe markers in the job's storage (see :mod:`..poison`)."""
    info = engine.info
    with BatchGuard.for_voice(
        StorageAttempts(storage), storage, session, batch_id, len(chunks), info, speed, strict=strict
    ) as guard:
        return synthesize_batch(storage, session, batch_id, chunks, engine, guard=guard)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    # Unwinds the batch: its markers are cleared (a stop is no death). Inside a native call that calls
    # back into Python (espeak-ng) the exit is raised when that call returns, or it would be lost.
    raise_soon(SystemExit(128 + signum))


def _child_main(conn: Connection, root: str, info: EngineInfo, speed: float, device: str, strict: bool) -> None:
    """A pool process: load the engine once, then run the batches the parent sends, one at a time."""
    single_thread_env()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    ignore_in_child()  # the parent decides (Ctrl-C reaches the whole group)
    from ..engines.registry import load_engine

    try:
        engine = load_engine(info, speed=speed, device=device)
    except Exception as exc:
        conn.send(("init_error", _portable(exc)))
        return
    storage = LocalStorage(root)
    conn.send(("ready", None))
    try:
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                return
            if msg is None:
                return
            session, batch_id, chunks = msg
            try:
                result = guarded_batch(storage, session, batch_id, chunks, engine, strict=strict, speed=speed)
            except Exception as exc:
                conn.send(("error", _portable(exc)))
                continue
            conn.send(("ok", result))
    finally:
        engine.close()


def _portable(exc: BaseException) -> Ebook2AudioError:
    """An exception the parent can unpickle: ours as they are, anything else as a SynthesisError."""
    if isinstance(exc, Ebook2AudioError):
        try:
            pickle.loads(pickle.dumps(exc))
            return exc
        except Exception:
            return UserError(str(exc)) if isinstance(exc, UserError) else SynthesisError(str(exc))
    return SynthesisError(f"{type(exc).__name__}: {exc}")


def describe_exit(code: int | None) -> str:
    """'killed by SIGSEGV' / 'exit code 1' for a process's exit code."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class _Slot:
    """One pool process, its pipe, and the batch it runs (None: idle or still loading its engine)."""

    process: BaseProcess
    conn: Connection
    ready: bool = False
    batch: Batch | None = None


START_DEATHS_LIMIT = 3  # processes dying before they take any batch: the engine cannot run here


@dataclass
class LocalExecutor:
    root: Path
    info: EngineInfo
    speed: float = 1.0
    device: str = "cpu"
    workers: int = 1
    retries: int = 1
    strict: bool = False  # a sentence that kills its process is an error, not replaced

    def run(self, plan: Plan, batches: Sequence[Batch], on_batch: OnBatch) -> None:
        if not batches:
            return
        cmap = plan.chunk_map()
        ordered = dispatch_order(batches)
        # Even one worker is a child process: a crash in native code (a segfault) then costs a
        # process, not the run, and is counted and handled like any other death.
        self._run_pool(plan, ordered, cmap, on_batch, max(1, min(self.workers, len(ordered))))

    def _start(self, ctx: multiprocessing.context.SpawnContext) -> _Slot:
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=_child_main,
            args=(child, str(self.root), self.info, self.speed, self.device, self.strict),
            daemon=True,
        )
        process.start()
        child.close()
        return _Slot(process=process, conn=parent)

    def _run_pool(
        self, plan: Plan, ordered: list[Batch], cmap: dict[str, Chunk], on_batch: OnBatch, workers: int
    ) -> None:
        """One batch per process at a time, so a process's death is charged to exactly its batch.

        A dead process (a segfault in a native library, an out-of-memory kill) is replaced and its
        batch sent again; the batch's own markers make the next deliveries look for the sentence that
        kills it (:mod:`..poison`). The others go on untouched.
        """
        ctx = multiprocessing.get_context("spawn")
        slots = [self._start(ctx) for _ in range(workers)]
        queue = deque(ordered)
        failures: dict[str, int] = {}
        deaths: dict[str, int] = {}
        start_deaths = 0
        clean = False
        try:
            while queue or any(s.batch is not None for s in slots):
                for s in slots:
                    if s.ready and s.batch is None and queue:
                        b = queue.popleft()
                        s.conn.send((plan.session, b.id, [cmap[i] for i in b.chunk_ids]))
                        s.batch = b
                wait_any([s.conn for s in slots] + [s.process.sentinel for s in slots])
                for i, s in enumerate(slots):
                    alive = True
                    while alive and s.conn.poll():
                        try:
                            kind, payload = s.conn.recv()
                        except (EOFError, OSError):
                            alive = False
                            break
                        if kind == "ready":
                            s.ready = True
                            start_deaths = 0
                        elif kind == "init_error":
                            raise payload
                        elif kind == "ok":
                            s.batch = None
                            on_batch(payload)
                        else:  # "error": the process lives, the batch raised
                            b, s.batch = s.batch, None
                            assert b is not None
                            if not isinstance(payload, SynthesisError):
                                raise payload
                            failures[b.id] = failures.get(b.id, 0) + 1
                            if failures[b.id] > self.retries:
                                raise payload
                            log.warning("batch %s failed (%s), retrying", b.id, payload)
                            queue.appendleft(b)
                    if alive and s.process.exitcode is None:
                        continue
                    s.process.join(5)
                    how = describe_exit(s.process.exitcode)
                    b = s.batch
                    if b is None:
                        start_deaths += 1
                        if start_deaths >= START_DEATHS_LIMIT:
                            raise SynthesisError(
                                f"synthesis processes die as they start ({how}): the voice cannot run here"
                            )
                    else:
                        deaths[b.id] = deaths.get(b.id, 0) + 1
                        if deaths[b.id] > max_batch_deaths(len(b.chunk_ids)):
                            raise SynthesisError(
                                f"batch {b.id} (chapter {b.chapter + 1}) killed its synthesis process "
                                f"{deaths[b.id]} times ({how}); the work done so far is kept"
                            )
                        log.warning(
                            "a synthesis process died (%s) on batch %s of chapter %d: sending it again",
                            how,
                            b.id,
                            b.chapter + 1,
                        )
                        queue.appendleft(b)
                    s.conn.close()
                    slots[i] = self._start(ctx)
            clean = True
        finally:
            self._stop(slots, clean)

    @staticmethod
    def _stop(slots: list[_Slot], clean: bool) -> None:
        """Idle processes are told to exit; busy ones (an error elsewhere) get SIGTERM, which unwinds
        their batch cleanly; any left after 10 s are killed."""
        for s in slots:
            with contextlib.suppress(OSError, ValueError):
                if clean or s.batch is None:
                    s.conn.send(None)
                else:
                    s.process.terminate()
        for s in slots:
            s.process.join(10)
            if s.process.exitcode is None:
                s.process.kill()
                s.process.join(5)
            s.conn.close()

    def close(self) -> None:
        """Nothing to release: each pool process closes its own engine."""
