"""A stand-in for the few ``torchaudio`` functions that coqui-tts (XTTS-v2) and distillMOS call.

Why it exists: PyPI's torchaudio wheels for Linux are CUDA builds. Beside a CPU-only torch (the
usual install on a machine without a GPU, and the one our test machines have), ``import torchaudio``
fails with ``OSError: libc10_cuda.so``; the CPU builds live only on PyTorch's own package index.
coqui-tts and xls-r-sqa import torchaudio at module level even though inference uses only a mel
spectrogram, a resampler and a file loader. :func:`ensure_torchaudio` imports the real torchaudio
when it loads and otherwise registers this module's small, tested replacements under the name
``torchaudio`` (the maths follows torchaudio's documented definitions: HTK or Slaney mel scale,
optional Slaney area normalisation, ``torch.stft`` with a Hann window, reflect padding).

Only what those two packages reach is provided; anything else raises ``AttributeError`` naming this
stand-in, so a new use fails loudly instead of computing something else.
"""

from __future__ import annotations

import math
import sys
import types
from importlib.machinery import ModuleSpec
from math import gcd
from pathlib import Path
from typing import Any

SHIM_VERSION = "0.0+ebook2audio.stand-in"


def ensure_torchaudio() -> bool:
    """Make ``import torchaudio`` work. True when the real package loaded, False when the stand-in did."""
    try:
        import torchaudio

        return getattr(torchaudio, "__version__", "") != SHIM_VERSION
    except (ImportError, OSError):
        for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
            del sys.modules[name]
    _install()
    return False


def _install() -> None:
    import torch

    root = types.ModuleType("torchaudio")
    functional = types.ModuleType("torchaudio.functional")
    transforms = types.ModuleType("torchaudio.transforms")
    for module in (root, functional, transforms):  # importlib.util.find_spec reads __spec__
        module.__spec__ = ModuleSpec(module.__name__, None, is_package=module is root)
    root.__version__ = SHIM_VERSION  # type: ignore[attr-defined]
    root.__file__ = __file__
    root.__path__ = []  # type: ignore[attr-defined]  # a package, so "from torchaudio.x import y" works
    root.load = load  # type: ignore[attr-defined]
    root.functional = functional  # type: ignore[attr-defined]
    root.transforms = transforms  # type: ignore[attr-defined]
    functional.resample = resample  # type: ignore[attr-defined]
    functional.melscale_fbanks = melscale_fbanks  # type: ignore[attr-defined]

    class MelSpectrogram(torch.nn.Module):
        """torchaudio.transforms.MelSpectrogram's arguments and output shape: (..., n_mels, frames)."""

        def __init__(
            self,
            sample_rate: int = 16000,
            n_fft: int = 400,
            win_length: int | None = None,
            hop_length: int | None = None,
            f_min: float = 0.0,
            f_max: float | None = None,
            pad: int = 0,
            n_mels: int = 128,
            window_fn: Any = torch.hann_window,
            power: float = 2.0,
            normalized: bool = False,
            wkwargs: dict | None = None,
            center: bool = True,
            pad_mode: str = "reflect",
            onesided: bool | None = None,
            norm: str | None = None,
            mel_scale: str = "htk",
        ) -> None:
            super().__init__()
            self.n_fft = n_fft
            self.win_length = win_length or n_fft
            self.hop_length = hop_length or self.win_length // 2
            self.pad = pad
            self.power = power
            self.normalized = normalized
            self.center = center
            self.pad_mode = pad_mode
            self.register_buffer("window", window_fn(self.win_length, **(wkwargs or {})))
            fb = melscale_fbanks(
                n_fft // 2 + 1, f_min, f_max if f_max is not None else float(sample_rate // 2), n_mels,
                sample_rate, norm, mel_scale,
            )
            self.register_buffer("fb", fb)

        def forward(self, waveform: torch.Tensor) -> torch.Tensor:
            shape = waveform.shape
            x = waveform.reshape(-1, shape[-1])
            if self.pad:
                x = torch.nn.functional.pad(x, (self.pad, self.pad))
            spec = torch.stft(
                x, self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                window=self.window.to(x.device, x.dtype), center=self.center, pad_mode=self.pad_mode,
                normalized=self.normalized, onesided=True, return_complex=True,
            ).abs()
            if self.power != 1.0:
                spec = spec.pow(self.power)
            mel = torch.matmul(spec.transpose(-1, -2), self.fb.to(spec.dtype)).transpose(-1, -2)
            return mel.reshape(shape[:-1] + mel.shape[-2:])

    class Resample(torch.nn.Module):
        def __init__(self, orig_freq: int = 16000, new_freq: int = 16000, **_: Any) -> None:
            super().__init__()
            self.orig_freq, self.new_freq = int(orig_freq), int(new_freq)

        def forward(self, waveform: torch.Tensor) -> torch.Tensor:
            return resample(waveform, self.orig_freq, self.new_freq)

    class MFCC(torch.nn.Module):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise NotImplementedError(f"torchaudio.transforms.MFCC is not provided by {__name__}")

    transforms.MelSpectrogram = MelSpectrogram  # type: ignore[attr-defined]
    transforms.Resample = Resample  # type: ignore[attr-defined]
    transforms.MFCC = MFCC  # type: ignore[attr-defined]
    sys.modules["torchaudio"] = root
    sys.modules["torchaudio.functional"] = functional
    sys.modules["torchaudio.transforms"] = transforms


def _hz_to_mel(freq: float, mel_scale: str) -> float:
    if mel_scale == "htk":
        return 2595.0 * math.log10(1.0 + freq / 700.0)
    f_sp = 200.0 / 3  # Slaney: linear below 1 kHz, logarithmic above
    mels = freq / f_sp
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    if freq >= min_log_hz:
        mels = min_log_hz / f_sp + math.log(freq / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: Any, mel_scale: str) -> Any:
    import torch

    if mel_scale == "htk":
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    freqs = f_sp * mels
    log_t = mels >= min_log_mel
    return torch.where(log_t, min_log_hz * torch.exp(logstep * (mels - min_log_mel)), freqs)


def melscale_fbanks(
    n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int,
    norm: str | None = None, mel_scale: str = "htk",
) -> Any:
    """Triangular mel filters, shape (n_freqs, n_mels), as torchaudio.functional.melscale_fbanks."""
    import torch

    if mel_scale not in ("htk", "slaney") or norm not in (None, "slaney"):
        raise ValueError(f"mel_scale {mel_scale!r} / norm {norm!r} not supported by {__name__}")
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(_hz_to_mel(f_min, mel_scale), _hz_to_mel(f_max, mel_scale), n_mels + 2)
    f_pts = _mel_to_hz(m_pts, mel_scale)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    fb = torch.clamp(torch.minimum(down, up), min=0.0)
    if norm == "slaney":
        fb = fb * (2.0 / (f_pts[2 : n_mels + 2] - f_pts[:n_mels])).unsqueeze(0)
    return fb


def resample(waveform: Any, orig_freq: int, new_freq: int, **_: Any) -> Any:
    """Band-limited polyphase resampling along the last axis (scipy's Kaiser-windowed FIR)."""
    import numpy as np
    import torch
    from scipy.signal import resample_poly

    orig_freq, new_freq = int(orig_freq), int(new_freq)
    if orig_freq == new_freq:
        return waveform
    g = gcd(orig_freq, new_freq)
    out = resample_poly(waveform.detach().cpu().double().numpy(), new_freq // g, orig_freq // g, axis=-1)
    return torch.from_numpy(np.ascontiguousarray(out)).to(waveform.device, waveform.dtype)


def load(path: str | Path, **_: Any) -> tuple[Any, int]:
    """(channels, frames) float32 in [-1, 1] and the sample rate, read with soundfile."""
    import soundfile as sf
    import torch

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return torch.from_numpy(data.T.copy()), int(rate)
