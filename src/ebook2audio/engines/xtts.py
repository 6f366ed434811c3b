"""XTTS-v2 voice cloning (coqui-tts, the maintained fork of Coqui TTS): the ``xtts`` engine plug-in.

The only module that imports ``TTS`` (and torch) for this engine; ``pip install "ebook2audio[clone]"``.
XTTS-v2 speaks 17 languages with the voice of a 3-30 s recording (``--voice-sample``,
:mod:`.voice_sample`). The model is a folder holding ``config.json``, ``model.pth`` and ``vocab.json``
(``speakers_xtts.pth`` is not needed): ``$EBOOK2AUDIO_XTTS_DIR``, else ``<voices dir>/xtts-v2``. Its
weights (https://huggingface.co/coqui/XTTS-v2) are under the Coqui Public Model License, which allows
non-commercial use only: this module never downloads them; the user puts them there.

Per process: the model is loaded once (CPU with one inference thread, or CUDA when the device asks for
it), and the conditioning of each sample (GPT latents and speaker embedding) computed once, cached by
the sample's SHA-256. A chunk is sampled with torch seeded from its ``seed`` (``chunk_seed``), so it is
reproducible on the CPU. Texts are cut by the planner under XTTS's per-language character limits.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SynthesisError, VoiceError
from ..model import EngineInfo, VoiceSpec
from . import voice_sample
from ._common import (
    cuda_visible,
    first_line,
    float_to_pcm16,
    is_language_tag,
    is_speakable,
    normalize_language,
    parse_device,
    primary_language,
)
from .plugin import VoiceEntry

log = logging.getLogger(__name__)

ENGINE = "xtts"
SAMPLE_RATE = 24000  # XTTS-v2's decoder output
XTTS_DIR_ENV = "EBOOK2AUDIO_XTTS_DIR"
MODEL_FILES = ("config.json", "model.pth", "vocab.json")
MODEL_PAGE = "https://huggingface.co/coqui/XTTS-v2"
LICENCE = "Coqui Public Model License: non-commercial use only"
# XTTS-v2's languages (config.json "languages"; "zh-cn" is Chinese).
LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh-cn", "hu", "ko", "ja", "hi")
# Characters per input above which XTTS-v2 truncates its audio (coqui-tts VoiceBpeTokenizer.char_limits;
# a test checks this copy against the installed package): the planner cuts sentences under them.
CHAR_LIMITS = {
    "en": 250, "de": 253, "fr": 273, "es": 239, "it": 213, "pt": 203, "pl": 224, "zh": 82, "ar": 166,
    "cs": 186, "ru": 182, "nl": 251, "tr": 226, "ja": 71, "hu": 224, "ko": 95, "hi": 150,
}  # fmt: skip


# ----------------------------------------------------------------------------------------------------
# Files and languages (pure, no model)
# ----------------------------------------------------------------------------------------------------


def model_dir(env: Mapping[str, str]) -> Path:
    """Where the XTTS-v2 files are: $EBOOK2AUDIO_XTTS_DIR, else <voices dir>/xtts-v2."""
    configured = env.get(XTTS_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    from .registry import voices_dir

    return voices_dir(env) / "xtts-v2"


def model_fingerprint(folder: Path) -> str:
    """12 hex digits naming the model in ``folder``: its config and vocabulary whole, the weights by size and
    their first and last MiB (reading 1.8 GB at every plan would cost seconds). Part of the voice, so other
    weights in the same folder never reuse sentences made by the old ones."""
    import hashlib

    digest = hashlib.sha256()
    for name in ("config.json", "vocab.json"):
        digest.update((folder / name).read_bytes())
    weights = folder / "model.pth"
    size = weights.stat().st_size
    digest.update(str(size).encode())
    with weights.open("rb") as f:
        digest.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        digest.update(f.read(1 << 20))
    return digest.hexdigest()[:12]


def check_model_dir(folder: Path) -> None:
    """VoiceError (one line) naming what is missing, where to get it and its licence."""
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise VoiceError(
            f"the XTTS-v2 model is not installed: {', '.join(missing)} missing in {folder} "
            f"(${XTTS_DIR_ENV}); download {', '.join(MODEL_FILES)} from {MODEL_PAGE} into it "
            f"(the weights are under the {LICENCE})"
        )


def model_languages(folder: Path) -> tuple[str, ...]:
    """The languages config.json declares (XTTS-v2's list when it declares none)."""
    try:
        declared = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("languages")
    except (OSError, ValueError, AttributeError) as exc:
        raise VoiceError(f"{folder / 'config.json'} is not an XTTS config: {exc}") from exc
    if isinstance(declared, list) and declared and all(isinstance(x, str) for x in declared):
        return tuple(x.lower() for x in declared)
    return LANGUAGES


def xtts_language(tag: str, supported: tuple[str, ...] = LANGUAGES) -> str:
    """The XTTS language code of a BCP 47 tag (``fr-CA`` -> ``fr``, ``zh`` -> ``zh-cn``); VoiceError
    when XTTS does not speak it."""
    tag = tag.strip() or "en"
    if not is_language_tag(tag):
        raise VoiceError(f"{tag!r} is not a language code (use a BCP 47 tag such as en, fr)")
    primary = primary_language(tag)
    code = "zh-cn" if primary == "zh" else primary
    if code not in supported:
        raise VoiceError(
            f"XTTS-v2 does not speak {tag!r} (it speaks {', '.join(supported)}): choose --language or "
            "another --engine"
        )
    return code


def char_limit(code: str) -> int:
    return CHAR_LIMITS.get(code.split("-")[0], 250)


# ----------------------------------------------------------------------------------------------------
# The model: loaded once per process, conditioning cached per sample
# ----------------------------------------------------------------------------------------------------


@dataclass
class _Loaded:
    folder: Path
    device: str
    model: Any
    config: Any
    latents: dict[str, tuple[Any, Any]]  # sample SHA-256 -> (GPT conditioning latents, speaker embedding)


_LOADED: _Loaded | None = None  # the process's one model (engines share it: a new sample is no reload)


def _accept_cache_keyword() -> None:
    """transformers 5.x's generate() passes the key/value cache as ``cache=`` where coqui-tts 0.28's
    GPT2InferenceModel.forward reads ``past_key_values``: without this, generation fails at its second
    step (``'NoneType' object has no attribute 'get_seq_length'``). Harmless where both agree."""
    import inspect

    from TTS.tts.layers.xtts.gpt_inference import GPT2InferenceModel

    original = GPT2InferenceModel.forward
    if getattr(original, "_ebook2audio_cache", False) or "cache" in inspect.signature(original).parameters:
        return

    def forward(self: Any, input_ids: Any = None, past_key_values: Any = None, *args: Any, cache: Any = None, **kwargs: Any) -> Any:
        return original(self, input_ids, past_key_values if past_key_values is not None else cache, *args, **kwargs)

    forward.__doc__ = original.__doc__
    forward._ebook2audio_cache = True  # type: ignore[attr-defined]
    GPT2InferenceModel.forward = forward  # type: ignore[method-assign]


def _pick_device(device: str, env: Mapping[str, str]) -> str:
    import torch

    wanted = parse_device(device)
    usable = cuda_visible(env) and torch.cuda.is_available()
    if wanted.kind == "cuda":
        if not usable:
            raise VoiceError(f"--device {device}: torch sees no CUDA GPU here (XTTS-v2 never falls back to the CPU silently)")
        if wanted.index >= torch.cuda.device_count():
            raise VoiceError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible")
        return wanted.label
    if wanted.kind == "auto" and usable:
        return "cuda:0"
    return "cpu"


def _load_model(folder: Path, device: str) -> _Loaded:
    global _LOADED
    if _LOADED is not None and _LOADED.folder == folder and _LOADED.device == device:
        return _LOADED
    from ._torchaudio_shim import ensure_torchaudio

    ensure_torchaudio()  # before anything of TTS: it imports torchaudio at module level
    import torch

    if device == "cpu":
        torch.set_num_threads(1)
    try:
        import transformers

        transformers.logging.set_verbosity_error()  # a tokenizer smaller than GPT-2's is not a problem
        from TTS.tts.configs.xtts_config import XttsConfig
        from TTS.tts.models.xtts import Xtts
    except ImportError as exc:
        raise VoiceError(f'the xtts engine needs coqui-tts: pip install "ebook2audio[clone]" ({exc})') from exc
    _accept_cache_keyword()
    try:
        config = XttsConfig()
        config.load_json(str(folder / "config.json"))
        model = Xtts(config)
        model.load_checkpoint(config, checkpoint_dir=str(folder), eval=True)
        model.to(device)
        model.eval()
    except Exception as exc:  # torch and coqui raise many types on a corrupt or foreign file
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise VoiceError(f"cannot load the XTTS-v2 model in {folder}: {type(exc).__name__}: {detail}") from exc
    _LOADED = _Loaded(folder, device, model, config, {})
    return _LOADED


def _conditioning(loaded: _Loaded, sample: Path, sha256: str) -> tuple[Any, Any]:
    """The sample's GPT latents and speaker embedding (as coqui-tts's get_conditioning_latents, from
    PCM decoded by the ffmpeg adapter), computed once per process."""
    if sha256 in loaded.latents:
        return loaded.latents[sha256]
    import numpy as np
    import torch

    rate = voice_sample.DECODE_RATE
    pcm = voice_sample.decode(sample, rate)
    audio = torch.from_numpy(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0).unsqueeze(0)
    cfg = loaded.config
    audio = audio[:, : rate * int(cfg.max_ref_len)].to(loaded.device)
    if cfg.sound_norm_refs:
        audio = audio / audio.abs().max() * 0.75
    try:
        with torch.inference_mode():
            speaker = loaded.model.get_speaker_embedding(audio, rate)
            latents = loaded.model.get_gpt_cond_latents(
                audio, rate, length=int(cfg.gpt_cond_len), chunk_length=int(cfg.gpt_cond_chunk_len)
            )
    except Exception as exc:
        raise VoiceError(f"XTTS-v2 cannot read voice sample {sample}: {first_line(exc)}") from exc
    loaded.latents[sha256] = (latents, speaker)
    return latents, speaker



class XttsEngine:
    """A cloned voice: the process's XTTS-v2 model and one sample's conditioning."""

    def __init__(self, info: EngineInfo, loaded: _Loaded, conditioning: tuple[Any, Any], *, speed: float) -> None:
        self.info = info
        self.device = loaded.device
        self.speed = speed
        self.language = xtts_language(info.language, model_languages(loaded.folder))
        self._loaded: _Loaded | None = loaded
        self._latents, self._speaker = conditioning

    @classmethod
    def load(cls, info: EngineInfo, folder: Path, sample: Path, *, speed: float, device: str, env: Mapping[str, str]) -> XttsEngine:
        loaded = _load_model(folder, _pick_device(device, env))
        engine = cls(info, loaded, _conditioning(loaded, sample, info.sample), speed=speed)
        log.info("XTTS-v2 loaded on %s, cloning sample %s... (1 inference thread)", loaded.device, info.sample[:12])
        return engine

    def synthesize(self, text: str, *, seed: int | None = None) -> bytes:
        """16-bit LE mono PCM at 24 kHz; the same text and seed give the same bytes on the CPU."""
        import numpy as np
        import torch

        loaded = self._loaded
        if loaded is None:
            raise SynthesisError("the XTTS-v2 engine is closed")
        if not is_speakable(text):
            return b""
        cfg = loaded.config
        torch.manual_seed(0 if seed is None else seed)
        try:
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*past_key_values.*", category=FutureWarning)
                out = loaded.model.inference(
                    text,
                    self.language,
                    self._latents,
                    self._speaker,
                    temperature=cfg.temperature,
                    length_penalty=cfg.length_penalty,
                    repetition_penalty=cfg.repetition_penalty,
                    top_k=cfg.top_k,
                    top_p=cfg.top_p,
                    speed=self.speed,
                    enable_text_splitting=False,
                )
        except Exception as exc:  # torch, transformers and coqui raise many types
            raise SynthesisError(f"XTTS-v2 failed on a {len(text)}-character chunk: {first_line(exc)}") from exc
        return float_to_pcm16(np.asarray(out["wav"], dtype=np.float32).reshape(-1))

    def close(self) -> None:
        self._loaded = None  # the model stays loaded for the process (the next sample reuses it)

    def __enter__(self) -> XttsEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------------
# The plug-in
# ----------------------------------------------------------------------------------------------------


class XttsPlugin:
    """``--engine xtts --voice-sample REF.wav`` (entry point ``xtts = ebook2audio.engines.xtts:XTTS``)."""

    clones_voices = True

    def resolve(self, spec: VoiceSpec, env: Mapping[str, str]) -> EngineInfo:
        if spec.voice.strip():
            raise VoiceError(
                f"engine xtts speaks with the voice of --voice-sample, not a named voice (got --voice {spec.voice.strip()!r})"
            )
        if not spec.sample.strip():
            raise VoiceError("engine xtts clones a voice: give --voice-sample REF.wav (3-30 s of one person speaking)")
        folder = model_dir(env)
        check_model_dir(folder)
        code = xtts_language(spec.language, model_languages(folder))
        sample = voice_sample.read_sample(Path(spec.sample))
        language = normalize_language(spec.language.strip() or "en")
        return EngineInfo(
            engine=ENGINE,
            voice=f"sample-{sample.sha256}-model-{model_fingerprint(folder)}",
            language=language,
            sample_rate=SAMPLE_RATE,
            max_chars=char_limit(code),
            description=f"XTTS-v2 cloning {sample.path.name} ({sample.seconds:.1f} s) reading {code} ({folder})",
            path=str(sample.path),
            sample=sample.sha256,
        )

    def load(self, info: EngineInfo, *, speed: float, device: str, env: Mapping[str, str]) -> XttsEngine:
        if not voice_sample.is_sha256(info.sample):
            raise VoiceError("an xtts voice needs the SHA-256 of its sample: plan the book again")
        folder = model_dir(env)
        check_model_dir(folder)
        sample = voice_sample.locate(info.sample, info.path, env)
        return XttsEngine.load(info, folder, sample, speed=speed, device=device, env=env)

    def voices(self, env: Mapping[str, str]) -> list[VoiceEntry]:
        folder = model_dir(env)
        if any(not (folder / name).is_file() for name in MODEL_FILES):
            return []
        return [
            VoiceEntry(
                engine=ENGINE,
                name="(--voice-sample)",
                language="mul",
                description=f"XTTS-v2 voice cloning, {len(model_languages(folder))} languages ({LICENCE})",
                path=str(folder),
            )
        ]


XTTS = XttsPlugin()
