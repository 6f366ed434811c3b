"""Log formats: JSON lines against the documented schema, RFC 5424 framing, masking, real sockets."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ebook2audio.errors import ConfigError
from ebook2audio.logging_setup import (
    FACILITIES,
    SKIP_TEXT_CONSOLE,
    JsonFormatter,
    LogOptions,
    Rfc5424Formatter,
    SyslogAddress,
    SyslogHandler,
    collect_secrets,
    configure_logging,
    current_context,
    header_field,
    log_context,
    log_options,
    mask,
    octet_counted,
    parse_syslog_address,
)

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "log-schema.json"
# RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD SP MSG
RFC5424 = re.compile(
    r"<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (?P<host>[!-~]{1,255}) "
    r"(?P<app>[!-~]{1,48}) (?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) - (?P<msg>.*)\Z",
    re.S,
)
SECRET = "s3cret-Pw!x"


def validate(event: dict) -> None:
    """Against docs/log-schema.json: with jsonschema where installed, else the same rules by hand."""
    schema = json.loads(SCHEMA_PATH.read_text())
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - jsonschema comes with the test extras (moto)
        assert set(schema["required"]) <= set(event), event
        assert set(event) <= set(schema["properties"]), event
        assert re.fullmatch(schema["properties"]["ts"]["pattern"], event["ts"])
        assert re.fullmatch(schema["properties"]["event"]["pattern"], event["event"])
        return
    jsonschema.validate(event, schema)


def record(msg: str = "hello %s", *args: object, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("ebook2audio.test", level, __file__, 1, msg, args or (("world",) if "%" in msg else ()), None)
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


# -- JSON lines ---------------------------------------------------------------------------------------


def test_json_line_has_every_documented_field_and_validates() -> None:
    fmt = JsonFormatter(role="coordinator", host="node-1")
    with log_context(session="sess1", job="job9"):
        line = fmt.format(
            record(event="batch.done", batch="b42", chapter=3, data={"sentences": 4, "eta_seconds": 12.5})
        )
    event = json.loads(line)
    validate(event)
    assert "\n" not in line
    assert event["message"] == "hello world"
    assert (event["role"], event["host"], event["level"], event["event"]) == ("coordinator", "node-1", "INFO", "batch.done")
    assert (event["session"], event["job"], event["batch"], event["chapter"]) == ("sess1", "job9", "b42", 3)
    assert event["data"] == {"sentences": 4, "eta_seconds": 12.5}


def test_plain_records_are_event_log_and_nan_numbers_become_null() -> None:
    event = json.loads(JsonFormatter(role="worker").format(record(data={"eta": float("nan")})))
    validate(event)
    assert event["event"] == "log"
    assert event["data"] == {"eta": None}
    assert "session" not in event


def test_bad_event_names_fall_back_to_log() -> None:
    event = json.loads(JsonFormatter(role="cli").format(record(event="Batch Done!")))
    assert event["event"] == "log"


def test_exception_is_one_field_and_masked() -> None:
    try:
        raise RuntimeError(f"redis://:{SECRET}@host:6379/0 refused")
    except RuntimeError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    event = json.loads(JsonFormatter(role="cli", secrets=[SECRET]).format(rec))
    validate(event)
    assert "RuntimeError" in event["exception"]
    assert SECRET not in json.dumps(event)


def test_log_context_nests_and_resets() -> None:
    with log_context(session="a"):
        with log_context(batch="b1", chapter=None):
            assert current_context() == {"session": "a", "batch": "b1"}
        assert current_context() == {"session": "a"}
    assert current_context() == {}
    with pytest.raises(ValueError), log_context(password="x"):
        pass


def test_context_is_per_thread() -> None:
    seen: list[dict] = []
    with log_context(session="main"):
        t = threading.Thread(target=lambda: seen.append(dict(current_context())))
        t.start()
        t.join()
    assert seen == [{}]


# -- masking ------------------------------------------------------------------------------------------


def test_mask_hides_secrets_and_url_passwords() -> None:
    text = f"broker redis://user:{SECRET}@h:6379/0 and rediss://:other-pw@h2/1 key {SECRET}"
    out = mask(text, [SECRET])
    assert SECRET not in out and "other-pw" not in out
    assert "redis://user:***@h:6379/0" in out and "rediss://:***@h2/1" in out
    assert mask("http://host:8080/path user:x", []) == "http://host:8080/path user:x"


def test_collect_secrets_from_environment_and_urls() -> None:
    env = {
        "REDIS_PASSWORD": "redis-pass",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-key",
        "AWS_SESSION_TOKEN": "token-123",
        "FLOWER_PASSWORD": "flower-pass",
        "FLOWER_BASIC_AUTH": "admin:basic-pass",
        "REDIS_URL": "redis://:env%2Fpw@h:6379/0",
        "UNRELATED": "visible",
    }
    found = collect_secrets(env, ["redis://:flag-pw@h/0", None])
    for s in ("redis-pass", "aws-secret-key", "token-123", "flower-pass", "basic-pass", "env/pw", "env%2Fpw", "flag-pw"):
        assert s in found
    assert "visible" not in found
    assert list(found) == sorted(found, key=len, reverse=True)  # longest first: no partial masking


def test_every_handler_masks(tmp_path: Path) -> None:
    stream = io.StringIO()
    for fmt in ("text", "json"):
        configure_logging(LogOptions(format=fmt, role="cli"), [SECRET])
        handler = logging.getLogger().handlers[0]
        handler.setStream(stream)  # type: ignore[attr-defined]
        logging.getLogger("ebook2audio.x").warning("password is %s in redis://:%s@h/0", SECRET, "p4ss")
    text = stream.getvalue()
    assert SECRET not in text and "p4ss" not in text
    assert text.count("***") == 4


# -- RFC 5424 -----------------------------------------------------------------------------------------


def test_rfc5424_header_and_json_payload() -> None:
    fmt = Rfc5424Formatter(JsonFormatter(role="worker", host="gpu-host", ascii_only=True), facility=FACILITIES["local0"])
    with log_context(session="s1"):
        line = fmt.format(record(level=logging.WARNING, event="batch.done", batch="b1"))
    m = RFC5424.match(line)
    assert m, line
    assert int(m["pri"]) == 16 * 8 + 4  # local0.warning
    assert (m["host"], m["app"], m["procid"], m["msgid"]) == ("gpu-host", "ebook2audio", str(os.getpid()), "batch.done")
    payload = json.loads(m["msg"])
    validate(payload)
    assert payload["session"] == "s1" and payload["batch"] == "b1"


@pytest.mark.parametrize(
    ("level", "severity"),
    [(logging.DEBUG, 7), (logging.INFO, 6), (logging.WARNING, 4), (logging.ERROR, 3), (logging.CRITICAL, 2)],
)
def test_rfc5424_severities(level: int, severity: int) -> None:
    line = Rfc5424Formatter(JsonFormatter(role="cli", host="h")).format(record(level=level))
    assert line.startswith(f"<{8 + severity}>1 ")  # facility user (1)


def test_rfc5424_escapes_header_fields_and_keeps_msg_ascii() -> None:
    fmt = Rfc5424Formatter(JsonFormatter(role="cli", host="my host\u00e9" + "x" * 300, ascii_only=True))
    line = fmt.format(record("caf\u00e9 %s", "line1\nline2", event="a" * 40))
    m = RFC5424.match(line)
    assert m, line
    assert m["host"].startswith("my_host_") and len(m["host"]) == 255
    assert m["msgid"] == "a" * 32
    assert line.isascii() and "\n" not in line
    assert json.loads(m["msg"])["message"] == "caf\u00e9 line1\nline2"
    assert header_field("", 10) == "-"


def test_octet_counting_frames() -> None:
    framed = octet_counted("<14>1 é".encode())
    assert framed == b"8 <14>1 \xc3\xa9"  # bytes, not characters
    stream = octet_counted(b"one") + octet_counted(b"three 3")
    assert list(read_frames(stream)) == [b"one", b"three 3"]


def read_frames(data: bytes) -> Iterator[bytes]:
    """An RFC 6587 octet-counting reader (the receiver's side)."""
    while data:
        length, _, rest = data.partition(b" ")
        n = int(length)
        yield rest[:n]
        data = rest[n:]


# -- addresses ----------------------------------------------------------------------------------------


def test_parse_syslog_addresses() -> None:
    assert parse_syslog_address("/dev/log") == SyslogAddress("unix", path="/dev/log")
    assert parse_syslog_address("unix:///run/s.sock").path == "/run/s.sock"
    assert parse_syslog_address("udp://logs.example") == SyslogAddress("udp", host="logs.example", port=514)
    assert parse_syslog_address("tcp://10.0.0.5") == SyslogAddress("tcp", host="10.0.0.5", port=601)
    assert parse_syslog_address("tcp://h:6514?facility=local3").facility == 19
    assert parse_syslog_address("udp://[::1]:5140").host == "::1"
    for bad in ("http://h:1", "udp://", "tcp://h:99999", "logs.example:514", "unix://rel", "udp://h?facility=kern"):
        with pytest.raises(ConfigError):
            parse_syslog_address(bad)


def test_log_options_flag_wins_over_environment() -> None:
    env = {"EBOOK2AUDIO_LOG_FORMAT": "json", "EBOOK2AUDIO_LOG_SYSLOG": "udp://127.0.0.1:5514"}
    opts = log_options(None, None, env, debug=False, quiet=False, role="worker")
    assert (opts.format, opts.syslog, opts.structured) == ("json", "udp://127.0.0.1:5514", True)
    assert log_options("text", "", env, debug=False, quiet=False, role="w").structured is False
    with pytest.raises(ConfigError, match="text or json"):
        log_options("xml", None, {}, debug=False, quiet=False, role="cli")
    with pytest.raises(ConfigError):
        log_options(None, "ftp://x", {}, debug=False, quiet=False, role="cli")


# -- the handler over real sockets --------------------------------------------------------------------


def syslog_handler(address: SyslogAddress) -> SyslogHandler:
    handler = SyslogHandler(address)
    handler.setFormatter(Rfc5424Formatter(JsonFormatter(role="cli", host="h", ascii_only=True)))
    return handler


def test_udp_datagram_is_one_message() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        handler = syslog_handler(SyslogAddress("udp", host="127.0.0.1", port=server.getsockname()[1]))
        handler.handle(record(event="phase"))
        data = server.recv(65536).decode()
        handler.close()
    m = RFC5424.match(data)
    assert m and m["msgid"] == "phase" and json.loads(m["msg"])["message"] == "hello world"


def test_unix_datagram_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        handler = syslog_handler(parse_syslog_address(path))
        handler.handle(record())
        assert RFC5424.match(server.recv(65536).decode())
        handler.close()


def test_a_receiver_that_does_not_read_never_blocks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import time

    path = str(tmp_path / "stalled.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)  # never reads: its queue fills after 10 messages
        handler = syslog_handler(parse_syslog_address(path))
        t0 = time.monotonic()
        for _ in range(2000):
            handler.handle(record())
        assert time.monotonic() - t0 < 10  # waited SEND_TIMEOUT (twice) once, then drops lines at once
        server.recv(65536)  # room again: lines go through, and a stall would be said again
        handler.handle(record("after"))
        assert not handler._complained
        handler.close()
    said = [r.getMessage() for r in caplog.records if r.name == "ebook2audio.logging"]
    assert len(said) == 1 and said[0].startswith(f"warning: syslog {path} does not take log lines"), said


def test_a_slow_reader_loses_nothing(tmp_path: Path) -> None:
    """A burst larger than the socket's queue waits for the reader instead of dropping lines."""
    path = str(tmp_path / "slow.sock")
    got: list[bytes] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(3)

        def read() -> None:
            import time

            while len(got) < 200:
                time.sleep(0.001)
                got.append(server.recv(65536))

        reader = threading.Thread(target=read)
        reader.start()
        handler = syslog_handler(parse_syslog_address(path))
        for i in range(200):
            handler.handle(record("line %s", i))
        reader.join()
        handler.close()
    assert [json.loads(RFC5424.match(g.decode())["msg"])["message"] for g in got] == [f"line {i}" for i in range(200)]  # type: ignore[index]


class TcpReceiver:
    """A loopback TCP syslog receiver collecting the bytes of every connection."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received: list[bytearray] = []  # one buffer per connection
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            buffer = bytearray()
            self.received.append(buffer)
            t = threading.Thread(target=self._read, args=(conn, buffer), daemon=True)
            t.start()
            self._threads.append(t)

    def _read(self, conn: socket.socket, buffer: bytearray) -> None:
        with conn:
            while data := conn.recv(65536):
                buffer.extend(data)

    @property
    def connections(self) -> int:
        return len(self.received)

    def frames(self) -> list[bytes]:
        return [f for buffer in list(self.received) for f in read_frames(bytes(buffer))]

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the accept() of the thread: no longer listening
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()


def wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_tcp_uses_octet_counting_and_a_new_connection_after_fork() -> None:
    receiver = TcpReceiver()
    handler = syslog_handler(SyslogAddress("tcp", host="127.0.0.1", port=receiver.port))
    try:
        handler.handle(record("first line %s", "x\ny"))
        handler.handle(record("second"))
        pid = os.fork()
        if pid == 0:  # a Celery pool process: must not write on the parent's connection
            handler.handle(record("from the child"))
            os._exit(0)
        os.waitpid(pid, 0)
        wait_for(lambda: len(receiver.frames()) == 3)
        messages = [json.loads(RFC5424.match(f.decode())["msg"])["message"] for f in receiver.frames()]  # type: ignore[index]
        assert sorted(messages) == sorted(["first line x\ny", "second", "from the child"])
        assert receiver.connections == 2
    finally:
        handler.close()
        receiver.close()


def test_receiver_gone_is_one_warning_line_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    receiver = TcpReceiver()
    address = SyslogAddress("tcp", host="127.0.0.1", port=receiver.port)
    configure_logging(LogOptions(role="cli"))  # the text console, as the CLI sets it up
    handler = syslog_handler(address)
    logging.getLogger().addHandler(handler)
    receiver.close()
    handler.socket.close()
    for _ in range(3):
        logging.getLogger("ebook2audio.x").warning("a line for syslog")
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines.count("a line for syslog") == 3
    assert [x for x in lines if x != "a line for syslog"] == [
        f"warning: syslog tcp://127.0.0.1:{receiver.port} does not take log lines (Connection refused): "
        "they are lost until it does"
    ], err
    assert "Traceback" not in err


def test_unreachable_tcp_receiver_is_a_config_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    with pytest.raises(ConfigError, match=rf"cannot reach the syslog receiver at tcp://127.0.0.1:{port}"):
        configure_logging(LogOptions(syslog=f"tcp://127.0.0.1:{port}"))


# -- the text console ---------------------------------------------------------------------------------


def test_text_console_is_unchanged_and_skips_events() -> None:
    stream = io.StringIO()
    configure_logging(LogOptions(role="convert"))
    root = logging.getLogger()
    assert len(root.handlers) == 1
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    log = logging.getLogger("ebook2audio.pipeline")
    log.info("plain line")
    log.info("batch done", extra={"event": "batch.done", SKIP_TEXT_CONSOLE: True})
    log.debug("hidden")
    assert stream.getvalue() == "plain line\n"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("ebook2audio").level)
    yield
    for h in root.handlers:
        if h not in saved[0]:
            h.close()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.getLogger("ebook2audio").setLevel(saved[2])
