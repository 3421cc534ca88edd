"""A whole platform of its own for the fault suite: services and processes.

The fault suite kills and stalls Kafka, MongoDB and MariaDB, so it cannot
share the services of ``make up`` (or those the other tiers use). It starts
its own with the same script and the same commands ``make up`` runs
(``deploy/local/infra.py up --with-platform``), in a scratch data folder
(``OCPI_HUB_INFRA_DATA``) on free ports: every platform process under its
keeper (docs/adr/0030), as in production. Downloads come from the project's
cache (``OCPI_HUB_INFRA_CACHE``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from ocpi_hub.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "deploy" / "local" / "infra.py"
OCPI_HUB = str(Path(sys.executable).with_name("ocpi-hub"))
SERVICES = ("kafka", "mongo", "mariadb", "redis", "smtp")
PROCESSES = ("api", "processors", "projections", "push", "billing-worker", "gateway")
# Port settings of infra.py (PORT_SPECS) and of the platform, each given a free port.
PORT_VARIABLES = (
    "OCPI_HUB_KAFKA_PORT",
    "OCPI_HUB_KAFKA_CONTROLLER_PORT",
    "OCPI_HUB_MONGO_PORT",
    "OCPI_HUB_MYSQL_PORT",
    "OCPI_HUB_REDIS_PORT",
    "OCPI_HUB_SMTP_PORT",
    "OCPI_HUB_API_PORT",
    "OCPI_HUB_GATEWAY_PORT",
    "OCPI_HUB_FAUST_WEB_PORT",
)


def free_ports(n: int) -> list[int]:
    """n distinct ports free right now (held open together while chosen)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Stack:
    data: Path
    env: dict[str, str]

    @property
    def run_dir(self) -> Path:
        return self.data / "run"

    def log(self, name: str) -> Path:
        return self.data / "logs" / f"{name}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.env['OCPI_HUB_API_PORT']}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.env['OCPI_HUB_GATEWAY_PORT']}/ocpp"

    def service_env(self) -> dict[str, str]:
        """The environment with the stack's services.env (what its processes see)."""
        found = dict(self.env)
        for line in (self.run_dir / "services.env").read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, value = line.split("=", 1)
                found[key.strip()] = value.strip()
        return found

    def settings(self) -> Settings:
        """Where the stack's services are, for the test's own clients."""
        env = self.service_env()
        return Settings(
            _env_file=None,
            kafka_bootstrap=env["OCPI_HUB_KAFKA_BOOTSTRAP"],
            mongo_url=env["OCPI_HUB_MONGO_URL"],
            mysql_url=env["OCPI_HUB_MYSQL_URL"],
            redis_url=env["OCPI_HUB_REDIS_URL"],
        )

    def infra(self, *args: str, timeout: float = 300) -> None:
        """``infra.py`` on this stack; fails the test with its output when it fails."""
        done = subprocess.run(
            [sys.executable, str(INFRA), *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"infra.py {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``ocpi-hub`` against this stack."""
        return subprocess.run(
            [OCPI_HUB, *args],
            env=self.service_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def pid(self, name: str) -> int | None:
        try:
            return int((self.run_dir / f"{name}.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def signal(self, name: str, sig: signal.Signals) -> int:
        """Send ``sig`` to the process ``name`` (a service or a platform process)."""
        pid = self.pid(name)
        assert pid is not None, f"{name} has no pidfile in {self.run_dir}"
        os.kill(pid, sig)
        return pid

    def wait_replaced(self, name: str, old_pid: int, timeout: float = 60) -> float:
        """Seconds until ``name`` runs again under another pid (its keeper
        started it again)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            pid = self.pid(name)
            if pid is not None and pid != old_pid and Path(f"/proc/{pid}").exists():
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(
            f"{name} was not started again within {timeout}s:\n{tail(self.log(name))}"
        )

    def api_ready(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/readyz", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False


def stack_env(data: Path) -> dict[str, str]:
    # Nothing of the outer environment's platform settings (the tests'
    # namespace, a developer's ports) leaks into this stack.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCPI_HUB_")}
    env.update(zip(PORT_VARIABLES, map(str, free_ports(len(PORT_VARIABLES))), strict=True))
    env.update(
        {
            "OCPI_HUB_INFRA_DATA": str(data),
            "OCPI_HUB_INFRA_CACHE": str(ROOT / "data" / "cache"),
            "OCPI_HUB_FAUST_DATADIR": str(data / "faust" / "{conf.name}"),
            "OCPI_HUB_LOG_FORMAT": "json",
        }
    )
    return env


@contextmanager
def running_stack(data: Path) -> Iterator[Stack]:
    """Services and platform of a scratch data folder, until the block ends."""
    stack = Stack(data=data, env=stack_env(data))
    try:
        stack.infra("up", "--with-platform", timeout=600)
        yield stack
    finally:
        try:
            stack.infra("down", timeout=300)
        except AssertionError as exc:
            sys.stderr.write(f"{exc}\n")
        # The last run's logs, where pytest's rotation of temporary folders
        # does not reach them.
        kept = ROOT / "data" / "chaos" / "logs"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(data / "logs", kept, dirs_exist_ok=True)
