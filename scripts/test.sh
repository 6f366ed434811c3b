#!/usr/bin/env bash
# The whole test suite, from a fresh machine: makes .venv, installs the package with its test extras,
# installs redis-server and ffmpeg (Debian packages) when they are missing, then runs ruff and pytest.
# Extra arguments go to pytest, e.g.  scripts/test.sh -m "not slow"   for the quick subset.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,distributed]"
# Debian packages, each only when missing: redis-server (distributed tests) and ffmpeg (the audio
# tests run against the bundled ffmpeg and against this one, which ebook2audio must work with too).
MISSING=()
command -v redis-server >/dev/null 2>&1 || MISSING+=(redis-server)
command -v ffmpeg >/dev/null 2>&1 || MISSING+=(ffmpeg)
if [ "${#MISSING[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${MISSING[@]}" >/dev/null
fi
.venv/bin/ruff check src tests bench app.py
exec .venv/bin/python -m pytest "$@"
