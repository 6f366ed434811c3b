#!/usr/bin/env bash
# The whole test suite, from a fresh machine: makes .venv, installs the package with its test extras,
# installs redis-server (Debian package) when it is missing, then runs ruff and pytest.
# Extra arguments go to pytest, e.g.  scripts/test.sh -m "not slow"   for the quick subset.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,distributed]"
if ! command -v redis-server >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
.venv/bin/ruff check src tests bench app.py
exec .venv/bin/python -m pytest "$@"
