"""Audio: WAV helpers, the ffmpeg adapter, assembly into the final audiobook, subtitles."""

from ebook2audio.audio.assemble import AssemblyOptions, AssemblyResult, PartResult, assemble
from ebook2audio.audio.ffmpeg import FORMATS, ProbeResult, find_ffmpeg, probe
from ebook2audio.audio.pcm import CorruptAudioError, is_valid_wav, parse_wav, silence, wav_bytes

__all__ = [
    "FORMATS",
    "AssemblyOptions",
    "AssemblyResult",
    "CorruptAudioError",
    "PartResult",
    "ProbeResult",
    "assemble",
    "find_ffmpeg",
    "is_valid_wav",
    "parse_wav",
    "probe",
    "silence",
    "wav_bytes",
]
