"""Unknown fields end to end between two platforms (docs/adr/0039 §1): what
a party sends beyond the spec's fields is accepted, recorded, kept in the
views and passed on as received, at every level of the object.

(a) A location made at the peer (NL-PEE, through its ops API, which follows
the same rule) with fields of its own at the top and inside an EVSE, a
connector and a nested object, reaches us by the peer's push and is served
back by our Receiver GET with every one of them; a PATCH at the peer that
adds one to an EVSE reaches us too, the others kept.
(b) The peer, as CPO, PUTs a session at our receiver with fields of its own
(top, token, charging period) and PATCHes another in: our GET serves all.
(c) The peer POSTs a CDR with fields of its own (top and cdr_location): the
GET its answer names serves them.

The unit tier has the model-level cases: tests/unit/test_unknown_fields.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.cdr_objects import issued_cdr
from tests.e2e.conftest import Linked, ops_auth
from tests.e2e.test_locations_roaming import at_us, ops_put, peer_site, stamp
from tests.e2e.test_sessions import issue_our_token, put_once_token_known
from tests.e2e.test_walking_skeleton import wait_for
from tests.ocpi_sessions import period, session

# A value of every JSON kind; the number has more decimals than we would
# send of our own, and is passed on as the peer sent it.
PEER_NOTE = {"rating": 4.5, "tags": ["covered", "24/7"], "price_hint": 0.123456789, "ok": True}


def test_a_peers_location_keeps_its_own_fields_through_push_and_our_get(
    linked: Linked,
) -> None:
    loc = f"XF-{uuid.uuid4().hex[:6]}"
    body = peer_site(loc, 0, ("E1", "E2"))
    body["x_peer_note"] = PEER_NOTE
    body["operator"] = {"name": "Peer Charging", "x_operator_ref": "OP-7"}
    body["evses"][0]["x_floor"] = -1
    body["evses"][0]["connectors"][0]["x_plug_colour"] = "blue"
    ops_put(linked, loc, body)

    def pushed() -> dict[str, Any] | None:
        got = at_us(linked, loc)
        return got if got and "x_peer_note" in got else None

    served = wait_for(pushed, "the peer's location with its own fields at our receiver")
    assert served["x_peer_note"] == PEER_NOTE
    assert served["operator"] == {"name": "Peer Charging", "x_operator_ref": "OP-7"}
    e1, e2 = served["evses"]
    assert e1["x_floor"] == -1 and "x_floor" not in e2
    assert e1["connectors"][0]["x_plug_colour"] == "blue"
    # A connector as its own object, as our GET of it serves it.
    assert at_us(linked, f"{loc}/E1/1")["x_plug_colour"] == "blue"  # type: ignore[index]

    patched = httpx.patch(
        f"{linked.peer.base_url}/ops/locations/{loc}/E2",
        json={"status": "CHARGING", "x_bay": "B7", "last_updated": stamp(5)},
        timeout=10,
        headers=ops_auth(linked.peer.base_url),
    )
    assert patched.json()["status_code"] == 1000, patched.text

    def patch_arrived() -> dict[str, Any] | None:
        got = at_us(linked, f"{loc}/E2")
        return got if got and got.get("x_bay") == "B7" else None

    e2_now = wait_for(patch_arrived, "the peer's EVSE PATCH with its own field at our receiver")
    assert e2_now["status"] == "CHARGING"
    whole = at_us(linked, loc)
    assert whole is not None
    assert whole["x_peer_note"] == PEER_NOTE and whole["evses"][0]["x_floor"] == -1


def test_a_peers_session_keeps_its_own_fields_at_our_receiver(linked: Linked) -> None:
    sid = f"XS-{uuid.uuid4().hex[:8]}"
    url = f"{linked.us.base_url}/ocpi/emsp/2.2.1/sessions/NL/PEE/{sid}"
    headers = linked.peer_token
    first = period("2026-06-01T10:00:00Z", 1.5)
    first["x_meter_serial"] = "M-1234"
    body = session(
        sid,
        country_code="NL",
        party_id="PEE",
        at="2026-06-01T10:00:00Z",
        kwh=1.5,
        charging_periods=[first],
        cdr_token={**issue_our_token(linked), "x_fleet": "north"},
        x_vehicle={"vin": "WVWZZZ1JZXW000001", "battery_kwh": 77.4},
    )
    put = put_once_token_known(url, body, linked)
    assert (put.status_code, put.json()["status_code"]) == (201, 1000), put.text
    patch = {"kwh": 2.0, "x_soc": 81, "last_updated": "2026-06-01T10:20:00Z"}
    resp = httpx.patch(url, json=patch, headers=headers, timeout=10)
    assert resp.json()["status_code"] == 1000, resp.text

    got = httpx.get(url, headers=headers, timeout=10)
    assert got.status_code == 200, got.text
    served = got.json()["data"]
    assert served["x_vehicle"] == {"vin": "WVWZZZ1JZXW000001", "battery_kwh": 77.4}
    assert served["x_soc"] == 81 and served["kwh"] == 2.0
    assert served["cdr_token"]["x_fleet"] == "north"
    assert served["charging_periods"][0]["x_meter_serial"] == "M-1234"


def test_a_peers_cdr_keeps_its_own_fields_at_our_receiver(linked: Linked) -> None:
    cid = f"XC-{uuid.uuid4().hex[:8]}"
    # A CDR as our own builder makes one, made the peer's: its party, its id,
    # a token we issued, the embedded tariff its own.
    cdr = issued_cdr(datetime(2026, 6, 2, 9, tzinfo=UTC)).payload.cdr
    peer = {"country_code": "NL", "party_id": "PEE"}
    cdr = {
        **cdr,
        **peer,
        "id": cid,
        "session_id": cid,
        "cdr_token": issue_our_token(linked),
        "tariffs": [{**t, **peer} for t in cdr["tariffs"]],
        "cdr_location": {**cdr["cdr_location"], "x_site_code": "AMS-12"},
        "x_invoice_ref": {"number": "INV-7", "lines": [1, 2]},
    }
    posted = httpx.post(
        f"{linked.us.base_url}/ocpi/emsp/2.2.1/cdrs", json=cdr, headers=linked.peer_token
    )
    assert posted.json()["status_code"] == 1000, posted.text
    got = httpx.get(posted.headers["Location"], headers=linked.peer_token, timeout=10)
    assert got.status_code == 200, got.text
    served = got.json()["data"]
    assert served["x_invoice_ref"] == {"number": "INV-7", "lines": [1, 2]}
    assert served["cdr_location"]["x_site_code"] == "AMS-12"
    assert served["id"] == cid
