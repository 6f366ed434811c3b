"""Coverage-guided fuzzing of the EPUB reader with atheris (libFuzzer). Not part of the test suite: run
it by hand, for as long as you like::

    .venv/bin/python -m tests.hostile.atheris_epub -max_total_time=300
    .venv/bin/python -m tests.hostile.atheris_epub -runs=100000 -rss_limit_mb=1024

Each input describes up to four edits of a small valid EPUB (which member, what to do, the bytes);
``read_book`` must return a Book or raise a BookError. Any other exception is a crash that atheris
reports with the input that caused it (saved as ``crash-*`` in the current directory).
Needs ``pip install atheris`` (not a project dependency).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["ebook2audio"]):
    # Readers load lazily: import the ones an EPUB goes through here, so that they are instrumented.
    import ebook2audio.ingest.common
    import ebook2audio.ingest.epub
    import ebook2audio.ingest.safety
    import ebook2audio.ingest.xhtml  # noqa: F401
    from ebook2audio.errors import BookError
    from ebook2audio.ingest import read_book

from tests.hostile.generate import epub_members, write_epub

BASE = epub_members(3, ncx=True)
NAMES = sorted(BASE)
WORK = Path(tempfile.mkdtemp(prefix="atheris-epub-"))


def build(data: bytes) -> dict[str, bytes]:
    fdp = atheris.FuzzedDataProvider(data)
    members = dict(BASE)
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        name = NAMES[fdp.ConsumeIntInRange(0, len(NAMES) - 1)]
        if name not in members:
            continue
        old = members[name]
        mode = fdp.ConsumeIntInRange(0, 3)
        chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 2048))
        at = fdp.ConsumeIntInRange(0, len(old))
        if mode == 0:
            members[name] = chunk  # replace the member
        elif mode == 1:
            members[name] = old[:at] + chunk + old[at:]  # insert
        elif mode == 2:
            members[name] = old[:at] + chunk + old[at + len(chunk) :]  # overwrite
        else:
            del members[name]
    return members


def test_one_input(data: bytes) -> None:
    path = WORK / "book.epub"
    write_epub(path, build(data))
    with contextlib.suppress(BookError):
        read_book(path)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
