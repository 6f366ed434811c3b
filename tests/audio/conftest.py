"""The ffmpeg builds the audio tests run against: the bundled one, and the one on PATH when there is one.

``scripts/test.sh`` installs Debian's ffmpeg (5.1 on Debian 12), so CI checks both: the assembly
must not depend on which build is used, neither for its output nor for its speed.
"""

from __future__ import annotations

import shutil

import pytest

from ebook2audio.audio.ffmpeg import ENV_FFMPEG, FfmpegBuild, ffmpeg_build

BUILDS = ("bundled", "system")


def build_path(kind: str) -> str | None:
    """The executable of one kind of build, or None when this machine has none."""
    if kind == "bundled":
        try:
            import imageio_ffmpeg

            return str(imageio_ffmpeg.get_ffmpeg_exe())
        except (ImportError, RuntimeError):
            return None
    return shutil.which("ffmpeg")


@pytest.fixture(params=BUILDS)
def each_ffmpeg(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> FfmpegBuild:
    """Runs the test once per available build, with $EBOOK2AUDIO_FFMPEG naming it; the build."""
    path = build_path(request.param)
    if path is None:
        pytest.skip(
            f"no {request.param} ffmpeg here"
            + (" (scripts/test.sh installs Debian's: apt-get install ffmpeg)" if request.param == "system" else "")
        )
    build = ffmpeg_build(path)
    if not build.recent_enough:
        pytest.skip(f"the {request.param} ffmpeg {build.version} is older than 4.4, which ebook2audio refuses")
    monkeypatch.setenv(ENV_FFMPEG, path)
    return build
