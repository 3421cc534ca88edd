"""The HTTP shell with a fake event log: envelopes, status codes, ids.

No services: GETs that read views are covered by the integration and e2e tiers.
"""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ocpi_hub.settings import Settings
from producers.log import InMemoryEventLog
from schemas.events import EvseStatusReported

URL = "/ocpi/emsp/2.2.1/locations/NL/ABC/LOC1/EVSE1"
BODY = {"status": "CHARGING", "last_updated": "2026-01-01T12:00:00Z"}


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


@pytest.fixture
def client(log: InMemoryEventLog) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), event_log=log)) as c:
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
    assert isinstance(event, EvseStatusReported)
    assert event.correlation_id == "c-9"
    assert event.payload.status.value == "CHARGING"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"status": "CHARGING"}, "last_updated"),
        ({"status": "SLEEPING", "last_updated": "2026-01-01T12:00:00Z"}, "status"),
        ({"status": "CHARGING", "last_updated": "2026-01-01T14:00:00+02:00"}, "last_updated"),
        ({**BODY, "floor_level": 3}, "floor_level"),
        ([], ""),
    ],
)
def test_bad_input_is_2001_and_writes_nothing(
    client: TestClient, log: InMemoryEventLog, body: object, why: str
) -> None:
    resp = client.patch(URL, json=body)
    assert resp.status_code == 200  # valid JSON reached the OCPI layer: no HTTP error
    assert "data" not in resp.json()
    assert resp.json()["status_code"] == 2001
    assert why in resp.json()["status_message"]
    assert log.events == []


def test_malformed_json_is_400_with_an_envelope(client: TestClient, log: InMemoryEventLog) -> None:
    resp = client.patch(URL, content=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["status_code"] == 2000
    assert log.events == []


def test_over_long_ids_are_refused(client: TestClient, log: InMemoryEventLog) -> None:
    resp = client.patch(f"/ocpi/emsp/2.2.1/locations/NL/ABC/{'L' * 37}/EVSE1", json=BODY)
    assert resp.status_code == 400
    assert resp.json()["status_code"] == 2001
    assert log.events == []


def test_unknown_route_is_an_envelope_not_a_framework_body(client: TestClient) -> None:
    resp = client.get("/ocpi/emsp/2.2.1/nothing-here")
    assert resp.status_code == 404
    assert set(resp.json()) == {"status_code", "status_message", "timestamp"}


def test_a_failing_event_log_is_not_acknowledged(client: TestClient, log: InMemoryEventLog) -> None:
    async def broken(events: object) -> list[object]:
        raise TimeoutError("broker away")

    log.append = broken  # type: ignore[method-assign,assignment]
    resp = client.patch(URL, json=BODY)
    assert resp.status_code == 200
    assert resp.json()["status_code"] == 3000
    assert "retry" in resp.json()["status_message"]
