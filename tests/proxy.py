"""A TCP proxy for tests that stall a real service (MariaDB, Redis,
MongoDB, Kafka) without stopping the shared one: connections stay open and
nothing is answered, as with a SIGSTOPped server."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress


class Stall:
    """A TCP proxy to ``target`` that forwards until ``stall()``: from then
    on it reads what either side sends and passes nothing on (the sockets
    stay open), until ``resume()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._flowing = threading.Event()
        self._flowing.set()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._flowing.set()
        self._server.close()
        with self._lock:
            for c in self._conns:
                with suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                with suppress(OSError):
                    c.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                # Held while stalled; a client that gave up has closed its
                # end by then, and the held bytes go nowhere.
                self._flowing.wait()
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
