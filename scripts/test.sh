#!/usr/bin/env bash
# The whole test suite, from a fresh machine: makes .venv, installs the package with its test extras,
# installs redis-server, rsyslog and prometheus (Debian packages) when missing, then runs ruff and pytest.
# Extra arguments go to pytest, e.g.  scripts/test.sh -m "not slow"   for the quick subset.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,distributed]"
# Debian packages the tests run for real, installed only when missing (never started as services:
# the tests start their own instances on loopback ports): redis-server, rsyslog (syslog receiver),
# prometheus (scrapes --metrics-port).
MISSING=""
command -v redis-server >/dev/null 2>&1 || MISSING="$MISSING redis-server"
{ command -v rsyslogd >/dev/null 2>&1 || [ -x /usr/sbin/rsyslogd ]; } || MISSING="$MISSING rsyslog"
command -v prometheus >/dev/null 2>&1 || MISSING="$MISSING prometheus"
if [ -n "$MISSING" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # policy-rc.d 101: the packages' services are not started on this machine
  POLICY=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    POLICY=1
  fi
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $MISSING >/dev/null
  [ -z "$POLICY" ] || $SUDO rm -f /usr/sbin/policy-rc.d
fi
.venv/bin/ruff check src tests bench app.py
exec .venv/bin/python -m pytest "$@"
