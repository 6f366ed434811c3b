"""A storage permission error is permanent everywhere: the worker's task does not retry it, the
coordinator stops at once with the worker's one line, the CLI prints one line and exits 2."""

from __future__ import annotations

import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest

from ebook2audio.distributed_config import DistributedSettings
from ebook2audio.errors import InvalidKeyError, StorageError, StoragePermissionError, UserError
from ebook2audio.executors.celery_app import TASK_NAME, make_celery_app, retry_exceptions
from ebook2audio.executors.distributed import DistributedExecutor, Track
from ebook2audio.storage.local import LocalStorage
from tests.storage.helpers import as_nobody, is_root


def test_permission_and_key_errors_are_not_retried_by_the_worker_task() -> None:
    task = make_celery_app(DistributedSettings()).tasks[TASK_NAME]
    for exc in (StoragePermissionError("permission denied to read /x"), InvalidKeyError("bad key")):
        assert not isinstance(exc, retry_exceptions())
        assert not isinstance(exc, tuple(task.autoretry_for))
    assert isinstance(StorageError("hiccup"), tuple(task.autoretry_for))  # a hiccup still is


class _Task:
    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []

    def apply_async(self, **kwargs: object) -> None:
        self.sent.append(kwargs)


class _App:
    def __init__(self) -> None:
        self.tasks = {TASK_NAME: _Task()}


@pytest.mark.parametrize("exc_type", ["StoragePermissionError", "InvalidKeyError"])
def test_the_coordinator_stops_at_once_on_a_workers_permission_error(tmp_path: Path, exc_type: str) -> None:
    from ebook2audio.engines.registry import resolve_voice
    from ebook2audio.model import Book, Chapter, Metadata, VoiceSpec
    from ebook2audio.plan import make_plan

    spec = VoiceSpec(engine="sim", language="en")
    book = Book(Metadata(title="t"), (Chapter("One", ("A first sentence. A second one.",)),))
    plan = make_plan(book, resolve_voice(spec), spec, "sess")
    app = _App()
    ex = DistributedExecutor(app, DistributedSettings(), LocalStorage(tmp_path), notify=lambda _: None)
    track = Track(batch=plan.batches[0])
    ex._dispatch(plan, track)
    message = "permission denied to read /mnt/shared/sess/plan.json in shared storage: give ..."
    meta = {"status": "FAILURE", "result": {"exc_type": exc_type, "exc_message": [message]}, "worker": "w1@h"}
    with pytest.raises(UserError, match=r"w1@h: permission denied to read /mnt/shared/sess/plan\.json"):
        ex._observe(plan, OrderedDict({track.batch.id: track}), track, "FAILURE", meta, track.task_ids[-1], 0.0,
                    lambda t, r: None)  # fmt: skip
    assert len(app.tasks[TASK_NAME].sent) == 1  # not dispatched again


def _unwritable_dir(path: Path) -> list[str]:
    """Make ``path`` a folder this user may not write; the command prefix that makes that hold."""
    import os
    import shutil

    from tests.storage.helpers import NOBODY

    path.mkdir(mode=0o755)
    if not is_root():
        path.chmod(0o555)
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to drop root's power to ignore file modes")
    os.chown(path, NOBODY, NOBODY)  # someone else's folder, 0755, and root without CAP_DAC_OVERRIDE
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def test_convert_into_a_work_dir_it_may_not_write_is_one_line_exit_2(tmp_path: Path) -> None:
    """The real CLI with a work directory it may not write: one line naming the path, exit 2, at once
    (not ten minutes of retries), nothing written."""
    import os

    work = tmp_path / "work"
    prefix = _unwritable_dir(work)
    book = tmp_path / "book.txt"
    book.write_text("Chapter 1\n\nA sentence to read aloud.\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    try:
        proc = subprocess.run(
            [*prefix, sys.executable, "-m", "ebook2audio", "convert", str(book), "--engine", "sim",
             "--work-dir", str(work), "-o", str(tmp_path / "out")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        work.chmod(0o755)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: permission denied to write "), proc.stderr
    assert str(work) in errors[0] and "Traceback" not in proc.stderr
    assert list(work.iterdir()) == []


def test_as_nobody_helper_restores_root() -> None:
    if not is_root():
        pytest.skip("root only")
    with as_nobody():
        import os

        assert os.geteuid() == 65534
    assert os.geteuid() == 0
