"""The whole charger path across two real platforms, no stubs on the OCPI path.

The CPO is a platform of this module (party DE-CHG) with its OCPP gateway and
a short command timeout; the eMSP is the session's peer platform (NL-PEE).
They register with each other through the credentials handshake, as two
partners would. Simulated chargers (the ``ocpp`` library's ChargePoint as a
client) connect to the CPO's gateway.

* The eMSP's ops send START_SESSION; the CPO's receiver accepts it, its
  gateway asks the charger (RemoteStartTransaction), the charger's answer
  becomes the one CommandResult POSTed to the eMSP's response_url. The
  charger then charges with the command's idTag: the session (auth_method
  COMMAND) is pushed to the eMSP and the CDR, priced with the connector's
  tariff, reaches the eMSP.
* A charger that never answers: the eMSP gets TIMEOUT, once; a session the
  charger starts anyway is still taken by the eMSP.
* A fault while charging: OUTOFORDER at the CPO and in the eMSP's copy of the
  location, AVAILABLE again after the charge.
* STOP_SESSION from the eMSP: RemoteStopTransaction with the transaction's
  id, the session COMPLETED on both sides.
* Safety: a command for a location the CPO does not own is refused with the
  CPO's 2003 and nothing is recorded as sent; a charger sending garbage and
  dropping its connection mid-transaction does not disturb another charger's
  command round trip.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, RemoteStartStopStatus, UnlockStatus
from pymongo import MongoClient
from pymongo.database import Database
from websockets.asyncio.client import ClientConnection, connect

from ocpi_hub.settings import Settings
from tests.cdr_objects import simple_tariff
from tests.conftest import fresh_namespace
from tests.e2e.conftest import (
    Platform,
    auth,
    cli_json,
    ops_auth,
    running_platform,
    sealed_token,
    wait_for_log,
)
from tests.e2e.test_money_path import _dumps, exact, expected_total
from tests.ocpi_objects import connector, evse, location
from tests.token_objects import token

CC, PID = "DE", "CHG"  # the CPO platform's party
TIMEOUT_S = 8  # the CPO's command timeout: short, yet ample for a charger that answers
PASSWORD = "path-charger-pass"
EMSP_ID = "PEE-PATH"  # the CPO's name for the eMSP
CPO_ID = "CHG-PATH"  # the eMSP's name for the CPO


# --------------------------------------------------------------------------- #
# The two platforms
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Roaming:
    cpo: Platform
    emsp: Platform

    @property
    def emsp_at_cpo(self) -> dict[str, str]:
        """The Authorization header the eMSP sends the CPO."""
        return auth(sealed_token(self.emsp, CPO_ID))

    @property
    def cpo_at_emsp(self) -> dict[str, str]:
        """The Authorization header the CPO sends the eMSP."""
        return auth(sealed_token(self.cpo, EMSP_ID))


@pytest.fixture(scope="module")
def roaming(
    services: Settings, peer_platform: Platform, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Roaming]:
    with (
        fresh_namespace(services) as ns,
        running_platform(
            ns,
            tmp_path_factory.mktemp("cpo-logs"),
            party_country_code=CC,
            party_id=PID,
            business_name="Charger path CPO",
            command_timeout_s=TIMEOUT_S,
            command_deadline_scan_s=0.5,
        ) as cpo,
    ):
        invite = cli_json(
            cpo, "partners", "invite", "--country-code", "NL", "--party-id", "PEE",
            "--role", "EMSP", "--partner-id", EMSP_ID,
        )  # fmt: skip
        cli_json(
            peer_platform, "partners", "register", "--versions-url", invite["versions_url"],
            "--token-a", invite["token_a"], "--partner-id", CPO_ID,
        )  # fmt: skip
        for side, partner_id in ((peer_platform, CPO_ID), (cpo, EMSP_ID)):
            wait_for_log(side.logs / "push.log", "push_lane_ready", partner_id, timeout=60)
        # The CPO's lane of the statuses its EVSEs show (chargers included).
        wait_for_log(cpo.logs / "push.log", "evse_status_push_lane_ready", EMSP_ID, timeout=60)
        yield Roaming(cpo=cpo, emsp=peer_platform)


# --------------------------------------------------------------------------- #
# Waiting
# --------------------------------------------------------------------------- #


async def until(check: Callable[[], Awaitable[Any]], what: str, within_s: float = 60) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    last: Any = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out after {within_s}s waiting for {what}; last seen: {last!r}")


def _ok(resp: httpx.Response, *http: int) -> dict[str, Any]:
    assert resp.status_code in (http or (200,)), resp.text
    body: dict[str, Any] = resp.json()
    assert body["status_code"] == 1000, body
    return body


def _data(resp: httpx.Response) -> dict[str, Any] | None:
    if resp.status_code != 200:
        return None
    data: dict[str, Any] | None = resp.json().get("data")
    return data


# --------------------------------------------------------------------------- #
# A simulated charger
# --------------------------------------------------------------------------- #


class Charger(ChargePoint):  # type: ignore[misc]
    """Answers RemoteStart/RemoteStop/Unlock with Accepted/Unlocked and keeps
    what it was asked; with ``silent``, RemoteStart and Unlock get no answer at
    all (the connection goes on serving everything else)."""

    def __init__(self, cp_id: str, connection: Any, *, silent: bool = False) -> None:
        super().__init__(cp_id, connection, response_timeout=15)
        self.silent = silent
        self.remote_starts: list[dict[str, Any]] = []
        self.remote_stops: list[int] = []
        self.unheard: list[str] = []

    async def route_message(self, raw_msg: str) -> None:
        if self.silent:
            frame = json.loads(raw_msg)
            if frame[0] == 2 and frame[2] in ("RemoteStartTransaction", "UnlockConnector"):
                self.unheard.append(frame[2])
                return
        await super().route_message(raw_msg)

    @on(Action.remote_start_transaction)  # type: ignore[misc]
    async def on_remote_start(self, id_tag: str, **extra: Any) -> Any:
        self.remote_starts.append({"id_tag": id_tag, **extra})
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.accepted)

    @on(Action.remote_stop_transaction)  # type: ignore[misc]
    async def on_remote_stop(self, transaction_id: int) -> Any:
        self.remote_stops.append(transaction_id)
        return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.accepted)

    @on(Action.unlock_connector)  # type: ignore[misc]
    async def on_unlock(self, connector_id: int) -> Any:
        return call_result.UnlockConnector(status=UnlockStatus.unlocked)

    async def status(self, status: str, error_code: str = "NoError") -> None:
        await self.call(
            call.StatusNotification(connector_id=1, error_code=error_code, status=status)
        )


def _basic(cp_id: str) -> dict[str, str]:
    secret = base64.b64encode(f"{cp_id}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {secret}"}


async def _socket(platform: Platform, cp_id: str) -> ClientConnection:
    return await connect(
        f"{platform.gateway_url}/{cp_id}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers=_basic(cp_id),
        open_timeout=10,
    )


class Plugged:
    """A charger connected to the CPO's gateway, booted and Available."""

    def __init__(self, charger: Charger, ws: ClientConnection, task: asyncio.Task[None]) -> None:
        self.charger, self.ws, self.task = charger, ws, task

    async def close(self) -> None:
        await self.ws.close()
        self.task.cancel()


async def _plug(platform: Platform, cp_id: str, *, silent: bool = False) -> Plugged:
    ws = await _socket(platform, cp_id)
    charger = Charger(cp_id, ws, silent=silent)
    task = asyncio.ensure_future(charger.start())
    boot = await charger.call(
        call.BootNotification(charge_point_model="Path-1", charge_point_vendor="Tests")
    )
    assert boot.status == "Accepted", boot
    await charger.status("Available")
    return Plugged(charger, ws, task)


def _ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


async def meter_and_stop(charger: Any, transaction_id: int, start: datetime, id_tag: str) -> None:
    """The charger meters 15,500 Wh at 15 minutes and stops at 20,250 Wh at
    30 minutes (8.25 kWh from a 12,000 Wh start), then is Available."""
    energy = {"measurand": "Energy.Active.Import.Register", "unit": "Wh", "value": "15500"}
    await charger.call(
        call.MeterValues(
            connector_id=1,
            transaction_id=transaction_id,
            meter_value=[
                {"timestamp": _ts(start + timedelta(minutes=15)), "sampledValue": [energy]}
            ],
        )
    )
    stopped = await charger.call(
        call.StopTransaction(
            meter_stop=20_250,
            timestamp=_ts(start + timedelta(minutes=30)),
            transaction_id=transaction_id,
            reason="EVDisconnected",
            id_tag=id_tag,
        )
    )
    assert stopped.id_tag_info["status"] == "Accepted"
    await charger.status("Available")


# --------------------------------------------------------------------------- #
# Setting the scene through both ops APIs
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Site:
    tag: str
    loc: str
    cp_id: str
    tid: str | None


async def _site(r: Roaming, cpo: httpx.AsyncClient, *, tariff: bool = False) -> Site:
    """A CPO location with one EVSE (its connector priced with a fresh tariff
    when asked), a charge point registered for it, and the location in the
    eMSP's copy (pushed)."""
    tag = uuid.uuid4().hex[:6].upper()
    loc, cp_id = f"PATH-{tag}", f"CPP-{tag}"
    tid = f"PT-{tag}" if tariff else None
    if tid:
        priced = _dumps(simple_tariff(tid, country_code=CC, party_id=PID))
        headers = {"content-type": "application/json"}
        _ok(await cpo.put(f"/ops/tariffs/{tid}", content=priced, headers=headers), 200, 201)
    plug = connector("1", tariff_ids=[tid]) if tid else connector("1")
    site = location(
        loc,
        country_code=CC,
        party_id=PID,
        evses=[evse("EVSE1", status="UNKNOWN", connectors=[plug], evse_id=f"DE*CHG*E{tag}")],
    )
    _ok(await cpo.put(f"/ops/locations/{loc}", json=site), 201)
    await _register(cpo, cp_id, loc)
    await until(lambda: _emsp_location(r, loc), f"location {loc} in the eMSP's copy")
    return Site(tag, loc, cp_id, tid)


async def _register(cpo: httpx.AsyncClient, cp_id: str, loc: str) -> None:
    body = {
        "location_id": loc,
        "password": PASSWORD,
        "connectors": [{"ocpp_connector_id": 1, "evse_uid": "EVSE1", "connector_id": "1"}],
    }
    _ok(await cpo.put(f"/ops/charge-points/{cp_id}", json=body), 201)


async def _emsp_token(
    r: Roaming, *, kind: str = "RFID", whitelist: str = "NEVER", push: bool = True
) -> dict[str, Any]:
    """A token the eMSP issues (ops) and, with ``push``, PUTs to the CPO's
    tokens receiver as its token push would."""
    uid = f"PT{uuid.uuid4().hex[:8].upper()}"
    issued = token(uid, country_code="NL", party_id="PEE", type=kind, whitelist=whitelist)
    async with httpx.AsyncClient(timeout=20) as http:
        _ok(
            await http.put(
                f"{r.emsp.base_url}/ops/tokens/{uid}?type={kind}",
                json=issued,
                headers=ops_auth(r.emsp.base_url),
            ),
            201,
        )
        if push:
            resp = await http.put(
                f"{r.cpo.base_url}/ocpi/cpo/2.2.1/tokens/NL/PEE/{uid}?type={kind}",
                json=issued,
                headers=r.emsp_at_cpo,
            )
            _ok(resp, 200, 201)
    return issued


async def _emsp_location(r: Roaming, loc: str) -> dict[str, Any] | None:
    async with httpx.AsyncClient(timeout=10) as http:
        url = f"{r.emsp.base_url}/ocpi/emsp/2.2.1/locations/{CC}/{PID}/{loc}"
        return _data(await http.get(url, headers=r.cpo_at_emsp))


async def _cpo_evse_status(cpo: httpx.AsyncClient, loc: str) -> str:
    data = _data(await cpo.get(f"/ops/locations/{loc}")) or {}
    return str(data["evses"][0]["status"]) if data.get("evses") else ""


async def _both_show(r: Roaming, cpo: httpx.AsyncClient, loc: str, status: str) -> None:
    """Wait until the EVSE has ``status`` in the CPO's view and in the eMSP's copy."""
    seen: dict[str, str] = {}

    async def check() -> bool:
        at_emsp = await _emsp_location(r, loc) or {}
        seen["eMSP"] = at_emsp["evses"][0]["status"] if at_emsp.get("evses") else ""
        seen["CPO"] = await _cpo_evse_status(cpo, loc)
        return seen["eMSP"] == seen["CPO"] == status

    try:
        await until(check, f"{loc} EVSE1 {status} on both sides")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; statuses seen: {seen}") from None


# --------------------------------------------------------------------------- #
# Commands from the eMSP
# --------------------------------------------------------------------------- #


async def _send(r: Roaming, command: str, body: dict[str, Any]) -> dict[str, Any]:
    """The eMSP's ops send; answers {command_id, response_url, response}."""
    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.post(
            f"{r.emsp.base_url}/ops/commands/sent/{CPO_ID}/{command}",
            json=body,
            headers=ops_auth(r.emsp.base_url),
        )
    return _ok(resp)["data"]  # type: ignore[no-any-return]


async def _sent_shows(r: Roaming, command_id: str, status: str) -> dict[str, Any]:
    async def shown() -> dict[str, Any] | None:
        async with httpx.AsyncClient(timeout=10) as http:
            data = _data(
                await http.get(
                    f"{r.emsp.base_url}/ops/commands/sent/{command_id}",
                    headers=ops_auth(r.emsp.base_url),
                )
            )
        return data if data and data["status"] == status else None

    found: dict[str, Any] = await until(shown, f"the eMSP's command {command_id} {status}")
    return found


async def _received(r: Roaming, response_url: str, decided: bool = True) -> dict[str, Any]:
    """The CPO's record of the command the eMSP sent with this response_url
    (found by its response_url in the CPO's namespace, read by the ops API)."""

    async def find() -> dict[str, Any] | None:
        doc = await asyncio.to_thread(
            _mongo(r.cpo)["received_commands"].find_one, {"response_url": response_url}
        )
        if doc is None:
            return None
        async with httpx.AsyncClient(timeout=10) as http:
            shown = _data(
                await http.get(
                    f"{r.cpo.base_url}/ops/commands/received/{doc['_id']}",
                    headers=ops_auth(r.cpo.base_url),
                )
            )
        return shown if shown and (shown.get("result") or not decided) else None

    found: dict[str, Any] = await until(find, f"the CPO's record of {response_url}")
    return found


_CLIENTS: dict[str, MongoClient[dict[str, Any]]] = {}


def _mongo(platform: Platform) -> Database[dict[str, Any]]:
    url = platform.env["OCPI_HUB_MONGO_URL"]
    client = _CLIENTS.get(url) or _CLIENTS.setdefault(url, MongoClient(url))
    return client[platform.namespace.name]


async def _events(
    platform: Platform, topic: str, keep: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """Every event on one of the platform's topics that ``keep`` selects, read
    from the start until the topic has nothing more for 1.5 s."""
    settings = platform.namespace.settings
    consumer = AIOKafkaConsumer(
        settings.topic(topic),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        while batches := await consumer.getmany(timeout_ms=1500):
            for messages in batches.values():
                for m in messages:
                    event = json.loads(m.value or b"{}")
                    if keep(event):
                        found.append(event)
    finally:
        await consumer.stop()
    return found


def _of(event_type: str, command_id: str) -> Callable[[dict[str, Any]], bool]:
    def keep(event: dict[str, Any]) -> bool:
        return bool(
            event.get("event_type") == event_type
            and event.get("payload", {}).get("command_id") == command_id
        )

    return keep


def _log_lines(platform: Platform, process: str, event: str, **fields: str) -> list[dict[str, Any]]:
    out = []
    text = (platform.logs / f"{process}.log").read_text(errors="replace")
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(entry, dict)
            and entry.get("event") == event
            and all(entry.get(k) == v for k, v in fields.items())
        ):
            out.append(entry)
    return out


async def _one_result(r: Roaming, emsp_command_id: str, cpo_command_id: str) -> None:
    """Exactly one result: the CPO decided once, POSTed once, and the eMSP
    recorded one result for the command."""

    async def delivered_once() -> list[dict[str, Any]]:
        return _log_lines(r.cpo, "push", "command_callback_delivered", command_id=cpo_command_id)

    await until(delivered_once, f"the CPO's callback of {cpo_command_id} logged")
    decided = await _events(r.cpo, "ocpi.commands.v1", _of("CommandResultDecided", cpo_command_id))
    assert len(decided) == 1, decided
    delivered = _log_lines(r.cpo, "push", "command_callback_delivered", command_id=cpo_command_id)
    assert len(delivered) == 1, delivered
    received = await _events(
        r.emsp, "ocpi.commands.v1", _of("CommandResultReceived", emsp_command_id)
    )
    assert len({e["event_id"] for e in received}) == 1, received
    posts = [
        line
        for name in ("command_result_received", "command_result_repeated")
        for line in _log_lines(r.emsp, "api", name, command_id=emsp_command_id)
    ]
    assert len(posts) == 1, posts


# --------------------------------------------------------------------------- #
# Sessions and CDRs on both sides
# --------------------------------------------------------------------------- #


async def _cpo_session(r: Roaming, loc: str, status: str) -> dict[str, Any] | None:
    doc = await asyncio.to_thread(
        _mongo(r.cpo)["sessions"].find_one,
        {"session.location_id": loc, "session.status": status},
    )
    return doc["session"] if doc else None


async def _emsp_session(r: Roaming, sid: str, status: str) -> dict[str, Any] | None:
    async with httpx.AsyncClient(timeout=10) as http:
        url = f"{r.emsp.base_url}/ocpi/emsp/2.2.1/sessions/{CC}/{PID}/{sid}"
        data = _data(await http.get(url, headers=r.cpo_at_emsp))
    return data if data and data["status"] == status else None


async def _session_on_both(r: Roaming, loc: str, status: str) -> dict[str, Any]:
    ours: dict[str, Any] = await until(
        lambda: _cpo_session(r, loc, status), f"the CPO's session at {loc} {status}"
    )
    theirs: dict[str, Any] = await until(
        lambda: _emsp_session(r, ours["id"], status), f"session {ours['id']} {status} at the eMSP"
    )
    return theirs


# --------------------------------------------------------------------------- #
# The tests
# --------------------------------------------------------------------------- #


async def test_remote_start_reaches_the_charger_and_ends_in_a_priced_cdr_at_the_emsp(
    roaming: Roaming,
) -> None:
    r = roaming
    async with httpx.AsyncClient(
        base_url=r.cpo.base_url, timeout=20, headers=ops_auth(r.cpo.base_url)
    ) as cpo:
        site = await _site(r, cpo, tariff=True)
        issued = await _emsp_token(r)
        plugged = await _plug(r.cpo, site.cp_id)
        charger = plugged.charger
        try:
            reference = f"REF-{site.tag}"
            sent = await _send(
                r,
                "START_SESSION",
                {
                    "token": issued,
                    "location_id": site.loc,
                    "evse_uid": "EVSE1",
                    "connector_id": "1",
                    "authorization_reference": reference,
                },
            )
            cid, url = sent["command_id"], sent["response_url"]
            assert sent["response"] == {"result": "ACCEPTED", "timeout": TIMEOUT_S}

            shown = await _sent_shows(r, cid, "ACCEPTED")
            assert shown["result"] == "ACCEPTED" and shown["partner_id"] == CPO_ID
            assert charger.remote_starts == [{"id_tag": issued["uid"], "connector_id": 1}]
            held = await _received(r, url)
            assert (held["result"], held["decided_by"]) == ("ACCEPTED", "charger"), held
            assert held["charger_answer"]["charger_status"] == "Accepted"
            assert held["target"]["charge_point_id"] == site.cp_id
            assert held["partner_id"] == EMSP_ID
            await _one_result(r, cid, held["command_id"])

            # The charger starts for the remote start, meters and stops.
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
            started = await charger.call(
                call.StartTransaction(
                    connector_id=1, id_tag=issued["uid"], meter_start=12_000, timestamp=_ts(start)
                )
            )
            assert started.id_tag_info["status"] == "Accepted"
            await charger.status("Charging")
            active = await _session_on_both(r, site.loc, "ACTIVE")
            assert active["auth_method"] == "COMMAND"
            assert active["authorization_reference"] == reference
            assert active["cdr_token"]["uid"] == issued["uid"]

            await meter_and_stop(charger, started.transaction_id, start, issued["uid"])
            done = await _session_on_both(r, site.loc, "COMPLETED")
            assert done["id"] == active["id"]
            assert exact(done["kwh"]) == Decimal("8.25")

            # The CDR, priced with the connector's tariff, at the eMSP.
            async def cdr_at_emsp() -> dict[str, Any] | None:
                async with httpx.AsyncClient(timeout=10) as http:
                    url = f"{r.emsp.base_url}/ocpi/emsp/2.2.1/cdrs/{done['id']}"
                    return _data(await http.get(url, headers=r.cpo_at_emsp))

            cdr = await until(cdr_at_emsp, f"the CDR of {done['id']} at the eMSP")
            want = expected_total(
                simple_tariff(site.tid or "", country_code=CC, party_id=PID),
                Decimal("8.25"),
                Decimal("0.5"),
            )
            assert want["excl_vat"] == Decimal("3.575")  # 0.50 + 8.25 x 0.30 + 0.5 x 1.20
            assert {k: exact(v) for k, v in cdr["total_cost"].items()} == want
            assert [t["id"] for t in cdr["tariffs"]] == [site.tid]
            assert cdr["auth_method"] == "COMMAND"
            assert cdr["authorization_reference"] == reference
            assert cdr["cdr_token"]["uid"] == issued["uid"]
            assert exact(cdr["total_energy"]) == Decimal("8.25")
            mine = _data(await cpo.get(f"/ops/cdrs/{done['id']}"))
            assert mine == cdr
        finally:
            await plugged.close()


async def test_a_silent_charger_times_out_once_and_a_later_session_is_still_taken(
    roaming: Roaming,
) -> None:
    r = roaming
    async with httpx.AsyncClient(
        base_url=r.cpo.base_url, timeout=20, headers=ops_auth(r.cpo.base_url)
    ) as cpo:
        site = await _site(r, cpo)
        # An app user's token the CPO has never seen (the eMSP vouches for it).
        issued = await _emsp_token(r, kind="APP_USER", whitelist="NEVER", push=False)
        plugged = await _plug(r.cpo, site.cp_id, silent=True)
        charger = plugged.charger
        try:
            sent = await _send(
                r, "START_SESSION", {"token": issued, "location_id": site.loc, "evse_uid": "EVSE1"}
            )
            cid, url = sent["command_id"], sent["response_url"]
            assert sent["response"]["result"] == "ACCEPTED"
            shown = await _sent_shows(r, cid, "TIMEOUT")
            assert shown["result"] == "TIMEOUT"
            assert charger.unheard == ["RemoteStartTransaction"]
            held = await _received(r, url)
            assert (held["result"], held["decided_by"]) == ("TIMEOUT", "deadline"), held
            assert held.get("charger_answer") is None, held
            await _one_result(r, cid, held["command_id"])

            # The charger starts after all, with the command's token.
            started = await charger.call(
                call.StartTransaction(
                    connector_id=1,
                    id_tag=issued["uid"],
                    meter_start=0,
                    timestamp=_ts(datetime.now(UTC).replace(microsecond=0)),
                )
            )
            assert started.id_tag_info["status"] == "Accepted"
            taken = await _session_on_both(r, site.loc, "ACTIVE")
            assert taken["cdr_token"]["uid"] == issued["uid"]
            assert taken["auth_method"] == "COMMAND"
        finally:
            await plugged.close()


async def test_a_fault_while_charging_shows_on_both_sides(roaming: Roaming) -> None:
    r = roaming
    async with httpx.AsyncClient(
        base_url=r.cpo.base_url, timeout=20, headers=ops_auth(r.cpo.base_url)
    ) as cpo:
        site = await _site(r, cpo)
        issued = await _emsp_token(r, whitelist="ALWAYS")
        plugged = await _plug(r.cpo, site.cp_id)
        charger = plugged.charger
        try:
            await _both_show(r, cpo, site.loc, "AVAILABLE")
            start = datetime.now(UTC).replace(microsecond=0)
            started = await charger.call(
                call.StartTransaction(
                    connector_id=1, id_tag=issued["uid"], meter_start=0, timestamp=_ts(start)
                )
            )
            assert started.id_tag_info["status"] == "Accepted"
            await charger.status("Charging")
            await _both_show(r, cpo, site.loc, "CHARGING")

            await charger.status("Faulted", "GroundFailure")
            await _both_show(r, cpo, site.loc, "OUTOFORDER")

            await charger.call(
                call.StopTransaction(
                    meter_stop=1_000,
                    timestamp=_ts(start + timedelta(minutes=5)),
                    transaction_id=started.transaction_id,
                    reason="Other",
                )
            )
            await charger.status("Available")
            await _both_show(r, cpo, site.loc, "AVAILABLE")
            await _session_on_both(r, site.loc, "COMPLETED")
        finally:
            await plugged.close()


async def test_the_emsp_stops_a_session_by_command(roaming: Roaming) -> None:
    r = roaming
    async with httpx.AsyncClient(
        base_url=r.cpo.base_url, timeout=20, headers=ops_auth(r.cpo.base_url)
    ) as cpo:
        site = await _site(r, cpo)
        issued = await _emsp_token(r, whitelist="ALWAYS")
        plugged = await _plug(r.cpo, site.cp_id)
        charger = plugged.charger
        try:
            start = datetime.now(UTC).replace(microsecond=0)
            started = await charger.call(
                call.StartTransaction(
                    connector_id=1, id_tag=issued["uid"], meter_start=500, timestamp=_ts(start)
                )
            )
            assert started.id_tag_info["status"] == "Accepted"
            await charger.status("Charging")
            active = await _session_on_both(r, site.loc, "ACTIVE")

            sent = await _send(r, "STOP_SESSION", {"session_id": active["id"]})
            assert sent["response"]["result"] == "ACCEPTED", sent
            await _sent_shows(r, sent["command_id"], "ACCEPTED")
            assert charger.remote_stops == [started.transaction_id]

            # The charger stops as asked. Its clock says ten minutes later: the
            # register cannot rise 2 kWh within the second of the start, and
            # the lifecycle keeps one reading per instant (the higher).
            await charger.call(
                call.StopTransaction(
                    meter_stop=2_500,
                    timestamp=_ts(start + timedelta(minutes=10)),
                    transaction_id=started.transaction_id,
                    reason="Remote",
                )
            )
            await charger.status("Available")
            done = await _session_on_both(r, site.loc, "COMPLETED")
            assert done["id"] == active["id"]
            assert exact(done["kwh"]) == Decimal("2")
            held = await _received(r, sent["response_url"])
            assert held["command"] == "STOP_SESSION" and held["result"] == "ACCEPTED"
            assert held["target"]["session_id"] == active["id"]
        finally:
            await plugged.close()


async def test_a_command_for_a_location_the_cpo_does_not_own_is_refused_and_not_recorded(
    roaming: Roaming,
) -> None:
    r = roaming
    issued = await _emsp_token(r)
    tag = uuid.uuid4().hex[:6].upper()
    # One of the eMSP's own locations, pushed to the CPO: held there, but as a
    # partner's, so not one a command to the CPO can address.
    theirs = f"EMSP-{tag}"
    async with httpx.AsyncClient(timeout=20) as http:
        made = await http.put(
            f"{r.emsp.base_url}/ops/locations/{theirs}",
            json=location(theirs, country_code="NL", party_id="PEE"),
            headers=ops_auth(r.emsp.base_url),
        )
        _ok(made, 200, 201)

        async def held_by_cpo() -> dict[str, Any] | None:
            url = f"{r.cpo.base_url}/ocpi/emsp/2.2.1/locations/NL/PEE/{theirs}"
            return _data(await http.get(url, headers=r.emsp_at_cpo))

        await until(held_by_cpo, f"the eMSP's location {theirs} at the CPO")

        for loc in (theirs, f"NOWHERE-{tag}"):
            resp = await http.post(
                f"{r.emsp.base_url}/ops/commands/sent/{CPO_ID}/START_SESSION",
                json={"token": issued, "location_id": loc, "evse_uid": "EVSE1"},
                headers=ops_auth(r.emsp.base_url),
            )
            body = resp.json()
            assert (resp.status_code, body["status_code"]) == (502, 3001), body
            assert "OCPI 2003" in body["status_message"], body
            assert "data" not in body or not body["data"], body

    # Nothing of either reached the eMSP's log as sent, and the CPO recorded
    # no command for them.
    def about(loc: str) -> Callable[[dict[str, Any]], bool]:
        def keep(event: dict[str, Any]) -> bool:
            request = event.get("payload", {}).get("request") or {}
            return bool(request.get("location_id") in (loc, loc.upper()))

        return keep

    for loc in (theirs, f"NOWHERE-{tag}"):
        assert await _events(r.emsp, "ocpi.commands.v1", about(loc)) == []
        assert await _events(r.cpo, "ocpi.commands.v1", about(loc)) == []


async def test_a_misbehaving_charger_does_not_disturb_another(roaming: Roaming) -> None:
    r = roaming
    async with httpx.AsyncClient(
        base_url=r.cpo.base_url, timeout=20, headers=ops_auth(r.cpo.base_url)
    ) as cpo:
        bad_site = await _site(r, cpo)
        good_site = await _site(r, cpo)
        rogue_token = await _emsp_token(r, whitelist="ALWAYS")
        issued = await _emsp_token(r)

        # The rogue: boots, starts a transaction, sends garbage, drops the line.
        rogue = await _socket(r.cpo, bad_site.cp_id)

        async def exchange(frame: str) -> list[Any]:
            await rogue.send(frame)
            answer: list[Any] = json.loads(await asyncio.wait_for(rogue.recv(), 15))
            return answer

        boot = await exchange(
            json.dumps(
                [2, "b1", "BootNotification", {"chargePointModel": "X", "chargePointVendor": "Y"}]
            )
        )
        assert boot[:2] == [3, "b1"], boot
        started = await exchange(
            json.dumps(
                [2, "s1", "StartTransaction",
                 {"connectorId": 1, "idTag": rogue_token["uid"], "meterStart": 0,
                  "timestamp": _ts(datetime.now(UTC).replace(microsecond=0))}]
            )
        )  # fmt: skip
        assert started[:2] == [3, "s1"] and started[2]["idTagInfo"]["status"] == "Accepted"
        for garbage in (
            '{"not": "ocpp"}',
            '[2, "g1", "Heartbeat"',
            '[2, "g2", "NoSuchAction", {}]',
        ):
            answer = await exchange(garbage)
            assert answer[0] == 4, (garbage, answer)  # a CallError, the connection kept
        await until(lambda: _cpo_session(r, bad_site.loc, "ACTIVE"), "the rogue's session ACTIVE")
        # Mid-transaction: the TCP connection is cut without a close frame.
        rogue.transport.abort()

        plugged = await _plug(r.cpo, good_site.cp_id)
        try:
            sent = await _send(
                r,
                "START_SESSION",
                {"token": issued, "location_id": good_site.loc, "evse_uid": "EVSE1"},
            )
            assert sent["response"]["result"] == "ACCEPTED", sent
            shown = await _sent_shows(r, sent["command_id"], "ACCEPTED")
            assert shown["result"] == "ACCEPTED"
            assert [s["id_tag"] for s in plugged.charger.remote_starts] == [issued["uid"]]
        finally:
            await plugged.close()

        # The rogue's charge point is offline now: a command for it is REJECTED.
        async def offline() -> dict[str, Any] | None:
            sent = await _send(
                r,
                "UNLOCK_CONNECTOR",
                {"location_id": bad_site.loc, "evse_uid": "EVSE1", "connector_id": "1"},
            )
            return sent if sent["response"]["result"] == "REJECTED" else None

        await until(offline, "the rogue's charge point seen offline", within_s=30)
