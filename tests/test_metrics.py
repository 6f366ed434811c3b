"""Metrics: the pure estimate, the Prometheus registry, its HTTP server, and the observing reporter."""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
import urllib.request
from typing import Any

import pytest

from ebook2audio.errors import ConfigError, UserError
from ebook2audio.metrics import NO_METRICS, metrics_options, serve_metrics
from ebook2audio.model import BatchResult, Book, Chapter, ChunkResult, Metadata, VoiceSpec
from ebook2audio.plan import PlanOptions, make_plan
from ebook2audio.progress import ObservedReporter, estimate

from .fakes import FAKE_INFO

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from ebook2audio.metrics import PrometheusMetrics  # noqa: E402


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


# -- the estimate (pure) ------------------------------------------------------------------------------


def test_estimate_from_this_runs_pace() -> None:
    assert estimate(total=100, done=10, done_at_start=10, audio_seconds=0, elapsed=5) == (0.0, None)
    rt, eta = estimate(total=100, done=30, done_at_start=10, audio_seconds=40, elapsed=10)
    assert rt == pytest.approx(4.0)
    assert eta == pytest.approx(35.0)  # 20 sentences in 10 s: 70 left take 35 s
    assert estimate(total=100, done=100, done_at_start=10, audio_seconds=1, elapsed=1)[1] == 0.0


# -- the registry -------------------------------------------------------------------------------------


def exposition(m: PrometheusMetrics) -> str:
    return prometheus_client.generate_latest(m.registry).decode()


def test_every_documented_metric_is_exposed_with_its_labels() -> None:
    m = PrometheusMetrics()
    m.started("sess", total=10, done=2)
    text = exposition(m)
    assert math.isnan(value(text, "ebook2audio_eta_seconds", session="sess"))
    m.workers_connected(2)
    m.queue_length(5)
    m.dispatched(again=False)
    m.dispatched(again=False)
    m.dispatched(again=True)
    m.batch_failed()
    m.in_flight(queued=3, running=1)
    m.batch_done(chapter=2, sentences_done=6, audio_seconds=12.0, task_seconds=1.5, realtime_factor=3.0, eta_seconds=8.0)
    m.batch_done(chapter=2, sentences_done=8, audio_seconds=6.0, task_seconds=0.5, realtime_factor=3.5, eta_seconds=4.0)
    text = exposition(m)
    s = {"session": "sess"}
    assert value(text, "ebook2audio_sentences_planned", **s) == 10
    assert value(text, "ebook2audio_sentences_done", **s) == 8
    assert value(text, "ebook2audio_batches", state="queued", **s) == 3
    assert value(text, "ebook2audio_batches", state="running", **s) == 1
    assert value(text, "ebook2audio_batches_dispatched_total", **s) == 2
    assert value(text, "ebook2audio_batches_redispatched_total", **s) == 1
    assert value(text, "ebook2audio_batches_failed_total", **s) == 1
    assert value(text, "ebook2audio_batches_done_total", **s) == 2
    assert value(text, "ebook2audio_workers_connected") == 2
    assert value(text, "ebook2audio_queue_length") == 5
    assert value(text, "ebook2audio_audio_seconds_total", **s) == 18
    assert value(text, "ebook2audio_realtime_factor", **s) == 3.5
    assert value(text, "ebook2audio_eta_seconds", **s) == 4
    assert value(text, "ebook2audio_task_seconds_count", chapter="2", **s) == 2
    assert value(text, "ebook2audio_task_seconds_sum", chapter="2", **s) == 2.0
    assert value(text, "ebook2audio_last_progress_timestamp_seconds", **s) == pytest.approx(time.time(), abs=5)
    m.finished(complete=True)
    text = exposition(m)
    assert value(text, "ebook2audio_eta_seconds", **s) == 0
    assert value(text, "ebook2audio_batches", state="running", **s) == 0


def test_two_conversions_in_one_process_do_not_share_metrics() -> None:
    a, b = PrometheusMetrics(), PrometheusMetrics()
    a.started("a", 1, 0)
    assert "ebook2audio_sentences_planned{" not in exposition(b)


# -- the server ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def test_served_while_the_block_runs_then_closed() -> None:
    port = free_port()
    with serve_metrics(port, "127.0.0.1") as m:
        m.started("s", 3, 0)
        assert value(scrape(port), "ebook2audio_sentences_planned", session="s") == 3
    with pytest.raises(OSError):
        scrape(port)


def test_linger_ends_at_the_first_scrape_after_the_end() -> None:
    port = free_port()
    got: list[str] = []

    def late_scrape() -> None:
        time.sleep(0.5)
        got.append(scrape(port))

    t0 = time.monotonic()
    with serve_metrics(port, "127.0.0.1", linger=20) as m:
        m.started("s", 1, 0)
        m.batch_done(chapter=1, sentences_done=1, audio_seconds=1, task_seconds=1, realtime_factor=1, eta_seconds=0)
        threading.Thread(target=late_scrape).start()
    assert time.monotonic() - t0 < 10
    assert value(got[0], "ebook2audio_sentences_done", session="s") == 1


def test_port_in_use_is_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(UserError, match=f"cannot serve metrics on 127.0.0.1:{port}"), serve_metrics(port, "127.0.0.1"):
            pass


def test_no_port_no_server() -> None:
    with serve_metrics(None) as m:
        assert m is NO_METRICS


def test_metrics_options() -> None:
    env = {"EBOOK2AUDIO_METRICS_PORT": "9400", "EBOOK2AUDIO_METRICS_ADDRESS": "127.0.0.1"}
    assert metrics_options(None, None, None, env) == (9400, "127.0.0.1", 0.0)
    assert metrics_options(9500, "::", 3, env) == (9500, "::", 3.0)
    assert metrics_options(None, None, None, {}) == (None, "0.0.0.0", 0.0)
    for port, linger in ((0, None), (70000, None), (9400, -1)):
        with pytest.raises(ConfigError):
            metrics_options(port, None, linger, {})
    with pytest.raises(ConfigError):
        metrics_options(None, None, None, {"EBOOK2AUDIO_METRICS_PORT": "http"})


# -- the observing reporter -----------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: self.calls.append((name, k or a))


def test_reporter_feeds_metrics_and_logs_events(caplog: pytest.LogCaptureFixture) -> None:
    book = Book(
        metadata=Metadata(title="T"),
        chapters=tuple(Chapter(f"C{i}", (f"Sentence one of {i}. Sentence two of {i}.",)) for i in range(3)),
    )
    plan = make_plan(book, FAKE_INFO, VoiceSpec(engine="fake"), "sess", PlanOptions(batch_chars=20))
    assert len(plan.batches) >= 3
    now = [100.0]
    metrics = Recorder()
    rep = ObservedReporter(None, metrics, clock=lambda: now[0])  # type: ignore[arg-type]
    caplog.set_level(logging.INFO, logger="ebook2audio.events")
    rep.synthesis_started(plan, set())
    etas = []
    for b in plan.batches:
        now[0] += 2.0
        rep.batch_done(
            BatchResult(b.id, tuple(ChunkResult(c, 22050) for c in b.chunk_ids), 0, 1.5, float(len(b.chunk_ids))),
            len(b.chunk_ids),
        )
        etas.append(metrics.calls[-1][1]["eta_seconds"])
    rep.synthesis_finished()
    rep.synthesis_finished()  # again, as the CLI does on its way out: said once
    assert metrics.calls[0] == ("started", (plan.session, len(plan.chunks), 0))
    assert etas == sorted(etas, reverse=True) and etas[-1] == 0.0
    assert metrics.calls[-2][1]["sentences_done"] == len(plan.chunks)
    assert metrics.calls[-1] == ("finished", {"complete": True})
    assert [r.event for r in caplog.records].count("synthesis.finished") == 1  # type: ignore[attr-defined]
    done = [r for r in caplog.records if getattr(r, "event", "") == "batch.done"]
    assert [r.batch for r in done] == [b.id for b in plan.batches]  # type: ignore[attr-defined]
    assert {r.chapter for r in done} == {b.chapter + 1 for b in plan.batches}  # type: ignore[attr-defined]
    assert all(r.session == plan.session for r in done)  # type: ignore[attr-defined]
