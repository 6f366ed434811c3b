"""A real rsyslog and a real Prometheus (Debian's packages) run by a test, on loopback, in a tmp dir.

Neither is a system service here: each is started in the foreground with a configuration file the
test writes, listens on 127.0.0.1 only, keeps its state in the test's directory, and is stopped
(SIGTERM, then SIGKILL) at the end. ``scripts/test.sh`` installs both when missing; without them
the tests that need them are skipped with the reason.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .conftest import free_port

RSYSLOGD = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)
PROMETHEUS = shutil.which("prometheus")

# What rsyslog's own RFC 5424 parser read from each message (a tab between fields), then the raw
# message: a line is only there if rsyslog took it for a syslog message.
PARSED_TEMPLATE = (
    "%protocol-version%\\t%hostname%\\t%app-name%\\t%procid%\\t%msgid%\\t%syslogseverity%\\t"
    "%syslogfacility%\\t%structured-data%\\t%msg%\\n"
)


def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"{what} exited {proc.returncode}: {err[-3000:]}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout} s")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Rsyslog:
    """rsyslogd -n with imtcp and imudp on 127.0.0.1 (free ports), writing every message to two files:
    ``raw`` (the message as received, one a line) and ``parsed`` (rsyslog's RFC 5424 fields)."""

    def __init__(self, directory: Path) -> None:
        assert RSYSLOGD, "rsyslogd is not installed"
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tcp_port = free_port()
        self.udp_port = free_port()
        self.raw = self.dir / "raw.log"
        self.parsed = self.dir / "parsed.log"
        self.conf = self.dir / "rsyslog.conf"
        (self.dir / "work").mkdir(exist_ok=True)
        self.conf.write_text(
            f"""
global(workDirectory="{self.dir / "work"}" maxMessageSize="64k")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="{self.tcp_port}" ruleset="test")
input(type="imudp" address="127.0.0.1" port="{self.udp_port}" ruleset="test")
template(name="raw" type="string" string="%rawmsg%\\n")
template(name="parsed" type="string" string="{PARSED_TEMPLATE}")
ruleset(name="test") {{
  action(type="omfile" file="{self.raw}" template="raw" flushOnTXEnd="on" asyncWriting="off")
  action(type="omfile" file="{self.parsed}" template="parsed" flushOnTXEnd="on" asyncWriting="off")
}}
"""
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        check = subprocess.run([RSYSLOGD, "-N1", "-f", str(self.conf)], capture_output=True, text=True)
        assert check.returncode == 0, f"rsyslog refuses its configuration: {check.stderr}"
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(self.conf), "-i", str(self.dir / "rsyslogd.pid")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_port("127.0.0.1", self.tcp_port, self.proc, "rsyslogd")

    def stop(self) -> None:
        _stop(self.proc)

    def lines(self, which: str = "raw") -> list[str]:
        path = self.raw if which == "raw" else self.parsed
        return path.read_text(errors="replace").splitlines() if path.exists() else []


class Prometheus:
    """prometheus scraping ``targets`` every second, web and storage in the test's directory."""

    def __init__(self, directory: Path, targets: list[str]) -> None:
        assert PROMETHEUS, "prometheus is not installed"
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = self.dir / "prometheus.yml"
        self.conf.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: ebook2audio\n    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={self.conf}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_port("127.0.0.1", self.port, self.proc, "prometheus")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # ready = the TSDB is open and queries answer
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus not ready within 30 s")

    def stop(self) -> None:
        _stop(self.proc)

    def api(self, path: str, **params: Any) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Instant query: {labels (without __name__, job, instance): value}."""
        out = {}
        for item in self.api("query", query=expr)["result"]:
            labels = tuple(sorted((k, v) for k, v in item["metric"].items() if k not in ("__name__", "job", "instance")))
            out[labels] = float(item["value"][1])
        return out

    def series(self, expr: str, start: float, end: float, step: float = 1.0) -> list[tuple[float, float]]:
        """Range query of a single series: [(time, value)], NaN kept."""
        result = self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step}")["result"]
        assert len(result) <= 1, result
        return [(float(t), float(v)) for t, v in result[0]["values"]] if result else []
