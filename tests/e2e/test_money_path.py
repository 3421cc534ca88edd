"""The money path between two platforms: we (ZZ-HUB) are the CPO, the peer
(NL-PEE) is the eMSP.

Our ops publish a tariff and a location whose connector references it; the
peer issues a token and pushes it to us; our tariff reaches the peer's
tariffs receiver (the test PUTs it with the token we hold for the peer,
standing in for a tariff push). The token is authorized at our location in
real time by the peer; our charger starts, meters and stops; our session
goes ACTIVE then COMPLETED; the CDR builder issues a priced CDR (checked
against a total computed here from the tariff's own numbers); the CDR is
POSTed to the peer, served by the peer's GET, and reconciled there: no
discrepancy when the peer holds the same tariff, a flagged one when it holds
another version. A Credit CDR follows the same path.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from pymongo import MongoClient

from ocpi_hub.bootstrap import drop_mysql_database, mysql_engine
from projections.mysql.cdrs import CdrRowQuery
from tests.cdr_objects import priced_location, simple_tariff
from tests.e2e.conftest import Linked, auth, ops_auth, sealed_token, wait_for_log
from tests.e2e.test_walking_skeleton import wait_for
from tests.token_objects import token

SESSIONS = "/ocpi/cpo/2.2.1/sessions"
PEER_CDRS = "/ocpi/emsp/2.2.1/cdrs"


def _ok(resp: httpx.Response, http: int | None = 200) -> dict[str, Any]:
    assert http is None or resp.status_code == http, resp.text
    body: dict[str, Any] = resp.json()
    assert body["status_code"] == 1000, body
    return body


def exact(value: Any) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def expected_total(tariff: dict[str, Any], kwh: Decimal, hours: Decimal) -> dict[str, Decimal]:
    """The price of a session by the tariff's own numbers (one element, no
    restrictions, step size 1): the flat fee, plus energy and time."""
    [element] = tariff["elements"]
    excl = incl = Decimal(0)
    for component in element["price_components"]:
        volume = {"FLAT": Decimal(1), "ENERGY": kwh, "TIME": hours}[component["type"]]
        cost = volume * Decimal(component["price"])
        excl += cost
        incl += cost * (1 + Decimal(component["vat"]) / 100)
    return {"excl_vat": excl, "incl_vat": incl}


def charge_a_session(
    linked: Linked, *, energy_price: str = "0.30", reprice_mid_session: bool = False
) -> dict[str, Any]:
    """Everything up to our completed session; returns what the test needs.
    ``reprice_mid_session``: our ops publish a dearer version of the tariff
    while the car charges (it must not price this session)."""
    us, peer = linked.us.base_url, linked.peer.base_url
    tag = uuid.uuid4().hex[:6].upper()
    tid, loc, sid, uid = f"T-{tag}", f"LOC-{tag}", f"OS-{tag}", f"MP{tag}"

    # Our ops: a tariff and a location whose connector references it.
    ours = simple_tariff(tid)
    _ok(
        httpx.put(
            f"{us}/ops/tariffs/{tid}",
            json=json.loads(_dumps(ours)),
            timeout=10,
            headers=ops_auth(us),
        ),
        None,
    )
    site = priced_location(loc, tariff_ids=[tid])
    _ok(
        httpx.put(
            f"{us}/ops/locations/{loc}",
            json=site,
            timeout=10,
            headers=ops_auth(us),
        ),
        None,
    )

    # The peer issues a token (authorized in real time only) and pushes it to us.
    issued = token(uid, country_code="NL", party_id="PEE", whitelist="NEVER")
    _ok(
        httpx.put(
            f"{peer}/ops/tokens/{uid}",
            json=issued,
            timeout=10,
            headers=ops_auth(peer),
        ),
        201,
    )
    wait_for(
        lambda: (
            httpx.get(
                f"{us}/ocpi/cpo/2.2.1/tokens/NL/PEE/{uid}", headers=linked.peer_token, timeout=10
            ).status_code
            == 200
        ),
        "the peer's token at our receiver (its push)",
    )

    # Our tariff reaches the peer's receiver by our push; the peer then
    # holds a later version (as if we had sent one more) with
    # ``energy_price``: the same price, or another (it must flag the CDR).
    tariff_at_peer = f"{peer}/ocpi/emsp/2.2.1/tariffs/ZZ/HUB/{tid}"
    ours_at_peer = auth(sealed_token(linked.us, linked.peer_id))
    wait_for(
        lambda: httpx.get(tariff_at_peer, headers=ours_at_peer, timeout=10).status_code == 200,
        "our tariff pushed to the peer",
    )
    at_peer = simple_tariff(tid, energy_price=energy_price, at="2026-05-02T00:00:00Z")
    _ok(
        httpx.put(
            tariff_at_peer,
            json=json.loads(_dumps(at_peer)),
            headers=ours_at_peer,
            timeout=10,
        ),
        200,
    )

    # The driver presents the token at our charger: the peer allows it.
    decided = _ok(
        httpx.post(
            f"{us}/ops/authorize",
            json={"uid": uid, "location_id": loc, "evse_uids": ["EVSE1"]},
            timeout=20,
            headers=ops_auth(us),
        )
    )["data"]
    assert decided["allowed"] == "ALLOWED", decided
    reference = decided["authorization_reference"]

    # Our CDRs reach the peer from the moment the lane is ready.
    wait_for_log(linked.us.logs / "push.log", "cdrs_push_lane_ready", linked.peer_id, timeout=60)

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    ids = {
        "location_id": loc,
        "evse_uid": "EVSE1",
        "connector_id": "1",
        "session_id": sid,
        "transaction_id": f"TX-{tag}",
    }
    cdr_token = {k: issued[k] for k in ("uid", "type", "country_code", "party_id", "contract_id")}

    def record(kind: str, body: dict[str, Any]) -> None:
        resp = httpx.post(
            f"{us}/ops/chargers/transactions/{kind}",
            json={**ids, **body},
            timeout=10,
            headers=ops_auth(us),
        )
        _ok(resp)

    def at(minutes: int) -> str:
        return (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")

    record(
        "started",
        {"token": cdr_token, "authorized": True, "auth_method": "AUTH_REQUEST",
         "authorization_reference": reference, "meter_start_wh": 12_000, "at": at(0)},
    )  # fmt: skip
    record("meter-values", {"meter_wh": 15_500, "at": at(15)})

    def listed(status: str) -> dict[str, Any] | None:
        resp = httpx.get(
            f"{us}{SESSIONS}",
            params={"date_from": "2026-01-01T00:00:00Z"},
            headers=linked.peer_token,
            timeout=10,
        )
        found = [s for s in _ok(resp)["data"] if s["id"] == sid]
        return found[0] if found and found[0]["status"] == status else None

    wait_for(lambda: listed("ACTIVE"), "our session ACTIVE")
    if reprice_mid_session:
        # The session started at ``start`` (up to a second ahead of the clock,
        # so after the first version was recorded); the dearer version must be
        # recorded after it, whatever the speed of the machine.
        while datetime.now(UTC) <= start + timedelta(milliseconds=500):
            time.sleep(0.05)
        dearer = simple_tariff(tid, energy_price="0.99", at="2026-05-03T00:00:00Z")
        _ok(
            httpx.put(
                f"{us}/ops/tariffs/{tid}",
                json=json.loads(_dumps(dearer)),
                timeout=10,
                headers=ops_auth(us),
            )
        )

        def now_dearer() -> bool:
            got = (
                httpx.get(
                    f"{us}/ops/tariffs/{tid}",
                    timeout=10,
                    headers=ops_auth(us),
                )
                .json()
                .get("data")
                or {}
            )
            prices = [c["price"] for e in got.get("elements", []) for c in e["price_components"]]
            return 0.99 in prices

        wait_for(now_dearer, "the dearer tariff version in our view")
    record("stopped", {"meter_stop_wh": 20_250, "at": at(30), "reason": "EVDisconnected"})
    done = wait_for(lambda: listed("COMPLETED"), "our session COMPLETED")
    assert exact(done["kwh"]) == Decimal("8.25")
    return {"sid": sid, "tid": tid, "ours": ours, "reference": reference, "uid": uid}


def _dumps(data: Any) -> str:
    """JSON text with Decimals written as the numbers they are."""
    return json.dumps(data, default=lambda d: float(d) if d % 1 else int(d))


def our_cdr(linked: Linked, cdr_id: str) -> dict[str, Any]:
    def issued() -> dict[str, Any] | None:
        resp = httpx.get(
            f"{linked.us.base_url}/ops/cdrs/{cdr_id}",
            timeout=10,
            headers=ops_auth(linked.us.base_url),
        )
        data: dict[str, Any] | None = resp.json().get("data") if resp.status_code == 200 else None
        return data

    found: dict[str, Any] = wait_for(issued, f"our CDR {cdr_id}")
    return found


def at_peer(linked: Linked, cdr_id: str) -> dict[str, Any]:
    headers = auth(sealed_token(linked.us, linked.peer_id))
    url = f"{linked.peer.base_url}{PEER_CDRS}/{cdr_id}"

    def pushed() -> dict[str, Any] | None:
        resp = httpx.get(url, headers=headers, timeout=10)
        data: dict[str, Any] | None = resp.json().get("data") if resp.status_code == 200 else None
        return data

    found: dict[str, Any] = wait_for(pushed, f"CDR {cdr_id} at the peer")
    return found


def reconciliation_at_peer(linked: Linked, cdr_id: str, **params: Any) -> dict[str, Any]:
    def row() -> dict[str, Any] | None:
        resp = httpx.get(
            f"{linked.peer.base_url}/ops/cdrs/reconciliation",
            params=params,
            timeout=10,
            headers=ops_auth(linked.peer.base_url),
        )
        rows = [r for r in _ok(resp)["data"] if r["cdr_key"] == f"ZZ/HUB/{cdr_id.upper()}"]
        return rows[0] if rows and rows[0]["reconciliation"] else None

    found: dict[str, Any] = wait_for(row, f"the peer's reconciliation of {cdr_id}")
    return found


def listed_headers(linked: Linked) -> httpx.Headers:
    resp = httpx.get(
        f"{linked.us.base_url}/ocpi/cpo/2.2.1/cdrs",
        params={"limit": 1},
        headers=linked.peer_token,
        timeout=10,
    )
    return resp.headers


def test_a_charging_session_is_billed_end_to_end(linked: Linked) -> None:
    run = charge_a_session(linked, reprice_mid_session=True)
    sid = run["sid"]
    cdr = our_cdr(linked, sid)
    # Priced with the tariff as it was at session start, not the version
    # published while the car was charging.
    [sealed] = cdr["tariffs"]
    energy = [c for c in sealed["elements"][0]["price_components"] if c["type"] == "ENERGY"]
    assert [c["price"] for c in energy] == [0.3]

    want = expected_total(run["ours"], Decimal("8.25"), Decimal("0.5"))
    assert {k: exact(v) for k, v in cdr["total_cost"].items()} == want
    assert want["excl_vat"] == Decimal("3.575")  # 0.50 + 8.25 x 0.30 + 0.5 x 1.20
    assert cdr["id"] == cdr["session_id"] == sid
    assert cdr["authorization_reference"] == run["reference"]
    assert cdr["auth_method"] == "AUTH_REQUEST"
    assert cdr["cdr_token"]["uid"] == run["uid"]
    assert cdr["cdr_location"]["evse_uid"] == "EVSE1"
    assert [t["id"] for t in cdr["tariffs"]] == [run["tid"]]
    assert exact(cdr["total_energy"]) == Decimal("8.25")
    assert exact(cdr["total_time"]) == Decimal("0.5")

    # Our Sender interface lists it to the peer (the eMSP of its token).
    listed = _ok(
        httpx.get(
            f"{linked.us.base_url}/ocpi/cpo/2.2.1/cdrs",
            params={"date_from": "2026-01-01T00:00:00Z"},
            headers=linked.peer_token,
            timeout=10,
        )
    )
    assert cdr in listed["data"]
    assert int(listed_headers(linked)["X-Total-Count"]) >= 1

    # POSTed to the peer (the eMSP of the token), served by the URL its
    # POST answer pointed at, and reconciled there without a discrepancy.
    assert at_peer(linked, sid) == cdr
    row = reconciliation_at_peer(linked, sid)
    result = row["reconciliation"]
    assert (result["tariff_source"], result["discrepancy"]) == ("held", False), row
    assert Decimal(result["expected_excl_vat"]) == want["excl_vat"]
    assert Decimal(result["difference"]) == 0

    # The same CDR posted again is refused (CDRs are immutable) and the
    # Location header of a POST names the peer's GET.
    ours_at_peer = auth(sealed_token(linked.us, linked.peer_id))
    again = httpx.post(f"{linked.peer.base_url}{PEER_CDRS}", json=cdr, headers=ours_at_peer)
    assert again.json()["status_code"] == 2001, again.text
    assert "received before" in again.json()["status_message"]

    # A Credit CDR: total_cost negated, the original untouched, also pushed.
    credit = _ok(
        httpx.post(
            f"{linked.us.base_url}/ops/cdrs/{sid}/credit",
            timeout=10,
            headers=ops_auth(linked.us.base_url),
        )
    )["data"]
    assert credit["credit"] is True and credit["credit_reference_id"] == sid
    assert {k: exact(v) for k, v in credit["total_cost"].items()} == {
        k: -v for k, v in want.items()
    }
    assert our_cdr(linked, sid) == cdr
    assert at_peer(linked, f"{sid}-C")["total_cost"] == credit["total_cost"]
    twice = httpx.post(
        f"{linked.us.base_url}/ops/cdrs/{sid}/credit",
        timeout=10,
        headers=ops_auth(linked.us.base_url),
    )
    assert twice.json()["status_code"] == 2001


def test_the_peer_flags_a_cdr_priced_with_another_tariff_version(linked: Linked) -> None:
    run = charge_a_session(linked, energy_price="0.40")
    sid = run["sid"]
    cdr = our_cdr(linked, sid)
    assert exact(cdr["total_cost"]["excl_vat"]) == Decimal("3.575")
    at_peer(linked, sid)
    row = reconciliation_at_peer(linked, sid, only_discrepancies="true")
    result = row["reconciliation"]
    assert result["discrepancy"] is True
    # The peer's version: 0.50 + 8.25 x 0.40 + 0.5 x 1.20 = 4.40.
    assert Decimal(result["expected_excl_vat"]) == Decimal("4.4")
    assert Decimal(result["difference"]) == Decimal("-0.825")

    # The CLI report of the peer shows it too.
    out = linked.peer.run("cdrs", "reconcile-report", "--only-discrepancies")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert f"ZZ/HUB/{sid.upper()}" in [r.get("cdr_key") for r in lines]
    assert lines[-1]["discrepancies"] >= 1

    # Our MySQL cdrs row holds the money as exact DECIMALs.
    engine = mysql_engine(linked.us.namespace.settings)
    try:
        rows = CdrRowQuery(engine)
        row_of_ours = wait_for(lambda: rows.get(f"ZZ/HUB/{sid.upper()}"), "our MySQL cdrs row")
    finally:
        engine.dispose()
    assert row_of_ours["total_cost_excl_vat"] == Decimal("3.575")
    assert row_of_ours["total_energy"] == Decimal("8.25")

    # A replay rebuilds every view, the CDR views and histories included,
    # equal to the live ones (on both platforms), once the peer has all of
    # this session (its session pushes run on their own lane).
    def session_at_peer() -> bool:
        resp = httpx.get(
            f"{linked.peer.base_url}/ocpi/emsp/2.2.1/sessions/ZZ/HUB/{sid}",
            headers=auth(sealed_token(linked.us, linked.peer_id)),
            timeout=10,
        )
        return resp.status_code == 200 and resp.json()["data"]["status"] == "COMPLETED"

    wait_for(session_at_peer, "our completed session at the peer")
    for side in (linked.us, linked.peer):
        into = f"{side.namespace.name}_cdrreplay"
        try:
            result = side.run("replay", "--into", into, "--compare")
            assert result.returncode == 0, result.stdout + result.stderr
            report = json.loads(result.stdout.strip().splitlines()[-1])
            assert report["differences"] == []
        finally:
            with MongoClient(side.namespace.settings.mongo_url) as client:
                client.drop_database(into)
            drop_mysql_database(side.namespace.settings, into)
