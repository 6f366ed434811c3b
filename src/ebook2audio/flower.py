"""``ebook2audio flower``: the Flower monitoring dashboard of a cluster, always behind a password.

Flower is started as ``celery flower`` on the cluster's broker (REDIS_URL). It refuses to start
without FLOWER_USER and FLOWER_PASSWORD, warns about weak passwords, and keeps every secret out of
logs and out of the process list: the broker URL and the credentials reach Flower through its
environment (CELERY_BROKER_URL, FLOWER_BASIC_AUTH), never through its command line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_PORT = 5555
DEFAULT_ADDRESS = "127.0.0.1"  # the compose file passes --address 0.0.0.0 inside its container
MIN_PASSWORD_LENGTH = 12
# The Tasks page's columns: Flower's default hides the arguments, which name the session and batch.
TASKS_COLUMNS = "name,uuid,state,args,kwargs,received,started,runtime,worker,retries"
_WEAK_PASSWORDS = frozenset({"admin", "password", "changeme", "flower", "celery", "secret", "123456", "root"})
# Never handed to the Flower process: it needs none of them (it gets the broker URL and the auth pair).
_DROPPED_ENV = ("FLOWER_PASSWORD", "REDIS_PASSWORD", "AWS_SECRET_ACCESS_KEY", "REDIS_URL")


@dataclass(frozen=True)
class FlowerLaunch:
    """What to execute: ``argv`` (no secret in it), ``env`` (holding the secrets), ``display`` (masked)."""

    argv: list[str]
    env: dict[str, str]
    display: str


def check_credentials(user: str, password: str) -> list[str]:
    """Raise ConfigError when Flower cannot be protected; return warnings about weak credentials."""
    if not user or not password:
        raise ConfigError(
            "Flower needs a login: set FLOWER_USER and FLOWER_PASSWORD (it never runs without one)"
        )
    if ":" in user:
        raise ConfigError("FLOWER_USER must not contain ':'")
    if "," in user or "," in password:
        # Flower splits its basic-auth option on commas (several user:password pairs).
        raise ConfigError("FLOWER_USER and FLOWER_PASSWORD must not contain ','")
    warnings: list[str] = []
    if password.lower() in _WEAK_PASSWORDS or password == user:
        warnings.append("FLOWER_PASSWORD is a well-known default: choose a long random one")
    if len(password) < MIN_PASSWORD_LENGTH:
        warnings.append(f"FLOWER_PASSWORD is shorter than {MIN_PASSWORD_LENGTH} characters")
    return warnings


def celery_program() -> list[str]:
    """The ``celery`` command of this interpreter (the same virtual environment)."""
    return [sys.executable, "-m", "celery"]


def flower_argv(
    broker_url: str,
    user: str,
    password: str,
    *,
    port: int = DEFAULT_PORT,
    address: str = DEFAULT_ADDRESS,
    program: Sequence[str] = ("celery",),
) -> list[str]:
    """``celery --broker URL flower --basic-auth=U:P --port P --address A ...`` as a list (holds secrets).

    The Tasks page also shows each task's arguments (``--tasks-columns``).
    """
    check_credentials(user, password)
    _check_port(port)
    return [
        *program,
        "--broker",
        broker_url,
        "flower",
        f"--basic-auth={user}:{password}",
        f"--port={port}",
        f"--address={address}",
        f"--tasks-columns={TASKS_COLUMNS}",
    ]


def masked(argv: Sequence[str], secrets: Sequence[str]) -> str:
    """A command line for logs: every secret replaced by ``***``."""
    text = " ".join(argv)
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def flower_launch(
    broker_url: str,
    user: str,
    password: str,
    *,
    port: int = DEFAULT_PORT,
    address: str = DEFAULT_ADDRESS,
    env: Mapping[str, str] | None = None,
    program: Sequence[str] | None = None,
) -> FlowerLaunch:
    """The Flower process to start, with the secrets moved from its command line to its environment."""
    from .distributed_config import mask_url

    full = flower_argv(
        broker_url, user, password, port=port, address=address, program=program or celery_program()
    )
    # Drop "--broker URL" and "--basic-auth=U:P": both go through the environment instead.
    argv = [a for i, a in enumerate(full) if a != "--broker" and (i == 0 or full[i - 1] != "--broker")]
    argv = [a for a in argv if not a.startswith("--basic-auth=")]
    child = {k: v for k, v in (os.environ if env is None else env).items() if k not in _DROPPED_ENV}
    child["CELERY_BROKER_URL"] = broker_url
    child["FLOWER_BASIC_AUTH"] = f"{user}:{password}"
    shown = [
        mask_url(a)
        if a == broker_url
        else (f"--basic-auth={user}:***" if a.startswith("--basic-auth=") else a)
        for a in full
    ]
    display = masked(shown, [password])
    return FlowerLaunch(argv=argv, env=child, display=display)


def _check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535, not {port}")


def add_flower_command(subparsers: Any) -> None:
    """Register ``ebook2audio flower`` on the CLI's subparsers (its handler set via set_defaults)."""
    p = subparsers.add_parser(
        "flower",
        help="start the Flower dashboard of the cluster (needs FLOWER_USER and FLOWER_PASSWORD)",
        description=(
            "Start Flower, Celery's monitoring dashboard, on the cluster's Redis broker. "
            "The login comes from FLOWER_USER and FLOWER_PASSWORD (environment only, never flags)."
        ),
    )
    p.add_argument("--redis-url", help="broker URL (default: REDIS_URL, else redis://localhost:6379/0)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})")
    p.add_argument(
        "--address",
        default=DEFAULT_ADDRESS,
        help=f"address to listen on (default {DEFAULT_ADDRESS}; 0.0.0.0 inside a container)",
    )
    p.set_defaults(handler=cmd_flower)


def cmd_flower(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    """Check the settings, then replace this process with Flower (signals reach Flower directly)."""
    from .distributed_config import load_distributed_settings

    environ = os.environ if env is None else env
    ds = load_distributed_settings({"redis_url": args.redis_url}, environ)
    launch = flower_launch(
        ds.redis_url, ds.flower_user, ds.flower_password, port=args.port, address=args.address, env=environ
    )
    for warning in check_credentials(ds.flower_user, ds.flower_password):
        log.warning("warning: %s", warning)
    if args.address not in ("127.0.0.1", "localhost", "::1"):
        log.info("Flower listens on %s:%d: keep it behind a firewall or a TLS proxy", args.address, args.port)
    log.info("starting Flower on http://%s:%d as user %s", args.address, args.port, ds.flower_user)
    log.debug("exec: %s", launch.display)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(launch.argv[0], launch.argv, launch.env)
    except OSError as exc:
        raise ConfigError(f"cannot start Flower ({launch.argv[0]}): {exc.strerror}") from exc
    return 0  # pragma: no cover - execve does not return
