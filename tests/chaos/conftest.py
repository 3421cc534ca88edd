"""The fault suite's own platform, its partner, chargers and load."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from bench.ocpp_sim import bench_password, put_bench_location, register, wait_registered
from tests.chaos.load import Load, Target
from tests.chaos.stack import Stack, running_stack
from tests.ocpi_objects import connector, evse, location
from tests.peer_stub import PeerStub, peer_stub

PARTNER = ("NL", "CHS")
PARTNER_LOCATIONS = 6
PARTNER_EVSES = 4  # per location
OWN_LOCATION = "CHAOS-OWN"
CHARGERS = 4  # charge point CHAOS-CP-<n> serves EVSE E<n> of OWN_LOCATION
SETUP_AT = "2026-01-01T12:00:00Z"  # before every stamp the load sends


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("chaos")) as made:
        yield made


def partner_location(location_id: str) -> dict[str, object]:
    cc, pid = PARTNER
    return location(
        location_id,
        country_code=cc,
        party_id=pid,
        at=SETUP_AT,
        evses=[
            evse(f"{location_id}-E{k}", at=SETUP_AT, connectors=[connector(at=SETUP_AT)])
            for k in range(1, PARTNER_EVSES + 1)
        ],
    )


def charger_evses() -> dict[str, str]:
    """Charge point id -> the EVSE key it drives."""
    cc, pid = "ZZ", "HUB"  # the platform's own party (settings' defaults)
    return {
        f"CHAOS-CP-{n}": f"{cc}/{pid}/{OWN_LOCATION}/E{n}".upper() for n in range(1, CHARGERS + 1)
    }


def _registered_partner(stack: Stack, stub: PeerStub) -> str:
    """Invite the partner with the CLI and let the stub register; its TOKEN_C."""
    cc, pid = PARTNER
    done = stack.cli(
        "partners", "invite", "--country-code", cc, "--party-id", pid,
        "--role", "CPO", "--partner-id", "chaos-partner",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    invited = json.loads(done.stdout.strip().splitlines()[-1])
    return stub.register_with(invited["versions_url"], invited["token_a"])


def _operator_key(stack: Stack) -> str:
    """An API key for the ops calls of the setup (docs/adr/0031)."""
    done = stack.cli("api-keys", "create", "--name", "chaos", "--role", "operator")
    assert done.returncode == 0, done.stdout + done.stderr
    key: str = json.loads(done.stdout.strip().splitlines()[-1])["key"]
    return key


async def _own_chargers(stack: Stack, password: str) -> None:
    settings = stack.settings()
    headers = {"Authorization": f"Bearer {_operator_key(stack)}"}
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30, headers=headers) as ops:
        await put_bench_location(ops, settings, OWN_LOCATION, CHARGERS)
        for n, cp_id in enumerate(charger_evses(), start=1):
            await register(ops, cp_id, OWN_LOCATION, f"E{n}", password)
    mongo: MongoClient[dict[str, Any]]
    with MongoClient(settings.mongo_url) as mongo:
        await wait_registered(mongo, settings, list(charger_evses()), timeout_s=60)


@pytest.fixture(scope="session")
def partner_stub() -> Iterator[PeerStub]:
    """The partner CPO's OCPI side; it also receives what we push of our
    own locations (the chargers' EVSE status)."""
    with peer_stub(*PARTNER) as stub:
        yield stub


@pytest.fixture(scope="session")
def load(stack: Stack, partner_stub: PeerStub) -> Iterator[Load]:
    """The partner's locations and our chargers set up, and the load running
    until the session ends."""
    token_c = _registered_partner(stack, partner_stub)
    auth = "Token " + base64.b64encode(token_c.encode()).decode()
    cc, pid = PARTNER
    location_ids = [f"CHAOS-{n}" for n in range(1, PARTNER_LOCATIONS + 1)]
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        for location_id in location_ids:
            resp = client.put(
                f"/ocpi/emsp/2.2.1/locations/{cc}/{pid}/{location_id}",
                json=partner_location(location_id),
                headers={"Authorization": auth},
            )
            assert resp.json().get("status_code") == 1000, resp.text
    password = bench_password()
    asyncio.run(_own_chargers(stack, password))
    running = Load(
        Target(
            base_url=stack.base_url,
            partner_auth=auth,
            partner_party=PARTNER,
            partner_evses=[
                (location_id, f"{location_id}-E{k}")
                for location_id in location_ids
                for k in range(1, PARTNER_EVSES + 1)
            ],
            gateway_url=stack.gateway_url,
            chargers=list(charger_evses()),
            charger_password=password,
        )
    )
    running.start()
    try:
        _wait_for_acks(running, timeout=60)
        yield running
    finally:
        if running.error is None:
            running.stop()


def _wait_for_acks(running: Load, timeout: float) -> None:
    """Both writers acknowledged before the first fault (the load is real)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kinds = {a.kind for a in running.ledger.snapshot() if a.acked}
        if kinds >= {"patch", "notify"}:
            return
        time.sleep(0.5)
    raise AssertionError(f"the load was never acknowledged: {running.ledger.snapshot()[-5:]}")


def report_path() -> Path:
    return Path(__file__).resolve().parents[2] / "data" / "chaos" / "report.json"
