"""A webhook endpoint that only records: the sandbox signs and sends, the harness replays later.

Capturing first lets a suite deliver the sandbox's own signed webhooks to the ingest in the order
and multiplicity it chooses (shuffled, 3 copies at once), which the sandbox's knobs only approximate.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from launch.processes import free_port


@dataclass
class Captured:
    webhooks: list[tuple[str, bytes]] = field(default_factory=list)  # (webhook-id, signed body)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, webhook_id: str, body: bytes) -> None:
        with self.lock:
            self.webhooks.append((webhook_id, body))

    def count(self) -> int:
        with self.lock:
            return len(self.webhooks)

    def bodies(self) -> list[bytes]:
        """Every body received so far, in arrival order."""
        with self.lock:
            return [body for _, body in self.webhooks]

    def clear(self) -> None:
        with self.lock:
            self.webhooks.clear()


def _handler(captured: Captured) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            captured.add(self.headers.get("webhook-id", ""), body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            """Silent: the bodies are signed tokens and must not reach any log."""

    return Handler


@contextmanager
def capturing() -> Iterator[tuple[str, Captured]]:
    captured = Captured()
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(captured))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/hook", captured
    finally:
        server.shutdown()
        server.server_close()
