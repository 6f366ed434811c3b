"""The operations examples of docs/distributed.md (and its French twin) are accepted by the real tools:
Prometheus' promtool checks the scrape configuration and the alert rules, rsyslogd -N1 the
forwarding and central rsyslog snippets (Debian's packages; scripts/test.sh installs them)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PROMTOOL = shutil.which("promtool")
RSYSLOGD = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)


def blocks(doc: Path, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", doc.read_text(encoding="utf-8"), re.S | re.M)


@pytest.fixture(params=["distributed.md", "distributed.fr.md"])
def doc(request: pytest.FixtureRequest) -> Path:
    return DOCS / request.param


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (scripts/test.sh installs Debian's prometheus)")
def test_prometheus_examples_pass_promtool(doc: Path, tmp_path: Path) -> None:
    yaml_blocks = blocks(doc, "yaml")
    (config,) = [b for b in yaml_blocks if "scrape_configs:" in b]
    (rules,) = [b for b in yaml_blocks if "groups:" in b]
    assert "ebook2audio_last_progress_timestamp_seconds" in rules and "> 600" in rules
    (tmp_path / "ebook2audio-alerts.yml").write_text(rules)
    (tmp_path / "prometheus.yml").write_text(config.replace("/etc/prometheus/flower-password", str(tmp_path / "pw")))
    (tmp_path / "pw").write_text("secret\n")
    for args in (["check", "rules", "ebook2audio-alerts.yml"], ["check", "config", "prometheus.yml"]):
        r = subprocess.run([PROMTOOL, *args], cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(RSYSLOGD is None, reason="rsyslogd is not installed (scripts/test.sh installs Debian's rsyslog)")
def test_rsyslog_snippets_pass_rsyslogd_check(doc: Path, tmp_path: Path) -> None:
    snippets = blocks(doc, "rsyslog")
    assert len(snippets) == 2  # each machine's forwarding, the central server
    for i, snippet in enumerate(snippets):
        conf = tmp_path / f"rsyslog-{i}.conf"
        conf.write_text(f'global(workDirectory="{tmp_path}")\n' + snippet.replace("/var/log/ebook2audio", str(tmp_path)))
        r = subprocess.run([RSYSLOGD, "-N1", "-f", str(conf)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
