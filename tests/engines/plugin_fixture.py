"""A tiny engine plug-in package, installed for a test the way pip would leave it: a package and a
``*.dist-info`` folder whose ``entry_points.txt`` registers it (on sys.path / PYTHONPATH, no pip)."""

from __future__ import annotations

from pathlib import Path

TINY_ENGINE = '''
"""A tone per character: a real engine for ebook2audio, outside the package."""
import math
from array import array

from ebook2audio.engines.plugin import EngineInfo, VoiceEntry

RATE = 16000


class ToneVoice:
    def __init__(self, info, speed):
        self.info = info
        self.device = "cpu"
        self.speed = speed

    def synthesize(self, text, *, seed=None):
        n = int(len(text) * 0.02 * RATE / self.speed)
        return array("h", (int(8000 * math.sin(2 * math.pi * 440 * i / RATE)) for i in range(n))).tobytes()

    def close(self):
        pass


class Plugin:
    def resolve(self, spec, env):
        if spec.voice not in ("", "beep"):
            raise ValueError("tiny has only the voice beep")
        return EngineInfo(engine="tiny", voice="beep", language=spec.language or "en", sample_rate=RATE,
                          max_chars=200, description="tiny test engine")

    def load(self, info, *, speed, device, env):
        return ToneVoice(info, speed)

    def voices(self, env):
        return [VoiceEntry(engine="tiny", name="beep", language="en", description="a 440 Hz tone")]
'''

BROKEN_ENGINE = "import ebook2audio_test_no_such_module  # noqa: F401\n"

ENTRY_POINTS = "[ebook2audio.engines]\ntiny = tinyengine:Plugin\nbroken = brokenengine:Plugin\n"


def install_plugins(root: Path, *, broken: bool = True) -> Path:
    """Write the tiny (and broken) engine packages under ``root``; the folder to put on sys.path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "tinyengine").mkdir()
    (root / "tinyengine" / "__init__.py").write_text(TINY_ENGINE, encoding="utf-8")
    (root / "brokenengine").mkdir()
    (root / "brokenengine" / "__init__.py").write_text(BROKEN_ENGINE, encoding="utf-8")
    dist = root / "tinyengine-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyengine\nVersion: 0.1\n", encoding="utf-8")
    points = ENTRY_POINTS if broken else ENTRY_POINTS.replace("broken = brokenengine:Plugin\n", "")
    (dist / "entry_points.txt").write_text(points, encoding="utf-8")
    return root
