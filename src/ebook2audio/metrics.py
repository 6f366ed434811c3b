"""Prometheus metrics of a conversion (``convert --metrics-port N``, embedded or coordinator).

The only module that imports ``prometheus_client`` (the ``distributed`` extra); without it, or
without ``--metrics-port``, :data:`NO_METRICS` takes every call and does nothing. Each process has its
own registry (no global state); the names, in docs/distributed.md ("Metrics"):

=========================================== ======= ================ ===========================================
name                                        type    labels           meaning
=========================================== ======= ================ ===========================================
ebook2audio_sentences_planned               gauge   session          sentences in the book's plan
ebook2audio_sentences_done                  gauge   session          sentences with audio (earlier runs included)
ebook2audio_batches                         gauge   session, state   batches in flight: state=queued|running
ebook2audio_batches_dispatched_total        counter session          batches sent to the workers (first time)
ebook2audio_batches_redispatched_total      counter session          batches sent again (worker lost, failure)
ebook2audio_batches_done_total              counter session          batches finished and verified
ebook2audio_batches_failed_total            counter session          failed attempts (each one retried)
ebook2audio_workers_connected               gauge                    workers answering the coordinator's pings
ebook2audio_queue_length                    gauge                    messages waiting in the Redis queue
ebook2audio_audio_seconds_total             counter session          seconds of audio made by this run
ebook2audio_realtime_factor                 gauge   session          audio seconds per wall second (x real time)
ebook2audio_eta_seconds                     gauge   session          estimated seconds left (NaN until known)
ebook2audio_task_seconds (summary)          summary session, chapter synthesis time per batch (_sum, _count)
ebook2audio_last_progress_timestamp_seconds gauge   session          Unix time of the latest finished batch
=========================================== ======= ================ ===========================================
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from .errors import ConfigError, UserError

ENV_METRICS_PORT = "EBOOK2AUDIO_METRICS_PORT"
ENV_METRICS_ADDRESS = "EBOOK2AUDIO_METRICS_ADDRESS"
ENV_METRICS_LINGER = "EBOOK2AUDIO_METRICS_LINGER"


class Metrics(Protocol):
    """What a conversion reports; every call is cheap and never raises."""

    def started(self, session: str, total: int, done: int) -> None: ...

    def batch_done(
        self,
        *,
        chapter: int,
        sentences_done: int,
        audio_seconds: float,
        task_seconds: float,
        realtime_factor: float,
        eta_seconds: float | None,
    ) -> None: ...

    def finished(self, *, complete: bool) -> None: ...

    def dispatched(self, *, again: bool) -> None: ...

    def batch_failed(self) -> None: ...

    def in_flight(self, *, queued: int, running: int) -> None: ...

    def workers_connected(self, count: int) -> None: ...

    def queue_length(self, count: int) -> None: ...


class NoMetrics:
    """Takes every call, does nothing (no --metrics-port, or prometheus_client missing)."""

    def started(self, session: str, total: int, done: int) -> None:
        pass

    def batch_done(self, **kwargs: Any) -> None:
        pass

    def finished(self, *, complete: bool) -> None:
        pass

    def dispatched(self, *, again: bool) -> None:
        pass

    def batch_failed(self) -> None:
        pass

    def in_flight(self, *, queued: int, running: int) -> None:
        pass

    def workers_connected(self, count: int) -> None:
        pass

    def queue_length(self, count: int) -> None:
        pass


NO_METRICS = NoMetrics()


class PrometheusMetrics:
    """The metrics above in a registry of their own, served by :func:`serve_metrics`."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Summary

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        s = ("session",)
        self.sentences_planned = Gauge("ebook2audio_sentences_planned", "Sentences in the book's plan", s, registry=r)
        self.sentences_done = Gauge(
            "ebook2audio_sentences_done", "Sentences with audio in storage, earlier runs included", s, registry=r
        )
        self.batches = Gauge("ebook2audio_batches", "Batches in flight by state (queued, running)", (*s, "state"), registry=r)
        self.dispatched_total = Counter("ebook2audio_batches_dispatched", "Batches sent to the workers", s, registry=r)
        self.redispatched_total = Counter(
            "ebook2audio_batches_redispatched", "Batches sent again (worker lost, failure, lost task)", s, registry=r
        )
        self.done_total = Counter("ebook2audio_batches_done", "Batches finished and verified", s, registry=r)
        self.failed_total = Counter("ebook2audio_batches_failed", "Failed batch attempts (retried)", s, registry=r)
        self.workers = Gauge("ebook2audio_workers_connected", "Workers answering the coordinator's pings", registry=r)
        self.queue = Gauge("ebook2audio_queue_length", "Messages waiting in the Redis queue", registry=r)
        self.audio_total = Counter("ebook2audio_audio_seconds", "Seconds of audio made by this run", s, registry=r)
        self.realtime = Gauge("ebook2audio_realtime_factor", "Audio seconds per wall second (x real time)", s, registry=r)
        self.eta = Gauge("ebook2audio_eta_seconds", "Estimated seconds until synthesis ends (NaN: unknown)", s, registry=r)
        self.task = Summary("ebook2audio_task_seconds", "Synthesis seconds per batch", (*s, "chapter"), registry=r)
        self.last_progress = Gauge(
            "ebook2audio_last_progress_timestamp_seconds", "Unix time of the latest finished batch", s, registry=r
        )
        self.session = ""
        self._lock = threading.Lock()
        self._ended_at: float | None = None
        self._scraped_after_end = threading.Event()
        r.register(_ScrapeWatch(self))  # last: a scrape has read every value above when it runs

    def started(self, session: str, total: int, done: int) -> None:
        self.session = session
        self.sentences_planned.labels(session).set(total)
        self.sentences_done.labels(session).set(done)
        self.eta.labels(session).set(float("nan") if done < total else 0.0)
        self.realtime.labels(session).set(0.0)
        self.last_progress.labels(session).set(time.time())
        for state in ("queued", "running"):
            self.batches.labels(session, state).set(0)
        for counter in (self.dispatched_total, self.redispatched_total, self.done_total, self.failed_total, self.audio_total):
            counter.labels(session)  # present at 0 from the start

    def batch_done(
        self,
        *,
        chapter: int,
        sentences_done: int,
        audio_seconds: float,
        task_seconds: float,
        realtime_factor: float,
        eta_seconds: float | None,
    ) -> None:
        s = self.session
        self.sentences_done.labels(s).set(sentences_done)
        self.done_total.labels(s).inc()
        self.audio_total.labels(s).inc(max(audio_seconds, 0.0))
        self.task.labels(s, str(chapter)).observe(max(task_seconds, 0.0))
        self.realtime.labels(s).set(realtime_factor)
        self.eta.labels(s).set(float("nan") if eta_seconds is None else eta_seconds)
        self.last_progress.labels(s).set(time.time())

    def finished(self, *, complete: bool) -> None:
        """Synthesis ended: nothing in flight; ETA 0 when every sentence is done (else unknown)."""
        self.eta.labels(self.session).set(0.0 if complete else float("nan"))
        self.in_flight(queued=0, running=0)

    def dispatched(self, *, again: bool) -> None:
        (self.redispatched_total if again else self.dispatched_total).labels(self.session).inc()

    def batch_failed(self) -> None:
        self.failed_total.labels(self.session).inc()

    def in_flight(self, *, queued: int, running: int) -> None:
        self.batches.labels(self.session, "queued").set(queued)
        self.batches.labels(self.session, "running").set(running)

    def workers_connected(self, count: int) -> None:
        self.workers.set(count)

    def queue_length(self, count: int) -> None:
        self.queue.set(count)

    def end(self) -> None:
        self._ended_at = time.time()

    def wait_for_final_scrape(self, timeout: float) -> bool:
        return self._scraped_after_end.wait(timeout)


class _ScrapeWatch:
    """A collector with no metric that notices the first scrape after the end (for linger)."""

    def __init__(self, metrics: PrometheusMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        if self._metrics._ended_at is not None:
            self._metrics._scraped_after_end.set()
        return iter(())


def add_metrics_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("monitoring (Prometheus)")
    g.add_argument(
        "--metrics-port", type=int, metavar="N",
        help="serve Prometheus metrics on this port during the conversion (EBOOK2AUDIO_METRICS_PORT)",
    )  # fmt: skip
    g.add_argument(
        "--metrics-address", metavar="ADDR",
        help="address the metrics server listens on (EBOOK2AUDIO_METRICS_ADDRESS, default 0.0.0.0)",
    )  # fmt: skip
    g.add_argument(
        "--metrics-linger", type=float, metavar="S",
        help="after the end, keep serving until one scrape has read the final values, at most S seconds "
        "(EBOOK2AUDIO_METRICS_LINGER, default 0)",
    )  # fmt: skip


def metrics_options(
    port: int | None, address: str | None, linger: float | None, env: Mapping[str, str]
) -> tuple[int | None, str, float]:
    """(port or None, address, linger seconds): flags > environment > defaults; ConfigError if invalid."""
    raw_port: Any = port if port is not None else env.get(ENV_METRICS_PORT, "").strip() or None
    try:
        chosen = None if raw_port is None else int(raw_port)
        wait = float(linger if linger is not None else env.get(ENV_METRICS_LINGER, "").strip() or 0)
    except ValueError as exc:
        raise ConfigError(f"invalid metrics setting ({exc})") from None
    if chosen is not None and not 0 < chosen < 65536:
        raise ConfigError(f"--metrics-port must be 1-65535, not {chosen}")
    if wait < 0:
        raise ConfigError("--metrics-linger must be 0 or more")
    return chosen, (address or env.get(ENV_METRICS_ADDRESS, "").strip() or "0.0.0.0"), wait


@contextlib.contextmanager
def serve_metrics(port: int | None, address: str = "0.0.0.0", linger: float = 0.0) -> Iterator[Metrics]:
    """The metrics of one conversion, served on ``address:port`` while the block runs (NO_METRICS
    when ``port`` is None). At the end, serves on until a scrape has read the final values, at most
    ``linger`` seconds."""
    if port is None:
        yield NO_METRICS
        return
    try:
        from prometheus_client import start_http_server
    except ImportError:
        raise UserError(
            "--metrics-port needs prometheus_client: pip install 'ebook2audio[distributed]'"
        ) from None
    metrics = PrometheusMetrics()
    try:
        server, thread = start_http_server(port, addr=address, registry=metrics.registry)
    except OSError as exc:
        raise UserError(f"cannot serve metrics on {address}:{port} ({exc.strerror or exc})") from None
    try:
        yield metrics
        metrics.end()
        if linger > 0:
            metrics.wait_for_final_scrape(linger)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

