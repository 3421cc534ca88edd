"""Sessions between two platforms over HTTP.

(a) The peer (NL-PEE), as CPO, PUTs a session at our eMSP receiver and
PATCHes it twice: charging periods are appended; we serve the folded session.
(b) Our own charger (the ops charger simulator) starts a transaction, meters,
and stops: our session goes ACTIVE then COMPLETED with the energy the meter
advanced, is listed by our Sender interface to the eMSP that owns the token
(``date_from`` required), and is a row of the MySQL ``sessions`` table.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import httpx
from pymongo import MongoClient

from ocpi_hub.bootstrap import drop_mysql_database, mysql_engine
from projections.mysql.sessions import SessionRowQuery
from tests.e2e.conftest import Linked, auth, ops_auth, sealed_token, wait_for_log
from tests.e2e.test_walking_skeleton import wait_for
from tests.ocpi_objects import location
from tests.ocpi_sessions import period, session
from tests.token_objects import token as token_object

RECEIVER = "/ocpi/emsp/2.2.1/sessions/NL/PEE"


def issue_our_token(linked: Linked) -> dict[str, Any]:
    """A token our ops issue now, as a ``cdr_token``: a session or CDR the
    peer sends us must bill a token we issued (we are the eMSP here)."""
    uid = f"OURS-{uuid.uuid4().hex[:6]}"
    issued = token_object(uid, country_code="ZZ", party_id="HUB")
    made = httpx.put(
        f"{linked.us.base_url}/ops/tokens/{uid}",
        json=issued,
        timeout=10,
        headers=ops_auth(linked.us.base_url),
    )
    assert made.json()["status_code"] == 1000, made.text
    return {k: issued[k] for k in ("country_code", "party_id", "uid", "type", "contract_id")}


def put_once_token_known(url: str, body: dict[str, Any], linked: Linked) -> httpx.Response:
    """The peer's PUT of a session billing a token we just issued, sent
    again while our token view does not show that token yet (2004)."""

    def put_session() -> list[httpx.Response]:
        resp = httpx.put(url, json=body, headers=linked.peer_token, timeout=10)
        return [] if resp.json()["status_code"] == 2004 else [resp]

    [put] = wait_for(put_session, "our token known to the sessions receiver")
    return put


def test_the_peer_puts_and_patches_a_session_at_our_receiver(linked: Linked) -> None:
    sid = f"PS-{uuid.uuid4().hex[:8]}"
    url = f"{linked.us.base_url}{RECEIVER}/{sid}"
    headers = linked.peer_token
    ours = issue_our_token(linked)
    body = session(
        sid,
        country_code="NL",
        party_id="PEE",
        at="2026-06-01T10:00:00Z",
        kwh=1.5,
        charging_periods=[period("2026-06-01T10:00:00Z", 1.5)],
        cdr_token=ours,
    )
    put = put_once_token_known(url, body, linked)
    assert (put.status_code, put.json()["status_code"]) == (201, 1000), put.text
    for minute, kwh in ((15, 2.25), (30, 1)):
        patch = {
            "kwh": 1.5 + (2.25 if minute >= 15 else 0) + (1 if minute >= 30 else 0),
            "charging_periods": [period(f"2026-06-01T10:{minute:02d}:00Z", kwh)],
            "last_updated": f"2026-06-01T10:{minute + 5:02d}:00Z",
        }
        resp = httpx.patch(url, json=patch, headers=headers, timeout=10)
        assert resp.json()["status_code"] == 1000, resp.text
    got = httpx.get(url, headers=headers, timeout=10)
    assert got.status_code == 200, got.text
    served: dict[str, Any] = got.json()["data"]
    assert [p["start_date_time"] for p in served["charging_periods"]] == [
        "2026-06-01T10:00:00Z",
        "2026-06-01T10:15:00Z",
        "2026-06-01T10:30:00Z",
    ]
    assert served["kwh"] == 4.75
    assert served["last_updated"] == "2026-06-01T10:35:00Z"
    # Another party's session cannot be written with the peer's token.
    other = httpx.put(
        f"{linked.us.base_url}/ocpi/emsp/2.2.1/sessions/DE/XYZ/{sid}",
        json=session(sid, country_code="DE", party_id="XYZ"),
        headers=headers,
        timeout=10,
    )
    assert other.json()["status_code"] == 2001
    # A session of a token we never issued, or of another eMSP's, is refused.
    strangers = [
        {**ours, "uid": "NEVER-ISSUED"},
        {**ours, "country_code": "DE", "party_id": "MSP"},
    ]
    for stranger, code in zip(strangers, (2004, 2001), strict=True):
        refused = httpx.put(
            f"{url}-X", json={**body, "id": f"{sid}-X", "cdr_token": stranger},
            headers=headers, timeout=10,
        )  # fmt: skip
        assert refused.json()["status_code"] == code, refused.text
    missing = httpx.get(f"{url}-NOPE", headers=headers, timeout=10)
    assert (missing.status_code, missing.json()["status_code"]) == (404, 2001)


SENDER = "/ocpi/cpo/2.2.1/sessions"


def test_our_charger_makes_our_session_listed_and_in_mysql(linked: Linked) -> None:
    us = linked.us.base_url
    loc = f"SIM-{uuid.uuid4().hex[:6]}"
    sid = f"OS-{uuid.uuid4().hex[:8]}"
    site = location(loc, country_code="ZZ", party_id="HUB", at="2026-06-02T07:00:00Z")
    made = httpx.put(
        f"{us}/ops/locations/{loc}",
        json=site,
        timeout=10,
        headers=ops_auth(us),
    )
    assert made.json()["status_code"] == 1000, made.text
    ids = {
        "location_id": loc,
        "evse_uid": "EVSE1",
        "connector_id": "1",
        "session_id": sid,
        "transaction_id": "TX-1",
    }
    token = {
        "uid": "RFID-E2E",
        "type": "RFID",
        "country_code": "NL",
        "party_id": "PEE",
        "contract_id": "NL-PEE-E2E",
    }
    # The peer (the eMSP) issued the driver's token: it takes only sessions
    # of its own tokens.
    issued = {
        **token_object("RFID-E2E", country_code="NL", party_id="PEE"),
        "contract_id": "NL-PEE-E2E",
    }
    at_peer = httpx.put(
        f"{linked.peer.base_url}/ops/tokens/RFID-E2E",
        json=issued,
        timeout=10,
        headers=ops_auth(linked.peer.base_url),
    )
    assert at_peer.json()["status_code"] == 1000, at_peer.text

    def record(kind: str, body: dict[str, Any]) -> None:
        resp = httpx.post(
            f"{us}/ops/chargers/transactions/{kind}",
            json={**ids, **body},
            timeout=10,
            headers=ops_auth(us),
        )
        assert resp.json()["status_code"] == 1000, resp.text

    # An unknown connector is refused and writes nothing.
    refused = httpx.post(
        f"{us}/ops/chargers/transactions/started",
        json={**ids, "connector_id": "99", "token": token, "authorized": True,
              "auth_method": "WHITELIST", "meter_start_wh": 0, "at": "2026-06-02T08:00:00Z"},
        timeout=10,
    headers=ops_auth(us), )  # fmt: skip
    assert refused.json()["status_code"] == 2003

    # Our sessions are pushed to the token's eMSP (the peer) from the moment
    # the lane is ready.
    wait_for_log(linked.us.logs / "push.log", "sessions_push_lane_ready", linked.peer_id)
    record(
        "started",
        {"token": token, "authorized": True, "auth_method": "WHITELIST",
         "meter_start_wh": 12_000, "at": "2026-06-02T08:00:00Z"},
    )  # fmt: skip
    record("meter-values", {"meter_wh": 15_500, "at": "2026-06-02T08:15:00Z"})
    record("meter-values", {"meter_wh": 15_500, "at": "2026-06-02T08:15:00Z"})  # duplicate

    headers = linked.peer_token
    params = {"date_from": "2026-06-01T00:00:00Z"}

    def listed(status: str) -> dict[str, Any] | None:
        resp = httpx.get(f"{us}{SENDER}", params=params, headers=headers, timeout=10)
        assert resp.json()["status_code"] == 1000, resp.text
        found = [s for s in resp.json()["data"] if s["id"] == sid]
        return found[0] if found and found[0]["status"] == status else None

    def active_with_energy() -> dict[str, Any] | None:
        found = listed("ACTIVE")
        return found if found and found["kwh"] == 3.5 else None

    active = wait_for(active_with_energy, "our session ACTIVE with 3.5 kWh")
    assert active["country_code"] == "ZZ" and active["party_id"] == "HUB"
    assert active["start_date_time"] == "2026-06-02T08:00:00Z"

    record(
        "stopped",
        {"meter_stop_wh": 20_250, "at": "2026-06-02T08:30:00Z", "reason": "EVDisconnected"},
    )
    done = wait_for(lambda: listed("COMPLETED"), "our session COMPLETED")
    assert done["kwh"] == 8.25
    assert done["end_date_time"] == "2026-06-02T08:30:00Z"
    assert [p["start_date_time"] for p in done["charging_periods"]] == [
        "2026-06-02T08:00:00Z",
        "2026-06-02T08:15:00Z",
    ]

    # The peer, as the token's eMSP, got it pushed: PUT, then PATCHes
    # (periods appended), ending COMPLETED.
    at_peer = f"{linked.peer.base_url}/ocpi/emsp/2.2.1/sessions/ZZ/HUB/{sid}"
    our_token_at_peer = auth(sealed_token(linked.us, linked.peer_id))

    def pushed() -> dict[str, Any] | None:
        resp = httpx.get(at_peer, headers=our_token_at_peer, timeout=10)
        data = resp.json().get("data") if resp.status_code == 200 else None
        return data if data and data["status"] == "COMPLETED" else None

    assert wait_for(pushed, "our session pushed to the peer") == done

    # date_from is required by the Sender interface.
    bare = httpx.get(f"{us}{SENDER}", headers=headers, timeout=10)
    assert bare.json()["status_code"] == 2001

    # The MySQL sessions table has the row, kWh as an exact DECIMAL.
    engine = mysql_engine(linked.us.namespace.settings)
    try:
        rows = SessionRowQuery(engine)

        def completed_row() -> dict[str, Any] | None:
            found = rows.get(f"ZZ/HUB/{sid.upper()}")
            return found if found and found["status"] == "COMPLETED" else None

        row = wait_for(completed_row, "the MySQL sessions row")
    finally:
        engine.dispose()
    assert row["kwh"] == Decimal("8.25")
    assert (row["location_id"], row["evse_uid"], row["token_uid"]) == (loc, "EVSE1", "RFID-E2E")

    # Both session views are rebuilt by replay, equal to the live ones.
    into = f"{linked.us.namespace.name}_sessreplay"
    try:
        result = linked.us.run("replay", "--into", into, "--compare")
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["differences"] == []
    finally:
        with MongoClient(linked.us.namespace.settings.mongo_url) as client:
            client.drop_database(into)
        drop_mysql_database(linked.us.namespace.settings, into)
