"""TCP proxies for tests that take a real service (MariaDB, Redis, MongoDB,
Kafka) away from a client without touching the shared server: ``Stall``
holds every byte with the connections open (a SIGSTOPped server), ``Gate``
refuses and cuts connections (a server that is down)."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress


class _Proxy:
    """Forwards 127.0.0.1:``port`` to ``target``, one thread per direction."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _admits(self) -> bool:
        return True

    def _forward(self) -> None:
        """Called before each chunk is passed on (may block)."""

    def _cut(self) -> None:
        # shutdown, not just close: a thread blocked in recv on it would go
        # on forwarding.
        with self._lock:
            for c in self._conns:
                with suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                with suppress(OSError):
                    c.close()
            self._conns.clear()

    def close(self) -> None:
        self._server.close()
        self._cut()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self._admits():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()  # the client sees a lost connection, and retries
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                self._forward()
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


class Stall(_Proxy):
    """Forwards until ``stall()``: from then on it reads what either side
    sends and passes nothing on (the sockets stay open), until ``resume()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._flowing = threading.Event()
        self._flowing.set()
        super().__init__(target)

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def _forward(self) -> None:
        # Held while stalled; a client that gave up has closed its end by
        # then, and the held bytes go nowhere.
        self._flowing.wait()

    def close(self) -> None:
        self._flowing.set()
        super().close()


class Gate(_Proxy):
    """Forwards while open; ``shut()`` refuses new connections and cuts the
    open ones, ``open()`` lets them through again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._open = threading.Event()
        super().__init__(target)

    def open(self) -> None:
        self._open.set()

    def shut(self) -> None:
        self._open.clear()
        self._cut()

    def _admits(self) -> bool:
        return self._open.is_set()
