"""The child process the web app runs a conversion, a book reading or a preview in.

``python -m ebook2audio.web.child PARENT_PID convert BOOK ...`` runs the ``ebook2audio`` CLI;
``... PARENT_PID probe|preview ...`` runs :mod:`ebook2audio.web.probe`. On Linux the child asks the
kernel for SIGTERM when the server dies (a killed server leaves no orphan holding a job's lock: the
CLI's own SIGTERM handling keeps the work and stops).
"""

from __future__ import annotations

import os
import signal
import sys


def die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent and os.getppid() != parent:  # the server died before prctl: stop now
        sys.exit(143)


def main(argv: list[str]) -> int:
    parent, command, *rest = argv
    die_with_parent(int(parent))
    if command in ("probe", "preview"):
        from .probe import main as probe_main

        return probe_main([command, *rest])
    from ..cli import main as cli_main

    return cli_main([command, *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
