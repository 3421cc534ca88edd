"""The platform running as separate processes, driven over HTTP.

The session's platform is started from the same console commands ``make up``
uses (``ocpi-hub api|processors|projections``), in an isolated namespace
(topics, databases) so the tests never touch the live views of ``make up``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from ocpi_hub.bootstrap import opened
from ocpi_hub.secrets import TokenVault
from ocpi_hub.settings import Settings
from producers import partners
from producers.decision_store import RedisDecisionStore
from producers.operators import API_KEYS_SLICE
from tests.conftest import fresh_namespace
from tests.ops_admin import issue_key
from tests.services import Namespace, env_of

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
OCPI_HUB = str(Path(sys.executable).with_name("ocpi-hub"))
PROCESSES = ("api", "processors", "projections", "push", "gateway")


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
    processes: dict[str, subprocess.Popen[bytes]]
    # ws://.../ocpp: chargers connect to {gateway_url}/{charge_point_id}.
    gateway_url: str = ""
    # An admin API key made with `ocpi-hub api-keys create` once the
    # platform is up: what the tests' /ops calls present (ops_auth).
    ops_key: str = ""

    # Processes a test killed on purpose (not reported as dead).
    killed: set[str] = field(default_factory=set)

    def dead(self) -> dict[str, int]:
        """Processes that exited, with their exit codes (but those killed on purpose)."""
        return {
            n: p.returncode
            for n, p in self.processes.items()
            if p.poll() is not None and n not in self.killed
        }

    def kill(self, name: str) -> None:
        """SIGKILL one of the platform's processes, as a crash would."""
        self.killed.add(name)
        self.processes[name].kill()
        self.processes[name].wait()

    def run(
        self, *args: str, timeout: float = 300, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run another ``ocpi-hub`` command against this platform."""
        try:
            return subprocess.run(
                [OCPI_HUB, *args],
                env=self.env,
                cwd=ROOT,
                capture_output=True,
                input=stdin,
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


SCALED = ("processors", "projections")


def _instances(
    scale: int, processes: tuple[str, ...] = PROCESSES
) -> list[tuple[str, str, dict[str, str]]]:
    """(name, command, extra environment) of every process of a platform with
    ``scale`` processors and projections (the API gets ``scale`` workers)."""
    out = [(name, name, {}) for name in processes]
    for index in range(2, scale + 1):
        for name in SCALED:
            extra = (
                {
                    "OCPI_HUB_FAUST_WEB_PORT": str(free_port()),
                    "OCPI_HUB_FAUST_DATADIR": f"data/faust-e2e-{index}/{{conf.name}}",
                }
                if name == "processors"
                else {}
            )
            out.append((f"{name}-{index}", name, extra))
    return out


@contextmanager
def running_platform(
    ns: Namespace,
    logs: Path,
    *,
    scale: int = 1,
    commands: tuple[str, ...] = PROCESSES,
    **overrides: object,
) -> Iterator[Platform]:
    """The platform's processes of one namespace, until the block ends. With
    ``scale`` N: N API workers behind one port, N processors and N
    projections processes (named ``processors-2``, ...). ``commands``: the
    processes to run (``billing-worker`` only where a test bills)."""
    port = free_port()
    gateway_port = free_port()
    settings = ns.settings.model_copy(
        update={
            "api_port": port,
            "gateway_port": gateway_port,
            "gateway_id": f"gw-{ns.name}",
            "faust_web_port": free_port(),
            "log_format": "json",
            # Partners' push lanes start within a second; failed pushes retry fast.
            "push_refresh_s": 0.5,
            "push_retry_initial_s": 0.2,
            "push_retry_max_s": 2.0,
            "api_workers": scale,
            # The tests play charging sessions up to 30 minutes ahead of the
            # clock (so as not to wait for them); our sessions reach the peer
            # stamped then, and the charger simulator takes such times: allow
            # an hour (the refusal beyond it is tested with 2999).
            "max_clock_skew_s": 3600.0,
            **overrides,
        }
    )
    env = {**os.environ, **env_of(settings)}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command, extra in _instances(scale, commands):
            with (logs / f"{name}.log").open("wb") as out:
                processes[name] = subprocess.Popen(
                    [OCPI_HUB, command],
                    env={**env, **extra},
                    cwd=ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
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
        # Faust has its partitions only when the worker says so: events
        # written before that wait in Kafka, but a test's clock would run.
        wait_for_log(logs / "processors.log", "Worker ready", timeout=90)
        wait_for_log(logs / "gateway.log", "gateway_started", timeout=60)
        platform = Platform(
            base_url=base_url,
            env=env,
            namespace=ns,
            logs=logs,
            processes=processes,
            gateway_url=f"ws://127.0.0.1:{gateway_port}/ocpp",
        )
        platform.ops_key = _admin_key(settings)
        _RUNNING.append(platform)
        yield platform
        _RUNNING.remove(platform)
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


def _admin_key(settings: Settings) -> str:
    """An admin API key for a test platform's ops routes, recorded on its
    write path as ``ocpi-hub api-keys create`` records it, but from this
    process: that command's own process cost ~2 s of CPU at every platform
    start (the command itself is driven in test_ops_access.py and
    test_quickstart.py)."""

    async def issue() -> str:
        async with opened(settings, [API_KEYS_SLICE]) as c:
            return await issue_key(c.write_path)

    # In a thread of its own: a caller may be inside an event loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, issue()).result()


_RUNNING: list[Platform] = []


@pytest.fixture(autouse=True)
def platforms_stay_up() -> Iterator[None]:
    """A platform process that dies fails the test it died in: a passing
    test must not lean on a view filled some other way."""
    yield
    for platform in _RUNNING:
        if dead := platform.dead():
            tails = "\n".join(f"{n}:\n{_tail(platform.logs / f'{n}.log')}" for n in dead)
            pytest.fail(f"platform processes exited: {dead}\n{tails}", pytrace=False)


@pytest.fixture(scope="session")
def platform(services: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Our platform (party ZZ-HUB by default), in a namespace of its own: the
    e2e tests compare its views with a replay of everything in it, which the
    integration tier's in-process writers must not have touched."""
    with (
        fresh_namespace(services) as ns,
        running_platform(ns, tmp_path_factory.mktemp("platform-logs")) as p,
    ):
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
            page_limit=4,  # so a pull sync crawls many pages
            # The tier's 2.2.1 pair: every module is spoken in 2.2.1, not
            # yet in 2.3.0 (tests/e2e/test_ocpi_230.py pairs on 2.3.0).
            ocpi_versions="2.1.1,2.2.1",
        ) as p,
    ):
        yield p


# --- helpers shared by the e2e tests ----------------------------------------


def ops_auth(url: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    """``headers`` and the admin API key of the running platform that ``url``
    (absolute, or a client's base URL) belongs to."""
    for p in _RUNNING:
        if url.startswith(p.base_url):
            return {**(headers or {}), "Authorization": f"Bearer {p.ops_key}"}
    raise AssertionError(f"no running platform serves {url}")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


def cli_json(platform: Platform, *args: str) -> dict[str, Any]:
    result = platform.run(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def sealed_token(peer: Platform, partner_id: str) -> str:
    """The token the peer presents to that partner, unsealed with the peer's key
    (both test platforms run from the same checkout and share its key file).
    Read from the peer's decision store, which holds it as soon as the
    registration or rotation was answered (the view follows a little later)."""

    async def held() -> bytes | None:
        client = aioredis.Redis.from_url(peer.env["OCPI_HUB_REDIS_URL"])
        try:
            store = RedisDecisionStore(client, peer.env["OCPI_HUB_TOPIC_PREFIX"])
            stored = await store.peek(partners.SLICE.name, partner_id, have=None)
        finally:
            await client.aclose()
        return stored.raw if stored is not None else None

    # In a thread of its own: some callers are async tests, inside a loop.
    with ThreadPoolExecutor(1) as pool:
        raw = pool.submit(asyncio.run, held()).result()
    assert raw is not None
    state = partners.SLICE.load(raw)
    assert state.our_token_encrypted
    key = (ROOT / Path(peer.env["OCPI_HUB_SECRET_KEY_FILE"])).read_bytes().strip()
    return TokenVault(key).decrypt(state.our_token_encrypted)


@dataclass(frozen=True)
class Linked:
    """Our platform (ZZ-HUB) and the peer (NL-PEE), registered with each other."""

    us: Platform
    peer: Platform
    peer_id: str  # our name for the peer
    us_id: str  # the peer's name for us

    @property
    def peer_token(self) -> dict[str, str]:
        """The Authorization header the peer sends us."""
        return auth(sealed_token(self.peer, self.us_id))


@pytest.fixture(scope="session")
def linked(platform: Platform, peer_platform: Platform) -> Linked:
    """One handshake (we invite, the peer registers), under partner ids of
    its own so that the registration tests' partners stay independent."""
    invite = cli_json(
        platform, "partners", "invite", "--country-code", "NL", "--party-id", "PEE",
        "--role", "CPO", "--partner-id", "PEE-LINK",
    )  # fmt: skip
    cli_json(
        peer_platform, "partners", "register", "--versions-url", invite["versions_url"],
        "--token-a", invite["token_a"], "--partner-id", "HUB-LINK",
    )  # fmt: skip
    # Changes are pushed to a partner from the moment its lane starts (earlier
    # ones it pulls): wait for both lanes before any test changes a location.
    for side, partner_id in ((peer_platform, "HUB-LINK"), (platform, "PEE-LINK")):
        wait_for_log(side.logs / "push.log", "push_lane_ready", partner_id)
    return Linked(us=platform, peer=peer_platform, peer_id="PEE-LINK", us_id="HUB-LINK")


def wait_for_log(path: Path, *needles: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if any(all(n in line for n in needles) for line in text.splitlines()):
            return
        time.sleep(0.2)
    raise AssertionError(f"no line with {needles} in {path}:\n{_tail(path)}")


def listed(p: Platform, partner_id: str) -> list[str]:
    """The row of ``partners list`` for one partner (id, status, direction,
    version, ...)."""
    result = p.run("partners", "list")
    assert result.returncode == 0, result.stderr
    [row] = [r.split("\t") for r in result.stdout.splitlines() if r.startswith(partner_id + "\t")]
    return row


@dataclass(frozen=True)
class Pinned:
    """Our platform and a second one pinned to one OCPI version, registered
    with each other: we invited it as a CPO, it registered."""

    us: Platform
    them: Platform
    version: str
    us_id: str  # our name for it
    them_id: str  # its name for us

    def from_them(self) -> str:
        """The token it presents to us."""
        return sealed_token(self.them, self.them_id)

    def from_us(self) -> str:
        """The token we present to it."""
        return sealed_token(self.us, self.us_id)


def _our_side_ended(us: Platform, us_id: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listed(us, us_id)[1] == "unregistered":
            return True
        time.sleep(0.2)
    return False


@contextmanager
def pinned_partner(
    us: Platform,
    services: Settings,
    logs: Path,
    *,
    version: str,
    country_code: str,
    party_id: str,
    us_id: str,
    them_id: str,
    their_role: str | None = None,
    invited_as: str = "CPO",
) -> Iterator[Pinned]:
    """A second platform pinned to ``version`` (``OCPI_HUB_OCPI_VERSIONS``),
    party ``country_code``-``party_id``, invited by us as ``invited_as`` (CPO
    or EMSP) and registered with us (``their_role``: the role it names for
    us, which 2.1.1 needs). For a test module (scope it so): when the module ends,
    however it ends, the registration is ended, from its side (a credentials
    DELETE to us) or, when that fails, from ours. Left registered, our
    real-time authorization of an unknown token goes on asking its stopped
    platform (it is an eMSP to us too) and answers "partner unreachable" to
    the tests after it."""
    with (
        fresh_namespace(services) as ns,
        running_platform(
            ns,
            logs,
            party_country_code=country_code,
            party_id=party_id,
            business_name=f"A {version} platform",
            ocpi_versions=version,
        ) as them,
    ):
        invite = cli_json(
            us, "partners", "invite", "--country-code", country_code, "--party-id", party_id,
            "--role", invited_as, "--partner-id", us_id,
        )  # fmt: skip
        try:
            registered = cli_json(
                them, "partners", "register", "--versions-url", invite["versions_url"],
                "--token-a", invite["token_a"], "--partner-id", them_id,
                *(("--role", their_role) if their_role else ()),
            )  # fmt: skip
            assert registered["version"] == version, registered
            # The CPO pushes its locations, the eMSP its tokens.
            cpo, cpo_id, emsp, emsp_id = (
                (them, them_id, us, us_id) if invited_as == "CPO" else (us, us_id, them, them_id)
            )
            wait_for_log(cpo.logs / "push.log", "push_lane_ready", cpo_id, timeout=60)
            wait_for_log(emsp.logs / "push.log", "tokens_push_lane_ready", emsp_id, timeout=60)
            yield Pinned(us=us, them=them, version=version, us_id=us_id, them_id=them_id)
        finally:
            ended = them.run("partners", "unregister", them_id)
            ours_ended = ended.returncode == 0 and _our_side_ended(us, us_id)
            if not ours_ended and listed(us, us_id)[1] == "registered":
                # Its side could not end it: end ours without calling it.
                ours = us.run("partners", "unregister", "--local-only", us_id)
                assert ours.returncode == 0, ours.stdout + ours.stderr
            assert listed(us, us_id)[1] != "registered", listed(us, us_id)
