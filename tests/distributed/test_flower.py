"""``ebook2audio flower``: the command line it builds, its refusals, and a real Flower behind a password."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ebook2audio.errors import ConfigError
from ebook2audio.flower import (
    add_flower_command,
    check_credentials,
    flower_argv,
    flower_launch,
)
from tests.distributed.flower_helpers import FLOWER_PASSWORD, FLOWER_USER, flower_env, running_flower

BROKER = "redis://:redis-pw-123@redis.lan:6379/0"


def test_flower_argv_is_the_celery_command_line() -> None:
    argv = flower_argv(BROKER, "ops", "a-long-password!", port=5600, address="0.0.0.0")
    assert argv == [
        "celery",
        "--broker",
        BROKER,
        "flower",
        "--basic-auth=ops:a-long-password!",
        "--port=5600",
        "--address=0.0.0.0",
        "--tasks-columns=name,uuid,state,args,kwargs,received,started,runtime,worker,retries",
    ]


@pytest.mark.parametrize(("user", "password"), [("", "x" * 20), ("ops", ""), ("", "")])
def test_no_credentials_no_flower(user: str, password: str) -> None:
    with pytest.raises(ConfigError, match="FLOWER_USER and FLOWER_PASSWORD"):
        flower_argv(BROKER, user, password)


def test_credentials_flower_cannot_parse_are_refused() -> None:
    with pytest.raises(ConfigError, match=","):
        check_credentials("ops", "has,comma-long-password")
    with pytest.raises(ConfigError, match=":"):
        check_credentials("o:ps", "long-enough-password")
    with pytest.raises(ConfigError, match="port"):
        flower_argv(BROKER, "ops", "long-enough-password", port=70000)


def test_weak_passwords_warn() -> None:
    assert check_credentials("ops", "Zq8-very-long-secret") == []
    admin = check_credentials("admin", "admin")
    assert any("default" in w for w in admin) and any("shorter" in w for w in admin)
    assert any("shorter" in w for w in check_credentials("ops", "Zq8short"))


def test_launch_keeps_secrets_out_of_argv_and_logs() -> None:
    env = {
        "PATH": "/bin",
        "FLOWER_PASSWORD": "pw-Zq8-long-secret",
        "REDIS_PASSWORD": "redis-pw-123",
        "HOME": "/h",
    }
    launch = flower_launch(BROKER, "ops", "pw-Zq8-long-secret", port=5601, env=env, program=["celery"])
    assert launch.argv[:4] == ["celery", "flower", "--port=5601", "--address=127.0.0.1"]
    assert launch.env["CELERY_BROKER_URL"] == BROKER
    assert launch.env["FLOWER_BASIC_AUTH"] == "ops:pw-Zq8-long-secret"
    assert "FLOWER_PASSWORD" not in launch.env and "REDIS_PASSWORD" not in launch.env
    assert launch.env["HOME"] == "/h"
    for secret in ("pw-Zq8-long-secret", "redis-pw-123"):
        assert secret not in " ".join(launch.argv)
        assert secret not in launch.display
    assert "redis.lan:6379" in launch.display and "--basic-auth=ops:***" in launch.display


def test_add_flower_command_sets_a_handler() -> None:
    parser = argparse.ArgumentParser()
    add_flower_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["flower", "--port", "5999", "--redis-url", BROKER])
    assert args.port == 5999 and args.address == "127.0.0.1" and args.redis_url == BROKER
    assert callable(args.handler)
    with pytest.raises(SystemExit):
        parser.parse_args(["flower", "--password", "x"])  # credentials only from the environment


def test_cli_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    env = flower_env("redis://localhost:1/0")
    del env["FLOWER_USER"], env["FLOWER_PASSWORD"]
    r = subprocess.run(
        [sys.executable, "-m", "ebook2audio", "flower", "--port", "5999"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "FLOWER_USER" in lines[0], r.stderr


def test_real_flower_needs_the_password(redis_server, tmp_path: Path) -> None:
    with running_flower(redis_server.url, tmp_path) as flower:
        for path in ("/", "/api/workers", "/tasks", "/broker"):
            assert flower.get(path)[0] == 401, path
            assert flower.get(path, ("ops", "wrong-password"))[0] == 401, path
        status, body = flower.get("/api/workers", (FLOWER_USER, FLOWER_PASSWORD))
        assert status == 200 and isinstance(json.loads(body), dict)
        assert flower.get("/", (FLOWER_USER, FLOWER_PASSWORD))[0] == 200
        status, page = flower.get("/tasks", (FLOWER_USER, FLOWER_PASSWORD))
        assert status == 200 and b'data-column="args"' in page  # task arguments are shown
        # The secrets are in no process argument list and in no log line.
        cmdline = Path(f"/proc/{flower.proc.pid}/cmdline").read_bytes().decode(errors="replace")
        assert "flower" in cmdline
        for secret in (FLOWER_PASSWORD, redis_server.password):
            assert secret not in cmdline
    log = flower.log.read_text(errors="replace")
    assert FLOWER_PASSWORD not in log and redis_server.password not in log
