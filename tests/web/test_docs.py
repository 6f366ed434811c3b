"""docs/web.md and docs/web.fr.md cover every flag and variable of `serve` and every API route."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ebook2audio.cli import build_parser
from ebook2audio.web.serve import FLOWER_URL_ENV, MAX_UPLOAD_ENV, PASSWORD_ENV, USER_ENV

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("doc", ["web.md", "web.fr.md"])
def test_docs_cover_serve(doc: str, tmp_path: Path) -> None:
    from ebook2audio.web.server import ServerConfig, create_app

    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    documented = set(re.findall(r"--[a-z][a-z0-9-]+", text))
    for action in sub["serve"]._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag not in ("--help", "--debug", "--quiet", "--log-format",
                                                      "--log-syslog", "--no-distributed"):  # fmt: skip
                assert flag in documented, f"serve {flag} is not in docs/{doc}"
    for var in (USER_ENV, PASSWORD_ENV, MAX_UPLOAD_ENV, FLOWER_URL_ENV, "DISTRIBUTED_MODE"):
        assert f"`{var}" in text, var
    app = create_app(ServerConfig(data_dir=tmp_path, output_dir=tmp_path / "out"))
    for path, ops in app.openapi()["paths"].items():
        for method in ops:
            shown = re.sub(r"\{\w+\}", "{id}", path).replace("{id}/files/{id}", "{id}/files/{name}")
            tail = shown.rsplit("/", 1)[1]
            assert f"{method.upper()} {shown}" in text or f"`/{tail}`" in text, (method, path)
    assert (ROOT / "docs" / "web-app.png").stat().st_size < 200_000
