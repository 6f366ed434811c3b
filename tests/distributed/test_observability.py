"""Operating the cluster: structured logs reach a real rsyslog, metrics a real Prometheus.

Real redis-server (with a password), real `ebook2audio worker` processes (sim engine), the real
coordinator CLI; rsyslog and Prometheus are Debian's, started by the test on loopback ports with
their own configuration and files (observability_helpers.py).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.test_logging_setup import RFC5424, validate

from .conftest import RedisServer, free_port
from .helpers import Worker, coordinator_args, run_cli, start_cli, write_book
from .observability_helpers import PROMETHEUS, RSYSLOGD, Prometheus, Rsyslog

pytestmark = pytest.mark.slow


def _plan(shared: Path) -> tuple[str, dict]:
    (plan_path,) = shared.glob("*/plans/*.json")
    return plan_path.parent.parent.name, json.loads(plan_path.read_text())


def _json_lines(text: str) -> list[dict]:
    """Every line of ``text`` is one JSON object valid against docs/log-schema.json."""
    events = []
    for line in text.splitlines():
        assert line.startswith("{"), f"not a JSON line: {line!r}"
        event = json.loads(line)
        validate(event)
        events.append(event)
    return events


def _no_secret(text: str, password: str, where: str) -> None:
    for form in {password, quote(password, safe="")}:
        assert form not in text, f"the Redis password appears in {where}"


@pytest.mark.skipif(RSYSLOGD is None, reason="rsyslogd is not installed (scripts/test.sh installs Debian's rsyslog)")
def test_coordinator_and_workers_log_rfc5424_to_a_real_rsyslog(redis_server: RedisServer, tmp_path: Path) -> None:
    syslog = Rsyslog(tmp_path / "rsyslog")
    syslog.start()
    book = write_book(tmp_path / "book.txt", chapters=3, paragraphs=2)
    shared = tmp_path / "shared"
    password = redis_server.password
    # w1: JSON lines on its console, syslog over UDP; w2: the usual text console, syslog over TCP.
    w1 = Worker(tmp_path, "w1", redis_server.url, shared, "--log-format", "json",
                "--log-syslog", f"udp://127.0.0.1:{syslog.udp_port}", EBOOK2AUDIO_SIM_MS_PER_CHAR="2")  # fmt: skip
    w2 = Worker(tmp_path, "w2", redis_server.url, shared, "--log-syslog", f"tcp://127.0.0.1:{syslog.tcp_port}",
                EBOOK2AUDIO_SIM_MS_PER_CHAR="2")  # fmt: skip
    try:
        w1.wait_ready()
        w2.wait_ready()
        args = coordinator_args(book, redis_server.url, shared, "--engine", "sim", "--num-workers", "2",
                                "--batch-chars", "150", "-o", "out", "--keep-work",
                                "--log-format", "json", "--log-syslog", f"tcp://127.0.0.1:{syslog.tcp_port}")  # fmt: skip
        done = run_cli(args, tmp_path, timeout=180)
        assert done.returncode == 0, done.stderr[-3000:]
        session, plan = _plan(shared)
        batch_ids = {b["id"] for b in plan["batches"]}

        # The coordinator's stderr: JSON lines only, each valid, with the session and every batch.
        console = _json_lines(done.stderr)
        finished = [e for e in console if e["event"] == "batch.done"]
        assert {e["batch"] for e in finished} == batch_ids
        assert all(e["session"] == session and e["role"] == "coordinator" for e in finished)
        assert finished[-1]["data"]["sentences_done"] == finished[-1]["data"]["sentences_total"] == len(plan["chunks"])
        assert console[-1]["message"].startswith("done: ")

        # The human console of w2 is as before; w1's is JSON lines (Celery's banner left out).
        assert re.search(r"\[\d{4}-\d\d-\d\d [\d:,]+: INFO/MainProcess\] w2@\S+ ready\.", w2.text())
        assert "batch.synthesized" not in w2.text()
        w1_events = _json_lines(w1.text())
        assert any(e["event"] == "batch.synthesized" and e["worker"].startswith("w1@") for e in w1_events)

        # rsyslog: every message is RFC 5424 (its own parser agrees), the payload valid JSON events.
        def received() -> list[dict]:
            out = []
            for line in syslog.lines("raw"):
                m = RFC5424.match(line)
                assert m, f"not RFC 5424: {line!r}"
                payload = json.loads(m["msg"])
                validate(payload)
                assert m["msgid"] == payload["event"] and m["app"] == "ebook2audio"
                out.append(payload)
            return out

        deadline = time.monotonic() + 20
        while True:
            events = received()
            synthesized = [e for e in events if e["event"] == "batch.synthesized"]
            coord_done = [e for e in events if e["role"] == "coordinator" and e["event"] == "batch.done"]
            if {e["batch"] for e in coord_done} == batch_ids and {e["batch"] for e in synthesized} == batch_ids:
                break
            assert time.monotonic() < deadline, f"rsyslog got {len(events)} events, not every batch"
            time.sleep(0.3)
        assert all(e["session"] == session for e in coord_done + synthesized)
        assert {e["worker"].split("@")[0] for e in synthesized} == {"w1", "w2"}  # over UDP and TCP
        assert all(isinstance(e["chapter"], int) and e["data"]["sentences"] >= 1 for e in synthesized)
        # a masked URL went through: the worker's start line names its broker without the password
        assert any("redis://:***@" in e["message"] for e in events if e["role"] == "worker")
        for fields in (line.split("\t") for line in syslog.lines("parsed")):
            assert fields[0] == "1" and fields[2] == "ebook2audio" and fields[7] == "-", fields

        for text, where in ((syslog.raw.read_text(), "rsyslog's file"), (syslog.parsed.read_text(), "rsyslog's file"),
                            (done.stderr, "the coordinator's log"), (w1.text(), "w1's log"), (w2.text(), "w2's log")):  # fmt: skip
            _no_secret(text, password, where)
    finally:
        w1.stop()
        w2.stop()
        syslog.stop()


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (scripts/test.sh installs Debian's)")
def test_a_real_prometheus_scrapes_the_coordinator(redis_server: RedisServer, tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.txt", chapters=5, paragraphs=3)
    shared = tmp_path / "shared"
    port = free_port()
    prom = Prometheus(tmp_path / "prometheus", [f"127.0.0.1:{port}"])
    prom.start()
    sim = {"EBOOK2AUDIO_SIM_MS_PER_CHAR": "6"}
    w1 = Worker(tmp_path, "w1", redis_server.url, shared, **sim)
    w2 = Worker(tmp_path, "w2", redis_server.url, shared, **sim)
    try:
        w1.wait_ready()
        w2.wait_ready()
        t0 = time.time()
        args = coordinator_args(book, redis_server.url, shared, "--engine", "sim", "--num-workers", "2",
                                "--batch-chars", "150", "-o", "out", "--keep-work", "--metrics-port", str(port),
                                "--metrics-address", "127.0.0.1", "--metrics-linger", "20")  # fmt: skip
        coord = start_cli(args, tmp_path)
        _out, err = coord.communicate(timeout=240)
        assert coord.returncode == 0, err[-3000:]
        t1 = time.time()
        session, plan = _plan(shared)
        total, batches = len(plan["chunks"]), len(plan["batches"])

        def last(name: str, **labels: str) -> float:
            got = prom.query(f"last_over_time({name}[10m])")
            return got[tuple(sorted({"session": session, **labels}.items()))]

        assert last("ebook2audio_sentences_planned") == total
        assert last("ebook2audio_sentences_done") == total  # reaches the total
        assert prom.query("last_over_time(ebook2audio_workers_connected[10m])") == {(): 2.0}
        assert prom.query("max_over_time(ebook2audio_workers_connected[10m])") == {(): 2.0}
        assert last("ebook2audio_batches_done_total") == batches
        assert last("ebook2audio_batches_dispatched_total") == batches
        assert last("ebook2audio_audio_seconds_total") > 0
        assert last("ebook2audio_realtime_factor") > 0
        assert sum(prom.query(f"last_over_time(ebook2audio_task_seconds_count{{session='{session}'}}[10m])").values()) == batches
        # the four key metrics of the guide, as docs/distributed.md writes them
        assert prom.query("sum(last_over_time(ebook2audio_batches{state='running'}[10m]))") == {(): 0.0}
        avg = prom.query("sum by (chapter) (last_over_time(ebook2audio_task_seconds_sum[10m])) / "
                         "sum by (chapter) (last_over_time(ebook2audio_task_seconds_count[10m]))")  # fmt: skip
        assert len(avg) == len(plan["chapters"]) and all(v > 0 for v in avg.values())

        # ETA: unknown first, then falling to 0 as the book is synthesised
        eta = [v for _, v in prom.series(f"ebook2audio_eta_seconds{{session='{session}'}}", t0, t1, 0.5) if v == v]
        assert len(eta) >= 4, eta
        assert eta[0] > eta[-1] == 0.0
        steps = [b - a for a, b in itertools.pairwise(eta) if b != a]
        assert sum(s < 0 for s in steps) > sum(s > 0 for s in steps), eta
        done = [v for _, v in prom.series(f"ebook2audio_sentences_done{{session='{session}'}}", t0, t1, 0.5)]
        assert done == sorted(done) and len(set(done)) >= 3, done  # scraped during the conversion
    finally:
        w1.stop()
        w2.stop()
        prom.stop()
