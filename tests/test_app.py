"""app.py: the distributed guide's exact command lines, translated onto the ebook2audio CLI."""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from ebook2audio.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
GUIDE_DISTRIBUTED = (
    "--distributed --num-workers 2 --ebook input/livre.epub --voice jenny --language fr "
    "--script_mode headless --redis-url redis://:pw@localhost:6379/0"
)


@pytest.fixture(scope="module")
def app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ebook2audio_guide_app", ROOT / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_guide_distributed_command(app: ModuleType) -> None:
    notes: list[str] = []
    out = app.translate(shlex.split(GUIDE_DISTRIBUTED), env={}, notes=notes)
    # `jenny` is an English voice (en_GB-jenny_dioco-medium): for --language fr the French voice reads.
    assert out == [
        "convert", "input/livre.epub", "--distributed", "--num-workers", "2",
        "--language", "fr", "--redis-url", "redis://:pw@localhost:6379/0",
    ]  # fmt: skip
    assert notes == [
        "note: --voice jenny is en_GB-jenny_dioco-medium, which does not speak fr: the book is read by the fr "
        "voice (fr_FR-siwis-medium unless another is installed); give --voice en_GB-jenny_dioco-medium to "
        "keep it anyway"
    ]
    args = build_parser().parse_args(out)  # the real CLI accepts it as meant
    assert args.command == "convert" and args.book == Path("input/livre.epub")
    assert args.distributed is True and args.num_workers == 2
    assert (args.voice, args.language, args.redis_url) == (None, "fr", "redis://:pw@localhost:6379/0")


def test_guide_voice_names(app: ModuleType) -> None:
    assert app.guide_voice("jenny", "en-GB") == "jenny"  # it speaks English: kept
    assert app.guide_voice("jenny", None) == "jenny"
    assert app.guide_voice("siwis", "fr") == "siwis"
    assert app.guide_voice("en_GB-jenny_dioco-medium", "fr") == "en_GB-jenny_dioco-medium"  # a full name: kept
    assert app.guide_voice("jenny", "de") is None  # read by de_DE-thorsten-medium


def test_guide_worker_command(app: ModuleType) -> None:
    assert app.translate(["--worker-mode"], env={}) == ["worker"]
    # The guide pins a worker to a GPU with CUDA_VISIBLE_DEVICES: the worker then must use CUDA.
    assert app.translate(["--worker-mode"], env={"CUDA_VISIBLE_DEVICES": "1"}) == [
        "worker",
        "--device",
        "cuda",
    ]
    assert app.translate(["--worker-mode"], env={"CUDA_VISIBLE_DEVICES": "-1"}) == ["worker"]
    assert app.translate(["--worker_mode", "--device", "cpu"], env={"CUDA_VISIBLE_DEVICES": "0"}) == [
        "worker",
        "--device",
        "cpu",
    ]
    out = app.translate(["--worker-mode", "--redis-url", "redis://r:6379/0", "--concurrency", "1"], env={})
    assert out == ["worker", "--redis-url", "redis://r:6379/0", "--concurrency", "1"]
    args = build_parser().parse_args(out)
    assert args.command == "worker" and args.redis_url == "redis://r:6379/0" and args.concurrency == 1


def test_embedded_without_distributed(app: ModuleType) -> None:
    out = app.translate(
        [
            "--ebook",
            "b.epub",
            "--output_dir",
            "out",
            "--output_format",
            "mp3",
            "--session",
            "s1",
            "--device",
            "cpu",
        ],
        env={},
    )
    assert out == [
        "convert",
        "b.epub",
        "--device",
        "cpu",
        "--output-dir",
        "out",
        "--format",
        "mp3",
        "--session",
        "s1",
    ]
    args = build_parser().parse_args(out)
    assert args.output_dir == Path("out") and args.format == "mp3" and args.session == "s1"
    assert "--distributed" not in out
    # Both spellings of a flag.
    assert app.translate(["--ebook", "b", "--output-dir", "o", "--tts_engine", "sim"], env={}) == [
        "convert",
        "b",
        "--output-dir",
        "o",
        "--engine",
        "sim",
    ]


@pytest.mark.parametrize("mode", ["gradio", "gui", "native"])
def test_other_modes_start_the_web_app(app: ModuleType, mode: str) -> None:
    with pytest.raises(app.AppUsageError, match="--ebook needs --script_mode headless"):
        app.translate(["--ebook", "b.epub", "--script_mode", mode], env={})
    assert app.translate(["--script_mode", mode], env={}) == ["serve"]


def test_web_app_without_headless(app: ModuleType) -> None:
    assert app.translate([], env={}) == ["serve"]
    out = app.translate(
        ["--distributed", "--num-workers", "2", "--host", "0.0.0.0", "--port", "8000", "--output_dir", "/out"],
        env={},
    )
    assert out == ["serve", "--distributed", "--host", "0.0.0.0", "--port", "8000", "--output-dir", "/out",
                   "--num-workers", "2"]  # fmt: skip
    args = build_parser().parse_args(out)
    assert args.command == "serve" and args.distributed is True and args.port == 8000 and args.num_workers == 2
    with pytest.raises(app.AppUsageError, match="page chooses it"):
        app.translate(["--voice", "jenny"], env={})
    with pytest.raises(app.AppUsageError, match="web app"):
        app.translate(["--ebook", "b.epub", "--port", "8000"], env={})


@pytest.mark.parametrize(
    "argv",
    [
        ["--ebook", "b.epub", "--bogus"],
        ["--worker-mode", "--distributed"],
        ["--ebook", "b.epub", "--num-workers", "two"],
        ["--eboo", "b.epub"],  # no abbreviations
    ],
)
def test_bad_flags_are_argparse_errors(app: ModuleType, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        app.translate(argv, env={})
    assert exc.value.code == 2


def test_flags_that_make_no_sense(app: ModuleType) -> None:
    with pytest.raises(app.AppUsageError, match="--ebook"):
        app.translate(["--script_mode", "headless"], env={})
    with pytest.raises(app.AppUsageError, match="coordinator"):
        app.translate(["--worker-mode", "--ebook", "b.epub"], env={})
    with pytest.raises(app.AppUsageError, match="worker-mode"):
        app.translate(["--ebook", "b.epub", "--concurrency", "2"], env={})


def run_app(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def test_app_runs_the_cli(tmp_path: Path) -> None:
    r = run_app(["--ebook", "missing.epub", "--script_mode", "headless"], tmp_path)
    assert r.returncode == 2 and r.stderr.strip() == "error: missing.epub: no such file", r.stderr
    r = run_app(["--ebook", "x.epub", "--script_mode", "gradio"], tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "headless" in r.stderr
    r = run_app(["--host", "0.0.0.0"], tmp_path)  # the web app, refused off loopback without a login
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "EBOOK2AUDIO_WEB_USER" in r.stderr


def test_app_embedded_conversion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    book = tmp_path / "livre.txt"
    book.write_text("Le Phare\n\nLa nuit tombe sur la mer. Le gardien allume la lampe.\n", encoding="utf-8")
    monkeypatch.setenv("EBOOK2AUDIO_SIM_MS_PER_CHAR", "0")
    monkeypatch.delenv("DISTRIBUTED_MODE", raising=False)
    r = run_app(
        ["--ebook", str(book), "--tts_engine", "sim", "--language", "fr", "--output_dir", "out",
         "--output_format", "wav", "--script_mode", "headless"],
        tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    outputs = list((tmp_path / "out").glob("*.wav"))
    assert len(outputs) == 1 and outputs[0].stat().st_size > 10_000
