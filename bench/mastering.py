"""The cost of mastering (audio/master.py) against the synthesis it follows, on one thread.

Piper (the bundled ``joe`` voice) speaks the sentences of a text; each chunk is then mastered as
``tasks.synthesize_batch`` does. CPU time (process time, one thread: ``OMP_NUM_THREADS=1``) of both is
summed and compared, so the ratio holds on a busy machine. The text is the README's sample
(~1 min of audio); the full run speaks it 5 times (other seeds: other noise, other audio; ~5 min).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy and onnxruntime start their pools

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import _common as c


def sentences(text: str, limit_chars: int) -> list[str]:
    """The sentences of ``text`` (20 characters or more), up to about ``limit_chars``."""
    flat = re.sub(r"\s+", " ", text)
    out: list[str] = []
    total = 0
    for s in re.split(r"(?<=[.!?])\s+", flat):
        if len(s) >= 20 and total < limit_chars:
            out.append(s)
            total += len(s)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    from ebook2audio.audio.master import master_chunk
    from ebook2audio.engines.registry import load_engine, resolve_voice
    from ebook2audio.model import Mastering, VoiceSpec

    started = time.time()
    text = (c.ROOT / "samples" / "lighthouse.txt").read_text(encoding="utf-8").split("\n\n", 1)[1]
    texts = sentences(text, 2_000) * (1 if args.quick else 5)
    info = resolve_voice(VoiceSpec(engine="piper", language="en"))
    engine = load_engine(info, speed=1.0, device="cpu")
    synth = master = audio = 0.0
    for i, s in enumerate(texts):
        t = time.process_time()
        pcm = engine.synthesize(s, seed=i)
        synth += time.process_time() - t
        t = time.process_time()
        master_chunk(pcm, info.sample_rate, Mastering())
        master += time.process_time() - t
        audio += len(pcm) / 2 / info.sample_rate
    rows = [[len(texts), round(audio, 1), round(synth, 2), round(master, 3), f"{100 * master / synth:.1f} %",
             f"{audio / master:.0f}x"]]  # fmt: skip
    lines = c.header(
        "Mastering cost, Piper joe, one thread" + (" (quick)" if args.quick else ""),
        started,
        [f"voice {info.voice} at {info.sample_rate} Hz; CPU (process) time, OMP_NUM_THREADS=1"],
    )
    lines += c.table(
        ["sentences", "audio s", "synthesis CPU s", "mastering CPU s", "mastering / synthesis", "mastering x real time"],
        rows,
    )
    print("\n".join(lines))
    if not args.no_write:
        c.write_section("mastering-quick" if args.quick else "mastering", lines)


if __name__ == "__main__":
    main()
