"""The charger simulator of the ops API with fakes: a fact about one of our
connectors is recorded; an unknown location, EVSE or connector, or a bad
body, is refused and writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ocpi_hub.settings import Settings
from producers import locations
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.write_path import WritePath
from schemas.events import TransactionStarted
from tests.ocpi_objects import location
from tests.ops_admin import as_admin

URL = "/ops/chargers/transactions"


def _holding_our_location(log: InMemoryEventLog) -> WritePath:
    store = InMemoryDecisionStore()
    ours = locations.LocationState(asserted=location(country_code="ZZ", party_id="HUB"))
    store.seed(locations.SLICE, "ZZ/HUB/LOC1", ours)
    return WritePath(log, store, InMemoryLogHistory(log))


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


@pytest.fixture
def client(log: InMemoryEventLog) -> Iterator[TestClient]:
    app = create_app(
        Settings(party_country_code="ZZ", party_id="HUB"),
        event_log=log,
        write_path=_holding_our_location(log),
    )
    as_admin(app)
    with TestClient(app) as c:
        yield c


def fact(**fields: Any) -> dict[str, Any]:
    return {
        "location_id": "LOC1",
        "evse_uid": "EVSE1",
        "connector_id": "1",
        "session_id": "S1",
        "transaction_id": "T1",
        "token": {
            "uid": "RFID-7",
            "type": "RFID",
            "country_code": "NL",
            "party_id": "PEE",
            "contract_id": "NL-PEE-7",
        },
        "authorized": True,
        "auth_method": "WHITELIST",
        "meter_start_wh": 1000,
        "at": "2026-04-01T08:00:00Z",
        **fields,
    }


def test_a_start_at_our_connector_is_recorded(client: TestClient, log: InMemoryEventLog) -> None:
    resp = client.post(f"{URL}/started", json=fact())
    assert resp.status_code == 200 and resp.json()["status_code"] == 1000, resp.text
    [event] = log.events
    assert isinstance(event, TransactionStarted)
    assert event.aggregate_key == "ZZ/HUB/LOC1"
    assert (event.payload.country_code, event.payload.party_id) == ("ZZ", "HUB")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (fact(location_id="NOWHERE"), 2003),
        (fact(evse_uid="EVSE9"), 2003),
        (fact(connector_id="9"), 2003),
        (fact(meter_start_wh=-1), 2001),
        (fact(authorized="maybe"), 2001),
        ([1, 2], 2001),
    ],
)
def test_refused_facts_write_nothing(
    client: TestClient, log: InMemoryEventLog, body: Any, status: int
) -> None:
    resp = client.post(f"{URL}/started", json=body)
    assert resp.json()["status_code"] == status, resp.text
    assert log.events == []


def test_meter_values_and_stop(client: TestClient, log: InMemoryEventLog) -> None:
    ids = {k: fact()[k] for k in ("location_id", "evse_uid", "connector_id", "session_id")}
    ids["transaction_id"] = "T1"
    sampled = client.post(
        f"{URL}/meter-values", json={**ids, "meter_wh": 2500.5, "at": "2026-04-01T08:10:00Z"}
    )
    done = client.post(
        f"{URL}/stopped", json={**ids, "meter_stop_wh": 3000, "at": "2026-04-01T08:20:00Z"}
    )
    assert [r.json()["status_code"] for r in (sampled, done)] == [1000, 1000]
    assert [e.event_type for e in log.events] == ["MeterValuesSampled", "TransactionStopped"]  # type: ignore[attr-defined]


def test_a_reservation_may_name_no_evse_but_not_an_unknown_one(
    client: TestClient, log: InMemoryEventLog
) -> None:
    body = {
        "location_id": "LOC1",
        "evse_uid": "#NA",
        "connector_id": "#NA",
        "session_id": "S9",
        "reservation_id": "R1",
        "token": fact()["token"],
        "expires_at": "2026-04-01T09:00:00Z",
        "at": "2026-04-01T08:30:00Z",
    }
    made = client.post(f"{URL}/reservation-made", json=body)
    unknown = client.post(f"{URL}/reservation-made", json={**body, "evse_uid": "EVSE9"})
    ended = client.post(
        f"{URL}/reservation-ended", json={**body, "reason": "EXPIRED"} | {"expires_at": None}
    )
    assert made.json()["status_code"] == 1000, made.text
    assert unknown.json()["status_code"] == 2003
    assert ended.json()["status_code"] == 2001  # expires_at is not a field of an end
    assert [e.event_type for e in log.events] == ["ReservationMade"]  # type: ignore[attr-defined]
    fine = {k: v for k, v in body.items() if k not in ("token", "expires_at")}
    assert (
        client.post(f"{URL}/reservation-ended", json={**fine, "reason": "EXPIRED"}).json()[
            "status_code"
        ]
        == 1000
    )
