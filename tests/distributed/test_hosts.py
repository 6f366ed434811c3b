"""Real separate hosts: Redis, S3 (moto), the coordinator and two workers, each in its own network and
UTS namespace (own address, own hostname), joined by a private bridge (see netns.py).

Mid-chapter, one worker's cable is pulled for 30 s and plugged back: the book completes, every planned
chunk is stored exactly once, the m4b's duration is the sum of its chunks and pauses, its chapters read
back, and the coordinator keeps the two workers apart (names, log lines, session-lock identity).
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ebook2audio.audio.assemble import probe
from ebook2audio.jobstore import chunk_key

from .conftest import RedisServer
from .helpers import SUMMARY, chunk_samples, cli_env, write_book
from .netns import Host, Network, why_unavailable

pytestmark = pytest.mark.slow

CUT_SECONDS = 30.0
MS_PER_CHAR = "40"  # about 3,000 characters: ~120 worker-seconds, 40 one-sentence batches of ~3 s
S3_PORT = 5000
REDIS_PORT = 6379
ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key-0123456789"
BUCKET = "hosts-test"


class NetnsRedis(RedisServer):
    """The conftest's redis-server (AOF, password), on ``host`` at its address."""

    def __init__(self, host: Host, directory: Path) -> None:
        super().__init__(directory, host=host.addr)
        self.machine = host
        self.port = REDIS_PORT

    def _args(self) -> list[str]:
        args = super()._args()
        i = args.index("--bind")
        args[i + 1 : i + 3] = [self.machine.addr, "127.0.0.1"]
        return args

    def start(self, timeout: float = 15.0) -> None:
        self.proc = self.machine.start(self._args(), self.dir / "stdout.log")
        deadline = time.monotonic() + timeout
        while self.cli("PING").strip() != "PONG":
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.log.read_text() if self.log.exists() else ""
                raise RuntimeError(f"redis-server did not start on {self.machine.hostname}:\n{log[-2000:]}")
            time.sleep(0.1)

    def cli(self, *args: str) -> str:
        """redis-cli on Redis's own host (the test process is on no test network)."""
        cmd = ["redis-cli", "-h", self.machine.addr, "-p", str(self.port), "-a", self.password,
               "--no-auth-warning", *args]  # fmt: skip
        return self.machine.run(cmd, timeout=15).stdout


def _python(host: Host, code: str, env: dict[str, str], timeout: float = 60) -> str:
    done = host.run([sys.executable, "-c", code], timeout=timeout, env=env)
    assert done.returncode == 0, f"on {host.hostname}: {done.stderr[-3000:]}"
    return done.stdout


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _held_task(log: Path) -> bool:
    """The worker has received a task it has not finished."""
    text = log.read_text(errors="replace")
    received = set(re.findall(r"Task ebook2audio\.synthesize_batch\[([^\]]+)\] received", text))
    finished = set(re.findall(r"Task ebook2audio\.synthesize_batch\[([^\]]+)\] (?:succeeded|failed|retry)", text))
    return bool(received - finished)


def batches_of(plan: dict) -> dict[str, dict]:
    return {b["id"]: b for b in plan["batches"]}


@pytest.fixture
def network() -> Iterator[Network]:
    reason = why_unavailable()
    if reason:
        pytest.skip(f"separate hosts need network namespaces: {reason}")
    with Network() as net:
        yield net


def test_two_worker_hosts_and_a_pulled_cable(network: Network, tmp_path: Path) -> None:
    redis_host = network.add_host("e2a-redis")
    s3_host = network.add_host("e2a-s3")
    coord = network.add_host("e2a-coord")
    w1_host = network.add_host("e2a-w1")
    w2_host = network.add_host("e2a-w2")

    redis = NetnsRedis(redis_host, tmp_path / "redis")
    redis.start()
    url = redis.url
    s3_url = f"http://{s3_host.addr}:{S3_PORT}"
    s3_env = {
        "SHARED_STORAGE_TYPE": "s3",
        "S3_ENDPOINT_URL": s3_url,
        "S3_BUCKET_NAME": BUCKET,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": "us-east-1",
    }
    env = cli_env(tmp_path, **s3_env, EBOOK2AUDIO_SIM_MS_PER_CHAR=MS_PER_CHAR)
    s3_host.start([sys.executable, "-m", "moto.server", "-H", s3_host.addr, "-p", str(S3_PORT)],
                  tmp_path / "moto.log", env=env)  # fmt: skip
    s3 = (
        "import boto3, json, sys, time\n"
        f"c = boto3.client('s3', endpoint_url={s3_url!r}, region_name='us-east-1',"
        f" aws_access_key_id={ACCESS_KEY!r}, aws_secret_access_key={SECRET_KEY!r})\n"
    )
    _python(
        coord,  # also proves the coordinator's host reaches the S3 host over the bridge
        s3 + "for _ in range(300):\n"
        "    try:\n"
        f"        c.create_bucket(Bucket={BUCKET!r}); break\n"
        "    except Exception:\n"
        "        time.sleep(0.1)\n"
        "else:\n"
        "    sys.exit('moto did not start')\n",
        env,
    )

    logs = {h.hostname: tmp_path / f"worker-{h.hostname}.log" for h in (w1_host, w2_host)}
    for h, name in ((w1_host, "w1"), (w2_host, "w2")):
        h.start([sys.executable, "-m", "ebook2audio", "worker", "--redis-url", url, "--concurrency", "1",
                 "--hostname", f"{name}@%h"], logs[h.hostname], env=env, cwd=tmp_path)  # fmt: skip
    w1, w2 = "w1@e2a-w1", "w2@e2a-w2"

    # (while the workers start) Each host sees its own hostname, so the session lock's holder identity
    # differs between them.
    space = "from ebook2audio.executors.session_lock import process_space; print(process_space())"
    spaces = {h.hostname: _python(h, space, env).strip() for h in (coord, w1_host, w2_host)}
    for name, value in spaces.items():
        assert value.split("|")[0] == name, spaces
    assert len(set(spaces.values())) == 3, spaces
    for name, log in ((w1, logs["e2a-w1"]), (w2, logs["e2a-w2"])):
        _wait(lambda log=log, name=name: f"{name} ready." in log.read_text(errors="replace"), 120, f"{name} ready")

    book = write_book(tmp_path / "book.txt", chapters=3, paragraphs=3)
    out_log = tmp_path / "coordinator.log"
    args = ["convert", str(book), "--distributed", "--num-workers", "2", "--redis-url", url,
            "--engine", "sim", "-o", str(tmp_path / "out"), "--keep-work", "--batch-chars", "80",
            "--worker-timeout", "120"]  # fmt: skip
    proc = coord.start([sys.executable, "-m", "ebook2audio", *args], out_log, env=env, cwd=tmp_path)

    def coord_text() -> str:
        return out_log.read_text(errors="replace")

    # The session lock names the coordinator's host, not a worker's or the test machine's.
    _wait(lambda: redis.cli("KEYS", "lock:*").strip() != "" or proc.poll() is not None, 120, "the session lock")
    (lock,) = redis.cli("KEYS", "lock:*").split()
    holder = json.loads(redis.cli("GET", lock))
    assert holder["host"] == "e2a-coord" and holder["space"] == spaces["e2a-coord"], holder

    # Mid-chapter (a batch is a sentence, a chapter ten): pull w1's cable while it runs a batch (and has
    # said so in Redis: received a second ago and still running).
    def w1_busy() -> bool:
        if not _held_task(logs["e2a-w1"]):
            return False
        time.sleep(1.0)
        return _held_task(logs["e2a-w1"])

    _wait(lambda: w1_busy() or proc.poll() is not None, 120, "w1 to hold a batch")
    assert proc.poll() is None, coord_text()[-3000:]
    w1_host.cut()
    cut_at = time.monotonic()
    try:
        time.sleep(CUT_SECONDS)
        assert proc.poll() is None, "the book finished before the cable came back: make it longer\n" + coord_text()
        during = coord_text()
    finally:
        w1_host.restore()
    restored_at = time.monotonic()

    try:
        proc.wait(240)
    except Exception:
        pytest.fail("coordinator did not finish:\n" + coord_text()[-4000:])
    text = coord_text()
    w_text = {h: p.read_text(errors="replace")[-3000:] for h, p in logs.items()}
    assert proc.returncode == 0, f"{text[-4000:]}\n{w_text}"

    # The coordinator met two hosts, saw w1 (and only w1) go, gave its batch to w2, and saw w1 come back.
    assert f"2 workers connected: {w1}, {w2}" in text, text
    gone = re.findall(r"worker (\S+) (?:stopped answering|is gone while holding batch)", during)
    assert gone and set(gone) == {w1}, during
    held = re.findall(r"worker \S+ is gone while holding batch (\S+):", during)
    assert held, during
    assert w2 not in " ".join(re.findall(r"worker .*(?:stopped answering|is gone|held by no worker).*", text))
    assert f"worker {w1} joined" in text[len(during):], text
    # Back on the network, w1 takes batches before it answers pings again: they are not given away.
    assert "is gone while holding" not in text[len(during):], text

    # Each chunk was written by exactly one task (a task reports the chunks it stored, not those it
    # found stored or lost the race for), and both hosts did some of the work.
    written: dict[str, list[str]] = {}
    for host, log in logs.items():
        for line in re.findall(r"Task ebook2audio\.synthesize_batch\[\S+\] succeeded in .*", log.read_text()):
            part = line.split("'chunks': [", 1)[1].split("], 'skipped'", 1)[0]
            for cid in re.findall(r"'([0-9a-f]+)', \d+", part):
                written.setdefault(cid, []).append(host)
    assert {len(v) for v in written.values()} == {1}, written
    assert {v[0] for v in written.values()} == set(logs), written

    # Storage: every planned chunk exactly once, nothing else; the m4b is their sum plus the pauses.
    listing = json.loads(_python(
        coord,
        s3 + f"objs = c.list_objects_v2(Bucket={BUCKET!r}).get('Contents', [])\n"
        "plans = [o['Key'] for o in objs if '/plans/' in o['Key'] and o['Key'].endswith('.json')]\n"
        f"plan = json.loads(c.get_object(Bucket={BUCKET!r}, Key=plans[0])['Body'].read())\n"
        "heads = {o['Key']: c.get_object(Bucket=" + repr(BUCKET) + ", Key=o['Key'], Range='bytes=0-511')['Body']"
        ".read().hex() for o in objs if '/chunks/' in o['Key']}\n"
        "print(json.dumps({'objects': {o['Key']: o['Size'] for o in objs}, 'plan': plan, 'plans': plans,"
        " 'heads': heads}))\n",
        env,
    ))  # fmt: skip
    plan = listing["plan"]
    assert len(listing["plans"]) == 1, listing["plans"]
    session = plan["session"]
    ids = [c["id"] for c in plan["chunks"]]
    stored = {k: v for k, v in listing["objects"].items() if k.startswith(f"{session}/chunks/")}
    assert sorted(stored) == sorted(chunk_key(session, cid) for cid in ids)
    # All by succeeded tasks, except (at most) the one batch w1 held when cut, had it stored its audio
    # before losing the link: the re-dispatched copy then found it stored and reported it skipped.
    cut_batch = set(batches_of(plan)[held[0]]["chunk_ids"])
    assert set(written) <= set(ids) and set(ids) - set(written) <= cut_batch, (sorted(written), ids)
    m = SUMMARY.search(text)
    assert m and m.groups() == (str(len(ids)), "0"), text  # each chunk counted once
    # The batch w1 held was one of several of its chapter (cut mid-chapter).
    batches = batches_of(plan)
    chapter = batches[held[0]]["chapter"]
    assert sum(1 for b in plan["batches"] if b["chapter"] == chapter) >= 2, plan["batches"]

    rate = plan["sample_rate"]
    counts = {k: chunk_samples(bytes.fromhex(listing["heads"][k]), size) for k, size in stored.items()}
    samples = sum(counts.values())
    pauses = sum((c["pause_after_ms"] * rate + 500) // 1000 for c in plan["chunks"])
    (m4b,) = (tmp_path / "out").glob("*.m4b")
    info = probe(m4b)
    assert info.duration == pytest.approx((samples + pauses) / rate, abs=0.15)
    assert [c.title for c in info.chapters] == [c["title"] for c in plan["chapters"]]
    sizes = {cid: counts[chunk_key(session, cid)] for cid in ids}
    pause = {c["id"]: (c["pause_after_ms"] * rate + 500) // 1000 for c in plan["chunks"]}
    start = 0
    for mark, planned in zip(info.chapters, plan["chapters"], strict=True):
        assert mark.start == pytest.approx(start / rate, abs=0.05), (mark, start / rate)
        start += sum(sizes[cid] + pause[cid] for cid in planned["chunk_ids"])
    print(
        f"cut {CUT_SECONDS:g} s; finished {time.monotonic() - restored_at:.1f} s after the restore, "
        f"{time.monotonic() - cut_at:.1f} s after the cut; {len(ids)} chunks, {len(batches)} batches"
    )
