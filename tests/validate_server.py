"""A fake credential provider on loopback for the ``--validate`` tests (no network is ever used).

``plan[token] = action`` decides the answer to any request that carries ``token`` in a header (an AWS
request is recognised by its access key id in ``Authorization``). Actions: an int status; ``(status, body)``;
``("sleep", seconds)``; ``("redirect", url)``; ``"429-once"`` (429 with ``Retry-After: 0``, then 200);
``"429"`` (always). Every request is recorded (method, Host header, path, headers, body).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    host: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeProvider:
    port: int = 0
    plan: dict[str, Any] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    inflight: int = 0
    max_inflight: int = 0
    seen: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def override(self, *hosts: str) -> str:
        return ",".join(f"{h}={self.base}" for h in hosts)


def _handler(fp: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:  # quiet
            pass

        def _answer(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            headers = {k: v for k, v in self.headers.items()}
            with fp.lock:
                fp.requests.append(Recorded(self.command, self.headers.get("Host", ""), self.path, headers, body))
                fp.inflight += 1
                fp.max_inflight = max(fp.max_inflight, fp.inflight)
            try:
                self._act(headers)
            finally:
                with fp.lock:
                    fp.inflight -= 1

        def _act(self, headers: dict[str, str]) -> None:
            text = " ".join(headers.values())
            import base64

            for v in headers.values():  # HTTP basic auth: decode, so plans can name the bare key
                if v.startswith("Basic "):
                    text += " " + base64.b64decode(v[6:]).decode("latin-1")
            token = next((t for t in fp.plan if t in text), None)
            action: Any = fp.plan.get(token, 404) if token else 404
            with fp.lock:
                count = fp.seen[token or ""] = fp.seen.get(token or "", 0) + 1
            if action == "429-once":
                action = (429, b"{}", {"Retry-After": "0"}) if count == 1 else 200
            elif action == "429":
                action = (429, b"{}", {"Retry-After": "0"})
            if isinstance(action, tuple) and action[0] == "sleep":
                time.sleep(action[1])
                action = 200
            if isinstance(action, tuple) and action[0] == "redirect":
                action = (302, b"", {"Location": action[1]})
            if isinstance(action, int):
                action = (action, b'{"name": "someone"}', {})
            if len(action) == 2:
                action = (*action, {})
            status, body, extra = action
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    return H


@contextmanager
def fake_provider() -> Iterator[FakeProvider]:
    fp = FakeProvider()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fp))
    srv.daemon_threads = True
    fp.port = srv.server_address[1]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield fp
    finally:
        srv.shutdown()
        srv.server_close()
