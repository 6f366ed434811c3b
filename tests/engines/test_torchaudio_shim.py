"""The torchaudio stand-in against independent references (librosa's filters, a sine's frequency)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
librosa = pytest.importorskip("librosa")

from ebook2audio.engines import _torchaudio_shim as shim  # noqa: E402


@pytest.mark.parametrize("norm", [None, "slaney"])
@pytest.mark.parametrize("scale", ["htk", "slaney"])
def test_mel_filters_match_librosa(norm: str | None, scale: str) -> None:
    ours = shim.melscale_fbanks(513, 0.0, 8000.0, 80, 22050, norm=norm, mel_scale=scale).numpy()
    ref = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmin=0.0, fmax=8000.0, htk=scale == "htk", norm=norm)
    assert ours.shape == (513, 80)
    np.testing.assert_allclose(ours.T, ref, rtol=1e-4, atol=2e-5)


def test_mel_spectrogram_matches_librosa() -> None:
    shim._install()  # the classes live on the registered module
    import torchaudio

    rng = np.random.default_rng(3)
    x = rng.standard_normal(22050).astype(np.float32) * 0.1
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=22050, n_fft=1024, hop_length=256, win_length=1024, power=2, normalized=False,
        f_min=0, f_max=8000, n_mels=80, norm="slaney",
    )
    ours = mel(torch.from_numpy(x)[None]).numpy()[0]
    ref = librosa.feature.melspectrogram(
        y=x, sr=22050, n_fft=1024, hop_length=256, win_length=1024, power=2.0, fmin=0, fmax=8000, n_mels=80,
        htk=True, norm="slaney", center=True, pad_mode="reflect",
    )
    assert ours.shape == ref.shape == (80, 87)
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-6)


def test_resample_keeps_a_sine_at_its_frequency_and_level() -> None:
    t = np.arange(22050 * 2) / 22050
    x = torch.from_numpy((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))[None]
    y = shim.resample(x, 22050, 16000)
    assert y.shape == (1, 32000) and y.dtype == torch.float32
    spectrum = np.abs(np.fft.rfft(y[0, 4000:-4000].numpy()))
    peak_hz = np.argmax(spectrum) * 16000 / (32000 - 8000)
    assert abs(peak_hz - 1000) < 2
    assert abs(float(y[0, 4000:-4000].abs().max()) - 0.5) < 0.01
    assert shim.resample(x, 16000, 16000) is x


def test_load_gives_channels_first(tmp_path) -> None:
    import soundfile as sf

    stereo = np.stack([np.linspace(-0.5, 0.5, 1000), np.zeros(1000)], axis=1).astype(np.float32)
    sf.write(tmp_path / "a.wav", stereo, 24000, subtype="FLOAT")
    audio, rate = shim.load(tmp_path / "a.wav")
    assert rate == 24000 and tuple(audio.shape) == (2, 1000)
    np.testing.assert_allclose(audio[0].numpy(), stereo[:, 0])


def test_xtts_imports_beside_a_cpu_torch() -> None:
    """In a fresh interpreter: the real torchaudio where it loads, else the stand-in; coqui-tts's XTTS imports."""
    pytest.importorskip("TTS")
    code = (
        "from ebook2audio.engines._torchaudio_shim import ensure_torchaudio\n"
        "real = ensure_torchaudio()\n"
        "import torchaudio\n"
        "from TTS.tts.models.xtts import Xtts\n"
        "print('real' if real else 'stand-in', torchaudio.__version__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0] in ("real", "stand-in")
