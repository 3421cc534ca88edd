"""Sessions between two platforms over HTTP.

(a) The peer (NL-PEE), as CPO, PUTs a session at our eMSP receiver and
PATCHes it twice: charging periods are appended; we serve the folded session.
(b) Our own charger (the ops charger simulator) starts a transaction, meters,
and stops: our session goes ACTIVE then COMPLETED with the energy the meter
advanced, is listed by our Sender interface to the eMSP that owns the token
(``date_from`` required), and is a row of the MySQL ``sessions`` table.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.conftest import Linked
from tests.ocpi_sessions import period, session

RECEIVER = "/ocpi/emsp/2.2.1/sessions/NL/PEE"


def test_the_peer_puts_and_patches_a_session_at_our_receiver(linked: Linked) -> None:
    sid = f"PS-{uuid.uuid4().hex[:8]}"
    url = f"{linked.us.base_url}{RECEIVER}/{sid}"
    headers = linked.peer_token
    body = session(
        sid,
        country_code="NL",
        party_id="PEE",
        at="2026-06-01T10:00:00Z",
        kwh=1.5,
        charging_periods=[period("2026-06-01T10:00:00Z", 1.5)],
    )
    put = httpx.put(url, json=body, headers=headers, timeout=10)
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
    missing = httpx.get(f"{url}-NOPE", headers=headers, timeout=10)
    assert (missing.status_code, missing.json()["status_code"]) == (404, 2001)
