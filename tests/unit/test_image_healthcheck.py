"""deploy/healthcheck.py, the image's HEALTHCHECK, against real sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.deploy_scripts import load_script

hc = load_script("deploy/healthcheck.py", "deploy_healthcheck")


@contextmanager
def api_answering(status: int) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["/usr/bin/tini", "--", "ocpi-hub", "api"], "api"),
        (["/sbin/docker-init", "--", "tini", "--", "ocpi-hub", "processors"], "processors"),
        (["/opt/venv/bin/ocpi-hub", "api", "--workers", "2"], "api"),
        (["python", "-m", "something"], None),
        (["ocpi-hub"], None),
    ],
)
def test_the_process_is_read_from_the_command_line(argv: list[str], command: str | None) -> None:
    assert hc.command_of(argv) == command


def test_api_is_healthy_only_when_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    with api_answering(200) as port:
        monkeypatch.setenv("OCPI_HUB_API_PORT", str(port))
        assert hc.main(["api"]) == 0
    with api_answering(503) as port:
        monkeypatch.setenv("OCPI_HUB_API_PORT", str(port))
        assert hc.main(["api"]) == 1
    monkeypatch.setenv("OCPI_HUB_API_PORT", str(closed_port()))
    assert hc.main(["api"]) == 1


def test_gateway_is_healthy_while_its_port_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        monkeypatch.setenv("OCPI_HUB_GATEWAY_PORT", str(listener.getsockname()[1]))
        assert hc.main(["gateway"]) == 0
    monkeypatch.setenv("OCPI_HUB_GATEWAY_PORT", str(closed_port()))
    assert hc.main(["gateway"]) == 1


@pytest.mark.parametrize("command", ["processors", "projections", "push"])
def test_processes_without_a_port_are_healthy_while_running(command: str) -> None:
    assert hc.probe_for(command, {}) is None
    assert hc.main([command]) == 0
