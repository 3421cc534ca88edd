"""The edge refuses what a reader cannot hold, and a failed append is
answered for what it is (docs/adr/0027): the HTTP shell on the in-memory
write path, with the in-memory log's fault injection.

Each refusal names the field, records nothing, and the next ordinary write
of the same object goes through.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Caller, registered_caller
from ocpi_hub.settings import Settings
from producers import locations
from producers.decision_store import InMemoryDecisionStore
from producers.log import Fault, InMemoryEventLog, InMemoryLogHistory
from producers.partners import PartnerState
from producers.write_path import Timing, WritePath
from schemas.events import LocationObjectPatched, LocationObjectPut
from schemas.ocpi.credentials import BusinessDetails, CredentialsRole, Role
from tests.ocpi_objects import connector, evse, location
from tests.ops_admin import as_admin
from tests.tariff_objects import tariff_json

OPS = "/ops/locations"
RECEIVER = "/ocpi/emsp/2.2.1/locations/NL/ABC"
FORTY_DIGITS = "1234567890123456789012345678901234567890"
LIMIT = 64 * 1024  # the HTTP body limit of these tests
JSON = {"Content-Type": "application/json"}


def ours(location_id: str = "LOC1", **fields: Any) -> dict[str, Any]:
    return location(location_id, country_code="ZZ", party_id="HUB", **fields)


def _partner() -> PartnerState:
    details = BusinessDetails(name="ABC Charging")
    return PartnerState(
        partner_id="abc",
        status="registered",
        roles=(
            CredentialsRole(
                role=Role.CPO, business_details=details, country_code="NL", party_id="ABC"
            ),
        ),
    )


@pytest.fixture
def log() -> InMemoryEventLog:
    # Events may be a little smaller than HTTP bodies here, so that a body
    # that passes the HTTP limit can still make a too large event.
    return InMemoryEventLog(max_message_bytes=LIMIT - 1024)


@pytest.fixture
def client(log: InMemoryEventLog) -> Iterator[TestClient]:
    store = InMemoryDecisionStore()
    # Seeded before the in-memory log's first offset (0), which a read-back
    # after an unknown outcome must find.
    state = locations.LocationState(asserted=location())
    store.seed(locations.SLICE, "NL/ABC/LOC1", state, offset=-1)
    # No fate window: the write after an unknown outcome recovers at once.
    path = WritePath(log, store, InMemoryLogHistory(log), Timing(fate_window_s=0))
    settings = Settings(party_country_code="ZZ", party_id="HUB", max_message_bytes=LIMIT)
    app = create_app(settings, event_log=log, write_path=path)
    as_admin(app)
    app.dependency_overrides[registered_caller] = lambda: Caller(_partner(), "token-c", False)
    with TestClient(app) as c:
        yield c


def _refused(resp: Any, field: str, http_status: int = 200) -> str:
    assert resp.status_code == http_status, resp.text
    body = resp.json()
    assert body["status_code"] == 2001, body
    message: str = body["status_message"]
    assert field in message, message
    return message


# --- numbers ------------------------------------------------------------------


def test_a_40_digit_max_voltage_is_refused_naming_the_field(
    client: TestClient, log: InMemoryEventLog
) -> None:
    text = (
        orjson.dumps(location("LOC9"))
        .decode()
        .replace('"max_voltage":230', f'"max_voltage":{FORTY_DIGITS}')
    )
    resp = client.put(f"{RECEIVER}/LOC9", content=text, headers=JSON)
    _refused(resp, "evses.0.connectors.0.max_voltage")
    assert log.events == []
    assert client.put(f"{RECEIVER}/LOC9", json=location("LOC9")).json()["status_code"] == 1000


def test_a_40_digit_integer_in_an_unknown_field_is_refused_too(
    client: TestClient, log: InMemoryEventLog
) -> None:
    text = orjson.dumps(ours()).decode()[:-1] + f', "vendor_ext": {{"n": [{FORTY_DIGITS}]}}}}'
    _refused(client.put(f"{OPS}/LOC1", content=text, headers=JSON), "vendor_ext.n.0")
    assert log.events == []


def test_a_number_beyond_a_double_is_2001_not_invalid_json(
    client: TestClient, log: InMemoryEventLog
) -> None:
    # orjson refuses 1e400 as JSON; it is valid JSON: named as a field.
    text = orjson.dumps(connector("1")).decode()[:-1] + ', "max_electric_power": 1e400}'
    resp = client.put(f"{OPS}/LOC1/EVSE1/1", content=text, headers=JSON)
    _refused(resp, "max_electric_power")
    assert log.events == []


def test_a_tariff_price_of_1e400_is_refused_naming_the_field(
    client: TestClient, log: InMemoryEventLog
) -> None:
    elements = '[{"price_components": [{"type": "ENERGY", "price": 1e400, "step_size": 1}]}]'
    text = tariff_json("T1", country_code="ZZ", party_id="HUB", elements=elements)
    resp = client.put("/ops/tariffs/T1", content=text, headers=JSON)
    _refused(resp, "elements.0.price_components.0.price")
    assert log.events == []


def test_a_connector_rating_beyond_32_bits_is_refused_by_the_model(
    client: TestClient, log: InMemoryEventLog
) -> None:
    resp = client.put(
        f"{OPS}/LOC1", json=ours(evses=[evse(connectors=[connector(max_voltage=2**40)])])
    )
    _refused(resp, "max_voltage")
    assert log.events == []


def test_nan_is_not_json(client: TestClient, log: InMemoryEventLog) -> None:
    elements = '[{"price_components": [{"type": "ENERGY", "price": NaN, "step_size": 1}]}]'
    text = tariff_json("T1", country_code="ZZ", party_id="HUB", elements=elements)
    resp = client.put("/ops/tariffs/T1", content=text, headers=JSON)
    assert resp.status_code == 400
    assert resp.json()["status_code"] == 2000
    assert log.events == []


def test_charger_facts_are_checked_too(client: TestClient, log: InMemoryEventLog) -> None:
    text = '{"location_id": "LOC1", "meter_stop": ' + FORTY_DIGITS + "}"
    resp = client.post("/ops/chargers/transactions/stopped", content=text, headers=JSON)
    _refused(resp, "meter_stop")
    assert log.events == []


# --- timestamps ------------------------------------------------------------------


def test_a_charger_report_dated_ahead_is_refused(client: TestClient, log: InMemoryEventLog) -> None:
    # Its ``at`` becomes our session's last_updated: the same freeze.
    body = {"location_id": "LOC1", "session_id": "S1", "at": "2999-01-01T00:00:00Z"}
    resp = client.post("/ops/chargers/transactions/started", json=body)
    _refused(resp, "at")
    assert "ahead of our clock" in resp.json()["status_message"]
    assert log.events == []


def test_last_updated_in_2999_is_refused_and_a_real_update_still_applies(
    client: TestClient, log: InMemoryEventLog
) -> None:
    frozen = {"status": "CHARGING", "last_updated": "2999-01-01T00:00:00Z"}
    message = _refused(client.patch(f"{RECEIVER}/LOC1/EVSE1", json=frozen), "last_updated")
    assert "300 s ahead of our clock" in message
    nested = location("LOC1", evses=[evse(at="2999-01-01T00:00:00Z")])
    _refused(client.put(f"{RECEIVER}/LOC1", json=nested), "evses.0.last_updated")
    assert log.events == []
    real = {"status": "CHARGING", "last_updated": "2026-01-02T00:00:00Z"}
    assert client.patch(f"{RECEIVER}/LOC1/EVSE1", json=real).json()["status_code"] == 1000
    [event] = log.events
    assert isinstance(event, LocationObjectPatched)


def test_past_dates_stay_accepted(client: TestClient) -> None:
    old = {"status": "CHARGING", "last_updated": "2001-01-01T00:00:00Z"}
    assert client.patch(f"{RECEIVER}/LOC1/EVSE1", json=old).json()["status_code"] == 1000


# --- size --------------------------------------------------------------------------


def _big_location(evses: int) -> dict[str, Any]:
    return ours("BIG", evses=[evse(f"E{i:05d}") for i in range(evses)])


def test_a_body_beyond_the_limit_is_413_before_it_is_read(
    client: TestClient, log: InMemoryEventLog
) -> None:
    text = orjson.dumps(_big_location(1000))
    assert len(text) > LIMIT
    resp = client.put(f"{OPS}/BIG", content=text, headers=JSON)
    assert resp.status_code == 413
    assert resp.json()["status_code"] == 2001
    assert str(LIMIT) in resp.json()["status_message"]
    assert log.events == []


def test_a_chunked_body_beyond_the_limit_is_413(client: TestClient, log: InMemoryEventLog) -> None:
    text = orjson.dumps(_big_location(1000))

    def chunks() -> Iterator[bytes]:
        for at in range(0, len(text), 8192):
            yield text[at : at + 8192]

    resp = client.put(f"{OPS}/BIG", content=chunks(), headers=JSON)
    assert resp.status_code == 413
    assert resp.json()["status_code"] == 2001
    assert log.events == []


def test_an_event_beyond_the_message_limit_is_413_and_the_object_stays_writable(
    client: TestClient, log: InMemoryEventLog
) -> None:
    # The body fits the HTTP limit, the event (body + envelope) does not.
    n = 1
    while len(orjson.dumps(_big_location(n + 1))) < LIMIT - 600:
        n += 1
    body = _big_location(n)
    assert LIMIT - 1024 - 600 < len(orjson.dumps(body)) < LIMIT
    resp = client.put(f"{OPS}/BIG", json=body)
    assert resp.status_code == 413, resp.text
    assert resp.json()["status_code"] == 2001
    assert "too large to record" in resp.json()["status_message"]
    assert log.events == []
    assert client.put(f"{OPS}/BIG", json=_big_location(2)).status_code == 201


# --- failed appends ------------------------------------------------------------------

PATCH = {"status": "CHARGING", "last_updated": "2026-01-02T00:00:00Z"}


def test_not_sent_is_answered_not_recorded(client: TestClient, log: InMemoryEventLog) -> None:
    log.faults.append(Fault.NOT_SENT)
    resp = client.patch(f"{RECEIVER}/LOC1/EVSE1", json=PATCH)
    assert resp.json()["status_code"] == 3000
    assert resp.json()["status_message"] == "the update was not recorded; retry"
    assert log.events == []
    assert client.patch(f"{RECEIVER}/LOC1/EVSE1", json=PATCH).json()["status_code"] == 1000


def test_an_answer_lost_after_the_log_kept_it_is_resolved_from_the_log(
    client: TestClient, log: InMemoryEventLog
) -> None:
    log.faults.append(Fault.ANSWER_LOST)
    resp = client.patch(f"{RECEIVER}/LOC1/EVSE1", json=PATCH)
    # Read back, the event is in the log: the write is recorded, say so.
    assert resp.json()["status_code"] == 1000, resp.text
    assert len(log.events) == 1
    later = {"status": "AVAILABLE", "last_updated": "2026-01-02T00:01:00Z"}
    assert client.patch(f"{RECEIVER}/LOC1/EVSE1", json=later).json()["status_code"] == 1000
    assert len(log.events) == 2


def test_an_unknown_outcome_never_claims_not_recorded_and_a_retry_is_the_same_change(
    client: TestClient, log: InMemoryEventLog
) -> None:
    log.faults.append(Fault.LOST_IN_FLIGHT)
    resp = client.patch(f"{RECEIVER}/LOC1/EVSE1", json=PATCH)
    body = resp.json()
    assert body["status_code"] == 3000
    assert "may have been recorded" in body["status_message"]
    assert "not recorded" not in body["status_message"]
    assert log.events == []
    # The retry of the same body is decided as the same change.
    assert client.patch(f"{RECEIVER}/LOC1/EVSE1", json=PATCH).json()["status_code"] == 1000
    [event] = log.events
    assert isinstance(event, LocationObjectPatched)
    assert event.payload.patch == PATCH


def test_a_retried_put_whose_first_answer_was_lost_is_harmless(
    client: TestClient, log: InMemoryEventLog
) -> None:
    # The first PUT landed but its answer was lost and (say) the read-back
    # failed too: the sender repeats it. Both events fold to the same state.
    first = ours("LOC5", name="Station")
    log.faults.append(Fault.ANSWER_LOST)
    assert client.put(f"{OPS}/LOC5", json=first).json()["status_code"] == 1000
    assert client.put(f"{OPS}/LOC5", json=first).status_code == 200
    assert [type(e) for e in log.events] == [LocationObjectPut, LocationObjectPut]
    once = locations.SLICE.fold(None, log.events[:1])
    twice = locations.SLICE.fold(None, log.events)
    assert once == twice


def test_a_body_that_is_not_utf8_is_not_valid_json(
    client: TestClient, log: InMemoryEventLog
) -> None:
    # FastAPI answers "There was an error parsing the body" for bytes it
    # cannot decode at all; a partner gets the OCPI answer for bad JSON.
    resp = client.put(f"{RECEIVER}/LOC1", content=b"\xff\xfe{", headers=JSON)
    assert resp.status_code == 400
    assert resp.json()["status_message"] == "request body is not valid JSON"
    assert log.events == []
