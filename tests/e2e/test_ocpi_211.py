"""Two platforms that speak different OCPI versions (issue 16, item 1;
docs/adr/0045): ours offers 2.1.1 and 2.2.1, the other one is pinned to
2.1.1 (``OCPI_HUB_OCPI_VERSIONS=2.1.1``), party NL-OLD, a CPO to us. The
handshake settles on 2.1.1 both ways (raw tokens, 2.1.1 credentials); its
location reaches us by push and by a pull sync, in 2.1.1 on the wire and
in our model in our log; our token reaches it by push; each side reads
the other's Sender interface in 2.1.1. Every request between the two goes
over HTTP with the tokens the registration handed out."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ocpi_hub.settings import Settings
from tests.e2e.conftest import (
    Platform,
    listed,
    ops_auth,
    pinned_partner,
    sealed_token,
    wait_for_log,
)
from tests.e2e.pinned_commands import recorded_result, start_session_at
from tests.e2e.test_walking_skeleton import wait_for
from tests.ocpi_objects import evse, location
from tests.tariff_objects import tariff_json
from tests.token_objects import token


def raw(token: str) -> dict[str, str]:
    """OCPI 2.1.1's Authorization header: the token as it is."""
    return {"Authorization": "Token " + token}


@dataclass(frozen=True)
class Pair:
    us: Platform
    old: Platform  # pinned to OCPI 2.1.1

    def token_of_old(self) -> str:
        """What the 2.1.1 platform presents to us."""
        return sealed_token(self.old, "HUB-211")

    def token_of_us(self) -> str:
        """What we present to the 2.1.1 platform."""
        return sealed_token(self.us, "OLD-211")


@pytest.fixture(scope="module")
def pair(
    platform: Platform, services: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    """We invite it as a CPO; it registers with us, naming our role (2.1.1
    names none); the registration ends with the module
    (tests/e2e/conftest.py ``pinned_partner``)."""
    with pinned_partner(
        platform,
        services,
        tmp_path_factory.mktemp("old-peer-logs"),
        version="2.1.1",
        country_code="NL",
        party_id="OLD",
        us_id="OLD-211",
        them_id="HUB-211",
        their_role="EMSP",
    ) as pinned:
        yield Pair(us=pinned.us, old=pinned.them)


def test_the_handshake_settles_on_211_both_ways(pair: Pair) -> None:
    assert listed(pair.us, "OLD-211")[:4] == ["OLD-211", "registered", "inbound", "2.1.1"]
    assert listed(pair.old, "HUB-211")[:4] == ["HUB-211", "registered", "outbound", "2.1.1"]
    # The pinned platform lists 2.1.1 only; its details have no roles.
    versions = httpx.get(f"{pair.old.base_url}/ocpi/versions", headers=raw(pair.token_of_us()))
    assert [v["version"] for v in versions.json()["data"]] == ["2.1.1"]
    details = httpx.get(f"{pair.old.base_url}/ocpi/2.1.1", headers=raw(pair.token_of_us()))
    endpoints = details.json()["data"]["endpoints"]
    assert all("role" not in e for e in endpoints)
    # Towards us (its eMSP) it lists its CPO interfaces.
    assert any(e["url"].endswith("/ocpi/cpo/2.1.1/locations") for e in endpoints)
    # Our credentials, read in 2.1.1's shape with its raw token.
    ours = httpx.get(f"{pair.us.base_url}/ocpi/2.1.1/credentials", headers=raw(pair.token_of_old()))
    assert ours.status_code == 200, ours.text
    assert (ours.json()["data"]["country_code"], ours.json()["data"]["party_id"]) == ("ZZ", "HUB")
    assert "roles" not in ours.json()["data"]


def test_bad_input_between_the_versions_is_refused(pair: Pair) -> None:
    theirs = pair.token_of_old()
    # Its token on a 2.2.1 functional route: not its version.
    wrong = httpx.get(f"{pair.us.base_url}/ocpi/cpo/2.2.1/locations", headers=raw(theirs))
    assert wrong.json()["status_code"] == 2000
    assert "registered for OCPI 2.1.1" in wrong.json()["status_message"]
    # A version nobody speaks.
    gone = httpx.get(f"{pair.us.base_url}/ocpi/2.0", headers=raw(theirs))
    assert (gone.status_code, gone.json()["status_code"]) == (404, 3002)
    # A 2.2.1 Location at our 2.1.1 receiver: 2001, nothing recorded (a GET finds nothing).
    loc = f"BAD-{uuid.uuid4().hex[:6]}"
    url = f"{pair.us.base_url}/ocpi/emsp/2.1.1/locations/NL/OLD/{loc}"
    refused = httpx.put(
        url, json=location(loc, country_code="NL", party_id="OLD"), headers=raw(theirs)
    )
    assert refused.json()["status_code"] == 2001 and "type" in refused.json()["status_message"]
    assert httpx.get(url, headers=raw(theirs), timeout=10).status_code == 404


def test_its_location_reaches_us_by_push_and_by_pull(pair: Pair) -> None:
    loc = f"OLD-{uuid.uuid4().hex[:6]}"
    site = location(
        loc,
        country_code="NL",
        party_id="OLD",
        parking_type="PARKING_LOT",
        postal_code="3511",
        evses=[evse("E1"), evse("E2")],
    )
    put = httpx.put(
        f"{pair.old.base_url}/ops/locations/{loc}",
        json=site,
        timeout=10,
        headers=ops_auth(pair.old.base_url),
    )
    assert put.json()["status_code"] == 1000, put.text
    url = f"{pair.us.base_url}/ocpi/emsp/2.1.1/locations/NL/OLD/{loc}"

    def at_us() -> dict[str, Any] | None:
        resp = httpx.get(url, headers=raw(pair.token_of_old()), timeout=10)
        return resp.json().get("data") if resp.status_code == 200 else None

    pushed = wait_for(at_us, "its location pushed to us in 2.1.1")
    # Served back in 2.1.1: type, voltage; none of 2.2.1's own fields.
    assert pushed["type"] == "PARKING_LOT"
    assert pushed["evses"][0]["connectors"][0]["voltage"] == 230
    assert "publish" not in pushed and "country_code" not in pushed
    # In our model in our views, its status changes pushed, its Sender pulled.
    its_location_follows(pair.us, pair.old, "OLD-211", "OLD", loc, at_us)


def its_location_follows(
    us: Platform,
    them: Platform,
    partner_id: str,
    party_id: str,
    loc: str,
    at_us: Callable[[], dict[str, Any] | None],
) -> None:
    """After a partner's location (EVSEs E1 and E2) reached us by push, in
    any version: our ops EVSE view holds it under its party, a status change
    at its end reaches us as a PATCH (``at_us`` reads our copy in its
    version), and our pull sync of its Sender list refuses nothing."""
    rows = wait_for(
        lambda: [
            r
            for r in httpx.get(
                f"{us.base_url}/ops/evses",
                params={"location_id": loc},
                headers=ops_auth(us.base_url),
            ).json()["data"]
            if r["party_id"] == party_id
        ],
        "its EVSEs in our ops view",
    )
    assert {r["evse_uid"] for r in rows} == {"E1", "E2"}

    patched = httpx.patch(
        f"{them.base_url}/ops/locations/{loc}/E1",
        json={"status": "CHARGING", "last_updated": "2026-02-01T00:00:00Z"},
        timeout=10,
        headers=ops_auth(them.base_url),
    )
    assert patched.json()["status_code"] == 1000, patched.text
    wait_for(
        lambda: (got := at_us()) and got["evses"][0]["status"] == "CHARGING",
        "the status change pushed",
    )

    sync = us.run("partners", "sync-locations", partner_id)
    assert sync.returncode == 0, sync.stdout + sync.stderr
    report = json.loads(sync.stdout.strip().splitlines()[-1])
    assert report["skipped"] == 0, report
    assert report["recorded"] + report["unchanged"] >= 1


def test_our_token_reaches_it_by_push_and_it_reads_ours_in_211(pair: Pair) -> None:
    uid = f"T{uuid.uuid4().hex[:8].upper()}"
    ours = token(uid, country_code="ZZ", party_id="HUB", type="RFID")
    put = httpx.put(
        f"{pair.us.base_url}/ops/tokens/{uid}", json=ours, headers=ops_auth(pair.us.base_url)
    )
    assert put.status_code == 201, put.text
    at_old = f"{pair.old.base_url}/ocpi/cpo/2.1.1/tokens/ZZ/HUB/{uid}"

    def held() -> dict[str, Any] | None:
        resp = httpx.get(at_old, headers=raw(pair.token_of_us()), timeout=10)
        return resp.json().get("data") if resp.status_code == 200 else None

    pushed = wait_for(held, "our token pushed to the 2.1.1 platform")
    assert pushed["auth_id"] == ours["contract_id"]
    assert "contract_id" not in pushed and "country_code" not in pushed

    # It lists our tokens from our 2.1.1 Sender, with its raw token.
    page = httpx.get(
        f"{pair.us.base_url}/ocpi/emsp/2.1.1/tokens", headers=raw(pair.token_of_old()), timeout=10
    )
    assert page.status_code == 200, page.text
    mine = [t for t in page.json()["data"] if t["uid"] == uid]
    assert mine and mine[0]["auth_id"] == ours["contract_id"]
    # And its pull sync of our tokens records them in its model.
    sync = pair.old.run("partners", "sync-tokens", "HUB-211")
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert json.loads(sync.stdout.strip().splitlines()[-1])["skipped"] == 0


def test_its_tariff_reaches_us_in_211(pair: Pair) -> None:
    tid = f"TAR-{uuid.uuid4().hex[:6]}"
    put = httpx.put(
        f"{pair.old.base_url}/ops/tariffs/{tid}",
        content=tariff_json(tid, country_code="NL", party_id="OLD"),
        headers=ops_auth(pair.old.base_url, {"Content-Type": "application/json"}),
        timeout=10,
    )
    assert put.json()["status_code"] == 1000, put.text
    url = f"{pair.us.base_url}/ocpi/emsp/2.1.1/tariffs/NL/OLD/{tid}"

    def at_us() -> dict[str, Any] | None:
        resp = httpx.get(url, headers=raw(pair.token_of_old()), timeout=10)
        return resp.json().get("data") if resp.status_code == 200 else None

    pushed = wait_for(at_us, "its tariff pushed to us in 2.1.1")
    assert "country_code" not in pushed
    # 2.1.1 price components carry no VAT; the prices are the digits sent.
    first = pushed["elements"][0]["price_components"][0]
    assert "vat" not in first and first["price"] == 0.75


def test_its_session_and_cdr_reach_us_in_211_priced_by_push_and_by_pull(pair: Pair) -> None:
    """The 2.1.1 CPO's charger runs a session on a token of ours: its session
    and its priced CDR reach us in 2.1.1 (the Location embedded, the token
    by auth_id), are held in our model, served back in 2.1.1 with the
    Location from our location view, and a pull of both records nothing new."""
    from datetime import UTC, datetime, timedelta

    from tests.cdr_objects import simple_tariff
    from tests.e2e.test_money_path import _dumps
    from tests.ocpi_objects import connector

    us, old = pair.us.base_url, pair.old.base_url
    tag = uuid.uuid4().hex[:6].upper()
    tid, loc, sid, uid = f"OT-{tag}", f"OLOC-{tag}", f"OS-{tag}", f"OLD{tag}"
    issued = token(uid, country_code="ZZ", party_id="HUB", type="RFID")
    made = httpx.put(f"{us}/ops/tokens/{uid}", json=issued, headers=ops_auth(us), timeout=10)
    assert made.status_code == 201, made.text

    tariff = simple_tariff(tid, country_code="NL", party_id="OLD", at="2026-03-01T00:00:00Z")
    site = location(
        loc,
        country_code="NL",
        party_id="OLD",
        postal_code="3511",
        evses=[evse("EVSE1", connectors=[connector("1", tariff_ids=[tid])], evse_id="NL*OLD*E1")],
    )
    for path, body in ((f"tariffs/{tid}", tariff), (f"locations/{loc}", site)):
        put = httpx.put(
            f"{old}/ops/{path}", json=json.loads(_dumps(body)), headers=ops_auth(old), timeout=10
        )
        assert put.json()["status_code"] == 1000, put.text
    for module in ("sessions", "cdrs"):
        wait_for_log(pair.old.logs / "push.log", f"{module}_push_lane_ready", "HUB-211")
    # Our location view holds its location before its session names it.
    wait_for(
        lambda: (
            httpx.get(
                f"{us}/ocpi/emsp/2.1.1/locations/NL/OLD/{loc}",
                headers=raw(pair.token_of_old()),
                timeout=10,
            ).status_code
            == 200
        ),
        "its location at us",
    )

    cdr_token = {k: issued[k] for k in ("uid", "type", "country_code", "party_id", "contract_id")}
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    ids = {
        "location_id": loc,
        "evse_uid": "EVSE1",
        "connector_id": "1",
        "session_id": sid,
        "transaction_id": f"TX-{tag}",
    }

    def stamp(at: datetime) -> str:
        return at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def record(kind: str, body: dict[str, Any]) -> None:
        resp = httpx.post(
            f"{old}/ops/chargers/transactions/{kind}",
            json={**ids, **body},
            headers=ops_auth(old),
            timeout=10,
        )
        assert resp.json()["status_code"] == 1000, resp.text

    record(
        "started",
        {"token": cdr_token, "authorized": True, "auth_method": "WHITELIST",
         "meter_start_wh": 1_000, "at": stamp(start)},
    )  # fmt: skip
    record(
        "stopped",
        {"meter_stop_wh": 9_000, "at": stamp(start + timedelta(minutes=30)),
         "reason": "EVDisconnected"},
    )  # fmt: skip

    def served(url: str) -> dict[str, Any] | None:
        resp = httpx.get(url, headers=raw(pair.token_of_old()), timeout=10)
        data: dict[str, Any] | None = resp.json().get("data") if resp.status_code == 200 else None
        return data

    session = wait_for(
        lambda: (
            (got := served(f"{us}/ocpi/emsp/2.1.1/sessions/NL/OLD/{sid}"))
            and got["status"] == "COMPLETED"
            and got
        ),
        "its completed session pushed to us in 2.1.1",
    )
    # 2.1.1's shape: the token by auth_id, the Location embedded (from our
    # view: its address and the one EVSE used), start_datetime, a number cost.
    assert session["auth_id"] == issued["contract_id"]
    assert "cdr_token" not in session and "location_id" not in session
    assert session["location"]["id"] == loc and session["location"]["postal_code"] == "3511"
    assert [e["uid"] for e in session["location"]["evses"]] == ["EVSE1"]
    assert session["start_datetime"] == stamp(start)
    assert float(session["kwh"]) == 8.0

    cdr = wait_for(lambda: served(f"{us}/ocpi/emsp/2.1.1/cdrs/{sid}"), "its CDR posted to us")
    assert cdr["auth_id"] == issued["contract_id"]
    assert cdr["stop_date_time"] == stamp(start + timedelta(minutes=30))
    assert cdr["location"]["evses"][0]["uid"] == "EVSE1"
    # Priced by its tariff (0.30/kWh excl. VAT on 8 kWh), a plain number in 2.1.1.
    assert isinstance(cdr["total_cost"], int | float) and cdr["total_cost"] > 0

    # In our model in our views: the 2.2.1 shape, the token resolved to ours.
    ours = httpx.get(f"{us}/ops/cdrs/reconciliation", headers=ops_auth(us), timeout=10).json()[
        "data"
    ]
    assert any(r["cdr_key"] == f"NL/OLD/{sid.upper()}" for r in ours)

    # Its 2.1.1 Sender lists, pulled: both held as sent, nothing refused.
    since = ("--since", stamp(start - timedelta(minutes=5)))
    for module in ("sessions", "cdrs"):
        sync = pair.us.run("partners", f"sync-{module}", "OLD-211", *since)
        assert sync.returncode == 0, sync.stdout + sync.stderr
        report = json.loads(sync.stdout.strip().splitlines()[-1])
        assert report["skipped"] == 0, (module, report, sync.stderr)
        assert report["recorded"] + report["unchanged"] >= 1, report


def test_a_221_session_at_a_211_route_is_refused_and_nothing_recorded(pair: Pair) -> None:
    sid = f"BAD-{uuid.uuid4().hex[:6]}"
    url = f"{pair.us.base_url}/ocpi/emsp/2.1.1/sessions/NL/OLD/{sid}"
    shaped_221 = {
        "country_code": "NL",
        "party_id": "OLD",
        "id": sid,
        "start_date_time": "2026-12-01T10:00:00Z",
        "kwh": 1,
        "cdr_token": {"country_code": "ZZ", "party_id": "HUB", "uid": "X", "type": "RFID",
                      "contract_id": "C"},
        "auth_method": "WHITELIST",
        "location_id": "L1",
        "evse_uid": "E1",
        "connector_id": "1",
        "currency": "EUR",
        "status": "ACTIVE",
        "last_updated": "2026-12-01T10:00:00Z",
    }  # fmt: skip
    refused = httpx.put(url, json=shaped_221, headers=raw(pair.token_of_old()), timeout=10)
    assert refused.json()["status_code"] == 2001, refused.text
    assert "auth_id" in refused.json()["status_message"]
    assert httpx.get(url, headers=raw(pair.token_of_old()), timeout=10).status_code == 404
    # A 2.1.1 session naming a token we never issued: 2004, nothing recorded.
    unknown = httpx.put(
        url,
        json={"auth_id": "NOT-OURS", "id": sid},
        headers=raw(pair.token_of_old()),
        timeout=10,
    )
    assert unknown.json()["status_code"] == 2004, unknown.text
    assert httpx.get(url, headers=raw(pair.token_of_old()), timeout=10).status_code == 404


def test_our_command_reaches_it_in_211_and_its_answers_come_back(pair: Pair) -> None:
    """We (its eMSP) send START_SESSION to the 2.1.1 CPO: it reads the 2.1.1
    request (its Token, no connector), answers ``{result}`` (read as our
    CommandResponse), and its later result at our 2.1.1 response_url is
    recorded as our CommandResult; CANCEL_RESERVATION, which 2.1.1 lacks,
    is refused before anything is sent."""
    us = pair.us.base_url
    sent = start_session_at(
        pair.us, pair.old, "OLD-211", country_code="NL", party_id="OLD", postal_code="3511"
    )
    cid, url = sent.command_id, sent.response_url
    assert url == f"{us}/ocpi/emsp/2.1.1/commands/START_SESSION/{cid}"
    # Its 2.1.1 answer, read into ours: the result, and the timeout we assume.
    assert sent.response["result"] in {"ACCEPTED", "REJECTED", "NOT_SUPPORTED"}
    assert sent.response["timeout"] > 0
    # (A 2.2.1 body would have been refused there with 2001, which our
    # sender answers with 502: the 1000 above is its 2.1.1 validation passed;
    # no charger of it is connected, so it is not ACCEPTED.)

    # A 2.1.1 result at our response_url (its raw token): UNKNOWN_SESSION,
    # which 2.2.1 results do not have, is recorded as FAILED saying so.
    posted = httpx.post(
        url, json={"result": "UNKNOWN_SESSION"}, headers=raw(pair.token_of_old()), timeout=10
    )
    assert posted.json()["status_code"] == 1000, posted.text
    held = recorded_result(pair.us, cid, "the 2.1.1 result recorded")
    assert held["result"] == "FAILED", held

    cancel = httpx.post(
        f"{us}/ops/commands/sent/OLD-211/CANCEL_RESERVATION",
        json={"reservation_id": "1"},
        headers=ops_auth(us),
        timeout=10,
    )
    assert cancel.status_code == 409, cancel.text
    assert "no CANCEL_RESERVATION" in cancel.json()["status_message"]


def test_charging_profiles_are_not_spoken_in_211(pair: Pair) -> None:
    """2.1.1 has no ChargingProfiles module: we send a 2.1.1 CPO no profile
    (409, nothing sent: its result would have no route), and our 2.1.1
    paths of the module answer 3002."""
    us = pair.us.base_url
    profile = {
        "charging_rate_unit": "A",
        "charging_profile_period": [{"start_period": 0, "limit": 6}],
    }
    refused = httpx.put(
        f"{us}/ops/charging-profiles/sent/OLD-211/S1",
        json=profile,
        headers=ops_auth(us),
        timeout=10,
    )
    assert refused.status_code == 409, refused.text
    assert "OCPI 2.1.1, in which we do not speak chargingprofiles" in refused.text
    gone = httpx.put(
        f"{us}/ocpi/cpo/2.1.1/chargingprofiles/S1",
        json={"charging_profile": profile, "response_url": "https://x.example.com/r"},
        headers=raw(pair.token_of_old()),
        timeout=10,
    )
    # A PUT that reached the OCPI layer: its error at HTTP 200 (docs/adr/0039 §2).
    assert (gone.status_code, gone.json()["status_code"]) == (200, 3002), gone.text
