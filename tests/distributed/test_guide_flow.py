"""The guide's Docker steps, without a Docker engine: the compose file read by docker-compose (v1)
exactly as the guide runs it, then the containers' commands run as plain processes against a real
Redis (the worker's ``worker``, the guide's ``docker exec ebook2audio-coordinator python app.py ...``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ebook2audio.engines.piper import bundled_voice

from .conftest import RedisServer
from .helpers import cli_env

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
GUIDE_EXEC = (
    "python app.py --distributed --num-workers 2 --ebook /app/input/mon_livre.epub --voice jenny "
    "--language fr --script_mode headless"
)


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    assert found, "docker-compose is missing: scripts/test.sh installs Debian's package"
    return found


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of what the guide's user has: the compose file and the example settings."""
    for name in ("docker-compose.distributed.yml", ".env.distributed.example"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def compose_config(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [docker_compose(), "-f", "docker-compose.distributed.yml", "config"],
        cwd=project, capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith(("REDIS", "FLOWER", "NUM_", "EBOOK2AUDIO"))},
    )  # fmt: skip


def test_compose_v1_reads_the_guide_files(project: Path) -> None:
    missing = compose_config(project)
    assert missing.returncode != 0 and ".env.distributed" in missing.stderr  # step 1 not done: said so
    shutil.copy(project / ".env.distributed.example", project / ".env.distributed")  # the guide's cp
    done = compose_config(project)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    services = config["services"]
    assert set(services) == {"redis", "flower", "worker", "coordinator"}
    coord = services["coordinator"]
    assert coord["container_name"] == "ebook2audio-coordinator"
    assert coord["working_dir"] == "/app" and coord["command"][:3] == ["serve", "--host", "0.0.0.0"]
    env = coord["environment"]
    assert env["DISTRIBUTED_MODE"] == "true" and env["EBOOK2AUDIO_WEB_USER"] and env["EBOOK2AUDIO_WEB_PASSWORD"]
    assert env["REDIS_PASSWORD"] == "change-me-to-a-long-random-string"  # from .env.distributed
    volumes = {v.split(":")[1]: v.split(":")[0] for v in coord["volumes"]}
    assert volumes["/app/input"] == str(project / "input") and volumes["/app/output"] == str(project / "output")
    worker = services["worker"]
    assert worker["scale"] == 2 and "container_name" not in worker and not worker.get("ports")
    assert services["flower"]["environment"]["FLOWER_PASSWORD"]
    assert services["redis"]["environment"]["REDIS_PASSWORD"]


def container_env(project: Path, redis: RedisServer, shared: Path, **extra: str) -> dict[str, str]:
    """What a container of ours gets: .env.distributed (as the example has it), with the addresses
    of this machine instead of the compose network's."""
    from .test_deploy import env_example_variables

    env = env_example_variables()
    env.update(
        REDIS_URL=f"redis://127.0.0.1:{redis.port}/0", REDIS_PASSWORD=redis.password,
        SHARED_STORAGE_PATH=str(shared),
    )  # fmt: skip
    env.update(extra)
    return cli_env(project, **env)


def french_voice(voices: Path) -> None:
    """fr_FR-siwis-medium installed without a network: the bundled Piper model, its config relabelled."""
    joe = bundled_voice()
    voices.mkdir(parents=True, exist_ok=True)
    (voices / "fr_FR-siwis-medium.onnx").symlink_to(joe.model_path)
    config = json.loads(joe.config_path.read_text(encoding="utf-8"))
    config["language"] = {"code": "fr_FR", "family": "fr"}
    config["espeak"] = {"voice": "fr"}
    (voices / "fr_FR-siwis-medium.onnx.json").write_text(json.dumps(config), encoding="utf-8")


@pytest.mark.slow
def test_guide_docker_exec_converts_into_output(project: Path, redis_server: RedisServer) -> None:
    from tests.library.books import epub

    shared, app_dir, output = project / "shared", project / "app", project / "output"
    for d in (shared, app_dir, output):
        d.mkdir()
    book = epub(
        project / "input" / "mon_livre.epub", "Mon livre", "Anne Autrice",
        [("Un", "La mer est calme ce matin."), ("Deux", "Le vent se lève le soir.")],
    )  # fmt: skip
    french_voice(project / "voices")
    container_log = project / "container.log"  # stands for /proc/1/fd/2 of the coordinator container
    env = container_env(
        project, redis_server, shared, EBOOK2AUDIO_OUTPUT_DIR=str(output),
        EBOOK2AUDIO_LOG_MIRROR=str(container_log), EBOOK2AUDIO_PROGRESS_INTERVAL="0",
    )  # fmt: skip
    # The compose file's worker command, twice (scale: 2).
    logs = [(project / f"worker{i}.log").open("wb") for i in (1, 2)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "ebook2audio", "worker", "--hostname", f"w{i}@%h"],
            env=env,
            cwd=project,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        for i, log in enumerate(logs, 1)
    ]
    try:
        argv = GUIDE_EXEC.replace("/app/input/mon_livre.epub", str(book)).split()
        assert argv[:2] == ["python", "app.py"]
        done = subprocess.run(
            [sys.executable, str(ROOT / "app.py"), *argv[2:]], env=env, cwd=app_dir,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        for w in workers:
            os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
        for log in logs:
            log.close()
    assert done.returncode == 0, done.stderr + "".join(p.read_text() for p in project.glob("worker*.log"))
    produced = output / "Anne Autrice - Mon livre.m4b"
    assert produced.is_file(), list(output.iterdir())
    chapters = subprocess.run(
        ["ffprobe", "-v", "error", "-show_chapters", "-of", "json", str(produced)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert [c["tags"]["title"] for c in json.loads(chapters)["chapters"]] == ["Un", "Deux"]
    assert "voice: piper fr_FR-siwis-medium" in done.stderr and "note: --voice jenny" in done.stderr
    # `docker logs -f ebook2audio-coordinator`: the same lines, progress included, in the container's log.
    seen = container_log.read_text(encoding="utf-8")
    for needle in ("note: --voice jenny", "distributed: Redis", "progress: ", "wrote "):
        assert needle in seen, seen
    assert redis_server.password not in seen and redis_server.password not in done.stderr
