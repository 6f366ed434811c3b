"""S3Storage against a real S3-compatible server (moto in server mode on localhost)."""

from __future__ import annotations

import http.server
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ebook2audio.audio.pcm import wav_bytes
from ebook2audio.errors import ConfigError, InvalidKeyError, StorageError, UserError
from ebook2audio.jobstore import chunk_done, chunk_key, done_chunks, load_plan, save_plan
from ebook2audio.model import Batch, Chunk, Metadata, Plan, PlannedChapter, VoiceSpec
from ebook2audio.storage import LocalStorage, S3Storage, Storage, open_storage
from ebook2audio.storage.s3 import mask_endpoint, open_s3_storage
from ebook2audio.tasks import synthesize_batch
from tests.fakes import FakeEngine
from tests.s3_server import ForwardingProxy, S3Server


def s3(server: S3Server, bucket: str, prefix: str = "", **kw: object) -> S3Storage:
    return open_s3_storage(
        bucket,
        endpoint_url=server.url,
        region=server.region,
        access_key=server.access_key,
        secret_key=server.secret_key,
        prefix=prefix,
        session=server.session,
        **kw,  # type: ignore[arg-type]
    )


def test_roundtrip_with_prefix(s3_server: S3Server, s3_bucket: str) -> None:
    st = s3(s3_server, s3_bucket, prefix="/jobs/")
    assert isinstance(st, Storage)
    st.put_bytes("job/chunks/ab/abc.wav", b"hello world")
    st.put_bytes("job/plan.json", b"{}")
    st.put_bytes("other/x", b"x")
    assert st.get_bytes("job/chunks/ab/abc.wav") == b"hello world"
    assert st.get_head("job/chunks/ab/abc.wav", 5) == b"hello"
    assert st.get_head("job/plan.json", 44) == b"{}"  # shorter than asked: the whole blob
    assert st.size("job/plan.json") == 2
    assert st.size("job/missing") is None
    assert st.exists("job/plan.json") and not st.exists("job/missing")
    assert sorted(st.list("job/")) == ["job/chunks/ab/abc.wav", "job/plan.json"]
    assert list(st.list("job/chunks/")) == ["job/chunks/ab/abc.wav"]
    # The prefix is real: the objects live under jobs/ in the bucket.
    raw = s3_server.client().list_objects_v2(Bucket=s3_bucket)
    assert sorted(o["Key"] for o in raw["Contents"]) == [
        "jobs/job/chunks/ab/abc.wav",
        "jobs/job/plan.json",
        "jobs/other/x",
    ]
    st.delete("job/plan.json")
    st.delete("job/plan.json")  # deleting twice is fine
    assert not st.exists("job/plan.json")
    st.delete_prefix("job/")
    assert list(st.list("job/")) == []
    assert st.get_bytes("other/x") == b"x"


def test_missing_keys_are_file_not_found(s3_server: S3Server, s3_bucket: str) -> None:
    st = s3(s3_server, s3_bucket)
    with pytest.raises(FileNotFoundError):
        st.get_bytes("nope")
    with pytest.raises(FileNotFoundError):
        st.get_head("nope", 44)
    with pytest.raises(FileNotFoundError), st.local_path("nope"):
        pass


def test_empty_object(s3_server: S3Server, s3_bucket: str) -> None:
    st = s3(s3_server, s3_bucket)
    st.put_bytes("empty", b"")
    assert st.size("empty") == 0
    assert st.get_bytes("empty") == b""
    assert st.get_head("empty", 44) == b""


@pytest.mark.parametrize("key", ["../evil", "/abs", "a/../../b", "", "."])
def test_keys_cannot_escape_the_prefix(s3_server: S3Server, s3_bucket: str, key: str) -> None:
    st = s3(s3_server, s3_bucket, prefix="p")
    with pytest.raises(InvalidKeyError):
        st.put_bytes(key, b"x")
    assert "Contents" not in s3_server.client().list_objects_v2(Bucket=s3_bucket)


def test_list_and_delete_prefix_across_pages(s3_server: S3Server, s3_bucket: str) -> None:
    base = s3(s3_server, s3_bucket, prefix="pre")
    st = S3Storage(base.client, s3_bucket, prefix="pre", endpoint_url=s3_server.url, page_size=7)
    keys = [f"s/chunks/{i:05d}.wav" for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: st.put_bytes(k, b"1"), keys))
    st.put_bytes("t/keep", b"k")
    assert sorted(st.list("s/")) == keys  # 6 ListObjectsV2 pages
    st.delete_prefix("s/")  # 6 DeleteObjects batches
    assert list(st.list("s/")) == []
    assert list(st.list("")) == ["t/keep"]


def test_delete_prefix_refuses_the_whole_bucket(s3_server: S3Server, s3_bucket: str) -> None:
    st = s3(s3_server, s3_bucket)
    st.put_bytes("a", b"1")
    with pytest.raises(InvalidKeyError):
        st.delete_prefix("")
    assert st.exists("a")


def test_local_path_is_a_temporary_download(s3_server: S3Server, s3_bucket: str) -> None:
    st = s3(s3_server, s3_bucket)
    data = bytes(range(256)) * 5000  # bigger than one copy block
    st.put_bytes("j/cover", data)
    with st.local_path("j/cover") as path:
        assert path.read_bytes() == data
    assert not path.exists()


def test_overwrite_is_seen_whole_by_concurrent_readers(s3_server: S3Server, s3_bucket: str) -> None:
    st = s3(s3_server, s3_bucket)
    a, b = b"a" * 600_000, b"b" * 300_000
    st.put_bytes("k", a)
    seen: set[bytes] = set()
    stop = threading.Event()
    bad: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            got = st.get_bytes("k")
            if got not in (a, b):
                bad.append(len(got))
            seen.add(got[:1])

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(30):
            st.put_bytes("k", b if i % 2 == 0 else a)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert bad == []
    assert seen == {b"a", b"b"}


def test_an_interrupted_upload_leaves_no_object_and_keeps_the_old_one(
    s3_server: S3Server, s3_bucket: str
) -> None:
    """A PUT cut off half-way (a worker killed mid-upload) must not leave a partial object."""
    st = s3(s3_server, s3_bucket)
    old = b"o" * 1000
    st.put_bytes("j/old.wav", old)
    for key in ("j/new.wav", "j/old.wav"):
        body = b"x" * 100_000
        with socket.create_connection(("127.0.0.1", s3_server.port)) as sock:
            head = (
                f"PUT /{s3_bucket}/{key} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body[:50_000])
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(10)
            while sock.recv(4096):
                pass
    assert st.size("j/new.wav") is None
    assert st.get_bytes("j/old.wav") == old


def _wav(seconds: float = 0.2, rate: int = 8000) -> bytes:
    return wav_bytes(b"\x01\x02" * int(seconds * rate), rate)


def test_chunk_done_needs_a_whole_wav(s3_server: S3Server, s3_bucket: str) -> None:
    st = s3(s3_server, s3_bucket)
    whole = _wav()
    st.put_bytes(chunk_key("sess", "aa11"), whole)
    st.put_bytes(chunk_key("sess", "bb22"), whole[: len(whole) // 2])  # truncated
    st.put_bytes(chunk_key("sess", "cc33"), whole[:20])  # shorter than a header
    st.put_bytes(chunk_key("sess", "dd44"), b"not a wav at all" * 10)
    assert chunk_done(st, "sess", "aa11")
    assert not chunk_done(st, "sess", "bb22")
    assert not chunk_done(st, "sess", "cc33")
    assert not chunk_done(st, "sess", "dd44")
    assert not chunk_done(st, "sess", "ee55")  # missing


def test_synthesize_batch_resumes_from_s3(s3_server: S3Server, s3_bucket: str) -> None:
    """The unit of work writes to S3, and a second delivery skips what is already whole."""
    st = s3(s3_server, s3_bucket, prefix="cluster")
    chunks = [
        Chunk(
            id=f"{i:02d}chunk",
            chapter=0,
            index=i,
            text=f"Sentence number {i}.",
            display=f"Sentence number {i}.",
            pause_after_ms=300,
        )
        for i in range(4)
    ]
    # One chunk was cut off by a dying worker: it must be redone, not trusted.
    st.put_bytes(chunk_key("s1", chunks[2].id), _wav()[:100])
    first = synthesize_batch(st, "s1", "b0", chunks, FakeEngine())
    assert len(first.chunks) == 4 and first.skipped == 0
    engine = FakeEngine()
    again = synthesize_batch(st, "s1", "b0", chunks, engine)
    assert again.skipped == 4 and engine.calls == []
    for c in chunks:
        assert chunk_done(st, "s1", c.id)


def test_missing_bucket_is_one_clear_line(s3_server: S3Server) -> None:
    with pytest.raises(UserError) as err:
        s3(s3_server, "no-such-bucket-here")
    msg = str(err.value)
    assert "no-such-bucket-here" in msg and "does not exist" in msg and "\n" not in msg
    assert s3_server.secret_key not in msg


def test_missing_bucket_found_later_is_a_user_error_too(s3_server: S3Server) -> None:
    st = s3(s3_server, "not-there-either", check=False)
    with pytest.raises(UserError, match="does not exist"):
        st.put_bytes("a", b"1")
    with pytest.raises(UserError, match="does not exist"):
        list(st.list(""))


def test_unreachable_endpoint_is_transient(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    st = open_s3_storage(
        "bkt",
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key="k",
        secret_key="s",
        region="us-east-1",
        max_attempts=2,
        check=False,
    )
    t0 = time.monotonic()
    with pytest.raises(StorageError) as err:
        st.put_bytes("a", b"1")
    assert not isinstance(err.value, UserError)
    assert time.monotonic() - t0 < 20
    assert st.client.meta.config.retries == {"total_max_attempts": 2, "mode": "standard"}


def test_describe_masks_secrets(s3_server: S3Server, s3_bucket: str) -> None:
    st = s3(s3_server, s3_bucket, prefix="p")
    text = st.describe() + repr(st)
    assert s3_bucket in text and s3_server.url in text
    assert s3_server.secret_key not in text and s3_server.access_key not in text
    assert mask_endpoint("https://user:pa55@minio.lan:9000/x") == "https://***@minio.lan:9000/x"
    assert "pa55" not in mask_endpoint("https://user:pa55@minio.lan:9000/x")
    assert mask_endpoint(None) == "AWS"


def test_credentials_must_come_in_pairs() -> None:
    with pytest.raises(UserError, match="both"):
        open_s3_storage("b", access_key="k", check=False)


def test_open_storage_factory(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> None:
    local = open_storage("local", str(tmp_path / "a"))
    nfs = open_storage("NFS", str(tmp_path / "b"))
    assert isinstance(local, LocalStorage) and isinstance(nfs, LocalStorage)
    assert nfs.root == tmp_path / "b"
    remote = open_storage(
        "s3",
        "/mnt/shared",
        s3_endpoint_url=s3_server.url,
        bucket=s3_bucket,
        region=s3_server.region,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        prefix="x",
    )
    assert isinstance(remote, S3Storage) and remote.prefix == "x/"
    remote.put_bytes("k", b"v")
    assert s3_server.client().get_object(Bucket=s3_bucket, Key="x/k")["Body"].read() == b"v"
    with pytest.raises(ConfigError, match="unknown storage type"):
        open_storage("ftp", "/x")
    with pytest.raises(UserError, match="bucket"):
        open_storage("s3", "", s3_endpoint_url=s3_server.url)


def test_plan_roundtrip_and_done_set_on_s3(s3_server: S3Server, s3_bucket: str) -> None:
    chunks = tuple(
        Chunk(
            id=f"{i:02d}abc", chapter=0, index=i, text=f"Satz {i}.", display=f"Satz {i}.", pause_after_ms=300
        )
        for i in range(3)
    )
    ids = tuple(c.id for c in chunks)
    plan = Plan(
        session="sess",
        voice=VoiceSpec(engine="fake", voice="fake", language="de"),
        sample_rate=8000,
        chapters=(PlannedChapter(index=0, title="Eins", chunk_ids=ids),),
        chunks=chunks,
        batches=(Batch(id="b0", chapter=0, chunk_ids=ids, chars=21),),
        metadata=Metadata(title="Titel", authors=("Autorin",), language="de"),
    )
    st = s3(s3_server, s3_bucket)
    save_plan(st, plan)
    assert load_plan(st, "sess") == plan
    st.put_bytes(chunk_key("sess", ids[0]), _wav())
    st.put_bytes(chunk_key("sess", ids[1]), _wav()[:-2])
    assert done_chunks(st, plan) == {ids[0]}


class _RefuseBulkDelete(ForwardingProxy):
    """Answers DeleteObjects like servers that want Content-MD5 do, and forwards every other request."""

    def intercept(self, body: bytes | None) -> bool:
        if self.command == "POST" and "delete" in urllib.parse.urlsplit(self.path).query:
            self.answer_error(400, "MissingContentMD5", "Missing required header for this request: Content-Md5.")
            return True
        return False


def test_delete_prefix_falls_back_when_bulk_delete_is_refused(s3_server: S3Server, s3_bucket: str) -> None:
    handler = type("Handler", (_RefuseBulkDelete,), {"upstream": s3_server.url})
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{proxy.server_address[1]}"
        st = open_s3_storage(
            s3_bucket,
            endpoint_url=url,
            region=s3_server.region,
            access_key=s3_server.access_key,
            secret_key=s3_server.secret_key,
            session=s3_server.session,
            max_attempts=1,
        )
        for i in range(5):
            st.put_bytes(f"s/chunks/{i}.wav", b"1")
        st.put_bytes("t/keep", b"k")
        assert st.get_bytes("t/keep") == b"k"  # the proxy forwards bodies whole
        with pytest.raises(Exception, match="MissingContentMD5"):  # the proxy really refuses
            st.client.delete_objects(Bucket=s3_bucket, Delete={"Objects": [{"Key": "t/keep"}]})
        st.delete_prefix("s/")
        assert list(st.list("")) == ["t/keep"]
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_no_credentials_anywhere_is_a_user_error(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(UserError, match=r"no S3 credentials.*AWS_ACCESS_KEY_ID"):
        open_s3_storage(s3_bucket, endpoint_url=s3_server.url, region=s3_server.region)


def test_done_chunks_lists_once_instead_of_a_request_per_chunk(s3_server: S3Server, s3_bucket: str) -> None:
    """On S3 the done-check lists the session's chunks (one request a page), then reads the header of
    each chunk found; it never asks for missing chunks one by one, and gives what chunk_done gives."""
    base = s3(s3_server, s3_bucket, prefix="cluster")
    st = S3Storage(base.client, s3_bucket, prefix="cluster", endpoint_url=s3_server.url, page_size=7)
    ids = [f"{i:02x}{i:04d}" for i in range(30)]
    plan = Plan(
        session="big",
        voice=VoiceSpec(engine="fake"),
        sample_rate=8000,
        chapters=(PlannedChapter(index=0, title="One", chunk_ids=tuple(ids)),),
        chunks=tuple(
            Chunk(id=i, chapter=0, index=k, text="x", display="x", pause_after_ms=0)
            for k, i in enumerate(ids)
        ),
        batches=(Batch(id="b", chapter=0, chunk_ids=tuple(ids), chars=30),),
        metadata=Metadata(title="T"),
    )
    whole = _wav()
    for i in ids[:12]:
        st.put_bytes(chunk_key("big", i), whole)
    st.put_bytes(chunk_key("big", ids[12]), whole[:-10])  # truncated
    st.put_bytes(chunk_key("other", ids[14]), whole)  # another session's audio does not count
    calls: dict[str, int] = {}

    def count(event_name: str, **_: object) -> None:
        op = event_name.rsplit(".", 1)[-1]
        calls[op] = calls.get(op, 0) + 1

    st.client.meta.events.register("before-call.s3", count)
    done = done_chunks(st, plan)
    assert done == set(ids[:12])
    assert calls.get("HeadObject", 0) == 0
    assert calls["ListObjectsV2"] == 2  # 13 objects under the session's prefix, 7 a page
    assert calls["GetObject"] == 13  # the header of each chunk found
    assert done == {i for i in ids if chunk_done(st, "big", i)}
