"""docs/verify.md and docs/verify.fr.md document every verification flag of `convert` and `check`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ebook2audio.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
CHECK_FLAGS = ("--against", "--max-wer", "--max-cer", "--asr-model")


@pytest.mark.parametrize("doc", ["verify.md", "verify.fr.md"])
def test_docs_cover_the_verification_flags(doc: str) -> None:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    documented = set(re.findall(r"--[a-z][a-z0-9-]+", text))
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    convert = {f for a in sub["convert"]._actions for f in a.option_strings if f.startswith(("--verify", "--asr"))}
    check = {f for a in sub["check"]._actions for f in a.option_strings}
    assert {"--verify", "--verify-takes", "--asr-model"} <= convert
    assert set(CHECK_FLAGS) <= check
    for flag in sorted(convert | set(CHECK_FLAGS)):
        assert flag in documented, f"{flag} is not in docs/{doc}"
    for var in ("EBOOK2AUDIO_VERIFY", "EBOOK2AUDIO_VERIFY_TAKES", "EBOOK2AUDIO_ASR_MODEL"):
        assert var in text, var
    other = "verify.fr.md" if doc == "verify.md" else "verify.md"
    assert f"({other})" in text, f"docs/{doc} does not link its translation"
