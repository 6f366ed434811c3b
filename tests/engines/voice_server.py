"""A Piper voice repository on 127.0.0.1 (http.server in a thread): the public repository's layout
(``voices.json`` + ``<lang>/<lang_REGION>/<name>/<quality>/<voice>.onnx[.json]``), HTTP Range, and
connections dropped mid-file on demand."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ebook2audio.engines.piper import bundled_voice


@dataclass
class Repository:
    files: dict[str, bytes] = field(default_factory=dict)  # path (no leading /) -> bytes
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # extra response headers per path
    drops: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (times, bytes sent first)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Range header or "")
    url: str = ""

    def add_voice(self, name: str, model: bytes, *, catalogue: bool = True, md5: str = "", size: int = 0) -> str:
        """Serve voice ``name`` (a fake model, the bundled voice's config relabelled); its model path."""
        family_region, voice, quality = name.split("-")
        family = family_region.split("_")[0]
        folder = f"{family}/{family_region}/{voice}/{quality}"
        config = json.loads(bundled_voice().config_path.read_text(encoding="utf-8"))
        config["language"] = {"code": family_region, "family": family}
        config["espeak"] = {"voice": family}
        config["audio"]["quality"] = quality
        config_bytes = json.dumps(config).encode()
        model_path, config_path = f"{folder}/{name}.onnx", f"{folder}/{name}.onnx.json"
        self.files[model_path] = model
        self.files[config_path] = config_bytes
        if catalogue:
            listing = json.loads(self.files.get("voices.json", b"{}"))
            listing[name] = {
                "key": name,
                "quality": quality,
                "files": {
                    model_path: {
                        "size_bytes": size or len(model),
                        "md5_digest": md5 or hashlib.md5(model).hexdigest(),
                    },
                    config_path: {
                        "size_bytes": len(config_bytes),
                        "md5_digest": hashlib.md5(config_bytes).hexdigest(),
                    },
                    f"{folder}/MODEL_CARD": {"size_bytes": 1, "md5_digest": "0" * 32},
                },
            }
            self.files["voices.json"] = json.dumps(listing).encode()
        return model_path


def _handler(repo: Repository) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?")[0].lstrip("/")
            prefix = "piper-voices/"
            path = path[len(prefix) :] if path.startswith(prefix) else path
            ranged = self.headers.get("Range", "")
            repo.requests.append((path, ranged))
            data = repo.files.get(path)
            if data is None:
                self.send_error(404)
                return
            start = int(ranged.removeprefix("bytes=").split("-")[0]) if ranged else 0
            body = data[start:]
            self.send_response(206 if ranged else 200)
            if ranged:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            for key, value in repo.headers.get(path, {}).items():
                self.send_header(key, value)
            self.end_headers()
            times, first = repo.drops.get(path, (0, 0))
            if times > 0:
                repo.drops[path] = (times - 1, first)
                self.wfile.write(body[:first])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextmanager
def serve(repo: Repository) -> Iterator[Repository]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(repo))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    repo.url = f"http://127.0.0.1:{server.server_address[1]}/piper-voices"
    try:
        yield repo
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
