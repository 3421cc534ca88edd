"""Charging profiles as CPO, end to end (docs/adr/0043): a registered eMSP
(a stub OCPI party in this process) sets, reads and clears the charging
profile of a session at one of our chargers, a real ``ocpp`` library
charger connected to our gateway. The platform runs as separate processes
(api, processors, projections, push, gateway).

* PUT: SetChargingProfile reaches the charger as a TxProfile on the
  session's transaction with the eMSP's limits; the charger's answer is
  POSTed once to the eMSP's response_url; the charger's new schedule is PUT
  to the eMSP's ChargingProfiles endpoint.
* GET: GetCompositeSchedule, its schedule POSTed as ActiveChargingProfileResult.
* DELETE: ClearChargingProfile of the profile we set.
* A charger that never answers: exactly one UNKNOWN result, at the deadline.
* A session that is not the caller's, or unknown: declined, nothing sent.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from pymongo import MongoClient
from websockets.asyncio.client import connect

from tests.conftest import fresh_namespace
from tests.e2e.conftest import (
    Platform,
    auth,
    cli_json,
    ops_auth,
    running_platform,
    sealed_token,
)
from tests.ocpi_objects import connector, evse, location
from tests.peer_stub import PeerStub, peer_stub
from tests.token_objects import token

TIMEOUT_S = 6
RECEIVER = "/ocpi/cpo/2.2.1/chargingprofiles"
PASSWORD = "e2e-profile-pass"


class ProfileCharger(ChargePoint):  # type: ignore[misc]
    """Takes charging profiles and reports a schedule made of the last one;
    never answers while ``silent``."""

    def __init__(self, cp_id: str, connection: Any) -> None:
        super().__init__(cp_id, connection, response_timeout=10)
        self.silent = False
        self.set_calls: list[dict[str, Any]] = []
        self.clear_calls: list[dict[str, Any]] = []
        self.schedule_calls: list[dict[str, Any]] = []

    async def _maybe_hang(self) -> None:
        if self.silent:
            await asyncio.sleep(3600)

    @on(Action.set_charging_profile)  # type: ignore[misc]
    async def on_set(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        self.set_calls.append({"connector_id": connector_id, "profile": cs_charging_profiles})
        await self._maybe_hang()
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.get_composite_schedule)  # type: ignore[misc]
    async def on_schedule(self, connector_id: int, duration: int, **extra: Any) -> Any:
        self.schedule_calls.append({"connector_id": connector_id, "duration": duration})
        await self._maybe_hang()
        schedule = (self.set_calls or [{}])[-1].get("profile", {}).get("charging_schedule")
        if schedule is None:
            return call_result.GetCompositeSchedule(status="Rejected")
        return call_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start="2026-06-01T12:00:00Z",
            charging_schedule={
                "charging_rate_unit": schedule["charging_rate_unit"],
                "duration": duration,
                # The library reads numbers as Decimal; JSON wants floats.
                "charging_schedule_period": [
                    {"start_period": p["start_period"], "limit": float(p["limit"])}
                    for p in schedule["charging_schedule_period"]
                ],
            },
        )

    @on(Action.clear_charging_profile)  # type: ignore[misc]
    async def on_clear(self, **fields: Any) -> Any:
        self.clear_calls.append(fields)
        await self._maybe_hang()
        known = any(c["profile"]["charging_profile_id"] == fields.get("id") for c in self.set_calls)
        return call_result.ClearChargingProfile(status="Accepted" if known else "Unknown")


@dataclass
class Setup:
    platform: Platform
    stub: PeerStub
    headers: dict[str, str]
    location_id: str
    charge_point_id: str
    uid: str


@pytest.fixture(scope="module")
def setup(services: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """Our platform with a short timeout; an eMSP registered with it whose
    token we hold; one of our locations with a registered charge point."""
    with (
        fresh_namespace(services) as ns,
        running_platform(
            ns,
            tmp_path_factory.mktemp("profiles-logs"),
            charging_profile_timeout_s=TIMEOUT_S,
            command_deadline_scan_s=0.5,
        ) as platform,
        peer_stub("NL", "EMS", role="EMSP", charging_profiles=True) as stub,
    ):
        invite = cli_json(
            platform, "partners", "invite", "--country-code", "NL", "--party-id", "EMS",
            "--role", "EMSP", "--partner-id", "EMS-CP",
        )  # fmt: skip
        token_c = stub.register_with(invite["versions_url"], invite["token_a"])
        tag = uuid.uuid4().hex[:6].upper()
        loc, cp, uid = f"SC-{tag}", f"CP-SC-{tag}", f"RF{tag}"
        ops = ops_auth(platform.base_url)
        site = location(
            loc,
            country_code="ZZ",
            party_id="HUB",
            evses=[evse("EVSE1", connectors=[connector("1")])],
        )
        made = httpx.put(
            f"{platform.base_url}/ops/locations/{loc}", json=site, headers=ops, timeout=10
        )
        assert made.json()["status_code"] == 1000, made.text
        body = {
            "location_id": loc,
            "password": PASSWORD,
            "connectors": [{"ocpp_connector_id": 1, "evse_uid": "EVSE1", "connector_id": "1"}],
        }
        made = httpx.put(
            f"{platform.base_url}/ops/charge-points/{cp}", json=body, headers=ops, timeout=10
        )
        assert made.status_code == 201, made.text
        # The eMSP's token, pushed to our Tokens receiver: its driver may charge.
        pushed = httpx.put(
            f"{platform.base_url}/ocpi/cpo/2.2.1/tokens/NL/EMS/{uid}",
            json=token(uid, country_code="NL", party_id="EMS", whitelist="ALLOWED"),
            headers=auth(token_c),
            timeout=10,
        )
        assert pushed.json()["status_code"] == 1000, pushed.text
        _token_known(platform, "EMS", uid, auth(token_c))
        yield Setup(platform, stub, auth(token_c), loc, cp, uid)


def _token_known(platform: Platform, party_id: str, uid: str, headers: dict[str, str]) -> None:
    """The charger's authorization finds a token by its uid in the tokens
    view: a GET of the token answers once the view holds the PUT."""
    got = httpx.get(
        f"{platform.base_url}/ocpi/cpo/2.2.1/tokens/NL/{party_id}/{uid}",
        headers=headers,
        timeout=30,
    )
    assert got.json()["status_code"] == 1000, got.text


@dataclass
class Charging:
    charger: ProfileCharger
    session_id: str
    transaction_id: int


async def _until(check: Any, what: str, within_s: float = 60) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    last: Any = None
    while loop.time() < deadline:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


# Sessions the fixture already handed out in this run.
_EARLIER_SESSIONS: set[str] = set()


@asynccontextmanager
async def charging_with(setup: Setup, uid: str) -> AsyncIterator[Charging]:
    """The charger connected, booted and charging ``uid``: our session ACTIVE."""
    p = setup.platform
    basic = base64.b64encode(f"{setup.charge_point_id}:{PASSWORD}".encode()).decode()
    ws = await connect(
        f"{p.gateway_url}/{setup.charge_point_id}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Basic {basic}"},
        open_timeout=10,
    )
    charger = ProfileCharger(setup.charge_point_id, ws)
    task = asyncio.ensure_future(charger.start())
    try:
        await charger.call(call.BootNotification(charge_point_model="Sim", charge_point_vendor="T"))
        await charger.call(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Available")
        )
        at = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        started = await charger.call(
            call.StartTransaction(connector_id=1, id_tag=uid, meter_start=0, timestamp=at)
        )
        assert started.id_tag_info["status"] == "Accepted"
        sessions = MongoClient(p.namespace.settings.mongo_url)[p.namespace.name]["sessions"]

        def active() -> dict[str, Any] | None:
            # Not an earlier test's session of the same charger and token:
            # its end may not be in the view yet.
            for doc in sessions.find(
                {
                    "session.location_id": setup.location_id,
                    "session.status": "ACTIVE",
                    "session.cdr_token.uid": uid,
                }
            ):
                if doc["session"]["id"] not in _EARLIER_SESSIONS:
                    found: dict[str, Any] = doc["session"]
                    return found
            return None

        session = await _until(active, "our session ACTIVE")
        _EARLIER_SESSIONS.add(session["id"])
        yield Charging(charger, session["id"], started.transaction_id)
        if charger.silent:
            return  # its frame loop hangs in a handler: it can only go away
        await charger.call(
            call.StopTransaction(
                meter_stop=1000,
                timestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                transaction_id=started.transaction_id,
            )
        )
    finally:
        task.cancel()
        await ws.close()


@pytest.fixture
async def charging(setup: Setup) -> AsyncIterator[Charging]:
    async with charging_with(setup, setup.uid) as c:
        yield c


def _url(s: Setup) -> tuple[str, str]:
    path = f"/chargingprofiles/result/{uuid.uuid4().hex}"
    return f"{s.stub.base_url}{path}", path


def _posted(s: Setup, path: str) -> list[Any]:
    return [body for method, p, body in s.stub.received if p == path and method == "POST"]


PROFILE = {
    "charging_rate_unit": "A",
    "charging_profile_period": [
        {"start_period": 0, "limit": 16},
        {"start_period": 1800, "limit": 8.5},
    ],
}


async def _put(s: Setup, session_id: str, response_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=s.platform.base_url, headers=s.headers) as client:
        resp = await client.put(
            f"{RECEIVER}/{session_id}",
            json={"charging_profile": PROFILE, "response_url": response_url},
            timeout=10,
        )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_a_profile_reaches_the_charger_and_its_result_the_emsp_once(
    setup: Setup, charging: Charging
) -> None:
    url, path = _url(setup)
    answer = await _put(setup, charging.session_id, url)
    assert (answer["status_code"], answer["data"]) == (
        1000,
        {"result": "ACCEPTED", "timeout": TIMEOUT_S},
    )
    [sent] = await _until(lambda: charging.charger.set_calls, "SetChargingProfile at the charger")
    assert sent["connector_id"] == 1
    assert sent["profile"] == {
        "charging_profile_id": charging.transaction_id,
        "transaction_id": charging.transaction_id,
        "stack_level": 1,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Relative",
        "charging_schedule": {
            "charging_rate_unit": "A",
            "charging_schedule_period": [
                {"start_period": 0, "limit": 16.0},
                {"start_period": 1800, "limit": 8.5},
            ],
        },
    }
    [result] = await _until(lambda: _posted(setup, path), "the ChargingProfileResult", 60)
    assert result == {"result": "ACCEPTED"}
    # The charger's schedule changed: it is PUT to the eMSP's endpoint.
    pushed_path = f"/chargingprofiles/{charging.session_id}"

    def pushed() -> list[Any]:
        return [b for m, p, b in setup.stub.received if p == pushed_path and m == "PUT"]

    [active] = await _until(pushed, "the ActiveChargingProfile PUT to the eMSP", 60)
    assert active["charging_profile"]["charging_profile_period"] == [
        {"start_period": 0, "limit": 16.0},
        {"start_period": 1800, "limit": 8.5},
    ]
    await asyncio.sleep(TIMEOUT_S + 1)  # past the deadline: nothing more
    assert len(_posted(setup, path)) == 1

    # GET: the composite schedule as ActiveChargingProfileResult.
    get_url, get_path = _url(setup)
    async with httpx.AsyncClient(base_url=setup.platform.base_url, headers=setup.headers) as c:
        resp = await c.get(
            f"{RECEIVER}/{charging.session_id}",
            params={"duration": 900, "response_url": get_url},
            timeout=10,
        )
    assert resp.json()["data"] == {"result": "ACCEPTED", "timeout": TIMEOUT_S}
    [got] = await _until(lambda: _posted(setup, get_path), "the ActiveChargingProfileResult")
    assert got["result"] == "ACCEPTED"
    assert got["profile"]["start_date_time"] == "2026-06-01T12:00:00Z"
    assert got["profile"]["charging_profile"]["duration"] == 900
    assert charging.charger.schedule_calls[-1] == {"connector_id": 1, "duration": 900}

    # DELETE: the profile we set is cleared.
    clear_url, clear_path = _url(setup)
    async with httpx.AsyncClient(base_url=setup.platform.base_url, headers=setup.headers) as c:
        resp = await c.delete(
            f"{RECEIVER}/{charging.session_id}", params={"response_url": clear_url}, timeout=10
        )
    assert resp.json()["data"]["result"] == "ACCEPTED"
    [cleared] = await _until(lambda: _posted(setup, clear_path), "the ClearProfileResult")
    assert cleared == {"result": "ACCEPTED"}
    assert charging.charger.clear_calls == [{"id": charging.transaction_id}]


async def test_a_charger_that_never_answers_gets_exactly_one_unknown(
    setup: Setup, charging: Charging
) -> None:
    charging.charger.silent = True
    url, path = _url(setup)
    answer = await _put(setup, charging.session_id, url)
    assert answer["data"]["result"] == "ACCEPTED", answer
    await _until(lambda: charging.charger.set_calls, "SetChargingProfile at the charger")
    [result] = await _until(lambda: _posted(setup, path), "the timeout result", 60)
    assert result == {"result": "UNKNOWN"}
    await asyncio.sleep(TIMEOUT_S + 2)
    assert len(_posted(setup, path)) == 1


async def test_unknown_or_bad_requests_are_declined_and_reach_no_charger(setup: Setup) -> None:
    url, path = _url(setup)
    unknown = await _put(setup, "NO-SUCH-SESSION", url)
    assert unknown["data"] == {"result": "UNKNOWN_SESSION", "timeout": 0}
    async with httpx.AsyncClient(base_url=setup.platform.base_url, headers=setup.headers) as c:
        bad_url = await c.put(
            f"{RECEIVER}/S1",
            json={"charging_profile": PROFILE, "response_url": "ftp://emsp.example.com/x"},
            timeout=10,
        )
        assert bad_url.json()["status_code"] == 2001
        no_duration = await c.get(f"{RECEIVER}/S1", params={"response_url": url}, timeout=10)
        assert no_duration.json()["status_code"] == 2001
        versions = await c.get("/ocpi/2.2.1", timeout=10)
    modules = {(e["identifier"], e["role"]) for e in versions.json()["data"]["endpoints"]}
    assert {("chargingprofiles", "RECEIVER"), ("chargingprofiles", "SENDER")} <= modules
    await asyncio.sleep(2)
    assert _posted(setup, path) == []


# --------------------------------------------------------------------------- #
# Both roles: a second platform of ours as the eMSP
# --------------------------------------------------------------------------- #

EMSP_ID = "PEE-SC"  # the CPO's name for the eMSP platform
CPO_ID = "HUB-SC"  # the eMSP platform's name for the CPO


@pytest.fixture(scope="module")
def emsp(setup: Setup, peer_platform: Platform) -> Platform:
    """The peer platform (NL-PEE) registered with our CPO platform as eMSP."""
    invite = cli_json(
        setup.platform, "partners", "invite", "--country-code", "NL", "--party-id", "PEE",
        "--role", "EMSP", "--partner-id", EMSP_ID,
    )  # fmt: skip
    cli_json(
        peer_platform, "partners", "register", "--versions-url", invite["versions_url"],
        "--token-a", invite["token_a"], "--partner-id", CPO_ID,
    )  # fmt: skip
    return peer_platform


async def test_the_emsp_platform_sets_reads_and_clears_a_profile_through_ops(
    setup: Setup, emsp: Platform
) -> None:
    uid = f"PE{uuid.uuid4().hex[:8].upper()}"
    issued = token(uid, country_code="NL", party_id="PEE", whitelist="ALLOWED")
    ops = ops_auth(emsp.base_url)
    async with httpx.AsyncClient(base_url=emsp.base_url, headers=ops, timeout=20) as em:
        assert (await em.put(f"/ops/tokens/{uid}", json=issued)).status_code == 201
        # As the eMSP's token push would: the CPO holds the token.
        pushed = await em.put(
            f"{setup.platform.base_url}/ocpi/cpo/2.2.1/tokens/NL/PEE/{uid}",
            json=issued,
            headers=auth(sealed_token(emsp, CPO_ID)),
        )
        assert pushed.json()["status_code"] == 1000, pushed.text
        await asyncio.to_thread(
            _token_known, setup.platform, "PEE", uid, auth(sealed_token(emsp, CPO_ID))
        )
        async with charging_with(setup, uid) as charging:
            sid = charging.session_id
            sent = await em.put(f"/ops/charging-profiles/sent/{CPO_ID}/{sid}", json=PROFILE)
            assert sent.status_code == 200, sent.text
            data = sent.json()["data"]
            assert data["response"] == {"result": "ACCEPTED", "timeout": TIMEOUT_S}
            assert data["response_url"].endswith(f"/chargingprofiles/SET/{data['request_id']}")
            [at_charger] = await _until(lambda: charging.charger.set_calls, "the charger's call")
            periods = at_charger["profile"]["charging_schedule"]["charging_schedule_period"]
            assert [(p["start_period"], float(p["limit"])) for p in periods] == [
                (0, 16.0),
                (1800, 8.5),
            ]

            async def shown(path: str, status: str | None = None) -> dict[str, Any] | None:
                resp = await em.get(path)
                body = resp.json()
                data = body.get("data")
                if resp.status_code != 200 or not data or (status and data["status"] != status):
                    return None
                result: dict[str, Any] = body["data"]
                return result

            request = f"/ops/charging-profiles/sent/{data['request_id']}"
            done = await _until(lambda: shown(request, "ACCEPTED"), "the result at the eMSP")
            assert (done["action"], done["session_id"], done["partner_id"]) == ("SET", sid, CPO_ID)
            # The CPO's ActiveChargingProfile PUT, recorded by the eMSP.
            active = await _until(
                lambda: shown(f"/ops/charging-profiles/active/ZZ/HUB/{sid}"),
                "the ActiveChargingProfile at the eMSP",
            )
            assert active["partner_id"] == CPO_ID
            assert active["active_profile"]["charging_profile"]["charging_profile_period"] == [
                {"start_period": 0, "limit": 16.0},
                {"start_period": 1800, "limit": 8.5},
            ]
            # GET the active profile, then clear it.
            asked = await em.post(
                f"/ops/charging-profiles/sent/{CPO_ID}/{sid}/active", params={"duration": 600}
            )
            got = await _until(
                lambda: shown(f"/ops/charging-profiles/sent/{asked.json()['data']['request_id']}",
                              "ACCEPTED"),
                "the ActiveChargingProfileResult at the eMSP",
            )  # fmt: skip
            assert got["active_profile"]["charging_profile"]["duration"] == 600
            cleared = await em.delete(f"/ops/charging-profiles/sent/{CPO_ID}/{sid}")
            clear_id = cleared.json()["data"]["request_id"]
            await _until(
                lambda: shown(f"/ops/charging-profiles/sent/{clear_id}", "ACCEPTED"),
                "the ClearProfileResult at the eMSP",
            )
            assert charging.charger.clear_calls[-1] == {"id": charging.transaction_id}
        # Refused before anything is sent: an unknown partner, a bad profile.
        unknown = await em.put("/ops/charging-profiles/sent/NOBODY/S1", json=PROFILE)
        assert (unknown.status_code, unknown.json()["status_code"]) == (404, 2001)
        bad = await em.put(
            f"/ops/charging-profiles/sent/{CPO_ID}/S1", json={"charging_rate_unit": "kW"}
        )
        assert bad.json()["status_code"] == 2001
