"""Piper on a GPU: the product's own engine (``engines.registry.load_engine``) on ``cpu`` and ``cuda``.

Three steps, because the GPU machine is a separate, offline host:

1. here: ``bench/gpu.py --prepare texts.json`` plans the chapters (default: Moby-Dick's chapter 1)
   with the product's planner and writes the spoken text of every chunk;
2. on the GPU host (with ``onnxruntime-gpu``, ``piper-tts`` and the voice installed):
   ``python bench/gpu.py --texts texts.json --out DIR`` loads the bundled voice with
   ``--device cuda`` exactly as a worker does (it must really run on ``CUDAExecutionProvider``: the
   product never falls back silently), then measures, each after a warm-up:
   - one CPU process, one inference thread (the reference, on the first ``--cpu-chunks`` chunks);
   - one CUDA process;
   - P CUDA processes on the same GPU (``--procs``, like ``ebook2audio worker --concurrency P``),
     the chunks shared round-robin, timed from a barrier after every process has loaded the voice;
   and writes ``gpu-section.md`` (a BENCHMARKS.md section) and ``gpu.json`` into DIR;
3. here: ``bench/gpu.py --write-section DIR/gpu-section.md`` puts the section into BENCHMARKS.md.

x real time = seconds of audio made per second of wall time (piper's phonemisation, on the CPU, is
included: it is part of every chunk's cost).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def prepare(out: Path, book: Path, chapters: str) -> None:
    from ebook2audio.config import Settings
    from ebook2audio.ingest import read_book
    from ebook2audio.pipeline import plan_options, resolve, select_chapters
    from ebook2audio.plan import make_plan

    settings = Settings()
    b = select_chapters(read_book(book), chapters)
    spec, info = resolve(b, settings)
    plan = make_plan(b, info, spec, "gpu", plan_options(settings, 1))
    texts = [c.text for c in plan.chunks]
    out.write_text(json.dumps({"book": book.name, "chapters": chapters, "texts": texts}), encoding="utf-8")
    print(f"{len(texts)} chunks, {sum(map(len, texts))} characters -> {out}")


def _engine(device: str) -> Any:
    from ebook2audio.engines.registry import load_engine, resolve_voice
    from ebook2audio.model import VoiceSpec

    info = resolve_voice(VoiceSpec(engine="piper", language="en"))
    return load_engine(info, speed=1.0, device=device)


def _run(engine: Any, texts: list[str]) -> tuple[float, float]:
    """(wall seconds, audio seconds) synthesising ``texts`` one by one."""
    rate = engine.info.sample_rate
    t0 = time.perf_counter()
    samples = 0
    for text in texts:
        samples += len(engine.synthesize(text)) // 2
    return time.perf_counter() - t0, samples / rate


def _worker(device: str, texts: list[str], barrier: Any, queue: Any) -> None:
    engine = _engine(device)
    _run(engine, texts[:3])  # warm-up (CUDA kernels, allocator)
    barrier.wait()
    wall, audio = _run(engine, texts)
    queue.put((os.getpid(), wall, audio))


def _gpu_memory_used() -> int:
    """MiB used on GPU 0 (nvidia-smi), or -1."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return int(out.strip().splitlines()[0])
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return -1


def _phonemize_seconds(engine: Any, texts: list[str]) -> float:
    """CPU seconds piper spends turning ``texts`` into phoneme ids (espeak-ng), outside the model."""
    voice = engine._voice
    t0 = time.perf_counter()
    for text in texts:
        for sentence in voice.phonemize(text):
            voice.phonemes_to_ids(sentence)
    return time.perf_counter() - t0


def _multi(device: str, texts: list[str], procs: int) -> tuple[float, float, int]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs + 1)
    queue = ctx.Queue()
    parts = [texts[i::procs] for i in range(procs)]
    ps = [ctx.Process(target=_worker, args=(device, parts[i], barrier, queue)) for i in range(procs)]
    for p in ps:
        p.start()
    barrier.wait(timeout=600)
    memory = _gpu_memory_used() if device != "cpu" else -1
    t0 = time.perf_counter()
    results = [queue.get(timeout=900) for _ in ps]
    wall = time.perf_counter() - t0
    for p in ps:
        p.join()
    return wall, sum(r[2] for r in results), memory


def _gpu_name() -> str:
    try:
        return subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def measure(texts_file: Path, out: Path, cpu_chunks: int, procs: list[int], cpu_procs: list[int]) -> None:
    import onnxruntime

    data = json.loads(texts_file.read_text(encoding="utf-8"))
    texts: list[str] = data["texts"]
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    rows: list[list[str]] = []
    res: dict[str, Any] = {"ort": onnxruntime.__version__, "providers": onnxruntime.get_available_providers()}

    cuda = _engine("cuda")
    used = cuda.session.get_providers()
    res["cuda_session_providers"] = used
    print(f"--device cuda -> engine.device={cuda.device}, session providers {used}", flush=True)
    if used[0] != "CUDAExecutionProvider":
        raise SystemExit("the CUDA session does not run on CUDAExecutionProvider")
    _run(cuda, texts[:5])
    wall, audio = _run(cuda, texts)
    res["cuda_1"] = (wall, audio)
    phon = _phonemize_seconds(cuda, texts)
    res["phonemize_s"] = phon
    cuda.close()

    cpu = _engine("cpu")
    _run(cpu, texts[:2])
    cwall, caudio = _run(cpu, texts[:cpu_chunks])
    res["cpu_1"] = (cwall, caudio)
    cpu.close()
    cpu_rt = caudio / cwall
    rows.append(["CPU, 1 process x 1 thread", f"{cpu_chunks}", f"{cwall:.1f}", f"{caudio:.0f}"])
    rows[-1] += [f"{cpu_rt:.1f}", "1.00x", "-"]
    rows.append(["CUDA, 1 process", f"{len(texts)}", f"{wall:.1f}", f"{audio:.0f}"])
    rows[-1] += [f"{audio / wall:.1f}", f"{audio / wall / cpu_rt:.1f}x", "-"]
    for device, counts in (("cuda", procs), ("cpu", cpu_procs)):
        for p in counts:
            mwall, maudio, memory = _multi(device, texts, p)
            res[f"{device}_{p}"] = (mwall, maudio, memory)
            label = f"CUDA, {p} processes, one GPU" if device == "cuda" else f"CPU, {p} processes x 1 thread"
            rows.append([label, f"{len(texts)}", f"{mwall:.1f}", f"{maudio:.0f}", f"{maudio / mwall:.1f}"])
            rows[-1] += [f"{maudio / mwall / cpu_rt:.1f}x", f"{memory}" if memory >= 0 else "-"]
            print(rows[-1], flush=True)
    cores = os.cpu_count() or 0
    lines = [
        "### Piper on a GPU (`--device cuda`)",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} (the run took {(time.time() - started) / 60:.1f} min)",
        f"- machine: the session's GPU host: {_gpu_name()}; {cores} CPU cores; Python {platform.python_version()}; "
        f"onnxruntime-gpu {onnxruntime.__version__} (CUDA 13 build, the host's CUDA 13 libraries)",
        "- command: `python bench/gpu.py --texts texts.json --out DIR` (texts from `bench/gpu.py --prepare` here)",
        f"- book: `{data['book']}` chapters `{data['chapters']}`: {len(texts)} chunks, {sum(map(len, texts))} characters",
        f"- voice: the bundled Piper en_US-joe-medium through `engines.registry.load_engine(device=...)`; the CUDA "
        f"session's providers: {', '.join(used)}",
        "- x real time = audio seconds / wall seconds, after a warm-up; several processes: the chunks shared "
        "round-robin, timed from a barrier after every process loaded the voice",
        f"- piper's phonemisation (espeak-ng, on the CPU, in every process whatever the device) of these "
        f"chunks: {phon:.1f} s of the CUDA process's {wall:.1f} s",
        "",
        "| run | chunks | wall s | audio s | x real time | vs 1 CPU process | GPU MiB used (all processes) |",
        "|---|---|---|---|---|---|---|",
        *[f"| {' | '.join(r)} |" for r in rows],
    ]
    (out / "gpu-section.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "gpu.json").write_text(json.dumps(res, indent=1), encoding="utf-8")
    print("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prepare", type=Path, help="write the planned chunk texts here and stop")
    p.add_argument(
        "--book", type=Path, default=ROOT.parent / "shared" / "corpus" / "epub3_moby-dick_melville_en.epub"
    )
    p.add_argument("--chapters", default="3")
    p.add_argument("--texts", type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--cpu-chunks", type=int, default=30)
    p.add_argument("--procs", default="2,4,8,16", help="CUDA processes sharing the GPU")
    p.add_argument("--cpu-procs", default="8,16", help="CPU processes (one thread each), for comparison")
    p.add_argument("--write-section", type=Path, help="put this section file into BENCHMARKS.md")
    args = p.parse_args()
    if args.prepare:
        prepare(args.prepare, args.book, args.chapters)
    elif args.write_section:
        sys.path.insert(0, str(ROOT / "bench"))
        import _common as c

        c.write_section("gpu", args.write_section.read_text(encoding="utf-8").rstrip("\n").split("\n"))
    elif args.texts and args.out:
        measure(
            args.texts,
            args.out,
            args.cpu_chunks,
            [int(x) for x in args.procs.split(",") if x],
            [int(x) for x in args.cpu_procs.split(",") if x],
        )
    else:
        p.error("give --prepare, --texts with --out, or --write-section")


if __name__ == "__main__":
    main()
