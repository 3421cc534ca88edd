"""The platform running as separate processes, driven over HTTP.

The session's platform is started from the same console commands ``make up``
uses (``ocpi-hub api|processors|projections``), in an isolated namespace
(topics, databases) so the tests never touch the live views of ``make up``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ocpi_hub.settings import Settings
from tests.conftest import fresh_namespace
from tests.services import Namespace, env_of

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
OCPI_HUB = str(Path(sys.executable).with_name("ocpi-hub"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Platform:
    base_url: str
    env: dict[str, str]
    namespace: Namespace
    logs: Path

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run another ``ocpi-hub`` command against this platform."""
        try:
            return subprocess.run(
                [OCPI_HUB, *args],
                env=self.env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            said = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
            tail = "\n".join(said.splitlines()[-40:])
            raise AssertionError(
                f"`ocpi-hub {' '.join(args)}` hung for {timeout}s:\n{tail}"
            ) from exc


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def running_platform(ns: Namespace, logs: Path, **overrides: object) -> Iterator[Platform]:
    """The three platform processes of one namespace, until the block ends."""
    port = free_port()
    settings = ns.settings.model_copy(
        update={"api_port": port, "faust_web_port": free_port(), "log_format": "json", **overrides}
    )
    env = {**os.environ, **env_of(settings)}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in ("api", "processors", "projections"):
            with (logs / f"{name}.log").open("wb") as out:
                processes[name] = subprocess.Popen(
                    [OCPI_HUB, name], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
                )
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            for name, proc in processes.items():
                if proc.poll() is not None:
                    pytest.fail(
                        f"platform process {name!r} exited with {proc.returncode}:\n"
                        + _tail(logs / f"{name}.log"),
                        pytrace=False,
                    )
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the API did not become ready:\n" + _tail(logs / "api.log"))
            time.sleep(0.3)
        yield Platform(base_url=base_url, env=env, namespace=ns, logs=logs)
    finally:
        for proc in processes.values():
            proc.terminate()
        for name, proc in processes.items():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.returncode not in (0, -15, 143):
                tail = _tail(logs / f"{name}.log")
                sys.stderr.write(f"{name} exited {proc.returncode}:\n{tail}\n")


@pytest.fixture(scope="session")
def platform(namespace: Namespace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Our platform (party ZZ-HUB by default)."""
    with running_platform(namespace, tmp_path_factory.mktemp("platform-logs")) as p:
        yield p


@pytest.fixture(scope="session")
def peer_platform(
    services: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """A second, independent instance of the platform acting as a roaming
    partner (party NL-PEE), in its own namespace and on its own port."""
    with (
        fresh_namespace(services) as ns,
        running_platform(
            ns,
            tmp_path_factory.mktemp("peer-logs"),
            party_country_code="NL",
            party_id="PEE",
            business_name="Peer platform",
        ) as p,
    ):
        yield p
