"""S3Storage as the shared storage of a cluster, on a real S3-compatible server (moto, localhost):
refused prefixes, first-writer-wins conditional PUTs, temporary credentials, and the coordinator's
batch verification from one listing (requests counted)."""

from __future__ import annotations

import contextlib
import http.server
import multiprocessing
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ebook2audio.audio.pcm import wav_bytes
from ebook2audio.distributed_config import DistributedSettings, load_distributed_settings, open_shared_storage
from ebook2audio.errors import InvalidKeyError, StorageError
from ebook2audio.executors.distributed import DistributedExecutor
from ebook2audio.jobstore import chunk_key, stored_chunk_sizes
from ebook2audio.model import Batch, BatchResult, Chunk, Metadata, Plan, PlannedChapter, VoiceSpec
from ebook2audio.storage.s3 import S3Storage, open_s3_storage
from tests.s3_server import ForwardingProxy, S3Server
from tests.storage.helpers import DANGEROUS_PREFIXES


def s3(server: S3Server, bucket: str, prefix: str = "", **kw: Any) -> S3Storage:
    return open_s3_storage(
        bucket,
        endpoint_url=server.url,
        region=server.region,
        access_key=server.access_key,
        secret_key=server.secret_key,
        prefix=prefix,
        session=server.session,
        **kw,
    )


def bucket_objects(server: S3Server, bucket: str) -> dict[str, str]:
    """{key: ETag} of every object in the bucket, looked at behind the storage's back."""
    out: dict[str, str] = {}
    for page in server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out.update({o["Key"]: o["ETag"] for o in page.get("Contents", ())})
    return out


def count_requests(st: S3Storage) -> Counter[str]:
    """Every S3 API call the storage's client makes from now on, by operation name."""
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: object) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    st.client.meta.events.register("before-call.s3", count)
    return calls


# -- delete_prefix ------------------------------------------------------------------------------


@pytest.mark.parametrize("storage_prefix", ["", "cluster"])
@pytest.mark.parametrize("prefix", DANGEROUS_PREFIXES)
def test_delete_prefix_refuses_prefixes_that_leave_a_job(
    s3_server: S3Server, s3_bucket: str, storage_prefix: str, prefix: str
) -> None:
    st = s3(s3_server, s3_bucket, prefix=storage_prefix)
    for key in ("sess/plan.json", "sess/chunks/ab/abc.wav", "sessX/plan.json", "other/x"):
        st.put_bytes(key, key.encode())
    s3_server.client().put_object(Bucket=s3_bucket, Key="outside", Body=b"keep")
    before = bucket_objects(s3_server, s3_bucket)
    calls = count_requests(st)
    with pytest.raises(InvalidKeyError, match="refusing to delete storage prefix"):
        st.delete_prefix(prefix)
    assert not calls  # refused before any request
    assert bucket_objects(s3_server, s3_bucket) == before


def test_delete_prefix_deletes_exactly_its_folder(s3_server: S3Server, s3_bucket: str) -> None:
    st = s3(s3_server, s3_bucket, prefix="cluster")
    for key in ("sess/plan.json", "sess/chunks/ab/abc.wav", "sessX/plan.json", "other/x"):
        st.put_bytes(key, b"1")
    st.delete_prefix("sess")  # a folder: never sessX/
    assert sorted(bucket_objects(s3_server, s3_bucket)) == ["cluster/other/x", "cluster/sessX/plan.json"]


# -- first writer wins ----------------------------------------------------------------------------


def test_conditional_put_keeps_the_first_blob(s3_server: S3Server, s3_bucket: str) -> None:
    """The installed moto honours ``If-None-Match: *`` (412 PreconditionFailed on an existing key)."""
    st = s3(s3_server, s3_bucket)
    assert st.put_bytes_if_absent("s/k.wav", b"first") is True
    assert st.put_bytes_if_absent("s/k.wav", b"second, longer") is False
    assert st.get_bytes("s/k.wav") == b"first"
    assert list(bucket_objects(s3_server, s3_bucket)) == ["s/k.wav"]
    st.put_bytes("s/k.wav", b"replaced")  # an unconditional PUT still replaces (damaged blobs)
    assert st.get_bytes("s/k.wav") == b"replaced"


def _blob(i: int, n: int = 200_000) -> bytes:
    return bytes([i]) * n


def test_concurrent_writers_in_threads_exactly_one_wins(s3_server: S3Server, s3_bucket: str) -> None:
    st = s3(s3_server, s3_bucket)
    writers = 10
    for rnd in range(3):
        key = f"s/chunks/ab/k{rnd}.wav"
        barrier = threading.Barrier(writers + 1)
        seen: list[bytes] = []
        stop = threading.Event()

        def read(
            key: str = key,
            barrier: threading.Barrier = barrier,
            seen: list[bytes] = seen,
            stop: threading.Event = stop,
        ) -> None:
            barrier.wait()
            while not stop.is_set():
                try:
                    seen.append(st.get_bytes(key))
                except FileNotFoundError:
                    continue

        def write(i: int, key: str = key, barrier: threading.Barrier = barrier) -> bool:
            barrier.wait()
            return st.put_bytes_if_absent(key, _blob(i))

        reader = threading.Thread(target=read)
        reader.start()
        with ThreadPoolExecutor(writers) as pool:
            won = list(pool.map(write, range(writers)))
        stop.set()
        reader.join()
        assert won.count(True) == 1, won
        final = st.get_bytes(key)
        assert final == _blob(won.index(True))
        assert set(seen) <= {final}  # readers saw nothing, or the winner's whole blob
    assert sorted(bucket_objects(s3_server, s3_bucket)) == [f"s/chunks/ab/k{r}.wav" for r in range(3)]


def _process_writer(url: str, bucket: str, i: int, barrier: Any) -> bool:
    from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY

    st = open_s3_storage(bucket, endpoint_url=url, region=REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    barrier.wait()
    return st.put_bytes_if_absent("s/k.wav", _blob(i, 500_000))


def test_concurrent_writers_in_processes_exactly_one_wins(s3_server: S3Server, s3_bucket: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    n = 4
    barrier = ctx.Manager().Barrier(n)
    with ctx.Pool(n) as pool:
        won = pool.starmap(_process_writer, [(s3_server.url, s3_bucket, i, barrier) for i in range(n)])
    assert won.count(True) == 1, won
    assert s3(s3_server, s3_bucket).get_bytes("s/k.wav") == _blob(won.index(True), 500_000)
    assert list(bucket_objects(s3_server, s3_bucket)) == ["s/k.wav"]


# -- credentials ------------------------------------------------------------------------------------


def sent_tokens(st: S3Storage) -> list[str | None]:
    """The X-Amz-Security-Token header of every request the storage's client sends from now on."""
    tokens: list[str | None] = []

    def grab(request: Any, **_: object) -> None:
        token = request.headers.get("X-Amz-Security-Token")
        tokens.append(token.decode() if isinstance(token, bytes) else token)

    st.client.meta.events.register("before-send.s3", grab)
    return tokens


def _roundtrip(st: S3Storage) -> None:
    st.put_bytes("t/x", b"temporary")
    assert st.get_bytes("t/x") == b"temporary"


def test_explicit_temporary_credentials_send_their_session_token(s3_server: S3Server, s3_bucket: str) -> None:
    st = s3(s3_server, s3_bucket, session_token="FwoGZXIvYXdzEXAMPLE-token")
    assert st.client._request_signer._credentials.token == "FwoGZXIvYXdzEXAMPLE-token"
    tokens = sent_tokens(st)
    _roundtrip(st)
    assert tokens and set(tokens) == {"FwoGZXIvYXdzEXAMPLE-token"}


def test_explicit_keys_without_a_token_send_none(s3_server: S3Server, s3_bucket: str) -> None:
    st = s3(s3_server, s3_bucket)
    tokens = sent_tokens(st)
    _roundtrip(st)
    assert tokens and set(tokens) == {None}


@pytest.fixture
def no_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_DEFAULT_PROFILE", "AWS_SECURITY_TOKEN"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def test_without_keys_boto3s_chain_gives_environment_credentials_with_their_token(
    s3_server: S3Server, s3_bucket: str, no_aws_env: pytest.MonkeyPatch
) -> None:
    no_aws_env.setenv("AWS_ACCESS_KEY_ID", "ASIAENVEXAMPLE")
    no_aws_env.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    no_aws_env.setenv("AWS_SESSION_TOKEN", "env-session-token")
    st = open_s3_storage(s3_bucket, endpoint_url=s3_server.url, region=s3_server.region)
    tokens = sent_tokens(st)
    _roundtrip(st)
    assert set(tokens) == {"env-session-token"}


def test_without_keys_boto3s_chain_reads_a_named_profile(
    s3_server: S3Server, s3_bucket: str, no_aws_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A profile in the shared credentials file (what ``aws sso login``/``aws configure`` write)."""
    creds = tmp_path / "credentials"
    creds.write_text(
        "[cluster]\naws_access_key_id = ASIAPROFILE\naws_secret_access_key = profile-secret\n"
        "aws_session_token = profile-session-token\n"
    )
    no_aws_env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    no_aws_env.setenv("AWS_PROFILE", "cluster")
    st = open_s3_storage(s3_bucket, endpoint_url=s3_server.url, region=s3_server.region)
    tokens = sent_tokens(st)
    _roundtrip(st)
    assert set(tokens) == {"profile-session-token"}


def test_the_distributed_settings_carry_the_session_token(
    s3_server: S3Server, s3_bucket: str, no_aws_env: pytest.MonkeyPatch
) -> None:
    """AWS_SESSION_TOKEN beside explicit keys (the coordinator's and workers' environment) is used,
    and is a secret (masked in messages)."""
    env = {**s3_server.env(s3_bucket), "AWS_SESSION_TOKEN": "cluster-session-token"}
    ds = load_distributed_settings({}, env)
    assert ds.aws_session_token == "cluster-session-token"
    assert "cluster-session-token" in ds.secrets
    st = open_shared_storage(ds)
    assert isinstance(st, S3Storage)
    tokens = sent_tokens(st)
    _roundtrip(st)
    assert set(tokens) == {"cluster-session-token"}
    assert DistributedSettings().aws_session_token == ""


# -- the coordinator's batch verification -----------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _plan(ids: list[str], sizes: list[int]) -> Plan:
    batches, k = [], 0
    for b, n in enumerate(sizes):
        batches.append(Batch(id=f"b{b}", chapter=0, chunk_ids=tuple(ids[k : k + n]), chars=n))
        k += n
    return Plan(
        session="big",
        voice=VoiceSpec(engine="fake"),
        sample_rate=8000,
        chapters=(PlannedChapter(index=0, title="One", chunk_ids=tuple(ids)),),
        chunks=tuple(
            Chunk(id=i, chapter=0, index=k, text="x", display="x", pause_after_ms=0) for k, i in enumerate(ids)
        ),
        batches=tuple(batches),
        metadata=Metadata(title="T"),
    )


def test_batch_verification_costs_one_listing_whatever_the_batch_size(s3_server: S3Server, s3_bucket: str) -> None:
    """A batch of 2 chunks and one of 60 cost the same: one ListObjectsV2 request (the session has
    under 1,000 chunks), no HEAD and no GET, where the old check made a HEAD and a GET per chunk."""
    ids = [f"{i % 256:02x}{i:04d}" for i in range(70)]
    plan = _plan(ids, [2, 60, 8])
    st = s3(s3_server, s3_bucket, prefix="cluster")
    wav = wav_bytes(b"\x01\x02" * 800, 8000)
    for cid in ids[:62]:  # batches b0 and b1 are finished, b2 not
        st.put_bytes(chunk_key("big", cid), wav)
    per_batch: dict[str, Counter[str]] = {}
    for batch in plan.batches[:2]:
        ex = DistributedExecutor(app=None, settings=DistributedSettings(), storage=st, clock=_Clock())
        calls = count_requests(ex.storage)
        assert ex._batch_in_storage(plan, batch)
        per_batch[batch.id] = Counter(calls)
        calls.clear()
    assert per_batch["b0"] == per_batch["b1"] == Counter({"ListObjectsV2": 1})
    # A batch completed by the sweep (no result: its chunks' lengths unknown) takes them from the
    # listing too, not from a HEAD per chunk.
    calls = count_requests(ex.storage)
    empty = BatchResult(batch_id="b1", chunks=(), skipped=0, synth_seconds=0.0, audio_seconds=0.0)
    rebuilt = ex._rebuild(plan, plan.batches[1], empty, set())
    assert [c.samples for c in rebuilt.chunks] == [800] * 60 and rebuilt.audio_seconds == 6.0
    assert not calls


def test_many_batches_share_one_listing_and_a_missing_chunk_lists_again_once_per_poll(
    s3_server: S3Server, s3_bucket: str
) -> None:
    ids = [f"{i % 256:02x}{i:04d}" for i in range(40)]
    plan = _plan(ids, [10, 10, 10, 10])
    base = s3(s3_server, s3_bucket)
    st = S3Storage(base.client, s3_bucket, endpoint_url=s3_server.url, page_size=7)  # 7 keys a page
    wav = wav_bytes(b"\x01\x02" * 800, 8000)
    for cid in ids[:30]:
        st.put_bytes(chunk_key("big", cid), wav)
    st.put_bytes(chunk_key("big", ids[35]), wav[:40])  # shorter than a WAV header: never done
    clock = _Clock()
    ex = DistributedExecutor(app=None, settings=DistributedSettings(), storage=st, clock=clock)
    calls = count_requests(st)
    assert [ex._batch_in_storage(plan, b) for b in plan.batches] == [True, True, True, False]
    assert calls == Counter({"ListObjectsV2": 5})  # one listing of 31 keys, 7 a page, for 4 batches
    calls.clear()
    assert not ex._batch_in_storage(plan, plan.batches[3])  # within the same poll: no new listing
    assert not calls
    for cid in ids[30:]:
        st.put_bytes(chunk_key("big", cid), wav)  # the last batch finishes (the short blob replaced)
    calls.clear()
    clock.now += ex.timing.poll
    assert ex._batch_in_storage(plan, plan.batches[3])
    assert all(ex._batch_in_storage(plan, b) for b in plan.batches)
    assert calls == Counter({"ListObjectsV2": 6})  # 40 keys: one listing, and only one


def test_listed_sizes_are_trusted_and_the_final_done_check_still_reads_headers(
    s3_server: S3Server, s3_bucket: str
) -> None:
    """A blob of a WAV's size with a damaged header passes the batch check (sizes only) but not the
    pipeline's final done-check (headers), which ends the run with "rerun to resume" before assembly."""
    ids = ["aa0001", "bb0002"]
    plan = _plan(ids, [2])
    st = s3(s3_server, s3_bucket)
    wav = wav_bytes(b"\x01\x02" * 800, 8000)
    st.put_bytes(chunk_key("big", ids[0]), wav)
    st.put_bytes(chunk_key("big", ids[1]), b"\0" * len(wav))
    ex = DistributedExecutor(app=None, settings=DistributedSettings(), storage=st, clock=_Clock())
    assert ex._batch_in_storage(plan, plan.batches[0])
    assert stored_chunk_sizes(st, plan) == {ids[0]: len(wav)}


# -- servers that conflict or do not implement conditional writes ----------------------------------


class _Proxy(ForwardingProxy):
    """``refuse`` answers some conditional PUTs itself."""

    refuse: ClassVar[dict[str, Any]] = {}  # {"status": 409|501, "code": ..., "times": n}; n is counted down

    def intercept(self, body: bytes | None) -> bool:
        if self.command == "PUT" and self.headers.get("If-None-Match") == "*" and self.refuse["times"] > 0:
            self.refuse["times"] -= 1
            self.answer_error(self.refuse["status"], self.refuse["code"], "refused")
            return True
        return False


@contextlib.contextmanager
def _proxied(server: S3Server, bucket: str, refuse: dict[str, Any]) -> Iterator[S3Storage]:
    handler = type("Handler", (_Proxy,), {"upstream": server.url, "refuse": refuse})
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield open_s3_storage(
            bucket,
            endpoint_url=f"http://127.0.0.1:{proxy.server_address[1]}",
            region=server.region,
            access_key=server.access_key,
            secret_key=server.secret_key,
            session=server.session,
        )
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_a_conflicting_conditional_write_is_tried_again(s3_server: S3Server, s3_bucket: str) -> None:
    """409 ConditionalRequestConflict (AWS: another conditional write of the key is in flight, and
    may yet fail): tried again, and this writer wins once the other has not stored anything."""
    refuse = {"status": 409, "code": "ConditionalRequestConflict", "times": 2}
    with _proxied(s3_server, s3_bucket, refuse) as st:
        assert st.put_bytes_if_absent("s/k.wav", b"mine") is True
        assert refuse["times"] == 0
        assert st.get_bytes("s/k.wav") == b"mine"
        refuse["times"] = 100  # the conflict never clears: a transient error, the task is retried
        with pytest.raises(StorageError, match="still in progress"):
            st.put_bytes_if_absent("s/other.wav", b"x")
        assert not st.exists("s/other.wav")


def test_a_server_without_conditional_writes_falls_back_to_check_then_put(
    s3_server: S3Server, s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    refuse = {"status": 501, "code": "NotImplemented", "times": 100}
    with _proxied(s3_server, s3_bucket, refuse) as st:
        assert st.put_bytes_if_absent("s/k.wav", b"first") is True
        assert st.put_bytes_if_absent("s/k.wav", b"second") is False
        assert st.get_bytes("s/k.wav") == b"first"
        assert refuse["times"] == 99  # asked once; later writes go straight to the fallback
    assert "does not implement conditional writes" in caplog.text
