"""Log output of every process (convert, coordinator, worker, flower): text, JSON lines, syslog.

``cli.main`` calls :func:`configure_logging` once (the only place that configures logging):

* ``text`` (the default): the human-readable lines of before, unchanged.
* ``json`` (``--log-format json`` / ``EBOOK2AUDIO_LOG_FORMAT=json``): one JSON object per line on
  stderr, the schema in ``docs/log-schema.json`` (:class:`JsonFormatter`).
* ``--log-syslog ADDRESS`` (``EBOOK2AUDIO_LOG_SYSLOG``): the same JSON events, each as an RFC 5424
  message ``<PRI>1 TIMESTAMP HOST ebook2audio PID EVENT - {json}`` to a unix socket path,
  ``udp://host:514`` or ``tcp://host:601`` (RFC 6587 octet counting) (:class:`SyslogHandler`).

Context (session, job, batch, chapter, worker) comes from :func:`log_context` (a context variable,
inherited by forked worker processes) or from a call's ``extra=``; an event name and its numbers from
``extra={"event": "batch.done", "data": {...}}``. Every string is masked before it leaves: the
secrets of :func:`collect_secrets` and any password in a URL become ``***``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import logging.handlers
import os
import re
import socket
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit

from .errors import ConfigError

LOG_FORMATS = ("text", "json")
ENV_LOG_FORMAT = "EBOOK2AUDIO_LOG_FORMAT"
ENV_LOG_SYSLOG = "EBOOK2AUDIO_LOG_SYSLOG"
APP_NAME = "ebook2audio"
#: Environment variables whose values never appear in a log line.
SECRET_ENV_VARS = (
    "REDIS_PASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "FLOWER_PASSWORD",
)
#: Environment variables that may hold a URL with a password in it.
URL_ENV_VARS = ("REDIS_URL", "CELERY_BROKER_URL", "S3_ENDPOINT_URL")
#: Context fields (top-level keys of a JSON line) that ``log_context`` and ``extra=`` may set.
CONTEXT_FIELDS = ("session", "job", "batch", "chapter", "worker")
SEVERITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
FACILITIES = {"user": 1, "daemon": 3, **{f"local{i}": 16 + i for i in range(8)}}
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@")
_EVENT = re.compile(r"[a-z][a-z0-9_.]*")
# A record carrying skip_text_console=True was already shown by the progress display (or is too
# detailed for it): the human-readable console leaves it out; JSON lines and syslog keep it.
SKIP_TEXT_CONSOLE = "skip_text_console"

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("ebook2audio_log_context")
_NO_CONTEXT: Mapping[str, Any] = MappingProxyType({})


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (session=, job=, batch=, chapter=, worker=) to every record logged inside."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown log context fields: {', '.join(sorted(unknown))}")
    token = _context.set({**_context.get(_NO_CONTEXT), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> Mapping[str, Any]:
    return dict(_context.get(_NO_CONTEXT))


# -- masking (pure) ---------------------------------------------------------------------------------


def collect_secrets(env: Mapping[str, str], urls: Iterable[str | None] = ()) -> tuple[str, ...]:
    """Every secret this process may know: passwords and keys from ``env``, passwords in URLs."""
    found = [env.get(v, "") for v in SECRET_ENV_VARS]
    basic = env.get("FLOWER_BASIC_AUTH", "")
    found += [pair.partition(":")[2] for pair in basic.split(",")]
    for url in [*(env.get(v) for v in URL_ENV_VARS), *urls]:
        if not url:
            continue
        try:
            password = urlsplit(url).password
        except ValueError:
            continue
        if password:
            found += [password, unquote(password)]
    return tuple(sorted({s for s in found if len(s) >= 3}, key=len, reverse=True))


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret, and the password of any URL in it, replaced by ``***``."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return _URL_PASSWORD.sub(r"\1***@", text)


class MaskFilter(logging.Filter):
    """Masks a record's message (and its arguments) in place, for handlers that format it as text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: the handler reports it as logging does
            return True
        masked = mask(message, self.secrets)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class _TextConsoleFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, SKIP_TEXT_CONSOLE, False)


# -- JSON lines -------------------------------------------------------------------------------------


def rfc3339(created: float) -> str:
    """``2026-12-05T12:33:03.123456Z``: UTC, microseconds (RFC 3339 / RFC 5424 TIMESTAMP)."""
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: Any, secrets: tuple[str, ...]) -> Any:
    """A JSON-safe copy of ``value`` with strings masked (numbers, booleans and None kept)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, secrets) for v in value]
    return mask(str(value), secrets)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; the keys are documented in ``docs/log-schema.json``."""

    def __init__(
        self, *, role: str, secrets: Iterable[str] = (), host: str | None = None, ascii_only: bool = False
    ) -> None:
        super().__init__()
        self.role = role
        self.secrets = tuple(secrets)
        self.host = host or socket.gethostname()
        self.ascii_only = ascii_only

    def event(self, record: logging.LogRecord) -> str:
        name = getattr(record, "event", None)
        return name if isinstance(name, str) and _EVENT.fullmatch(name) else "log"

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ts": rfc3339(record.created),
            "level": record.levelname,
            "role": self.role,
            "host": self.host,
            "pid": record.process or os.getpid(),
            "logger": record.name,
            "event": self.event(record),
            "message": mask(record.getMessage(), self.secrets),
        }
        context = {**_context.get(_NO_CONTEXT), **{k: getattr(record, k) for k in CONTEXT_FIELDS if hasattr(record, k)}}
        for key in CONTEXT_FIELDS:
            value = context.get(key)
            if value is None or value == "":
                continue
            out[key] = value if key == "chapter" and isinstance(value, int) else mask(str(value), self.secrets)
        data = getattr(record, "data", None)
        if isinstance(data, Mapping) and data:
            out["data"] = _plain(data, self.secrets)
        if record.exc_info:
            out["exception"] = mask(self.formatException(record.exc_info), self.secrets)
        return out

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.fields(record), ensure_ascii=self.ascii_only, separators=(",", ":"))


# -- RFC 5424 ---------------------------------------------------------------------------------------


def header_field(value: str, max_len: int) -> str:
    """An RFC 5424 header field: printable US-ASCII without spaces (33-126), at most ``max_len``
    characters, ``-`` (the NILVALUE) when empty."""
    clean = "".join(c if 33 <= ord(c) <= 126 else "_" for c in value)[:max_len]
    return clean or "-"


class Rfc5424Formatter(logging.Formatter):
    """``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`` (RFC 5424), MSG being the JSON
    event (ASCII-only JSON: no BOM needed); MSGID is the event name, STRUCTURED-DATA is empty (-)."""

    def __init__(self, payload: JsonFormatter, *, facility: int = FACILITIES["user"], app: str = APP_NAME) -> None:
        super().__init__()
        self.payload = payload
        self.facility = facility
        self.app = app

    def format(self, record: logging.LogRecord) -> str:
        pri = self.facility * 8 + SEVERITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)
        return " ".join(
            (
                f"<{pri}>1",
                rfc3339(record.created),
                header_field(self.payload.host, 255),
                header_field(self.app, 48),
                header_field(str(record.process or os.getpid()), 128),
                header_field(self.payload.event(record), 32),
                "-",
                self.payload.format(record),
            )
        )


def octet_counted(message: bytes) -> bytes:
    """RFC 6587 octet-counting framing for a stream transport: ``LEN SP MSG``."""
    return b"%d " % len(message) + message


@dataclass(frozen=True)
class SyslogAddress:
    """Where syslog messages go: a unix socket path, or (host, port) over udp or tcp."""

    transport: str  # unix | udp | tcp
    path: str = ""
    host: str = ""
    port: int = 0
    facility: int = FACILITIES["user"]

    @property
    def display(self) -> str:
        return self.path if self.transport == "unix" else f"{self.transport}://{self.host}:{self.port}"


def parse_syslog_address(text: str) -> SyslogAddress:
    """``/dev/log``, ``unix:///dev/log``, ``udp://host[:514]``, ``tcp://host[:601]``; an optional
    ``?facility=local0`` (user, daemon, local0-local7; default user)."""
    raw = text.strip()
    facility = FACILITIES["user"]
    base, _, query = raw.partition("?")
    for part in filter(None, query.split("&")):
        key, _, value = part.partition("=")
        if key != "facility" or value not in FACILITIES:
            raise ConfigError(
                f"--log-syslog {raw!r}: the only option is facility=user|daemon|local0..local7"
            )
        facility = FACILITIES[value]
    if base.startswith("/") or base.startswith("unix://"):
        path = base.removeprefix("unix://")
        if not path.startswith("/"):
            raise ConfigError(f"--log-syslog {raw!r}: a unix socket needs an absolute path")
        return SyslogAddress("unix", path=path, facility=facility)
    try:
        parts = urlsplit(base)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"--log-syslog {raw!r}: invalid port") from exc
    if parts.scheme not in ("udp", "tcp") or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError(
            f"--log-syslog {raw!r}: give a unix socket path (/dev/log), udp://host:514 or tcp://host:601"
        )
    default = 514 if parts.scheme == "udp" else 601
    return SyslogAddress(parts.scheme, host=parts.hostname, port=port or default, facility=facility)


SEND_TIMEOUT = 2.0  # seconds a syslog receiver may keep a log line waiting
_INTERNAL = "ebook2audio_syslog_internal"  # a record about the syslog handler itself: not sent to it


class SyslogHandler(logging.handlers.SysLogHandler):
    """The standard library's syslog handler sending our own RFC 5424 frames.

    Stream sockets (tcp, a stream unix socket) frame each message by octet counting (RFC 6587); a
    process forked after setup (a Celery pool process) opens its own socket; a broken connection is
    opened again once per message; a receiver that stays away or stalls is said once on stderr, in
    one line, and never blocks the conversion (lines are dropped instead).
    """

    def __init__(self, address: SyslogAddress) -> None:
        self.target = address
        self._pid = os.getpid()
        self._complained = False
        try:  # the standard library connects a tcp socket at once: check_syslog says why it failed
            if address.transport == "unix":
                super().__init__(address=address.path, facility=address.facility)
            else:
                kind = socket.SOCK_DGRAM if address.transport == "udp" else socket.SOCK_STREAM
                super().__init__(address=(address.host, address.port), facility=address.facility, socktype=kind)
        except OSError:
            self.socket = None  # type: ignore[assignment]
        self.addFilter(lambda record: not getattr(record, _INTERNAL, False))

    @property
    def connected(self) -> bool:
        return self.socket is not None and self.socket.fileno() >= 0

    def _reopen(self) -> None:
        with contextlib.suppress(OSError):
            if self.socket is not None:
                self.socket.close()
        self.socket = None  # type: ignore[assignment]
        self.createSocket()
        self._pid = os.getpid()

    def _send(self, message: bytes) -> None:
        if not self.connected or os.getpid() != self._pid:
            self._reopen()
        # A full receiver queue (a unix datagram socket holds 10) or a stalled stream receiver: wait
        # up to SEND_TIMEOUT for it, not at all while it is known not to take lines (they are dropped).
        self.socket.settimeout(0.0 if self._complained else SEND_TIMEOUT)
        if self.unixsocket and self.socktype == socket.SOCK_DGRAM:
            self.socket.send(message)
        elif self.socktype == socket.SOCK_DGRAM:
            self.socket.sendto(message, self.address)
        else:
            self.socket.sendall(octet_counted(message))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record).encode("utf-8")
            try:
                self._send(message)
            except OSError:
                self._reopen()
                self._send(message)
            self._complained = False
        except Exception:
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        """Said once (on the console, as text or a JSON line) until a line goes through again."""
        if self._complained:
            return
        self._complained = True
        exc = sys.exc_info()[1]
        reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) or type(exc).__name__
        with contextlib.suppress(Exception):
            logging.getLogger("ebook2audio.logging").warning(
                "warning: syslog %s does not take log lines (%s): they are lost until it does",
                self.target.display,
                reason,
                extra={"event": "syslog.lost", _INTERNAL: True},
            )


def check_syslog(handler: SyslogHandler) -> None:
    """A stream receiver must answer now (a datagram one cannot be checked): one line otherwise."""
    if handler.connected:
        return
    try:
        handler._reopen()
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the syslog receiver at {handler.target.display} ({exc.strerror or exc})"
        ) from None
    if not handler.connected:
        raise ConfigError(f"cannot reach the syslog receiver at {handler.target.display} (no such socket)")


# -- setup ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogOptions:
    format: str = "text"  # text | json
    syslog: str = ""  # "" = none, else an address for parse_syslog_address
    debug: bool = False
    quiet: bool = False
    role: str = "cli"  # convert | coordinator | worker | flower | cli

    @property
    def structured(self) -> bool:
        """Our handlers must stay in place (a Celery worker must not replace them)."""
        return self.format == "json" or bool(self.syslog)


def log_options(
    fmt: str | None, syslog: str | None, env: Mapping[str, str], *, debug: bool, quiet: bool, role: str
) -> LogOptions:
    """Flags > environment > text; ConfigError on an unknown format or a malformed address."""
    chosen = (fmt or env.get(ENV_LOG_FORMAT, "") or "text").strip().lower()
    if chosen not in LOG_FORMATS:
        raise ConfigError(f"log format must be {' or '.join(LOG_FORMATS)}, not {chosen!r}")
    address = (syslog if syslog is not None else env.get(ENV_LOG_SYSLOG, "")).strip()
    if address:
        parse_syslog_address(address)
    return LogOptions(format=chosen, syslog=address, debug=debug, quiet=quiet, role=role)


#: The human-readable line of a worker (Celery's own default format).
WORKER_TEXT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"


def configure_logging(opts: LogOptions, secrets: Iterable[str] = ()) -> None:
    """Install the handlers of ``opts`` on the root logger (replacing any)."""
    secrets = tuple(secrets)
    level = logging.DEBUG if opts.debug else logging.INFO
    console_level = logging.DEBUG if opts.debug else (logging.WARNING if opts.quiet else logging.INFO)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(console_level)
    if opts.format == "json":
        console.setFormatter(JsonFormatter(role=opts.role, secrets=secrets))
    else:
        if opts.debug:
            text = "%(levelname)s %(name)s: %(message)s"
        elif opts.role == "worker" and opts.structured:
            text = WORKER_TEXT_FORMAT  # Celery keeps our handlers: its own line format, from us
        else:
            text = "%(message)s"
        console.setFormatter(logging.Formatter(text))
        console.addFilter(_TextConsoleFilter())
        console.addFilter(MaskFilter(secrets))
    handlers: list[logging.Handler] = [console]
    if opts.syslog:
        address = parse_syslog_address(opts.syslog)
        syslog = SyslogHandler(address)
        check_syslog(syslog)
        syslog.setFormatter(
            Rfc5424Formatter(JsonFormatter(role=opts.role, secrets=secrets, ascii_only=True), facility=address.facility)
        )
        syslog.setLevel(level)
        handlers.append(syslog)
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    root.handlers[:] = handlers
    root.setLevel(logging.WARNING)
    # Python warnings (a library's, Celery's) as log records: JSON lines and syslog get them too.
    logging.captureWarnings(opts.structured)
    # ebook2audio's own records: all INFO when something else than the console reads them.
    logging.getLogger("ebook2audio").setLevel(level if opts.structured or not opts.quiet else logging.WARNING)
    logging.getLogger("pypdf").setLevel(logging.DEBUG if opts.debug else logging.ERROR)


def json_console() -> bool:
    """Whether stderr carries JSON lines (then nothing else may print there)."""
    return any(
        isinstance(h, logging.StreamHandler) and isinstance(h.formatter, JsonFormatter)
        for h in logging.getLogger().handlers
    )


def structured_logging_active() -> bool:
    """Whether :func:`configure_logging` installed JSON or syslog handlers in this process."""
    root = logging.getLogger()
    return any(
        isinstance(h, SyslogHandler) or isinstance(h.formatter, JsonFormatter) for h in root.handlers
    )
