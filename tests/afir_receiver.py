"""A local stand-in for a national access point's push endpoint: records
every POST (arrival time, Authorization header, JSON body) and answers 204,
or ``fail_first`` times 503 first. Standard library only, in a background
thread. Used by the AFIR tests and bench/afir_latency.py."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class AfirReceiver:
    url: str = ""
    fail_first: int = 0
    # (time.time() at arrival, Authorization header, body)
    received: list[tuple[float, str, Any]] = field(default_factory=list)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[Any]:
        with self.lock:
            return [body for _, _, body in self.received]


@contextmanager
def afir_receiver(fail_first: int = 0) -> Iterator[AfirReceiver]:
    receiver = AfirReceiver(fail_first=fail_first)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with receiver.lock:
                if receiver.refused < receiver.fail_first:
                    receiver.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.received.append(
                    (time.time(), self.headers.get("Authorization", ""), json.loads(raw))
                )
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/afir/push"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
