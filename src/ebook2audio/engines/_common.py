"""Small pure helpers shared by the engine adapters: language tags, devices, speakable text."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

_LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")
_DEVICE_RE = re.compile(r"^(cpu|auto|cuda|gpu)(?::(\d+))?$")


def is_language_tag(tag: str) -> bool:
    """True when ``tag`` looks like a BCP 47 tag (``fr``, ``en-US``, ``pt_BR``, ``cmn-Latn-pinyin``)."""
    return bool(_LANGUAGE_RE.match(tag))


def normalize_language(tag: str) -> str:
    """``"EN_us"`` -> ``"en-US"``: lower-case language, upper-case 2-letter region, ``_`` -> ``-``."""
    parts = [p for p in tag.strip().replace("_", "-").split("-") if p]
    if not parts:
        return ""
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 2 and part.isalpha():
            out.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            out.append(part.title())
        else:
            out.append(part.lower())
    return "-".join(out)


def primary_language(tag: str) -> str:
    """``"fr-CA"`` -> ``"fr"``."""
    return normalize_language(tag).split("-", 1)[0]


def is_speakable(text: str) -> bool:
    """True when ``text`` holds something a voice can say: a letter, a digit or a symbol.

    Whitespace and punctuation alone (``"..."``, ``"—"``, ``"!!!"``) are not speakable: engines
    return no samples for them instead of a breath or a burst of noise.
    """
    return any(unicodedata.category(ch)[0] in "LNS" for ch in text)


def first_line(exc: BaseException) -> str:
    """An exception's first line, at most 300 characters: what a one-line error quotes of it."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def float_to_pcm16(samples: Any) -> bytes:
    """Float samples in [-1, 1] (clipped beyond) as 16-bit little-endian PCM."""
    import numpy as np

    return np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


@dataclass(frozen=True)
class DeviceRequest:
    """A parsed ``--device`` value."""

    kind: str  # "cpu", "cuda" or "auto"
    index: int = 0  # CUDA device ordinal (within CUDA_VISIBLE_DEVICES)

    @property
    def label(self) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index}"


def parse_device(device: str) -> DeviceRequest:
    """``"cpu"``, ``"auto"``, ``"cuda"``, ``"cuda:1"`` (``"gpu"`` is taken as ``"cuda"``)."""
    match = _DEVICE_RE.match(device.strip().lower())
    if not match:
        raise ConfigError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto")
    kind = "cuda" if match.group(1) == "gpu" else match.group(1)
    if match.group(2) is not None and kind != "cuda":
        raise ConfigError(f"unknown device {device!r}: only cuda takes an index (cuda:N)")
    return DeviceRequest(kind=kind, index=int(match.group(2) or 0))


def cuda_visible(env: Mapping[str, str]) -> bool:
    """False when CUDA_VISIBLE_DEVICES hides every GPU (set to "", "-1" or "none")."""
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return True
    return value.strip().lower() not in ("", "-1", "none", "nodevfiles", "void")


def check_speed(speed: float) -> float:
    """A speed must be a finite number in (0.1, 10]; 1.0 is the voice's own pace."""
    try:
        value = float(speed)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"speed must be a number, not {speed!r}") from exc
    if not math.isfinite(value) or not 0.1 <= value <= 10.0:
        raise ConfigError(f"speed must be between 0.1 and 10 (1.0 = normal), not {speed!r}")
    return value
