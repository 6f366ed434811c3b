"""The deployment files agree with each other and with the code (no Docker engine needed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.distributed.yml"
ENV_EXAMPLE = ROOT / ".env.distributed.example"
VAR = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:[:?-][^}]*)?\}")
OUR_IMAGE = "ebook2audio"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*strings(k), *strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return []


ENV_FILE = ".env.distributed"  # the guide's name: `cp .env.distributed.example .env.distributed`
WEB_VARS = ("EBOOK2AUDIO_WEB_USER", "EBOOK2AUDIO_WEB_PASSWORD")  # the coordinator's `serve` login


def env_files(svc: dict[str, Any]) -> list[str]:
    files = svc.get("env_file") or []
    return [files] if isinstance(files, str) else list(files)


def env_example_variables() -> dict[str, str]:
    out: dict[str, str] = {}
    comment_above = False
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(.*)", line.strip())
        if m:
            assert comment_above, f"{m.group(1)} has no comment line above it"
            out[m.group(1)] = m.group(2)
        comment_above = line.startswith("#") and len(line.strip()) > 2
    return out


def test_compose_has_the_services(compose: dict[str, Any]) -> None:
    assert {"redis", "flower", "coordinator", "worker"} <= set(compose["services"])
    assert "shared" in compose["volumes"]
    assert compose["volumes"]["shared"]["driver"] == "local"
    for name in ("flower", "coordinator", "worker"):
        svc = compose["services"][name]
        assert svc["image"].startswith(OUR_IMAGE) and svc["build"]["context"] == "."


def test_workers_scale(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and "hostname" not in worker
    assert worker["command"][0] == "worker"
    assert not worker.get("ports"), "a published port would collide when scaling"
    assert "shared:/mnt/shared" in worker["volumes"]
    assert worker["scale"] == 2 and "deploy" not in worker  # read by docker-compose v1 and v2 alike
    # The GPU reservation is shown, commented, in the worker's section.
    text = COMPOSE.read_text(encoding="utf-8")
    assert re.search(r"#\s*reservations:\s*\n\s*#\s*devices:", text)
    assert re.search(r"#\s*o: addr=.*,rw", text) and re.search(r'#\s*device: ":/', text)


def test_every_container_reads_the_guide_env_file(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        assert env_files(svc) == [ENV_FILE], name
    # Nothing is interpolated from the shell or a .env file: .env.distributed is the one place.
    assert not VAR.search(COMPOSE.read_text(encoding="utf-8").replace("$$", ""))


def test_redis_needs_a_password_and_keeps_its_queue(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"] == "redis:7-alpine"
    script = redis["command"][-1]
    assert 'test -n "$$REDIS_PASSWORD" ||' in script and "exit 1" in script
    assert 'redis-server --requirepass "$$REDIS_PASSWORD" --appendonly yes' in script
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert "PONG" in " ".join(redis["healthcheck"]["test"])
    assert 'REDISCLI_AUTH="$$REDIS_PASSWORD"' in " ".join(redis["healthcheck"]["test"])
    assert not redis.get("ports"), "Redis must not be published by default"
    for name in ("worker", "flower", "coordinator"):
        assert compose["services"][name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_flower_has_auth(compose: dict[str, Any]) -> None:
    flower = compose["services"]["flower"]
    assert flower["command"][0] == "flower"
    assert {"FLOWER_USER", "FLOWER_PASSWORD"} <= set(env_example_variables())
    assert any(str(p).endswith("5555:5555") for p in flower["ports"])


def test_coordinator_is_long_running(compose: dict[str, Any]) -> None:
    coord = compose["services"]["coordinator"]
    assert coord["container_name"] == "ebook2audio-coordinator"
    assert "profiles" not in coord and coord["restart"] == "unless-stopped"
    cmd = coord["command"]
    assert cmd[0] == "serve" and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--input-dir") + 1] == "/app/input" and cmd[cmd.index("--output-dir") + 1] == "/app/output"
    assert coord["working_dir"] == "/app"
    assert {"./input:/app/input", "./output:/app/output", "shared:/mnt/shared"} <= set(coord["volumes"])
    env = coord["environment"]
    assert env["EBOOK2AUDIO_OUTPUT_DIR"] == "/app/output"  # where `docker exec ... python app.py` writes
    assert env["EBOOK2AUDIO_LOG_MIRROR"] == "/proc/1/fd/2"  # ... and what `docker logs` shows
    assert any(str(p).endswith("7860:7860") for p in coord["ports"])


def test_the_same_variables_everywhere() -> None:
    from ebook2audio.distributed_config import ENV_VARS

    in_example = set(env_example_variables())
    assert in_example == set(ENV_VARS) | set(WEB_VARS), in_example ^ (set(ENV_VARS) | set(WEB_VARS))
    assert len(ENV_VARS) == len(set(ENV_VARS))


def test_env_example_defaults_load(tmp_path: Path) -> None:
    """The example file, as is, is a valid configuration for the code."""
    from ebook2audio.distributed_config import load_distributed_settings

    env = env_example_variables()
    ds = load_distributed_settings({}, env)
    assert ds.worker_concurrency == 1
    assert ds.storage_path == "/mnt/shared"
    assert ds.flower_password not in ds.redis_display
    assert env["REDIS_PASSWORD"] not in ds.redis_display


def test_dockerfiles() -> None:
    cpu = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim", cpu, re.M)
    assert 'pip install ".[${EXTRAS}]"' in cpu and "ARG EXTRAS=distributed" in cpu
    assert re.search(r"^USER ebook2audio$", cpu, re.M)
    assert 'ENTRYPOINT ["ebook2audio"]' in cpu
    cuda = (ROOT / "docker" / "Dockerfile.cuda").read_text(encoding="utf-8")
    # onnxruntime-gpu >= 1.31 links CUDA 13 (libcudart.so.13): the base image must be CUDA 13, and
    # the build checks with ldd that the CUDA provider finds its libraries.
    assert re.search(r"^FROM nvidia/cuda:13\.[^ ]*-cudnn-runtime", cuda, re.M)
    assert re.search(r'^ARG ONNXRUNTIME_GPU="onnxruntime-gpu>=1\.31', cuda, re.M)
    assert "libonnxruntime_providers_cuda.so" in cuda and "ldd" in cuda
    assert re.search(r"^USER ebook2audio$", cuda, re.M)
    # app.py in the working directory /app (the guide's `docker exec ... python app.py`), the licence
    # files in the image.
    for text in (cpu, cuda):
        assert re.search(r"^WORKDIR /app$", text, re.M) and re.search(r"^COPY app.py LICENSE NOTICE /app/$", text, re.M)
    # Every file the images copy exists.
    for text in (cpu, cuda):
        for line in re.findall(r"^COPY (.+) \S+$", text, re.M):
            for src in line.split():
                assert (ROOT / src).exists(), src


@pytest.mark.parametrize("doc", ["distributed.md", "distributed.fr.md"])
def test_docs_cover_every_variable_and_flag(doc: str) -> None:
    from ebook2audio.cli import build_parser
    from ebook2audio.distributed_config import ENV_VARS

    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    for var in ENV_VARS:
        assert f"`{var}`" in text, var
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    documented = set(re.findall(r"--[a-z][a-z0-9-]+", text))
    for command, group_title in (("convert", "distributed"), ("worker", None), ("flower", None)):
        for action in sub[command]._actions:
            group = next((g for g in sub[command]._action_groups if action in g._group_actions), None)
            if group_title and (group is None or group_title not in (group.title or "")):
                continue
            for flag in action.option_strings:
                if flag.startswith("--") and flag not in ("--help", "--debug", "--quiet"):
                    assert flag in documented, f"{command} {flag} is not in docs/{doc}"
    # Relative links point at files of the repository (BENCHMARKS.md is written with the benchmarks).
    for target in re.findall(r"\]\((\.\./[^)#]+|[a-z][\w.-]*\.md)\)", text):
        if target.endswith("BENCHMARKS.md"):
            continue
        assert (ROOT / "docs" / target).resolve().exists(), target


def test_docs_are_translated_section_by_section() -> None:
    en = (ROOT / "docs" / "distributed.md").read_text(encoding="utf-8")
    fr = (ROOT / "docs" / "distributed.fr.md").read_text(encoding="utf-8")
    assert len(re.findall(r"^#+ ", en, re.M)) == len(re.findall(r"^#+ ", fr, re.M))
    assert en.count("- [ ]") == fr.count("- [ ]")  # the same security checklist
    assert re.findall(r"^\| `[A-Z_0-9]+` \|", en, re.M) == re.findall(r"^\| `[A-Z_0-9]+` \|", fr, re.M)
    assert "Démarrage rapide" in fr and "Quick start" in en
