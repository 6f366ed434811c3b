"""Run the real CLI in a subprocess and read its outputs back like a user would."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBOOK2AUDIO_") or k == "EBOOK2AUDIO_VOICES_URL"}
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    env["EBOOK2AUDIO_VOICES_DIR"] = str(tmp / "voices")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(args: list[str], tmp: Path, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ebook2audio", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(tmp, **env),
        cwd=tmp,
        stdin=subprocess.DEVNULL,
    )


def kill_when(args: list[str], tmp: Path, ready: Callable[[], bool], timeout: float = 300) -> None:
    """Run the CLI in its own process group until ``ready()``, then SIGKILL the whole group (the CLI
    and its pool processes at once, like a machine losing power). Fails if the CLI ends first."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ebook2audio", *args],
        env=cli_env(tmp),
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not ready():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def inspect_json(book: Path, tmp: Path) -> dict:
    r = run_cli(["inspect", str(book), "--json"], tmp)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def shortest_chapters(info: dict, n: int, min_words: int = 20) -> list[dict]:
    """The n shortest chapters with some text, in reading order."""
    chosen = sorted((c for c in info["chapters"] if c["words"] >= min_words), key=lambda c: c["words"])[:n]
    return sorted(chosen, key=lambda c: c["index"])


@dataclass
class Cue:
    start: float
    end: float
    text: str


def read_srt(path: Path) -> list[Cue]:
    cues = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8").strip()):
        lines = block.splitlines()
        m = re.match(r"(\d+):(\d+):(\d+),(\d+) --> (\d+):(\d+):(\d+),(\d+)", lines[1])
        assert m, block
        g = [int(x) for x in m.groups()]
        cues.append(
            Cue(
                g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000,
                g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000,
                " ".join(lines[2:]),
            )
        )
    return cues


def words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", text.lower())
