"""`ebook2audio worker` refuses, in one line and before touching Redis, what it cannot honour."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import run_cli


def test_cuda_without_a_cuda_provider_is_refused_not_a_silent_cpu_fallback(tmp_path: Path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    shared = tmp_path / "shared"
    r = run_cli(
        [
            "worker",
            "--device",
            "cuda:0",
            "--storage-path",
            str(shared),
            "--redis-url",
            "redis://localhost:1/0",
        ],
        tmp_path,
        timeout=60,
    )
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert (
        line.startswith("error: --device cuda:0: onnxruntime has no CUDA provider") and "--device cpu" in line
    )


def test_missing_nfs_mount_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "not-mounted"
    r = run_cli(["worker", "--storage-type", "nfs", "--storage-path", str(missing)], tmp_path, timeout=60)
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert (
        line
        == f"error: shared storage {missing} does not exist: mount it or set SHARED_STORAGE_PATH / --storage-path"
    )
    assert not missing.exists()


def test_bad_environment_is_refused(tmp_path: Path) -> None:
    r = run_cli(
        ["worker", "--storage-path", str(tmp_path)], tmp_path, timeout=60, CELERY_WORKER_CONCURRENCY="many"
    )
    assert r.returncode == 2
    assert r.stderr.strip() == "error: invalid value for CELERY_WORKER_CONCURRENCY: 'many'"
