"""Simulated OCPP 1.6J chargers and the ops calls around them, shared by
``bench.chargers`` and ``bench.commands``.

A simulated charger is the ``ocpp`` library's ``ocpp.v16.ChargePoint`` used as
the client side over ``websockets.connect`` (subprotocol ``ocpp1.6``, HTTP
Basic credentials: OCPP 1.6 security profile 1), as a real charger's
firmware would be. It answers ``UnlockConnector`` with ``Unlocked`` and
remembers when each unlock reached it.

The bench location and its charge points belong to the platform's own party
(``OCPI_HUB_PARTY_COUNTRY_CODE``/``OCPI_HUB_PARTY_ID``) and carry the run id
in their ids (``BENCH-CP-<run id>``, ``BENCH-<run id>-<n>``), so runs never
collide with each other or with real data.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import resource
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, UnlockStatus
from pymongo import MongoClient
from websockets.asyncio.client import ClientConnection, connect

from ocpi_hub.settings import Settings
from tests.ocpi_objects import connector, evse, location

Doc = dict[str, Any]


class OpsError(Exception):
    """An ops call of the setup was refused."""


def bench_password() -> str:
    """A fresh password for the run's charge points (printable, 32 chars)."""
    return secrets.token_hex(16)


def raise_fd_limit() -> int:
    """The soft open-files limit raised to the hard one (each simulated
    charger is a socket); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


def gateway_url(settings: Settings) -> str:
    host = settings.gateway_host
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"ws://{host}:{settings.gateway_port}/ocpp"


def read_pid(run_dir: Path, name: str) -> int | None:
    try:
        return int((run_dir / f"{name}.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB (None when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def open_fds(pid: int) -> int | None:
    try:
        return len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return None


def fd_limit(pid: int) -> int | None:
    """The soft "Max open files" of a process."""
    try:
        with open(f"/proc/{pid}/limits") as fh:
            for line in fh:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (OSError, ValueError, IndexError):
        return None
    return None


# --------------------------------------------------------------------------- #
# Ops setup: a location of ours and registered charge points
# --------------------------------------------------------------------------- #


def _ok(resp: httpx.Response, what: str) -> None:
    try:
        code = resp.json().get("status_code")
    except ValueError:
        code = None
    if resp.status_code not in (200, 201) or code != 1000:
        raise OpsError(f"{what}: HTTP {resp.status_code} {resp.text[:300]}")


async def put_bench_location(
    client: httpx.AsyncClient, settings: Settings, location_id: str, evse_count: int
) -> None:
    """One location of ours with EVSEs ``E1``..``E<evse_count>``, one
    connector ``1`` each."""
    body = location(
        location_id,
        country_code=settings.party_country_code,
        party_id=settings.party_id,
        evses=[evse(f"E{k}", connectors=[connector("1")]) for k in range(1, evse_count + 1)],
    )
    _ok(await client.put(f"/ops/locations/{location_id}", json=body), f"PUT location {location_id}")


async def register(
    client: httpx.AsyncClient, cp_id: str, location_id: str, evse_uid: str, password: str
) -> float:
    """Registers one charge point (OCPP connector 1 = ``evse_uid`` / ``1``);
    returns the request's latency in seconds."""
    body = {
        "location_id": location_id,
        "password": password,
        "connectors": [{"ocpp_connector_id": 1, "evse_uid": evse_uid, "connector_id": "1"}],
    }
    started = time.perf_counter()
    resp = await client.put(f"/ops/charge-points/{cp_id}", json=body)
    took = time.perf_counter() - started
    _ok(resp, f"PUT charge point {cp_id}")
    return took


async def deregister(client: httpx.AsyncClient, cp_id: str) -> bool:
    try:
        resp = await client.delete(f"/ops/charge-points/{cp_id}")
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


async def bounded(
    items: Sequence[str], concurrency: int, work: Callable[[str], Awaitable[Any]]
) -> list[Any]:
    """``work`` over ``items``, at most ``concurrency`` at once; results (or
    the exceptions raised) in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: str) -> Any:
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(i) for i in items), return_exceptions=True))


def registered_in_view(mongo: MongoClient[Doc], settings: Settings, ids: Sequence[str]) -> int:
    """How many of ``ids`` the ``charge_points`` view shows as registered
    (what the gateway checks before a WebSocket upgrade)."""
    coll = mongo[settings.mongo_db]["charge_points"]
    seen = 0
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        seen += coll.count_documents({"_id": {"$in": chunk}, "registered": True})
    return seen


async def wait_registered(
    mongo: MongoClient[Doc], settings: Settings, ids: Sequence[str], timeout_s: float
) -> float:
    """Seconds until the view shows all ``ids`` registered; OpsError after
    ``timeout_s``."""
    started = time.perf_counter()
    while True:
        seen = await asyncio.to_thread(registered_in_view, mongo, settings, ids)
        if seen >= len(ids):
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout_s:
            raise OpsError(f"only {seen} of {len(ids)} charge points registered in the view")
        await asyncio.sleep(0.5)


# --------------------------------------------------------------------------- #
# The simulated charger
# --------------------------------------------------------------------------- #


def quiet_ocpp_logs() -> None:
    # The library logs every frame at INFO, and every CallError (counted in
    # the report instead) at WARNING.
    logging.getLogger("ocpp").setLevel(logging.ERROR)
    logging.getLogger("websockets").setLevel(logging.WARNING)


class SimCharger(ChargePoint):  # type: ignore[misc]
    """The charger's side of OCPP 1.6J: it answers UnlockConnector with
    Unlocked and stamps when each unlock arrived (``time.perf_counter``)."""

    def __init__(self, cp_id: str, connection: ClientConnection, timeout_s: float = 30) -> None:
        super().__init__(cp_id, connection, response_timeout=timeout_s)
        self.unlocks: list[float] = []

    @on(Action.unlock_connector)  # type: ignore[untyped-decorator]
    async def on_unlock_connector(self, connector_id: int) -> Any:
        self.unlocks.append(time.perf_counter())
        return call_result.UnlockConnector(status=UnlockStatus.unlocked)


@dataclass
class Connected:
    charger: SimCharger
    ws: ClientConnection
    reader: asyncio.Task[None]
    heartbeat_interval_s: int
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(BaseException):
            await self.reader


async def connect_charger(
    url: str, cp_id: str, password: str, *, timeout_s: float = 30
) -> Connected:
    """Opens the WebSocket (Basic credentials), starts reading and sends
    BootNotification; raises when any of it fails or is not Accepted."""
    auth = base64.b64encode(f"{cp_id}:{password}".encode()).decode()
    ws = await connect(
        f"{url}/{cp_id}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Basic {auth}"},
        open_timeout=timeout_s,
        ping_interval=None,  # OCPP's own Heartbeat keeps the connection
        close_timeout=2,
    )
    charger = SimCharger(cp_id, ws, timeout_s)
    reader = asyncio.ensure_future(charger.start())
    try:
        boot = await charger.call(
            call.BootNotification(charge_point_model="Bench-1", charge_point_vendor="ocpi-hub"),
            suppress=False,
        )
        if boot.status != "Accepted":
            raise OpsError(f"BootNotification {boot.status}")
    except BaseException:
        reader.cancel()
        with contextlib.suppress(Exception):
            await ws.close()
        raise
    return Connected(charger, ws, reader, int(boot.interval))
