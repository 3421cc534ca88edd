"""Received commands (we as CPO), end to end: a registered eMSP (a stub OCPI party in this
process) POSTs commands for one of our locations to our running platform
(api, processors, projections, push as separate processes) and gets exactly
one CommandResult at its response_url.

The OCPP gateway is not part of this: the test registers the charge point
through ops, writes its presence key in Redis as the gateway would, and
stands in for the charger's answer by writing ``ChargerCommandAnswered`` to
the topic.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pymongo import MongoClient

from producers.log import KafkaEventLog
from schemas.events import ChargerCommandAnswered, Party
from schemas.events.commands import ChargerCommandAnsweredPayload
from schemas.ocpi.commands import CommandResultType
from tests.conftest import fresh_namespace
from tests.e2e.conftest import (
    OCPI_HUB,
    ROOT,
    Platform,
    auth,
    cli_json,
    ops_auth,
    running_platform,
    wait_for_log,
)
from tests.e2e.test_walking_skeleton import wait_for
from tests.ocpi_objects import connector, evse, location
from tests.peer_stub import PeerStub, peer_stub
from tests.services import Namespace
from tests.token_objects import token

TIMEOUT_S = 6
RECEIVER = "/ocpi/cpo/2.2.1/commands"


@dataclass
class Setup:
    platform: Platform
    stub: PeerStub
    headers: dict[str, str]
    location_id: str

    @property
    def db(self) -> str:
        return self.platform.namespace.name


@pytest.fixture(scope="module")
def setup(services: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """Our platform with a short command timeout, an eMSP registered with it,
    and one of our locations with a registered, connected charge point."""
    with (
        fresh_namespace(services) as ns,
        running_platform(
            ns,
            tmp_path_factory.mktemp("commands-logs"),
            command_timeout_s=TIMEOUT_S,
            command_deadline_scan_s=0.5,
        ) as platform,
        peer_stub("NL", "EMS", role="EMSP") as stub,
    ):
        invite = cli_json(
            platform, "partners", "invite", "--country-code", "NL", "--party-id", "EMS",
            "--role", "EMSP", "--partner-id", "EMS-CMD",
        )  # fmt: skip
        token_c = stub.register_with(invite["versions_url"], invite["token_a"])
        loc = f"CMD-{uuid.uuid4().hex[:6]}"
        site = location(
            loc,
            country_code="ZZ",
            party_id="HUB",
            evses=[evse("EVSE1", connectors=[connector("1")])],
        )
        made = httpx.put(
            f"{platform.base_url}/ops/locations/{loc}",
            json=site,
            timeout=10,
            headers=ops_auth(platform.base_url),
        )
        assert made.json()["status_code"] == 1000, made.text
        _register_charge_point(platform, ns, loc, "CP-E2E")
        yield Setup(platform, stub, auth(token_c), loc)


def _register_charge_point(platform: Platform, ns: Namespace, loc: str, cp: str) -> None:
    """Registered through ops, and connected as the gateway would say."""
    body = {
        "location_id": loc,
        "password": "e2e-password-1",
        "connectors": [{"ocpp_connector_id": 1, "evse_uid": "EVSE1", "connector_id": "1"}],
    }
    made = httpx.put(
        f"{platform.base_url}/ops/charge-points/{cp}",
        json=body,
        timeout=10,
        headers=ops_auth(platform.base_url),
    )
    assert made.status_code == 201, made.text
    # Which charge points are at a location is read from the registry view:
    # this read answers once the view holds the registration.
    shown = httpx.get(
        f"{platform.base_url}/ops/charge-points/{cp}",
        timeout=10,
        headers=ops_auth(platform.base_url),
    )
    assert shown.json()["status_code"] == 1000, shown.text
    r = redis.Redis.from_url(ns.settings.redis_url)
    try:
        r.set(f"{ns.settings.topic_prefix}ocpi-hub:ocpp:presence:{cp}", "gw-test", ex=3600)
    finally:
        r.close()


def _start(s: Setup, response_url: str, **fields: Any) -> httpx.Response:
    body = {
        "response_url": response_url,
        "token": token("E2E-1", country_code="NL", party_id="EMS"),
        "location_id": s.location_id,
        "evse_uid": "EVSE1",
        **fields,
    }

    # Decided on the location's state in the write path: a location PUT a
    # moment ago is known at once.
    return httpx.post(
        f"{s.platform.base_url}{RECEIVER}/START_SESSION", json=body, headers=s.headers, timeout=10
    )


def _callback_url(s: Setup) -> tuple[str, str]:
    path = f"/commands/START_SESSION/{uuid.uuid4().hex}"
    return f"{s.stub.base_url}{path}", path


def _results(s: Setup, path: str) -> list[Any]:
    return [body for method, p, body in s.stub.received if p == path and method == "POST"]


def _command_id(s: Setup, response_url: str) -> str:
    def found() -> str | None:
        with MongoClient(s.platform.namespace.settings.mongo_url) as client:
            doc = client[s.db]["received_commands"].find_one({"response_url": response_url})
        return str(doc["_id"]) if doc else None

    command_id: str = wait_for(found, "the command in the received_commands view")
    return command_id


def test_an_unanswered_start_session_times_out_exactly_once(setup: Setup) -> None:
    url, path = _callback_url(setup)
    resp = _start(setup, url)
    assert resp.status_code == 200
    assert resp.json()["data"] == {"result": "ACCEPTED", "timeout": TIMEOUT_S}
    [result] = wait_for(lambda: _results(setup, path), "the CommandResult", timeout=60)
    assert result["result"] == "TIMEOUT"
    # Stub answered with its auth check: only our token for it passes.
    time.sleep(TIMEOUT_S)
    assert len(_results(setup, path)) == 1
    command_id = _command_id(setup, url)
    shown = httpx.get(
        f"{setup.platform.base_url}/ops/commands/received/{command_id}",
        timeout=10,
        headers=ops_auth(setup.platform.base_url),
    ).json()
    assert shown["status_code"] == 1000
    data = shown["data"]
    assert (data["result"], data["decided_by"], data["command"]) == (
        "TIMEOUT",
        "deadline",
        "START_SESSION",
    )
    assert data["target"]["charge_point_id"] == "CP-E2E"
    assert data["sender"] == {"country_code": "NL", "party_id": "EMS"}
    unknown = httpx.get(
        f"{setup.platform.base_url}/ops/commands/received/nope",
        timeout=10,
        headers=ops_auth(setup.platform.base_url),
    )
    assert (unknown.status_code, unknown.json()["status_code"]) == (404, 2001)


def test_the_charger_answer_is_posted_exactly_once(setup: Setup) -> None:
    url, path = _callback_url(setup)
    assert _start(setup, url).json()["data"]["result"] == "ACCEPTED"
    command_id = _command_id(setup, url)
    now = datetime.now(UTC)
    answer = ChargerCommandAnswered(
        event_id=uuid.uuid4(),
        aggregate_key=command_id,
        occurred_at=now,
        recorded_at=now,
        source=Party(country_code="ZZ", party_id="HUB"),
        correlation_id="gateway-stand-in",
        payload=ChargerCommandAnsweredPayload(
            command_id=command_id,
            charge_point_id="CP-E2E",
            result=CommandResultType.ACCEPTED,
            charger_status="Accepted",
            at=now,
        ),
    )
    asyncio.run(_append(setup.platform, answer))
    [result] = wait_for(lambda: _results(setup, path), "the CommandResult", timeout=60)
    assert result == {"result": "ACCEPTED"}
    time.sleep(TIMEOUT_S + 2)  # past the deadline: no TIMEOUT follows
    assert len(_results(setup, path)) == 1


async def _append(platform: Platform, *events: Any) -> None:
    s = platform.namespace.settings
    log = KafkaEventLog(s.kafka_bootstrap, s.topic_prefix)
    await log.start()
    try:
        await log.append(list(events))
    finally:
        await log.stop()


def test_a_command_accepted_while_processors_are_down_times_out_once_after(
    setup: Setup,
) -> None:
    p = setup.platform
    proc = p.processes["processors"]
    proc.terminate()
    proc.wait(timeout=30)
    restarted = p.logs / "processors-restarted.log"
    try:
        url, path = _callback_url(setup)
        assert _start(setup, url).json()["data"]["result"] == "ACCEPTED"
        time.sleep(TIMEOUT_S + 2)
        assert _results(setup, path) == []  # nobody decides while they are down
    finally:
        with Path(restarted).open("wb") as out:
            p.processes["processors"] = subprocess.Popen(
                [OCPI_HUB, "processors"], env=p.env, cwd=ROOT, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
    wait_for_log(restarted, "Worker ready", timeout=90)
    [result] = wait_for(lambda: _results(setup, path), "the late TIMEOUT", timeout=60)
    assert result["result"] == "TIMEOUT"
    time.sleep(3)
    assert len(_results(setup, path)) == 1


def test_unknown_location_and_bad_response_url_write_nothing(setup: Setup) -> None:
    base = setup.platform.base_url
    url, _ = _callback_url(setup)
    # A command reached the OCPI layer: 2003 at HTTP 200 (docs/adr/0039 §2).
    missing = _start(setup, url, location_id="NO-SUCH-LOC")
    assert (missing.status_code, missing.json()["status_code"]) == (200, 2003)
    ftp = f"ftp://emsp.example.com/{uuid.uuid4().hex}"
    bad = httpx.post(
        f"{base}{RECEIVER}/START_SESSION",
        json={
            "response_url": ftp,
            "token": token("E2E-1", country_code="NL", party_id="EMS"),
            "location_id": setup.location_id,
        },
        headers=setup.headers,
        timeout=10,
    )
    assert (bad.status_code, bad.json()["status_code"]) == (200, 2001)
    unknown_command = httpx.post(
        f"{base}{RECEIVER}/BAKE_BREAD", json={}, headers=setup.headers, timeout=10
    )
    assert unknown_command.json()["status_code"] == 2001
    # A valid command after them reaches the view; they never do.
    good_url, _ = _callback_url(setup)
    assert _start(setup, good_url).json()["data"]["result"] == "ACCEPTED"
    _command_id(setup, good_url)
    with MongoClient(setup.platform.namespace.settings.mongo_url) as client:
        coll = client[setup.db]["received_commands"]
        assert coll.count_documents({"response_url": {"$in": [ftp, url]}}) == 0
