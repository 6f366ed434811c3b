"""The cost of ``--verify`` (speech recognition of every sentence) against the synthesis it checks.

Piper (the bundled ``joe`` voice) speaks the sentences of the README's sample; each take is then heard
by the English model (Whisper tiny.en, CTranslate2 int8, one thread) and judged as
``tasks.verified_take`` does (``verify.listen``: a failing take is heard again with timestamps). CPU time (process time, one thread: ``OMP_NUM_THREADS=1``) of both is summed and
compared, so the ratio holds on a busy machine; wall time is given too. The full run speaks the
sample 3 times (other seeds). ``--language fr`` measures the multilingual base model on espeak-ng.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy, onnxruntime and ctranslate2 start their pools

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import _common as c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--language", default="en", choices=["en", "fr"])
    args = parser.parse_args()
    from ebook2audio import asr
    from ebook2audio.engines.registry import load_engine, resolve_voice
    from ebook2audio.model import Book, Chapter, Metadata, Verification, VoiceSpec
    from ebook2audio.plan import PlanOptions, make_plan
    from ebook2audio.verify import listen

    started = time.time()
    if args.language == "en":
        text = (c.ROOT / "samples" / "lighthouse.txt").read_text(encoding="utf-8").split("\n\n", 1)[1]
        spec = VoiceSpec(engine="piper", language="en")
    else:
        text = (
            "Le gardien du phare monta l'escalier au crépuscule. Elle compta vingt-trois navires avant que "
            "la tempête n'arrive de l'ouest. La mer était calme et le ciel était bleu ce matin-là. Nous "
            "avons mangé du pain et du fromage dans la cuisine. Les pêcheurs tirèrent leurs bateaux sur la "
            "plage de galets. Personne au village n'avait jamais vu l'océan aussi calme et aussi gris."
        )
        spec = VoiceSpec(engine="espeak", language="fr")
    info = resolve_voice(spec)
    # The sentences as the planner cuts them (the real segmenter): (book's text, text spoken).
    book = Book(Metadata(language=args.language), (Chapter("", tuple(text.split("\n\n"))),))
    plan = make_plan(book, info, spec, "bench", PlanOptions(speak_titles=False))
    texts = [(ch.display, ch.text) for ch in plan.chunks] * (1 if args.quick else 3)
    engine = load_engine(info, speed=1.0, device="cpu")
    t = time.process_time()
    model = asr.resolve_model(args.language)
    listener = asr.transcriber(model, args.language)
    load_cpu = time.process_time() - t
    # espeak-ng's French is heard poorly by Whisper base: the thresholds docs/verify.md gives for it
    check = Verification(language="en") if args.language == "en" else Verification("fr", max_wer=10.0, max_cer=0.72)
    synth = heard = audio = wall_asr = 0.0
    failed = 0
    for i, (display, s) in enumerate(texts):
        t = time.process_time()
        pcm = engine.synthesize(s, seed=i)
        synth += time.process_time() - t
        t, w = time.process_time(), time.perf_counter()
        x = asr.to_asr_input(pcm, info.sample_rate)
        verdict = listen(lambda ts, x=x: listener.transcribe(x, long=ts), display, len(pcm) / 2 / info.sample_rate, check)
        failed += not verdict.passed
        heard += time.process_time() - t
        wall_asr += time.perf_counter() - w
        audio += len(pcm) / 2 / info.sample_rate
    rows = [[len(texts), round(audio, 1), round(synth, 2), round(heard, 2), f"{audio / heard:.1f}x",
             f"{100 * heard / synth:.0f} %", round(3600 * heard / audio / 60, 1), f"{load_cpu:.2f}", failed]]  # fmt: skip
    lines = c.header(
        f"--verify cost, {info.engine} {info.voice} + Whisper {model.name}, one thread"
        + (" (quick)" if args.quick else ""),
        started,
        [
            f"voice {info.voice} at {info.sample_rate} Hz; ASR {model.name} (CTranslate2 int8, greedy); "
            "CPU (process) time, OMP_NUM_THREADS=1; one take a sentence (no retakes)",
            f"false alarms: correct sentences failing at max WER {check.max_wer:g}, max CER {check.max_cer:g}",
            f"ASR wall time {wall_asr:.1f} s for the {len(texts)} sentences (the machine is shared: see load)",
        ],
    )
    lines += c.table(
        ["sentences", "audio s", "synthesis CPU s", "ASR CPU s", "ASR x real time", "ASR / synthesis",
         "ASR CPU min per audio hour", "model load CPU s", "false alarms"],
        rows,
    )  # fmt: skip
    print("\n".join(lines))
    if not args.no_write:
        key = f"verify-{args.language}" + ("-quick" if args.quick else "")
        c.write_section(key, lines)


if __name__ == "__main__":
    main()
