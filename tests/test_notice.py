"""LICENSE and NOTICE: the licence the installed program really carries, and every runtime package listed."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def notice() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ebook2audio_notice", ROOT / "scripts" / "notice.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_runtime_package_is_in_notice(notice: ModuleType) -> None:
    text = (ROOT / "NOTICE").read_text(encoding="utf-8")
    assert notice.missing_from(text) == [], "run scripts/notice.py"
    needed = set(notice.closure(notice.runtime_requirements()))
    assert {"piper-tts", "mobi", "imageio-ffmpeg", "espeakng-loader", "celery"} <= needed
    # A package left out is caught (what the check exists for).
    without = re.sub(r"^mobi \S+: .*\n", "", text, flags=re.M)
    assert notice.missing_from(without) == ["mobi"]
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "notice.py"), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_gpl_components_are_what_notice_says(notice: ModuleType) -> None:
    import importlib.metadata as md

    assert notice.licence_of(md.distribution("piper-tts")).startswith("GPL-3.0")
    assert notice.licence_of(md.distribution("mobi")).startswith("GPL-3.0")
    assert notice._ffmpeg_build().startswith("GPL-3.0-or-later")  # --enable-gpl --enable-version3


def test_project_licence_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = project["license"]
    assert (declared if isinstance(declared, str) else declared["text"]) == "GPL-3.0-or-later"
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert licence.lstrip().startswith("GNU GENERAL PUBLIC LICENSE") and "Version 3, 29 June 2007" in licence
    assert "GPL-3.0-or-later" in (ROOT / "NOTICE").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^## Licen[cs]e$", readme, re.M) and "GPL-3.0-or-later" in readme
