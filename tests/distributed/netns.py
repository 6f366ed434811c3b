"""Separate "hosts" on one machine for tests: a network namespace and a UTS namespace (own hostname) each.

``Network`` (a context manager) makes a private switch: a namespace holding only a bridge, and for each
``add_host(name)`` a namespace whose ``eth0`` is one end of a veth pair, the other end a port of that
bridge. Addresses come from 192.0.2.0/24 (TEST-NET-1, RFC 5737: never routed) and are given only to
interfaces inside the namespaces made here; nothing is attached to the machine's own interfaces and no
namespace has a default route, so no packet can leave. ``Host.cut()`` / ``Host.restore()`` take the
host's switch port down and up again (a pulled cable, seen from outside the host).

Processes run as ``ip netns exec NS unshare --uts sh -c 'hostname H; exec ...'``: their
``socket.gethostname()`` is the host's name. Everything (processes first, then namespaces, which takes
their links with them) is removed on exit, also after a failure. Names carry the test process's pid\n(``e2a<pid>-<host>``); those of a killed test process are removed by the next one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

SUBNET = "192.0.2"  # TEST-NET-1: documentation only, routed nowhere
PREFIX = 24


class NetnsUnavailable(RuntimeError):
    """Namespaces cannot be made here (not root, no `ip`/`unshare`, a restricted container)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def why_unavailable() -> str | None:
    """None when this machine can make network + UTS namespaces, else the reason (for pytest.skip)."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "unshare", "hostname"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    probe = f"e2aprobe{os.getpid()}"
    try:
        made = _ip("netns", "add", probe, check=False)
        if made.returncode != 0:
            return f"`ip netns add` fails: {made.stderr.strip()[:200]}"
        uts = subprocess.run(
            ["ip", "netns", "exec", probe, "unshare", "--uts", "sh", "-c", "hostname e2a-probe && hostname"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if uts.returncode != 0 or uts.stdout.strip() != "e2a-probe":
            return f"cannot set a hostname in a UTS namespace: {uts.stderr.strip()[:200]}"
        bridge = _ip("-n", probe, "link", "add", "br0", "type", "bridge", check=False)
        if bridge.returncode != 0:
            return f"cannot make a bridge in a namespace: {bridge.stderr.strip()[:200]}"
    finally:
        _ip("netns", "del", probe, check=False)
    return None


@dataclass
class Host:
    """One machine of the test network: its namespace, hostname, address and switch port."""

    hostname: str
    netns: str
    addr: str
    port: str  # the bridge-side end of its veth, in the switch namespace
    switch: str  # the switch namespace
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    def argv(self, cmd: Sequence[str]) -> list[str]:
        """``cmd`` run in this host's network namespace, in a fresh UTS namespace named ``hostname``."""
        return [
            "ip", "netns", "exec", self.netns,
            "unshare", "--uts",
            "sh", "-c", 'hostname "$0" && exec "$@"', self.hostname, *cmd,
        ]  # fmt: skip

    def run(self, cmd: Sequence[str], timeout: float = 60, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(cmd), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kwargs
        )  # type: ignore[call-overload]

    def start(
        self,
        cmd: Sequence[str],
        log: Path | IO[bytes] | None = None,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``cmd`` on this host in its own process group (output to ``log``); stopped on exit."""
        out: IO[bytes] | int = subprocess.DEVNULL
        if isinstance(log, Path):
            out = log.open("ab")
        elif log is not None:
            out = log
        proc = subprocess.Popen(
            self.argv(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        if isinstance(log, Path) and not isinstance(out, int):
            out.close()  # the child holds its own copy
        self.procs.append(proc)
        return proc

    def cut(self) -> None:
        """Pull the cable: the host's switch port goes down (its own eth0 loses carrier)."""
        _ip("-n", self.switch, "link", "set", self.port, "down")

    def restore(self) -> None:
        _ip("-n", self.switch, "link", "set", self.port, "up")

    def stop_all(self, timeout: float = 10) -> None:
        for proc in self.procs:
            stop_group(proc, timeout)


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM the process group, then SIGKILL what is left of it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout)


def remove_stale() -> None:
    """Delete namespaces left by an earlier test process that was killed (``e2a<pid>-...``, pid gone)."""
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    for line in listed:
        name = line.split(" ", 1)[0]
        m = re.fullmatch(r"e2a(\d+)-[\w-]+", name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            _ip("netns", "del", name, check=False)


class Network:
    """A private bridge in its own namespace and the hosts plugged into it; all removed on exit."""

    def __init__(self, tag: str | None = None) -> None:
        self.tag = tag or f"e2a{os.getpid()}"
        self.switch = f"{self.tag}-sw"
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[str] = []

    def __enter__(self) -> Network:
        remove_stale()
        try:
            self._add_netns(self.switch)
            _ip("-n", self.switch, "link", "set", "lo", "up")
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add_netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._namespaces.append(name)

    def add_host(self, hostname: str) -> Host:
        """A new host named ``hostname`` with address 192.0.2.<n>/24 on the bridge (no other route)."""
        n = len(self.hosts) + 1
        if n > 250:
            raise ValueError("at most 250 hosts")
        ns = f"{self.tag}-{hostname}"
        port = f"p{n}"
        addr = f"{SUBNET}.{n}"
        self._add_netns(ns)
        _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "addr", "add", f"{addr}/{PREFIX}", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        host = Host(hostname=hostname, netns=ns, addr=addr, port=port, switch=self.switch)
        self.hosts[hostname] = host
        return host

    def close(self) -> None:
        for host in self.hosts.values():
            host.stop_all()
        for ns in reversed(self._namespaces):
            # Kill anything still inside (e.g. a grandchild that left its process group), then delete.
            pids = _ip("netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            _ip("netns", "del", ns, check=False)
        self._namespaces.clear()
