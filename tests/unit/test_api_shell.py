"""The HTTP shell of the Locations module with a fake event log and a fake
view: envelopes, status codes, ids, authorization, routing headers.

No services: the same routes run against Kafka and MongoDB in the
integration and e2e tiers.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo.errors import NetworkTimeout

from api.app import create_app
from api.auth import Caller, registered_caller
from api.deps import _locations
from ocpi_hub.settings import Settings
from producers import locations
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.partners import PartnerState
from producers.write_path import WritePath
from projections.position import position_field
from schemas.events import LocationObjectPatched, LocationObjectPut
from schemas.ocpi.common import fold
from schemas.ocpi.credentials import BusinessDetails, CredentialsRole, Role
from tests.ocpi_objects import AT, connector, evse, location

BASE = "/ocpi/emsp/2.2.1/locations"
URL = f"{BASE}/NL/ABC/LOC1/EVSE1"
BODY = {"status": "CHARGING", "last_updated": "2026-01-01T12:05:00Z"}


def _held(log: InMemoryEventLog) -> WritePath:
    """The write path holding NL/ABC/LOC1 with EVSE1, connector 1."""
    store = InMemoryDecisionStore()
    store.seed(locations.SLICE, "NL/ABC/LOC1", locations.LocationState(asserted=location()))
    return WritePath(log, store, InMemoryLogHistory(log))


class FakeView:
    """What the MongoDB view would hold: NL/ABC/LOC1 with EVSE1, connector 1."""

    def __init__(self) -> None:
        self.held = {fold("NL/ABC/LOC1"): location()}

    async def read(self, key: str) -> tuple[Any, dict[str, int]]:
        # Every write is already applied (read-your-writes has its own tests).
        return self.held.get(key), {position_field("ocpi.locations.v1", 0): 10**9}


def _partner() -> PartnerState:
    details = BusinessDetails(name="ABC Charging")
    return PartnerState(
        partner_id="abc",
        status="registered",
        roles=(
            CredentialsRole(
                role=Role.CPO, business_details=details, country_code="NL", party_id="ABC"
            ),
            CredentialsRole(
                role=Role.EMSP, business_details=details, country_code="NL", party_id="ABD"
            ),
        ),
    )


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


@pytest.fixture
def client(log: InMemoryEventLog) -> Iterator[TestClient]:
    app = create_app(
        Settings(party_country_code="ZZ", party_id="HUB"), event_log=log, write_path=_held(log)
    )
    app.dependency_overrides[registered_caller] = lambda: Caller(_partner(), "token-c", False)
    app.dependency_overrides[_locations] = FakeView
    with TestClient(app) as c:
        yield c


def test_patch_records_one_event_and_answers_success(
    client: TestClient, log: InMemoryEventLog
) -> None:
    resp = client.patch(URL, json=BODY, headers={"X-Request-ID": "r-1", "X-Correlation-ID": "c-9"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["status_code"] == 1000
    assert "data" not in body  # the spec names no data for a PATCH answer
    assert body["timestamp"].endswith("Z")
    assert resp.headers["X-Request-ID"] == "r-1"
    assert resp.headers["X-Correlation-ID"] == "c-9"
    [event] = log.events
    assert isinstance(event, LocationObjectPatched)
    assert event.correlation_id == "c-9"
    assert event.payload.evse_uid == "EVSE1"
    assert event.payload.patch == BODY
    assert (event.source.country_code, event.source.party_id) == ("NL", "ABC")


def test_answers_carry_routing_headers_swapped(client: TestClient) -> None:
    resp = client.patch(
        URL, json=BODY, headers={"OCPI-from-country-code": "NL", "OCPI-from-party-id": "ABC"}
    )
    assert resp.json()["status_code"] == 1000
    assert resp.headers["OCPI-from-country-code"] == "ZZ"
    assert resp.headers["OCPI-from-party-id"] == "HUB"
    assert resp.headers["OCPI-to-country-code"] == "NL"
    assert resp.headers["OCPI-to-party-id"] == "ABC"


def test_put_answers_201_when_it_creates_and_200_when_it_replaces(
    client: TestClient, log: InMemoryEventLog
) -> None:
    created = client.put(f"{BASE}/NL/ABC/LOC2", json=location("LOC2"))
    replaced = client.put(f"{BASE}/NL/ABC/LOC1", json=location("LOC1", name="Station"))
    new_evse = client.put(f"{BASE}/NL/ABC/LOC1/EVSE2", json=evse("EVSE2"))
    same_connector = client.put(f"{BASE}/NL/ABC/LOC1/EVSE1/1", json=connector("1", max_voltage=400))
    assert [r.status_code for r in (created, replaced, new_evse, same_connector)] == [
        201,
        200,
        201,
        200,
    ]
    assert all(r.json()["status_code"] == 1000 for r in (created, replaced, new_evse))
    assert [type(e) for e in log.events] == [LocationObjectPut] * 4
    assert [e.payload.level.value for e in log.events] == [  # type: ignore[attr-defined]
        "LOCATION",
        "LOCATION",
        "EVSE",
        "CONNECTOR",
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "why"),
    [
        ("PATCH", "/NL/ABC/LOC1/EVSE1", {"status": "CHARGING"}, "last_updated"),
        ("PATCH", "/NL/ABC/LOC1/EVSE1", {"status": "SLEEPING", "last_updated": AT}, "status"),
        (
            "PATCH",
            "/NL/ABC/LOC1/EVSE1",
            {"status": "CHARGING", "last_updated": "2026-01-01T14:00:00+02:00"},
            "last_updated",
        ),
        ("PATCH", "/NL/ABC/LOC1/EVSE1", {**BODY, "uid": "EVSE9"}, "uid"),
        ("PATCH", "/NL/ABC/LOC1/EVSE1", {**BODY, "status": None}, "status"),
        ("PATCH", "/NL/ABC/LOC1/EVSE1", [], ""),
        (
            "PATCH",
            "/NL/ABC/LOC1",
            {"publish": True, "publish_allowed_to": [{"uid": "T1"}], "last_updated": AT},
            "publish_allowed_to",
        ),
        ("PUT", "/NL/ABC/LOC1", location("LOC9"), "id"),
        ("PUT", "/NL/ABC/LOC1", location(name="N" * 256), "name"),
        ("PUT", "/NL/ABC/LOC1", {**location(), "address": None}, "address"),
        ("PUT", "/NL/ABC/LOC1/EVSE1", evse("EVSE1", connectors=[]), "connectors"),
        ("PUT", "/NL/ABC/LOC1/EVSE1/1", connector("2"), "id"),
        # Another party's objects, even one of the caller's other roles' ids
        # used in the body only.
        ("PUT", "/DE/XYZ/LOC1", location(country_code="DE", party_id="XYZ"), "XYZ"),
        ("PATCH", "/DE/XYZ/LOC1/EVSE1", BODY, "XYZ"),
        ("PUT", "/NL/ABC/LOC1", location(party_id="ABD"), "party_id"),
    ],
)
def test_bad_input_is_2001_and_writes_nothing(
    client: TestClient, log: InMemoryEventLog, method: str, path: str, body: object, why: str
) -> None:
    resp = client.request(method, BASE + path, json=body)
    assert resp.status_code == 200  # valid JSON reached the OCPI layer: no HTTP error
    assert "data" not in resp.json()
    assert resp.json()["status_code"] == 2001, resp.json()
    assert why in resp.json()["status_message"]
    assert log.events == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/NL/ABC/LOC9/EVSE1", BODY),  # no such location
        ("PATCH", "/NL/ABC/LOC1/EVSE9", BODY),  # no such EVSE
        ("PATCH", "/NL/ABC/LOC1/EVSE1/9", {"max_voltage": 400, "last_updated": AT}),
        ("PUT", "/NL/ABC/LOC9/EVSE1", evse()),  # an EVSE needs its location
        ("PUT", "/NL/ABC/LOC1/EVSE9/1", connector()),  # a connector needs its EVSE
    ],
)
def test_writes_to_unknown_objects_are_2003_and_write_nothing(
    client: TestClient, log: InMemoryEventLog, method: str, path: str, body: object
) -> None:
    resp = client.request(method, BASE + path, json=body)
    assert resp.status_code == 200
    assert resp.json()["status_code"] == 2003
    assert log.events == []


def test_gets_at_three_levels(client: TestClient) -> None:
    assert client.get(f"{BASE}/nl/abc/loc1").json()["data"]["id"] == "LOC1"  # CiString
    assert client.get(f"{BASE}/NL/ABC/LOC1/evse1").json()["data"]["uid"] == "EVSE1"
    assert client.get(f"{BASE}/NL/ABC/LOC1/EVSE1/1").json()["data"]["standard"] == "IEC_62196_T2"
    for missing in ("/NL/ABC/LOC9", "/NL/ABC/LOC1/EVSE9", "/NL/ABC/LOC1/EVSE1/9"):
        resp = client.get(BASE + missing)
        assert (resp.status_code, resp.json()["status_code"]) == (404, 2003)
    other = client.get(f"{BASE}/DE/XYZ/LOC1")
    assert other.json()["status_code"] == 2001


def test_routing_headers_naming_someone_else_are_refused(
    client: TestClient, log: InMemoryEventLog
) -> None:
    not_theirs = {"OCPI-from-country-code": "DE", "OCPI-from-party-id": "XYZ"}
    not_us = {"OCPI-to-country-code": "DE", "OCPI-to-party-id": "XYZ"}
    half = {"OCPI-from-country-code": "NL"}
    for headers in (not_theirs, not_us, half):
        resp = client.patch(URL, json=BODY, headers=headers)
        assert resp.json()["status_code"] == 2001, headers
    assert log.events == []


def test_malformed_json_is_400_with_an_envelope(client: TestClient, log: InMemoryEventLog) -> None:
    resp = client.patch(URL, content=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["status_code"] == 2000
    assert log.events == []


def test_over_long_ids_are_refused(client: TestClient, log: InMemoryEventLog) -> None:
    # docs/adr/0039 §2: a write reached the OCPI layer (2001 at HTTP 200); a
    # GET of an object whose id breaks the limits names one that cannot
    # exist (the GET's 404).
    resp = client.patch(f"{BASE}/NL/ABC/{'L' * 37}/EVSE1", json=BODY)
    assert (resp.status_code, resp.json()["status_code"]) == (200, 2001)
    got = client.get(f"{BASE}/NL/ABC/{'L' * 37}/EVSE1")
    assert (got.status_code, got.json()["status_code"]) == (404, 2001)
    assert log.events == []


def test_unknown_route_is_an_envelope_not_a_framework_body(client: TestClient) -> None:
    resp = client.get("/ocpi/emsp/2.2.1/nothing-here")
    assert resp.status_code == 404
    assert set(resp.json()) == {"status_code", "status_message", "timestamp"}


def test_a_failing_event_log_is_not_acknowledged(client: TestClient, log: InMemoryEventLog) -> None:
    async def broken(events: object, partition: int | None = None) -> list[object]:
        raise TimeoutError("broker away")

    log.append = broken  # type: ignore[method-assign,assignment]
    resp = client.patch(URL, json=BODY)
    assert resp.status_code == 200
    assert resp.json()["status_code"] == 3000
    assert "retry" in resp.json()["status_message"]


def test_without_a_token_nothing_is_served_or_written(log: InMemoryEventLog) -> None:
    app = create_app(Settings(), event_log=log)
    app.dependency_overrides[_locations] = FakeView
    with TestClient(app) as c:
        for resp in (c.patch(URL, json=BODY), c.get(f"{BASE}/NL/ABC/LOC1")):
            assert resp.status_code == 401
            assert resp.json()["status_code"] == 2000
    assert log.events == []


class StalledView:
    """A view whose store does not answer within the client's bound."""

    async def read(self, key: str) -> tuple[Any, dict[str, int]]:
        raise NetworkTimeout("127.0.0.1:27017: timed out")

    async def positions(self, key: str) -> dict[str, int]:
        raise NetworkTimeout("127.0.0.1:27017: timed out")


def test_a_view_read_that_times_out_is_an_ocpi_retry_not_a_crash(client: TestClient) -> None:
    client.app.dependency_overrides[_locations] = StalledView  # type: ignore[attr-defined]
    resp = client.get(f"{BASE}/NL/ABC/LOC1")
    assert resp.status_code == 200
    assert resp.json()["status_code"] == 3000
    assert "retry" in resp.json()["status_message"]
