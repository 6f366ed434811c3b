"""``ebook2audio serve``: the web app and HTTP API (docs/web.md), served by uvicorn.

Binds 127.0.0.1:7860 by default. Any address beyond loopback needs EBOOK2AUDIO_WEB_USER and
EBOOK2AUDIO_WEB_PASSWORD (HTTP Basic, checked on every request): without them it refuses to start.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import UserError

log = logging.getLogger("ebook2audio.web")

USER_ENV = "EBOOK2AUDIO_WEB_USER"
PASSWORD_ENV = "EBOOK2AUDIO_WEB_PASSWORD"
MAX_UPLOAD_ENV = "EBOOK2AUDIO_WEB_MAX_UPLOAD_MB"
FLOWER_URL_ENV = "EBOOK2AUDIO_FLOWER_URL"
DEFAULT_PORT = 7860
# The coordinator flags of `convert --distributed` that `serve` passes on to each job (dest, flag).
DISTRIBUTED_FLAGS = (
    ("num_workers", "--num-workers"),
    ("storage_type", "--storage-type"),
    ("storage_path", "--storage-path"),
    ("s3_endpoint_url", "--s3-endpoint-url"),
    ("s3_bucket", "--s3-bucket"),
    ("s3_region", "--s3-region"),
    ("worker_timeout", "--worker-timeout"),
    ("max_in_flight", "--max-in-flight"),
)


def add_serve_command(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="the web app and HTTP API: a persistent queue of books (http://127.0.0.1:7860)",
        description="Serve the web app and its HTTP API (docs/web.md). Off loopback it needs "
        f"{USER_ENV} and {PASSWORD_ENV}.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument(
        "--data-dir", type=Path,
        help="the queue database, uploaded books and work files (default ~/.local/share/ebook2audio/web)",
    )  # fmt: skip
    p.add_argument("--input-dir", type=Path, help="a folder of books the page may pick from")
    p.add_argument("--output-dir", type=Path, help="where audiobooks go, one folder per job (default DATA/output)")
    p.add_argument(
        "--max-upload-mb", type=float,
        help=f"largest upload request in MB (default 200; {MAX_UPLOAD_ENV})",
    )  # fmt: skip
    p.add_argument(
        "--jobs", type=int,
        help="conversions at once (default 1; distributed: 2, whose books share the workers batch by batch)",
    )  # fmt: skip
    p.add_argument(
        "--library-interval", type=float, default=300.0, metavar="SECONDS",
        help="seconds between two scans of a watched library folder (default 300)",
    )  # fmt: skip
    try:
        from ..distributed_cli import add_convert_flags
    except ImportError:  # distributed extras not installed
        pass
    else:
        add_convert_flags(p)
    p.set_defaults(handler=run_serve)


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def credentials(host: str, env: Mapping[str, str]) -> tuple[str, str]:
    """The web login from the environment; UserError when the address needs one and none is set."""
    user, password = env.get(USER_ENV, ""), env.get(PASSWORD_ENV, "")
    if bool(user) != bool(password):
        raise UserError(f"set both {USER_ENV} and {PASSWORD_ENV}, or neither")
    if ":" in user:
        raise UserError(f"{USER_ENV} must not contain ':'")
    if not user and not is_loopback(host):
        raise UserError(
            f"refusing to serve on {host} without a login: set {USER_ENV} and {PASSWORD_ENV} "
            "(or serve on 127.0.0.1)"
        )
    return user, password


def default_data_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ebook2audio" / "web"


def _check_port(host: str, port: int) -> None:
    if not (0 < port < 65536):
        raise UserError(f"--port {port}: not a TCP port")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host.strip("[]"), port))
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def run_serve(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    user, password = credentials(args.host, env)
    raw_limit = args.max_upload_mb if args.max_upload_mb is not None else env.get(MAX_UPLOAD_ENV) or 200
    try:
        max_upload = int(float(raw_limit) * 1_000_000)
    except ValueError as exc:
        raise UserError(f"{MAX_UPLOAD_ENV}: not a number: {raw_limit!r}") from exc
    if max_upload <= 0:
        raise UserError("--max-upload-mb must be positive")
    distributed = bool(getattr(args, "distributed", False))
    slots = args.jobs if args.jobs is not None else (2 if distributed else 1)
    if slots < 1:
        raise UserError("--jobs must be 1 or more")
    if not args.library_interval > 0:
        raise UserError("--library-interval must be positive")
    data_dir = (args.data_dir or default_data_dir(env)).expanduser().resolve()
    output_dir = (args.output_dir or data_dir / "output").expanduser().resolve()
    input_dir = args.input_dir.expanduser().resolve() if args.input_dir else None
    if input_dir is not None and not input_dir.is_dir():
        raise UserError(f"--input-dir {args.input_dir}: not a folder")
    for folder in (data_dir, output_dir):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create {folder}: {exc.strerror}") from exc
    extra: list[str] = []
    if hasattr(args, "distributed"):
        extra.append("--distributed" if distributed else "--no-distributed")
    if distributed:
        for dest, flag in DISTRIBUTED_FLAGS:
            value = getattr(args, dest, None)
            if value is not None:
                extra += [flag, str(value)]
    child_env = dict(env)
    if distributed and getattr(args, "redis_url", None):  # by environment: never on a command line
        child_env["REDIS_URL"] = args.redis_url
    _check_port(args.host, args.port)

    try:
        import uvicorn

        from .server import ServerConfig, create_app
    except ImportError as exc:
        raise UserError(f"the web app needs {exc.name}: pip install 'ebook2audio[web]'") from exc

    config = ServerConfig(
        data_dir=data_dir,
        output_dir=output_dir,
        input_dir=input_dir,
        user=user,
        password=password,
        max_upload_bytes=max_upload,
        distributed=distributed,
        slots=slots,
        extra_args=tuple(extra),
        flower_url=env.get(FLOWER_URL_ENV, ""),
        child_env=child_env,
        library_interval=args.library_interval,
    )
    app = create_app(config)

    shown = f"[{args.host}]" if ":" in args.host else args.host
    log.info(
        "serving on http://%s:%d (%s; data in %s, audiobooks in %s%s)",
        shown, args.port, "login required" if user else "no login: loopback only", data_dir, output_dir,
        ", distributed" if distributed else "",
    )  # fmt: skip
    uvicorn.run(
        app.state.asgi, host=args.host.strip("[]"), port=args.port, log_config=None,
        timeout_graceful_shutdown=5, proxy_headers=False,
    )  # fmt: skip
    return 0
