"""Make an engine plug-in resolvable where the installed package metadata predates its entry point
(a checkout whose editable install was made before the engine was declared in pyproject.toml): a
``*.dist-info`` folder declaring only that entry point, for sys.path / PYTHONPATH. Where the installed
metadata already declares it, nothing is written and None is returned."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

ENTRY = "kokoro = ebook2audio.engines.kokoro:KOKORO"


def declared(name: str) -> bool:
    return any(ep.name == name for ep in importlib.metadata.entry_points(group="ebook2audio.engines"))


def entry_point_folder(root: Path, entry: str) -> Path | None:
    """The folder to put on sys.path / PYTHONPATH so that ``entry`` ("name = module:object") is found, or None."""
    name = entry.split("=", 1)[0].strip()
    if declared(name):
        return None
    dist = root / f"ebook2audio_{name}_entry-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: ebook2audio-{name}-entry\nVersion: 0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(f"[ebook2audio.engines]\n{entry}\n", encoding="utf-8")
    return root


def kokoro_entry_point(root: Path) -> Path | None:
    """The folder that declares the kokoro engine, or None where the installed metadata does."""
    return entry_point_folder(root, ENTRY)
