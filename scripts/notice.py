#!/usr/bin/env python3
"""Write NOTICE: the licence of every third-party package installed with ebook2audio, read from the
installed packages' own metadata (run it with the project's environment, after installing it with
the extras the images use):

    .venv/bin/python scripts/notice.py            # rewrites NOTICE
    .venv/bin/python scripts/notice.py --check    # exit 1 when a runtime dependency is missing from NOTICE

Runtime dependencies: pyproject.toml's ``dependencies`` and every extra but ``test``, followed through
the installed packages' own requirements (their environment markers evaluated here). A licence is the
package's SPDX ``License-Expression``, else its ``License`` field, else its licence classifiers; a few
packages ship binaries under another licence than their Python code, said in BUNDLED below.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
NOTICE = ROOT / "NOTICE"
NOT_RUNTIME_EXTRAS = {"test"}


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    licence: str
    url: str


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    reqs = [Requirement(r) for r in project.get("dependencies", [])]
    for extra, items in sorted(project.get("optional-dependencies", {}).items()):
        if extra not in NOT_RUNTIME_EXTRAS:
            reqs += [Requirement(r) for r in items]
    return reqs


def _applies(req: Requirement, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": e}) for e in (extras or {""}))


def closure(reqs: list[Requirement]) -> dict[str, set[str]]:
    """Every package the requirements pull in (canonical name -> the extras asked of it)."""
    seen: dict[str, set[str]] = {}
    todo = [(r, {""}) for r in reqs]
    while todo:
        req, parent_extras = todo.pop()
        if not _applies(req, parent_extras):
            continue
        name = canonical(req.name)
        extras = set(req.extras)
        if name in seen and extras <= seen[name]:
            continue
        seen.setdefault(name, set()).update(extras)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        for sub in dist.requires or []:
            todo.append((Requirement(sub), seen[name] | {""}))
    seen.pop("ebook2audio", None)
    return seen


def licence_of(dist: md.Distribution) -> str:
    meta = dist.metadata
    expression = (meta.get("License-Expression") or "").strip()
    if expression:
        return expression
    field = (meta.get("License") or "").strip()
    if field and "\n" not in field and len(field) < 80:
        return field
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        return " / ".join(classifiers)
    for name in meta.get_all("License-File") or []:  # the licence file's own title, e.g. "BSD 3-Clause License"
        text = dist.read_text(f"licenses/{name}") or dist.read_text(name) or ""
        title = next((line.strip() for line in text.splitlines() if line.strip()), "")
        if "licen" in title.lower() and len(title) < 60:
            return f"{title} (the title of its {name})"
    return "not declared in its metadata"


def url_of(dist: md.Distribution) -> str:
    meta = dist.metadata
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("homepage", "home", "source", "repository", "source code"):
            return url.strip()
    return (meta.get("Home-page") or "").strip()


def _ffmpeg_build() -> str:
    try:
        import imageio_ffmpeg

        out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-version"], capture_output=True, text=True, timeout=30)
    except (ImportError, OSError, subprocess.SubprocessError):
        return ""
    first = out.stdout.splitlines()[0] if out.stdout else ""
    gpl = "--enable-gpl" in out.stdout
    v3 = "--enable-version3" in out.stdout
    licence = "GPL-3.0-or-later" if gpl and v3 else "GPL-2.0-or-later" if gpl else "LGPL-2.1-or-later"
    return f"{licence} ({first.split(' Copyright')[0]}, configured {'--enable-gpl ' if gpl else ''}{'--enable-version3' if v3 else ''})".replace(" )", ")")


# Binaries a wheel ships under their own licence (the wheel's metadata covers only its Python code).
BUNDLED = {
    "imageio-ffmpeg": lambda: f"its ffmpeg executable: {_ffmpeg_build() or 'GPL (an FFmpeg build)'}",
    "espeakng-loader": lambda: "its libespeak-ng library and data: GPL-3.0-or-later (eSpeak NG)",
    "soundfile": lambda: "its libsndfile library: LGPL-2.1-or-later",
    "onnxruntime": lambda: "ONNX Runtime: MIT (third-party notices inside the wheel)",
    "torchcodec": lambda: (
        "its libnvjpeg library: NVIDIA CUDA EULA (proprietary, redistributable under that EULA); its image "
        "libraries (libavif, libjpeg-turbo, libpng, libwebp, dav1d): their own permissive licences; only the "
        "`clone` extra installs it"
    ),
}


def packages() -> list[Package]:
    out: list[Package] = []
    for name in sorted(closure(runtime_requirements())):
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            out.append(Package(name, "-", "not installed here: licence not read", ""))
            continue
        out.append(Package(canonical(dist.metadata["Name"]), dist.version, licence_of(dist), url_of(dist)))
    return out


HEADER = """\
ebook2audio
Copyright (C) The ebook2audio authors

This program is free software: you can redistribute it and/or modify it under the terms of the GNU
General Public License as published by the Free Software Foundation, either version 3 of the License,
or (at your option) any later version (SPDX: GPL-3.0-or-later). The full text is in LICENSE.

Why the GPL: installed, ebook2audio runs together with GPL-3.0 components it cannot work without:
piper-tts (GPL-3.0-or-later), mobi (GPL-3.0-only), the ffmpeg build bundled in imageio-ffmpeg
(configured --enable-gpl --enable-version3) and the libespeak-ng library bundled in espeakng-loader
(GPL-3.0-or-later). A program combined with them is distributed under the GPL version 3.

Third-party packages installed with ebook2audio (its dependencies and their own, with every extra but
`test`), the licence each one declares in its installed metadata. Generated by scripts/notice.py.

"""


def render(pkgs: list[Package]) -> str:
    lines = [HEADER]
    for p in pkgs:
        lines.append(f"{p.name} {p.version}: {p.licence}" + (f" <{p.url}>" if p.url else ""))
        if p.name in BUNDLED:
            lines.append(f"    bundles {BUNDLED[p.name]()}")
    return "\n".join(lines) + "\n"


def missing_from(text: str) -> list[str]:
    listed = {canonical(m.group(1)) for m in re.finditer(r"^(\S+) \S+: ", text, re.M)}
    return sorted(set(closure(runtime_requirements())) - listed)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check that NOTICE lists every runtime package")
    args = ap.parse_args(argv)
    if args.check:
        missing = missing_from(NOTICE.read_text(encoding="utf-8"))
        for name in missing:
            print(f"NOTICE does not list {name}: run scripts/notice.py", file=sys.stderr)
        return 1 if missing else 0
    NOTICE.write_text(render(packages()), encoding="utf-8")
    print(f"wrote {NOTICE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
