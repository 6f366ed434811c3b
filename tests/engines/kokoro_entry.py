"""Make ``--engine kokoro`` resolvable where the installed package metadata predates its entry point
(a checkout whose editable install was made before kokoro was declared in pyproject.toml): a
``*.dist-info`` folder declaring only that entry point, for sys.path / PYTHONPATH. Where the installed
metadata already declares it, nothing is written and None is returned."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

ENTRY = "kokoro = ebook2audio.engines.kokoro:KOKORO"


def kokoro_declared() -> bool:
    return any(ep.name == "kokoro" for ep in importlib.metadata.entry_points(group="ebook2audio.engines"))


def kokoro_entry_point(root: Path) -> Path | None:
    """The folder to put on sys.path / PYTHONPATH so that the kokoro engine is found, or None."""
    if kokoro_declared():
        return None
    dist = root / "ebook2audio_kokoro_entry-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ebook2audio-kokoro-entry\nVersion: 0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(f"[ebook2audio.engines]\n{ENTRY}\n", encoding="utf-8")
    return root
