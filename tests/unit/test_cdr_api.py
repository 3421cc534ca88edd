"""The HTTP shell of the CDRs module on the in-memory write path and a fake
CDR view: the eMSP receiver (POST with Location header, GET, refusals that
write nothing, reconciliation recorded), the CPO sender list and the ops
routes. The token and tariffs a CDR is judged against are states in the
decision store, as the write path holds them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Caller, registered_caller
from api.deps import _cdrs
from ocpi_hub.settings import Settings
from producers import locations, tariffs, tokens
from producers.cdrs import build_cdr
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.partners import PartnerState
from producers.write_path import Origin, WritePath
from projections.mongo import cdrs as cdr_view
from projections.mongo.paging import Page
from projections.position import Record, position_field
from schemas.events import CdrIssued, CdrReceived, CdrReconciled, Party
from schemas.events.tariffs import TariffRef
from schemas.events.tokens import TokenPolicy
from schemas.ocpi.credentials import BusinessDetails, CredentialsRole, Role
from tests.cdr_objects import completed_session, issued_cdr, priced_location, simple_tariff
from tests.ops_admin import as_admin
from tests.unit.test_cdrs import NOW

POST_URL = "/ocpi/emsp/2.2.1/cdrs"
# A token we (ZZ/HUB, the eMSP here) issued: the partner CPO bills its use to us.
OUR_TOKEN = {
    "country_code": "ZZ",
    "party_id": "HUB",
    "uid": "RFID-77",
    "type": "RFID",
    "contract_id": "ZZ-HUB-C77",
}


def partner_cdr(**changes: Any) -> dict[str, Any]:
    """A CDR of the partner CPO NL/CPO (JSON as it travels)."""
    session = {
        **completed_session(),
        "country_code": "NL",
        "party_id": "CPO",
        "cdr_token": OUR_TOKEN,
    }
    built = build_cdr(
        session,
        priced_location(tariff_ids=["CDR-T1"], country_code="NL", party_id="CPO"),
        {"CDR-T1": simple_tariff(country_code="NL", party_id="CPO")},
        issued_at=NOW,
    )
    data: dict[str, Any] = json.loads(json.dumps(built.cdr))
    return {**data, **changes}


class FakeCdrView:
    """A CDR view that folds whatever the fake log holds, every write
    applied (read-your-writes has its own tests)."""

    def __init__(self, log: InMemoryEventLog) -> None:
        self._log = log

    def _docs(self) -> dict[str, Any]:
        docs: dict[str, Any] = {}
        for offset, event in enumerate(self._log.events):
            if isinstance(event, CdrIssued | CdrReceived | CdrReconciled):
                key = event.aggregate_key
                docs[key] = cdr_view.apply(docs.get(key), Record("ocpi.cdrs.v1", 0, offset, event))
        return docs

    async def read(self, key: str) -> tuple[Any, dict[str, int]]:
        doc = self._docs().get(key)
        return (doc if doc and doc.get("cdr") else None), await self.positions(key)

    async def positions(self, key: str) -> dict[str, int]:
        return {position_field("ocpi.cdrs.v1", p): 10**9 for p in range(6)}

    async def page(self, **kwargs: Any) -> Any:
        items = [
            d["cdr"]
            for d in self._docs().values()
            if d.get("role") == "issued" and d["_token_party"] in kwargs["token_parties"]
        ]
        return Page(items=items, total=len(items), last=None)

    async def reconciliation(self, *, only_discrepancies: bool = False) -> list[dict[str, Any]]:
        return [
            {"cdr_key": k, "reconciliation": d["reconciliation"]}
            for k, d in self._docs().items()
            if d.get("role") == "received"
            and (not only_discrepancies or d["reconciliation"]["discrepancy"])
        ]


def hold_tariff(store: InMemoryDecisionStore, tariff: dict[str, Any]) -> None:
    """The decision store holds ``tariff`` as a PUT of its owner leaves it."""
    ref = TariffRef(
        country_code=tariff["country_code"], party_id=tariff["party_id"], tariff_id=tariff["id"]
    )
    owner = Party(country_code=tariff["country_code"], party_id=tariff["party_id"])
    planned = tariffs.plan_put(ref, tariff, None, Origin(owner, "c"), NOW)
    state = tariffs.evolve(None, planned.event)
    assert state is not None
    store.seed(tariffs.SLICE, ref.tariff_key, state)


def _partner() -> PartnerState:
    details = BusinessDetails(name="CPO Charging")
    return PartnerState(
        partner_id="cpo",
        status="registered",
        roles=(
            CredentialsRole(
                role=Role.CPO, business_details=details, country_code="NL", party_id="CPO"
            ),
            CredentialsRole(
                role=Role.EMSP, business_details=details, country_code="ZZ", party_id="HUB"
            ),
        ),
    )


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


@pytest.fixture
def store() -> InMemoryDecisionStore:
    """Holds OUR_TOKEN, issued; no tariffs, no locations."""
    held = InMemoryDecisionStore()
    held.seed(tokens.SLICE, "ZZ/HUB/RFID-77/RFID", tokens.TokenState(token=OUR_TOKEN))
    return held


@pytest.fixture
def client(log: InMemoryEventLog, store: InMemoryDecisionStore) -> Iterator[TestClient]:
    settings = Settings(party_country_code="ZZ", party_id="HUB", public_url="https://hub.test")
    write_path = WritePath(log, store, InMemoryLogHistory(log))
    app = create_app(settings, event_log=log, write_path=write_path)
    as_admin(app)
    app.dependency_overrides[registered_caller] = lambda: Caller(_partner(), "token-c", False)
    app.dependency_overrides[_cdrs] = lambda: FakeCdrView(log)
    with TestClient(app) as c:
        yield c


def test_a_posted_cdr_is_recorded_reconciled_and_served_at_its_location(
    client: TestClient, log: InMemoryEventLog, store: InMemoryDecisionStore
) -> None:
    hold_tariff(store, simple_tariff(country_code="NL", party_id="CPO"))
    resp = client.post(POST_URL, content=json.dumps(partner_cdr()))
    assert resp.status_code == 200, resp.text
    assert resp.json()["status_code"] == 1000
    location = resp.headers["Location"]
    assert location == "https://hub.test/ocpi/emsp/2.2.1/cdrs/OS-1"
    received, reconciled = log.events
    assert isinstance(received, CdrReceived) and isinstance(reconciled, CdrReconciled)
    assert reconciled.payload.tariff_source == "held"
    assert reconciled.payload.difference == 0 and not reconciled.payload.discrepancy
    got = client.get(location.removeprefix("https://hub.test"))
    assert got.status_code == 200
    assert got.json()["data"] == partner_cdr()
    report = client.get("/ops/cdrs/reconciliation").json()["data"]
    assert [r["cdr_key"] for r in report] == ["NL/CPO/OS-1"]


@pytest.mark.parametrize(
    ("cdr", "message"),
    [
        (partner_cdr(total_energy=-1), "must not be negative"),
        (partner_cdr(end_date_time="2026-06-02T07:00:00Z"), "earlier than start_date_time"),
        (partner_cdr(currency="USD"), "not in the CDR's currency"),
        (partner_cdr(country_code="DE", party_id="XYZ"), "not a party registered"),
    ],
)
def test_bad_cdrs_are_refused_and_write_nothing(
    client: TestClient, log: InMemoryEventLog, cdr: dict[str, Any], message: str
) -> None:
    resp = client.post(POST_URL, content=json.dumps(cdr))
    body = resp.json()
    assert (resp.status_code, body["status_code"]) == (200, 2001), body
    assert message in body["status_message"]
    assert log.events == []


def test_a_duplicate_cdr_is_refused(client: TestClient, log: InMemoryEventLog) -> None:
    assert client.post(POST_URL, content=json.dumps(partner_cdr())).json()["status_code"] == 1000
    again = client.post(POST_URL, content=json.dumps(partner_cdr(remark="changed")))
    assert again.json()["status_code"] == 2001
    assert "received before" in again.json()["status_message"]
    assert len(log.events) == 2  # the first CDR and its reconciliation only


def test_a_cdr_of_another_emsps_token_is_refused(client: TestClient, log: InMemoryEventLog) -> None:
    theirs = {**OUR_TOKEN, "country_code": "NL", "party_id": "PEE"}
    resp = client.post(POST_URL, content=json.dumps(partner_cdr(cdr_token=theirs)))
    body = resp.json()
    assert body["status_code"] == 2001 and "send it to the eMSP" in body["status_message"]
    assert log.events == []


def test_a_cdr_of_a_token_we_never_issued_is_2004(
    client: TestClient, log: InMemoryEventLog, store: InMemoryDecisionStore
) -> None:
    del store.states[(tokens.SLICE.name, "ZZ/HUB/RFID-77/RFID")]
    body = client.post(POST_URL, content=json.dumps(partner_cdr())).json()
    assert body["status_code"] == 2004 and "RFID-77" in body["status_message"]
    assert log.events == []


def test_a_period_naming_a_tariff_nobody_holds_is_refused(
    client: TestClient, log: InMemoryEventLog, store: InMemoryDecisionStore
) -> None:
    cdr = partner_cdr()
    cdr["tariffs"] = None
    cdr["charging_periods"][0]["tariff_id"] = "NO-SUCH-TARIFF"
    hold_tariff(store, simple_tariff(country_code="NL", party_id="CPO"))  # the other period's
    body = client.post(POST_URL, content=json.dumps(cdr)).json()
    assert body["status_code"] == 2001 and "NO-SUCH-TARIFF" in body["status_message"]
    assert log.events == []
    # The same CDR is accepted once we hold that tariff.
    hold_tariff(store, simple_tariff("NO-SUCH-TARIFF", country_code="NL", party_id="CPO"))
    assert client.post(POST_URL, content=json.dumps(cdr)).json()["status_code"] == 1000


def test_a_cdr_priced_differently_from_our_tariff_is_flagged(
    client: TestClient, log: InMemoryEventLog, store: InMemoryDecisionStore
) -> None:
    hold_tariff(store, simple_tariff(country_code="NL", party_id="CPO", energy_price="0.40"))
    client.post(POST_URL, content=json.dumps(partner_cdr()))
    reconciled = log.events[-1]
    assert isinstance(reconciled, CdrReconciled)
    assert reconciled.payload.discrepancy
    assert reconciled.payload.difference == Decimal("-0.825")
    flagged = client.get("/ops/cdrs/reconciliation", params={"only_discrepancies": True})
    assert len(flagged.json()["data"]) == 1


def test_an_unknown_cdr_is_a_404_with_2001(client: TestClient) -> None:
    resp = client.get(f"{POST_URL}/NOPE")
    assert (resp.status_code, resp.json()["status_code"]) == (404, 2001)


def test_ops_credit_our_cdr_once_and_the_sender_lists_ours(
    client: TestClient, log: InMemoryEventLog
) -> None:
    # Our builder's event, written straight to the fake log.
    issued = issued_cdr(NOW)
    log.events.append(issued)
    assert client.get("/ops/cdrs/OS-1").json()["data"] == issued.payload.cdr
    credit = client.post("/ops/cdrs/OS-1/credit")
    assert credit.json()["status_code"] == 1000, credit.text
    data = credit.json()["data"]
    assert (data["id"], data["credit_reference_id"]) == ("OS-1-C", "OS-1")
    assert data["total_cost"]["excl_vat"] == -3.575
    assert client.post("/ops/cdrs/OS-1/credit").json()["status_code"] == 2001
    missing = client.post("/ops/cdrs/NOPE/credit")
    assert (missing.status_code, missing.json()["status_code"]) == (404, 2001)
    # The partner's eMSP party (ZZ/HUB here) is not NL/PEE: our CDRs for
    # NL/PEE's tokens are not listed to it.
    listed = client.get("/ocpi/cpo/2.2.1/cdrs")
    assert listed.json()["status_code"] == 1000
    assert listed.json()["data"] == []


def test_a_token_holding_only_a_policy_was_never_issued(
    client: TestClient, log: InMemoryEventLog, store: InMemoryDecisionStore
) -> None:
    store.seed(tokens.SLICE, "ZZ/HUB/RFID-77/RFID", tokens.TokenState(policy=TokenPolicy()))
    body = client.post(POST_URL, content=json.dumps(partner_cdr())).json()
    assert body["status_code"] == 2004
    assert log.events == []


def test_the_location_we_hold_gives_the_reconciliation_its_time_zone(
    client: TestClient, log: InMemoryEventLog, store: InMemoryDecisionStore
) -> None:
    where = priced_location(tariff_ids=["CDR-T1"], country_code="NL", party_id="CPO")
    store.seed(locations.SLICE, "NL/CPO/LOC-CDR", locations.LocationState(asserted=where))
    assert client.post(POST_URL, content=json.dumps(partner_cdr())).json()["status_code"] == 1000
    reconciled = log.events[-1]
    assert isinstance(reconciled, CdrReconciled)
    assert reconciled.payload.note is None  # without the location: "time zone UTC: ..."


def test_openapi_shows_the_cdr_body_of_the_post(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/ocpi/emsp/{version}/cdrs"]["post"]
    body = post["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/Cdr"}
    assert "cdr_token" in schema["components"]["schemas"]["Cdr"]["properties"]
