"""The web app's library mode against the real `ebook2audio serve`: a folder of the input folder is
scanned, its new books queued and converted into Audiobookshelf's layout, the same tree
`ebook2audio library` makes (read back with ffprobe)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import run_cli
from tests.library.books import epub, jpeg, txt

from .helpers import running_server, sim_env

pytestmark = pytest.mark.slow
SIM = {"engine": "sim", "language": "en"}


def ffprobe_chapters(path: Path) -> list[tuple[str, float]]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_chapters", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [(c["tags"]["title"], float(c["start_time"])) for c in json.loads(out)["chapters"]]


def one(word: str, n: int = 1) -> list[tuple[str, str]]:
    return [(f"Chapter {i + 1}", f"The {word} waits. It is calm.") for i in range(n)]


def test_library_from_the_web_app(tmp_path: Path) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    lib = inp / "shelf"
    red = jpeg(tmp_path / "red.jpg")
    epub(lib / "one.epub", "First Light", "Ann Author", one("lamp"), cover=red)
    # One book converted earlier by the CLI's library mode, with the settings the page will use.
    r = run_cli(["library", str(lib), "-o", str(out), "--engine", "sim", "--language", "en", "-w", "1"],
                tmp_path, **sim_env())  # fmt: skip
    assert r.returncode == 0, r.stderr
    txt(lib / "notes" / "two.txt", "Second Wind", "Bob Writer", one("kite", 2))
    epub(lib / "three.epub", "Third Door", "Ann Author", one("door"), cover=red)
    (inp / "other").mkdir()

    serve = ("--input-dir", str(inp), "--output-dir", str(out))
    with running_server(tmp_path, *serve, **sim_env()) as server, server.client() as c:
        folders = c.get("/api/library/folders").json()["folders"]
        assert {f["path"] for f in folders} >= {"", "shelf", "shelf/notes", "other"}
        for bad in ("..", "../..", "shelf/../..", str(tmp_path)):
            r = c.post("/api/library", json={"path": bad, **SIM})
            assert r.status_code == 403 and "outside the input folder" in r.json()["error"], (bad, r.text)
        assert c.post("/api/library", json={"path": "nope", **SIM}).status_code == 404

        scan = c.post("/api/library/scan", json={"path": "shelf", **SIM}).json()
        assert {b["source"]: b["state"] for b in scan["books"]} == {
            "one.epub": "converted", "notes/two.txt": "new", "three.epub": "new",
        }  # fmt: skip
        assert c.get("/api/jobs").json()["jobs"] == []  # a scan queues nothing

        queued = c.post("/api/library", json={"path": "shelf", "watch": True, **SIM}).json()
        assert sorted(j["title"] for j in queued["queued"]) == ["Second Wind", "Third Door"]
        assert queued["skipped"] == [
            {"source": "one.epub", "title": "First Light", "reason": "already converted"}
        ]
        assert queued["watch"]["path"] == "shelf"
        jobs = [server.wait_job(c, j["id"]) for j in queued["queued"]]
        assert [j["state"] for j in jobs] == ["done", "done"], jobs
        third = next(j for j in jobs if j["title"] == "Third Door")
        assert third["outputs"][0] == "Ann Author/Third Door/Third Door.m4b"
        got = c.get(f"/api/jobs/{third['id']}/files/{third['outputs'][0]}")
        assert got.status_code == 200 and got.content == (out / third["outputs"][0]).read_bytes()
        assert c.get(f"/api/jobs/{third['id']}/files/..%2F..%2Fetc%2Fpasswd").status_code == 404
        assert third["report"] is None and third["report_html"] == ""

        # Everything converted now: a second request queues nothing.
        again = c.post("/api/library", json={"path": "shelf", **SIM}).json()
        assert again["queued"] == [] and len(again["skipped"]) == 3
        assert {s["reason"] for s in again["skipped"]} == {"already converted"}

    # Restarted with a short interval: the watched folder is still watched, a book added is queued.
    txt(lib / "four.txt", "Fourth Step", "Cy Poet", one("step"))
    with (
        running_server(tmp_path, *serve, "--library-interval", "1", **sim_env()) as server,
        server.client() as c,
    ):
        watches = c.get("/api/library/watches").json()
        assert [w["path"] for w in watches["watches"]] == ["shelf"] and watches["interval"] == 1
        deadline = time.monotonic() + 60
        while not (jobs := [j for j in c.get("/api/jobs").json()["jobs"] if j["title"] == "Fourth Step"]):
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.3)
        assert server.wait_job(c, jobs[0]["id"])["outputs"][0] == "Cy Poet/Fourth Step/Fourth Step.m4b"
        time.sleep(1.5)  # another scan or two: nothing queued twice
        assert len([j for j in c.get("/api/jobs").json()["jobs"] if j["title"] == "Fourth Step"]) == 1
        assert c.delete(f"/api/library/watches/{watches['watches'][0]['id']}").status_code == 200
        assert c.get("/api/library/watches").json()["watches"] == []

    # The tree is Audiobookshelf's layout, exactly as `ebook2audio library` writes it.
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == [
        f"{a}/{t}/{n}"
        for a, t in (("Ann Author", "First Light"), ("Ann Author", "Third Door"), ("Bob Writer", "Second Wind"),
                     ("Cy Poet", "Fourth Step"))
        for n in sorted([f"{t}.m4b", f"{t}.srt", f"{t}.vtt", "metadata.json"] + (["cover.jpg"] if a == "Ann Author" else []))
    ]  # fmt: skip
    for folder, title, author, n in (("Ann Author/Third Door", "Third Door", "Ann Author", 1),
                                     ("Bob Writer/Second Wind", "Second Wind", "Bob Writer", 2)):  # fmt: skip
        meta = json.loads((out / folder / "metadata.json").read_text(encoding="utf-8"))
        assert meta["title"] == title and meta["authors"] == [author] and meta["narrators"] == ["sim"]
        marks = ffprobe_chapters(out / folder / f"{title}.m4b")
        assert (
            [m["title"] for m in meta["chapters"]]
            == [t for t, _ in marks]
            == [f"Chapter {i + 1}" for i in range(n)]
        )
        assert [m["start"] for m in meta["chapters"]] == pytest.approx([s for _, s in marks], abs=0.01)
    assert (out / "Ann Author/Third Door/cover.jpg").read_bytes() == red
    # The CLI agrees: nothing left to convert, same names and places.
    r = run_cli(["library", str(lib), "-o", str(out), "--engine", "sim", "--language", "en", "--dry-run"],
                tmp_path, **sim_env())  # fmt: skip
    assert r.returncode == 0 and r.stdout == "", r.stderr
    assert "0 to convert, 4 already converted" in r.stderr
