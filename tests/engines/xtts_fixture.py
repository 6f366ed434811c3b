"""A tiny, randomly initialised XTTS-v2 model built on the spot, so that the real xtts code path
(coqui-tts's Xtts, its tokenizer, its GPT and HiFi-GAN decoder) runs on the CPU in seconds.

The architecture is XTTS-v2's (perceiver conditioning, GPT-2 backbone, HiFi-GAN decoder with the
ResNet speaker encoder) with a 1-layer, 32-channel GPT, 1,026 audio codes and at most 40 of them
generated per input (about 1.7 s of audio); the tokenizer is a character-level BPE with XTTS's special
tokens. It speaks noise, deterministically. Also: a reference recording made with the bundled Piper
voice, and the entry point that declares ``--engine xtts`` where the installed metadata predates it.
"""

from __future__ import annotations

import wave
from pathlib import Path

LANGUAGES = ["en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh-cn", "hu", "ko", "ja", "hi"]
SPECIAL = ["[STOP]", "[UNK]", "[SPACE]", "[START]", *(f"[{code}]" for code in LANGUAGES)]
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"-()àâäçéèêëîïôöùûüÿœæ")
ENTRY = "xtts = ebook2audio.engines.xtts:XTTS"


def build_tiny_xtts(folder: Path, seed: int = 0) -> Path:
    """Write config.json, model.pth and vocab.json of a tiny random XTTS-v2 into ``folder``."""
    from ebook2audio.engines._torchaudio_shim import ensure_torchaudio

    ensure_torchaudio()
    import torch
    from tokenizers import Tokenizer, models
    from TTS.tts.configs.xtts_config import XttsArgs, XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {token: i for i, token in enumerate([*SPECIAL, *CHARS])}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tokenizer.add_special_tokens(SPECIAL)
    tokenizer.save(str(folder / "vocab.json"))
    args = XttsArgs(
        gpt_layers=1,
        gpt_n_model_channels=32,
        gpt_n_heads=2,
        gpt_max_audio_tokens=40,
        gpt_max_text_tokens=402,
        gpt_max_prompt_tokens=70,
        gpt_use_perceiver_resampler=True,  # as XTTS-v2
        gpt_num_audio_tokens=1026,
        gpt_start_audio_token=1024,
        gpt_stop_audio_token=1025,
        decoder_input_dim=32,  # the GPT's width
    )
    config = XttsConfig(model_args=args, languages=list(LANGUAGES))
    torch.manual_seed(seed)
    model = Xtts(config)
    model.tokenizer = VoiceBpeTokenizer(vocab_file=str(folder / "vocab.json"))
    model.init_models()
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    config.save_json(str(folder / "config.json"))
    return folder


def piper_recording(path: Path, text: str, length_scale: float = 1.0) -> Path:
    """A WAV of the bundled Piper voice reading ``text`` (a voice sample with a real voice in it)."""
    from ebook2audio.engines import load_engine, resolve_voice
    from ebook2audio.model import VoiceSpec

    info = resolve_voice(VoiceSpec(), env={})
    engine = load_engine(info, speed=length_scale, env={})
    try:
        pcm = engine.synthesize(text)
    finally:
        engine.close()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(info.sample_rate)
        w.writeframes(pcm)
    return path


def xtts_entry_point(root: Path) -> Path | None:
    """The folder to put on sys.path / PYTHONPATH so that ``--engine xtts`` is found (None: it is)."""
    from .kokoro_entry import entry_point_folder

    return entry_point_folder(root, ENTRY)
