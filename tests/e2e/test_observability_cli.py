"""The embedded CLI's structured logs and metrics, through the real command in a subprocess."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.distributed.helpers import write_book
from tests.test_logging_setup import RFC5424, validate

from .helpers import cli_env, run_cli

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_json_lines_and_syslog_from_an_embedded_conversion(tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.txt", chapters=2, paragraphs=2)
    datagrams: list[str] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:  # a unix datagram syslog socket
        path = str(tmp_path / "log.sock")
        receiver.bind(path)
        receiver.settimeout(0.5)
        finished = threading.Event()

        def read() -> None:
            while True:
                try:
                    datagrams.append(receiver.recv(65536).decode())
                except TimeoutError:
                    if finished.is_set():
                        return

        reader = threading.Thread(target=read)
        reader.start()
        r = run_cli(["convert", str(book), "--engine", "sim", "-o", "out", "--batch-chars", "200",
                     "--log-syslog", path], tmp_path, timeout=120, EBOOK2AUDIO_LOG_FORMAT="json")  # fmt: skip
        finished.set()
        reader.join()
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stderr.splitlines()]  # nothing but JSON lines on stderr
    for e in events:
        validate(e)
    assert {e["role"] for e in events} == {"convert"}
    kinds = [e["event"] for e in events]
    assert kinds.index("synthesis.started") < kinds.index("batch.done") < kinds.index("synthesis.finished")
    done = [e for e in events if e["event"] == "batch.done"]
    assert done[-1]["data"]["sentences_done"] == done[-1]["data"]["sentences_total"]
    assert done[-1]["data"]["eta_seconds"] == 0
    assert len({e["session"] for e in done}) == 1 and all(e["chapter"] in (1, 2) for e in done)
    assert events[-1]["message"].startswith("done: ")
    # the same events, as RFC 5424 messages on the unix socket
    payloads = [json.loads(RFC5424.match(d)["msg"]) for d in datagrams]  # type: ignore[index]
    assert [p["event"] for p in payloads] == kinds


def test_bad_log_settings_are_one_line_errors(tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.txt", chapters=1, paragraphs=1)
    for args, env, expected in (
        (["--log-syslog", "http://logs:514"], {}, "error: --log-syslog 'http://logs:514': give a unix socket path"),
        ([], {"EBOOK2AUDIO_LOG_FORMAT": "xml"}, "error: log format must be text or json, not 'xml'"),
        (["--log-syslog", f"tcp://127.0.0.1:{_free_port()}"], {}, "error: cannot reach the syslog receiver at tcp://"),
        (["--metrics-port", "0"], {}, "error: --metrics-port must be 1-65535, not 0"),
    ):
        r = run_cli(["convert", str(book), "--engine", "sim", "-o", "out", *args], tmp_path, **env)
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith(expected) and r.stderr.count("\n") == 1, r.stderr
    r = run_cli(["convert", str(tmp_path / "missing.epub"), "--log-format", "json"], tmp_path)
    assert r.returncode == 2
    (line,) = r.stderr.splitlines()
    event = json.loads(line)
    validate(event)
    assert (event["level"], event["event"], event["message"]) == ("ERROR", "error", f"error: {tmp_path / 'missing.epub'}: no such file")


def test_embedded_conversion_serves_metrics_while_it_runs(tmp_path: Path) -> None:
    book = write_book(tmp_path / "book.txt", chapters=3, paragraphs=2)
    port = _free_port()
    scrapes: list[str] = []
    proc = subprocess.Popen(
        [sys.executable, "-m", "ebook2audio", "convert", str(book), "--engine", "sim", "-o", "out", "-w", "1",
         "--batch-chars", "150", "--metrics-port", str(port), "--metrics-address", "127.0.0.1",
         "--metrics-linger", "10"],
        env=cli_env(tmp_path, EBOOK2AUDIO_SIM_MS_PER_CHAR="4"), cwd=tmp_path, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def scrape() -> None:
        while proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    scrapes.append(r.read().decode())
            except OSError:
                pass
            time.sleep(0.3)

    t = threading.Thread(target=scrape)
    t.start()
    _out, err = proc.communicate(timeout=300)
    t.join()
    assert proc.returncode == 0, err
    from prometheus_client.parser import text_string_to_metric_families

    def get(text: str, name: str) -> float | None:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name:
                    return s.value
        return None

    done = [get(s, "ebook2audio_sentences_done") for s in scrapes]
    done = [d for d in done if d is not None]
    planned = get(scrapes[-1], "ebook2audio_sentences_planned")
    assert planned and done[-1] == planned  # the final values were scraped (linger)
    assert len(set(done)) >= 3 and done == sorted(done)  # and values on the way
    assert get(scrapes[-1], "ebook2audio_eta_seconds") == 0
    assert get(scrapes[-1], "ebook2audio_batches_done_total")
