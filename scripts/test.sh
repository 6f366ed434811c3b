#!/usr/bin/env bash
# The whole test suite, from a fresh machine: makes .venv, installs the package with its test extras,
# installs redis-server, ffmpeg, rsyslog, prometheus, strace, docker-compose, chromium and chromium-driver
# (Debian packages) when missing, then runs ruff and pytest.
# Extra arguments go to pytest, e.g.  scripts/test.sh -m "not slow"   for the quick subset.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# A CPU build of torch first, for the voice-cloning tests (the `clone` extra): without it pip takes PyPI's
# CUDA build (several GB). This kind of machine keeps the CPU wheel in /opt/wheels (pip's find-links);
# elsewhere it comes from PyTorch's CPU index.
if ls /opt/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q "torch==2.13.0"
else
  .venv/bin/python -m pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
fi
.venv/bin/python -m pip install -q -e ".[test,distributed]"
# Debian packages, each only when missing: redis-server (distributed tests), ffmpeg (the audio
# tests run against the bundled ffmpeg and against this one, which ebook2audio must work with too),
# rsyslog and prometheus (a real syslog receiver and a real Prometheus for the monitoring tests),
# strace (the benchmarks count the coordinator's storage bytes with it; their smoke tests use it).
# Their services are not started here (policy-rc.d): the tests start their own instances on loopback.
MISSING=()
command -v redis-server >/dev/null 2>&1 || MISSING+=(redis-server)
command -v ffmpeg >/dev/null 2>&1 || MISSING+=(ffmpeg)
{ command -v rsyslogd >/dev/null 2>&1 || [ -x /usr/sbin/rsyslogd ]; } || MISSING+=(rsyslog)
command -v prometheus >/dev/null 2>&1 || MISSING+=(prometheus)
command -v strace >/dev/null 2>&1 || MISSING+=(strace)
# docker-compose (v1, Debian's package): the tests read the compose file with it (no Docker engine needed).
command -v docker-compose >/dev/null 2>&1 || MISSING+=(docker-compose)
# chromium + chromium-driver: the web app's browser test (tests/web/test_browser.py, Selenium).
command -v chromium >/dev/null 2>&1 || MISSING+=(chromium)
command -v chromedriver >/dev/null 2>&1 || MISSING+=(chromium-driver)
if [ "${#MISSING[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  POLICY=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    POLICY=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${MISSING[@]}" >/dev/null
  [ -z "$POLICY" ] || $SUDO rm -f /usr/sbin/policy-rc.d
fi
.venv/bin/ruff check src tests bench app.py
exec .venv/bin/python -m pytest "$@"
