"""An independent OCPI implementation as our partner: extrawest-ocpi (PyPI),
wrapped by ``tests/peer/extrawest_app.py``, in a virtualenv of its own.

The virtualenv lives in ``data/cache/peer-venv`` and is built from the pinned
``tests/peer/requirements.txt`` (pip, through the project's pip cache
``data/cache/pip``) the first time, and again whenever that file or the
Python version changes; nothing goes into the project's venv (the library
needs FastAPI 0.101 and pydantic 1). A peer that cannot be installed or does
not start fails the tests, it never skips them.

Our platform runs as in the e2e tier (``running_platform``), in a fresh
namespace of its own.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocpi_hub.settings import Settings
from tests.conftest import fresh_namespace
from tests.e2e.conftest import (
    ROOT,
    Platform,
    _tail,
    free_port,
    platforms_stay_up,
    running_platform,
)

__all__ = ["platforms_stay_up"]  # the e2e tier's check that no process died

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
VENV = ROOT / "data" / "cache" / "peer-venv"
PIP_CACHE = ROOT / "data" / "cache" / "pip"
COUNTRY_CODE, PARTY_ID = "NL", "XWP"


def _stamp() -> str:
    """What the venv was built from: the pinned requirements and this Python."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def _run(*args: str | Path) -> None:
    env = {**os.environ, "PIP_CACHE_DIR": str(PIP_CACHE), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run(
        [str(a) for a in args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        pytest.fail(
            f"building the peer's virtualenv failed: {' '.join(map(str, args))}\n"
            + (done.stdout + done.stderr)[-4000:],
            pytrace=False,
        )


def peer_python() -> Path:
    """The peer venv's interpreter, (re)built when its stamp does not match."""
    python = VENV / "bin" / "python"
    stamp = VENV / "built-from.sha256"
    if python.exists() and stamp.exists() and stamp.read_text() == _stamp():
        return python
    shutil.rmtree(VENV, ignore_errors=True)
    # The base interpreter, not the project's venv: the peer shares nothing with it.
    _run(getattr(sys, "_base_executable", sys.executable), "-m", "venv", VENV)
    # Every package is pinned in the file, so no resolver surprises: --no-deps,
    # then pip check that the pins are a consistent set.
    _run(python, "-m", "pip", "install", "-q", "--no-deps", "-r", REQUIREMENTS)
    _run(python, "-m", "pip", "check")
    stamp.write_text(_stamp())
    return python


@dataclass
class Peer:
    """The running extrawest peer (party NL-XWP, CPO and eMSP)."""

    base_url: str
    token_a: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def versions_url(self) -> str:
        return f"{self.base_url}/ocpi/versions"

    def own(self, module: str, object_id: str, obj: dict[str, Any]) -> None:
        """Make ``obj`` one of the peer's own objects (served by its Senders)."""
        resp = httpx.put(f"{self.base_url}/peer/own/{module}/{object_id}", json=obj, timeout=10)
        assert resp.status_code == 200, resp.text

    def received(self, module: str) -> dict[str, Any]:
        """What its Receiver interface of ``module`` holds, by "CC/PID/ID"."""
        resp = httpx.get(f"{self.base_url}/peer/received/{module}", timeout=10)
        assert resp.status_code == 200, resp.text
        got: dict[str, Any] = resp.json()
        return got

    def partners(self) -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.base_url}/peer/partners", timeout=10)
        assert resp.status_code == 200, resp.text
        got: list[dict[str, Any]] = resp.json()
        return got

    def commands(self) -> dict[str, Any]:
        got: dict[str, Any] = httpx.get(f"{self.base_url}/peer/commands", timeout=10).json()
        return got


@pytest.fixture(scope="session")
def extrawest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    python = peer_python()
    port = free_port()
    token_a = secrets.token_urlsafe(24)
    log = tmp_path_factory.mktemp("extrawest") / "peer.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PEER_PORT": str(port),
        "PEER_TOKEN_A": token_a,
        # The library's own settings (py_ocpi.core.config), read at import.
        "OCPI_HOST": f"127.0.0.1:{port}",
        "PROTOCOL": "http",
        "COUNTRY_CODE": COUNTRY_CODE,
        "PARTY_ID": PARTY_ID,
        "ENVIRONMENT": "development",
        "COMMAND_AWAIT_TIME": "1",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(python), str(HERE / "extrawest_app.py")],
            env=env,
            cwd=HERE,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"the extrawest peer exited:\n{_tail(log)}", pytrace=False)
            try:
                if httpx.get(f"{base_url}/peer/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the extrawest peer did not start:\n{_tail(log)}", pytrace=False)
            time.sleep(0.2)
        yield Peer(base_url=base_url, token_a=token_a, process=process, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def platform(services: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Our platform (party ZZ-HUB), as the e2e tier runs it, in a namespace of its own."""
    with (
        fresh_namespace(services) as ns,
        running_platform(
            ns,
            tmp_path_factory.mktemp("platform-logs"),
            # A command no charger answers times out soon (our TIMEOUT result).
            command_timeout_s=6,
            command_deadline_scan_s=0.5,
        ) as p,
    ):
        yield p
