"""Two platforms on OCPI 2.3.0 (issue 16, item 1; docs/adr/0045 §6): ours
offers 2.1.1, 2.2.1 and 2.3.0 (the default), the other one is pinned to
2.3.0 (``OCPI_HUB_OCPI_VERSIONS=2.3.0``), party DE-V23, a CPO to us. The
handshake settles on 2.3.0 both ways; its location with 2.3.0's
``parking_places`` and ``help_phone`` reaches us by push and by a pull sync
and is served back whole; its tariff with ``tax_included`` keeps it; our
token reaches it; commands and charging profiles go both ways in 2.3.0.
The harness is test_ocpi_211's (tests/e2e/conftest.py's ``pinned_partner``:
``running_platform`` with one setting pinned, registered, and unregistered
when the module ends)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from ocpi_hub.settings import Settings
from schemas.ocpi.tariffs import dumps_exact
from tests.cdr_objects import priced_location, simple_tariff
from tests.e2e.conftest import (
    Platform,
    auth,
    listed,
    ops_auth,
    pinned_partner,
    sealed_token,
    wait_for_log,
)
from tests.e2e.pinned_commands import recorded_result, start_session_at
from tests.e2e.test_ocpi_211 import its_location_follows
from tests.e2e.test_walking_skeleton import wait_for
from tests.ocpi_objects import evse, location
from tests.tariff_objects import tariff_json
from tests.token_objects import token

US_ID, NEW_ID = "V23-230", "HUB-230"  # our name for it, its name for us


@dataclass(frozen=True)
class Pair:
    us: Platform
    new: Platform  # pinned to OCPI 2.3.0

    def from_new(self) -> dict[str, str]:
        """What the 2.3.0 platform presents to us (2.3.0: base64, as 2.2.1)."""
        return auth(sealed_token(self.new, NEW_ID))

    def from_us(self) -> dict[str, str]:
        return auth(sealed_token(self.us, US_ID))


@pytest.fixture(scope="module")
def pair(
    platform: Platform, services: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    """It registers with us in 2.3.0, both roles; when the module ends it
    unregisters, as a partner that goes away should (tests/e2e/conftest.py
    ``pinned_partner``)."""
    with pinned_partner(
        platform,
        services,
        tmp_path_factory.mktemp("v230-peer-logs"),
        version="2.3.0",
        country_code="DE",
        party_id="V23",
        us_id=US_ID,
        them_id=NEW_ID,
    ) as pinned:
        yield Pair(us=pinned.us, new=pinned.them)


def test_the_handshake_settles_on_230_both_ways(pair: Pair) -> None:
    assert listed(pair.us, US_ID)[:4] == [US_ID, "registered", "inbound", "2.3.0"]
    assert listed(pair.new, NEW_ID)[:4] == [NEW_ID, "registered", "outbound", "2.3.0"]
    versions = httpx.get(f"{pair.us.base_url}/ocpi/versions", headers=pair.from_new())
    assert [v["version"] for v in versions.json()["data"]] == ["2.3.0", "2.2.1", "2.1.1"]
    details = httpx.get(f"{pair.us.base_url}/ocpi/2.3.0", headers=pair.from_new()).json()
    served = {(e["identifier"], e["role"]) for e in details["data"]["endpoints"]}
    assert ("locations", "RECEIVER") in served and ("tokens", "SENDER") in served
    assert all("/2.3.0/" in e["url"] for e in details["data"]["endpoints"])
    # Our credentials read in 2.3.0: roles, as in 2.2.1; we are no hub.
    ours = httpx.get(f"{pair.us.base_url}/ocpi/2.3.0/credentials", headers=pair.from_new())
    assert ours.status_code == 200, ours.text
    assert [r["role"] for r in ours.json()["data"]["roles"]] == ["CPO", "EMSP"]
    assert "hub_party_id" not in ours.json()["data"]


PARKING = [
    {
        "id": "P1",
        "vehicle_types": ["PERSONAL_VEHICLE", "DISABLED"],
        "restricted_to_type": True,
        "reservation_required": False,
        "max_vehicle_height": 2.1,
        "x_charging_bay_color": "blue",  # an implementer's field, kept too
    }
]


def test_its_230_location_reaches_us_whole_by_push_and_by_pull(pair: Pair) -> None:
    loc = f"V23-{uuid.uuid4().hex[:6]}"
    site = location(
        loc,
        country_code="DE",
        party_id="V23",
        evses=[evse("E1", parking=[{"parking_id": "P1"}]), evse("E2")],
        parking_places=PARKING,
        help_phone="+4930123456",
    )
    # Its operator writes it through its own (core) ops API; the 2.3.0
    # fields are kept there and its push to us is in 2.3.0.
    put = httpx.put(
        f"{pair.new.base_url}/ops/locations/{loc}",
        json=site,
        timeout=10,
        headers=ops_auth(pair.new.base_url),
    )
    assert put.json()["status_code"] == 1000, put.text
    url = f"{pair.us.base_url}/ocpi/emsp/2.3.0/locations/DE/V23/{loc}"

    def at_us() -> dict[str, Any] | None:
        resp = httpx.get(url, headers=pair.from_new(), timeout=10)
        return resp.json().get("data") if resp.status_code == 200 else None

    pushed = wait_for(at_us, "its location pushed to us in 2.3.0")
    assert pushed["parking_places"] == PARKING
    assert pushed["help_phone"] == "+4930123456"
    assert pushed["evses"][0]["parking"] == [{"parking_id": "P1"}]
    # In our views, its status changes pushed (2.3.0 PATCH), its Sender pulled.
    its_location_follows(pair.us, pair.new, US_ID, "V23", loc, at_us)
    # Read again from its 2.3.0 Sender, still whole.
    again = at_us()
    assert again is not None and again["parking_places"] == PARKING
    assert again["help_phone"] == "+4930123456"


def test_its_tariff_keeps_tax_included(pair: Pair) -> None:
    tid = f"TAR-{uuid.uuid4().hex[:6]}"
    put = httpx.put(
        f"{pair.new.base_url}/ops/tariffs/{tid}",
        content=tariff_json(tid, country_code="DE", party_id="V23", extra='"tax_included": "YES",'),
        headers=ops_auth(pair.new.base_url, {"Content-Type": "application/json"}),
        timeout=10,
    )
    assert put.json()["status_code"] == 1000, put.text
    url = f"{pair.us.base_url}/ocpi/emsp/2.3.0/tariffs/DE/V23/{tid}"

    def at_us() -> dict[str, Any] | None:
        resp = httpx.get(url, headers=pair.from_new(), timeout=10)
        return resp.json().get("data") if resp.status_code == 200 else None

    pushed = wait_for(at_us, "its tariff pushed to us in 2.3.0")
    assert pushed["tax_included"] == "YES"
    # 2.3.0's PriceLimit, from the same digits.
    assert pushed["min_price"] == {"before_taxes": 1.5, "after_taxes": 1.815}
    assert pushed["elements"][1]["price_components"][0]["price"] == 0.3175


def test_our_token_reaches_it_in_230(pair: Pair) -> None:
    uid = f"T{uuid.uuid4().hex[:8].upper()}"
    ours = token(uid, country_code="ZZ", party_id="HUB", type="RFID")
    put = httpx.put(
        f"{pair.us.base_url}/ops/tokens/{uid}",
        json=ours,
        headers=ops_auth(pair.us.base_url),
    )
    assert put.status_code == 201, put.text
    at_new = f"{pair.new.base_url}/ocpi/cpo/2.3.0/tokens/ZZ/HUB/{uid}?type=RFID"

    def held() -> dict[str, Any] | None:
        resp = httpx.get(at_new, headers=pair.from_us(), timeout=10)
        return resp.json().get("data") if resp.status_code == 200 else None

    pushed = wait_for(held, "our token pushed to the 2.3.0 platform")
    assert (pushed["contract_id"], pushed["type"]) == (ours["contract_id"], "RFID")
    # It pulls our tokens from our 2.3.0 Sender too.
    sync = pair.new.run("partners", "sync-tokens", NEW_ID)
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert json.loads(sync.stdout.strip().splitlines()[-1])["skipped"] == 0


def test_bad_input_between_the_versions_is_refused(pair: Pair) -> None:
    theirs = pair.from_new()
    # A 2.2.1 Tariff at our 2.3.0 receiver: no tax_included; nothing recorded.
    tid = f"BAD-{uuid.uuid4().hex[:6]}"
    url = f"{pair.us.base_url}/ocpi/emsp/2.3.0/tariffs/DE/V23/{tid}"
    refused = httpx.put(
        url,
        content=tariff_json(tid, country_code="DE", party_id="V23"),
        headers={**theirs, "Content-Type": "application/json"},
        timeout=10,
    )
    assert refused.json()["status_code"] == 2001 and "tax_included" in refused.text
    assert httpx.get(url, headers=theirs, timeout=10).status_code == 404
    # Its token on a 2.2.1 functional route: not its version.
    wrong = httpx.get(f"{pair.us.base_url}/ocpi/cpo/2.2.1/locations", headers=theirs)
    assert wrong.json()["status_code"] == 2000
    assert "registered for OCPI 2.3.0" in wrong.json()["status_message"]
    # A version nobody offers, and one the pinned platform does not.
    gone = httpx.get(f"{pair.us.base_url}/ocpi/2.0", headers=theirs)
    assert (gone.status_code, gone.json()["status_code"]) == (404, 3002)
    old = httpx.get(f"{pair.new.base_url}/ocpi/2.2.1", headers=pair.from_us())
    assert (old.status_code, old.json()["status_code"]) == (404, 3002)


def test_its_session_and_priced_cdr_reach_us_in_230(pair: Pair) -> None:
    """It is the CPO: our driver charges at its charger; its session and the
    CDR it prices (two VAT rates) reach us in 2.3.0's shape, the CDR's costs
    as before_taxes plus one tax line per rate."""
    new = pair.new.base_url
    tag = uuid.uuid4().hex[:6].upper()
    tid, loc, sid, uid = f"T-{tag}", f"L-{tag}", f"S-{tag}", f"D{tag}"
    two_rates = simple_tariff(tid, country_code="DE", party_id="V23")
    two_rates["elements"][0]["price_components"][1]["vat"] = Decimal(9)  # energy at 9 %
    put = httpx.put(
        f"{new}/ops/tariffs/{tid}",
        content=dumps_exact(two_rates),
        headers=ops_auth(new, {"Content-Type": "application/json"}),
        timeout=10,
    )
    assert put.json()["status_code"] == 1000, put.text
    site = priced_location(loc, tariff_ids=[tid], country_code="DE", party_id="V23")
    put = httpx.put(f"{new}/ops/locations/{loc}", json=site, timeout=10, headers=ops_auth(new))
    assert put.json()["status_code"] == 1000, put.text

    # Our driver's token, pushed to it (ALWAYS: it authorizes from its copy).
    ours = token(uid, country_code="ZZ", party_id="HUB", type="RFID")
    put = httpx.put(
        f"{pair.us.base_url}/ops/tokens/{uid}", json=ours, headers=ops_auth(pair.us.base_url)
    )
    assert put.status_code == 201, put.text
    wait_for(
        lambda: (
            httpx.get(
                f"{new}/ocpi/cpo/2.3.0/tokens/ZZ/HUB/{uid}?type=RFID",
                headers=pair.from_us(),
                timeout=10,
            ).status_code
            == 200
        ),
        "our token at its receiver",
    )
    for lane in ("sessions_push_lane_ready", "cdrs_push_lane_ready"):
        wait_for_log(pair.new.logs / "push.log", lane, NEW_ID, timeout=60)

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    ids = {
        "location_id": loc,
        "evse_uid": "EVSE1",
        "connector_id": "1",
        "session_id": sid,
        "transaction_id": f"TX-{tag}",
    }

    def record(kind: str, body: dict[str, Any]) -> None:
        resp = httpx.post(
            f"{new}/ops/chargers/transactions/{kind}",
            json={**ids, **body},
            timeout=10,
            headers=ops_auth(new),
        )
        assert resp.json()["status_code"] == 1000, resp.text

    def at(minutes: int) -> str:
        return (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")

    identity = {k: ours[k] for k in ("uid", "type", "country_code", "party_id", "contract_id")}
    record(
        "started",
        {"token": identity, "authorized": True, "auth_method": "WHITELIST",
         "meter_start_wh": 12_000, "at": at(0)},
    )  # fmt: skip
    session_at_us = f"{pair.us.base_url}/ocpi/emsp/2.3.0/sessions/DE/V23/{sid}"

    def session(status: str) -> dict[str, Any] | None:
        resp = httpx.get(session_at_us, headers=pair.from_new(), timeout=10)
        got = resp.json().get("data") if resp.status_code == 200 else None
        return got if got and got["status"] == status else None

    wait_for(lambda: session("ACTIVE"), "its session ACTIVE at us")
    record("meter-values", {"meter_wh": 15_500, "at": at(15)})
    record("stopped", {"meter_stop_wh": 20_250, "at": at(30), "reason": "EVDisconnected"})
    done = wait_for(lambda: session("COMPLETED"), "its session COMPLETED at us")
    assert done["cdr_token"]["uid"] == uid and Decimal(str(done["kwh"])) == Decimal("8.25")
    assert "excl_vat" not in json.dumps(done)  # 2.3.0 has no 2.2.1 Price

    # Its CDR: priced by its tariff, received by us, served back in 2.3.0.
    def cdr() -> dict[str, Any] | None:
        resp = httpx.get(
            f"{pair.us.base_url}/ocpi/emsp/2.3.0/cdrs/{sid}", headers=pair.from_new(), timeout=10
        )
        return resp.json().get("data") if resp.status_code == 200 else None

    got = wait_for(cdr, "its CDR at us")
    total = got["total_cost"]
    rates = sorted(Decimal(str(t["percentage"])) for t in total["taxes"] if t["amount"])
    assert rates == [Decimal(9), Decimal(20)], total
    before = Decimal(str(total["before_taxes"]))
    # 0.50 start + 8.25 kWh x 0.30 + 0.5 h x 1.20 (tests/cdr_objects.py's tariff)
    assert before == Decimal("3.575")
    taxes = sum((Decimal(str(t["amount"])) for t in total["taxes"]), Decimal(0))
    # 20 % of 0.50 + 0.60 and 9 % of 2.475, each rounded to 4 decimals
    assert taxes == Decimal("0.22") + Decimal("0.2228")
    assert got["tariffs"][0]["tax_included"] == "NO"
    # In our model (the ops view of received CDRs): 2.2.1's Price.
    ops = httpx.get(
        f"{pair.us.base_url}/ops/cdrs/reconciliation", headers=ops_auth(pair.us.base_url)
    ).json()["data"]
    assert any(r["cdr_key"].endswith(f"/{sid}") for r in ops), ops


def test_our_command_reaches_it_in_230_and_its_answers_come_back(pair: Pair) -> None:
    """We (its eMSP) send START_SESSION to the 2.3.0 CPO at its 2.3.0
    Commands receiver: it reads the request (its 2.3.0 validation passed:
    the 1000), answers a CommandResponse (no charger of it is connected:
    not ACCEPTED), and the CommandResult it POSTs to our 2.3.0
    response_url, with a field of its own, is recorded."""
    us = pair.us.base_url
    sent = start_session_at(
        pair.us, pair.new, US_ID, country_code="DE", party_id="V23", postal_code="10115"
    )
    cid, url = sent.command_id, sent.response_url
    assert url == f"{us}/ocpi/emsp/2.3.0/commands/START_SESSION/{cid}"
    assert sent.response["result"] in {"REJECTED", "NOT_SUPPORTED"}, sent.response
    # Its side recorded our request as it read it in 2.3.0: the connector
    # (which 2.1.1 would have dropped) and our token are there.
    theirs = pair.new.namespace.settings
    with MongoClient(theirs.mongo_url) as client:
        view = client[theirs.mongo_db]["received_commands"]
        got = wait_for(lambda: view.find_one({"response_url": url}), "our command at its view")
    assert got["request"]["connector_id"] == "1", got
    assert got["request"]["token"]["uid"] == sent.uid, got

    result = {"result": "EVSE_OCCUPIED", "message": [{"language": "en", "text": "busy"}]}
    posted = httpx.post(url, json={**result, "x_cpo_code": "E42"}, headers=pair.from_new())
    assert posted.json()["status_code"] == 1000, posted.text
    held = recorded_result(pair.us, cid, "its 2.3.0 result recorded")
    assert held["result"] == "EVSE_OCCUPIED", held
    # A second result is not taken; a result for a command never sent is 2003.
    again = httpx.post(url, json={"result": "ACCEPTED"}, headers=pair.from_new(), timeout=10)
    assert again.json()["status_code"] == 1000, again.text
    assert recorded_result(pair.us, cid, "the first result stands")["result"] == "EVSE_OCCUPIED"
    forged = httpx.post(f"{url[:-4]}beef", json=result, headers=pair.from_new(), timeout=10)
    assert forged.json()["status_code"] == 2003, forged.text


def test_its_230_commands_at_our_receiver_bad_ones_record_nothing(pair: Pair) -> None:
    """It (our eMSP too) commands one of our locations in 2.3.0: a request
    without its required ``token`` is 2001, a command of its own (CommandType
    is an OpenEnum in 2.3.0) is NOT_SUPPORTED; neither is recorded, while a
    valid one (an EMAID token, which 2.2.1 has no type for) is."""
    us = pair.us.base_url
    loc = f"ULOC-{uuid.uuid4().hex[:6].upper()}"
    ours = location(loc, country_code="ZZ", party_id="HUB", postal_code="1011", evses=[evse("E1")])
    put = httpx.put(f"{us}/ops/locations/{loc}", json=ours, headers=ops_auth(us), timeout=10)
    assert put.json()["status_code"] == 1000, put.text
    receiver = f"{us}/ocpi/cpo/2.3.0/commands"

    def callback() -> str:
        return f"{pair.new.base_url}/ocpi/emsp/2.3.0/commands/START_SESSION/{uuid.uuid4().hex}"

    emaid = token("EMA9", country_code="DE", party_id="V23", type="EMAID")
    no_token = {"response_url": callback(), "location_id": loc, "evse_uid": "E1"}
    refused = httpx.post(f"{receiver}/START_SESSION", json=no_token, headers=pair.from_new())
    assert refused.json()["status_code"] == 2001 and "token" in refused.text, refused.text
    custom = {"response_url": callback(), "location_id": loc}
    unlisted = httpx.post(f"{receiver}/X_PRECONDITION", json=custom, headers=pair.from_new())
    assert unlisted.json()["status_code"] == 1000, unlisted.text
    assert unlisted.json()["data"]["result"] == "NOT_SUPPORTED"
    assert unlisted.json()["data"]["timeout"] == 0
    good = {**no_token, "response_url": callback(), "token": emaid}
    answered = httpx.post(f"{receiver}/START_SESSION", json=good, headers=pair.from_new())
    assert answered.json()["status_code"] == 1000, answered.text
    assert answered.json()["data"]["result"] in {"ACCEPTED", "REJECTED", "NOT_SUPPORTED"}

    settings = pair.us.namespace.settings
    with MongoClient(settings.mongo_url) as client:
        view = client[settings.mongo_db]["received_commands"]
        wait_for(
            lambda: view.find_one({"response_url": good["response_url"]}),
            "the valid command in the received_commands view",
        )
        bad = [no_token["response_url"], custom["response_url"]]
        assert view.count_documents({"response_url": {"$in": bad}}) == 0
        held = view.find_one({"response_url": good["response_url"]})
    assert held is not None
    # Held in our model (OTHER), the 2.3.0 type kept beside it.
    assert held["request"]["token"]["type"] == "OTHER", held["request"]
    assert held["request"]["token"]["ocpi_v230"] == {"type": "EMAID"}


PROFILE = {
    "charging_rate_unit": "A",
    "charging_profile_period": [
        {"start_period": 0, "limit": 16},
        {"start_period": 900, "limit": 8},
    ],
}


def test_charging_profiles_go_both_ways_in_230(pair: Pair) -> None:
    """We (its eMSP) ask the 2.3.0 CPO to set a profile: it reads our
    request at its 2.3.0 receiver (a session it does not know: UNKNOWN_SESSION,
    its own judgement, so the request got through its 2.3.0 validation), and
    what it POSTs to our 2.3.0 response_url and PUTs to our 2.3.0 Sender
    (an ActiveChargingProfile, with a field of its own) is recorded. As our
    eMSP it asks us the same at our 2.3.0 receiver."""
    us = pair.us.base_url
    sid = f"S-{uuid.uuid4().hex[:8]}"
    sent = httpx.put(
        f"{us}/ops/charging-profiles/sent/{US_ID}/{sid}",
        json=PROFILE,
        headers=ops_auth(us),
        timeout=20,
    )
    assert sent.status_code == 200, sent.text
    data = sent.json()["data"]
    request_id, url = data["request_id"], data["response_url"]
    assert url == f"{us}/ocpi/emsp/2.3.0/chargingprofiles/SET/{request_id}"
    assert data["response"] == {"result": "UNKNOWN_SESSION", "timeout": 0}, data

    posted = httpx.post(url, json={"result": "ACCEPTED"}, headers=pair.from_new(), timeout=10)
    assert posted.json()["status_code"] == 1000, posted.text

    def shown(path: str, field: str) -> dict[str, Any] | None:
        got = httpx.get(f"{us}{path}", headers=ops_auth(us), timeout=10)
        data: dict[str, Any] = got.json().get("data") or {}
        return data if data.get(field) else None

    held = wait_for(
        lambda: shown(f"/ops/charging-profiles/sent/{request_id}", "result"), "its result"
    )
    assert (held["result"], held["partner_id"], held["session_id"]) == ("ACCEPTED", US_ID, sid)

    active = {
        "start_date_time": "2026-03-01T10:00:00Z",
        "charging_profile": PROFILE,
        "x_calculated_by": "cpo",
    }
    put = httpx.put(
        f"{us}/ocpi/emsp/2.3.0/chargingprofiles/{sid}",
        json=active,
        headers=pair.from_new(),
        timeout=10,
    )
    assert put.json()["status_code"] == 1000, put.text
    got = wait_for(
        lambda: shown(f"/ops/charging-profiles/active/DE/V23/{sid}", "active_profile"),
        "its ActiveChargingProfile",
    )
    assert got["active_profile"]["x_calculated_by"] == "cpo", got
    assert got["active_profile"]["charging_profile"]["charging_profile_period"][1] == {
        "start_period": 900,
        "limit": 8,
    }

    # It asks us, at our 2.3.0 receiver, about a session we do not have.
    callback = f"{pair.new.base_url}/ocpi/emsp/2.3.0/chargingprofiles/SET/{uuid.uuid4().hex}"
    asked = httpx.put(
        f"{us}/ocpi/cpo/2.3.0/chargingprofiles/NO-SUCH-{sid}",
        json={"charging_profile": PROFILE, "response_url": callback},
        headers=pair.from_new(),
        timeout=10,
    )
    assert asked.json()["data"] == {"result": "UNKNOWN_SESSION", "timeout": 0}, asked.text
    # Without its required charging_profile: 2001.
    bad = httpx.put(
        f"{us}/ocpi/cpo/2.3.0/chargingprofiles/{sid}",
        json={"response_url": callback},
        headers=pair.from_new(),
        timeout=10,
    )
    assert bad.json()["status_code"] == 2001 and "charging_profile" in bad.text, bad.text
