"""The HTTP shell of the Tariffs module on the in-memory write path and a
fake view: envelopes, status codes, exact numbers, ids, authorization, no
PATCH, the Sender list, the ops routes, the version details."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Caller, caller, registered_caller
from api.deps import _tariffs
from ocpi_hub.settings import Settings
from producers import tariffs
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.partners import PartnerState
from producers.write_path import Origin, WritePath
from projections.mongo.paging import Page
from projections.position import position_field
from schemas.events import Party, TariffDeleted, TariffPut
from schemas.events.tariffs import TariffRef
from schemas.ocpi.credentials import BusinessDetails, CredentialsRole, Role
from schemas.ocpi.tariffs import loads_exact, tariff_from_json
from schemas.ocpi.types import to_json
from tests.ops_admin import as_admin
from tests.tariff_objects import tariff_json

NOW = datetime(2026, 2, 1, 11, 0, tzinfo=UTC)
BASE = "/ocpi/emsp/2.2.1/tariffs"
URL = f"{BASE}/NL/ABC/TAR-1"
JSON = {"Content-Type": "application/json"}


class FakeTariffView:
    """What the MongoDB view would hold: NL/ABC/TAR-1 and our ZZ/HUB/OURS-1."""

    def __init__(self) -> None:
        self.held: dict[str, Any] = {
            "NL/ABC/TAR-1": to_json(tariff_from_json(tariff_json("TAR-1"))),
            "ZZ/HUB/OURS-1": to_json(
                tariff_from_json(tariff_json("OURS-1", country_code="ZZ", party_id="HUB"))
            ),
        }
        self.asked: dict[str, Any] = {}

    async def read(self, key: str) -> tuple[Any, dict[str, int]]:
        return self.held.get(key), await self.positions(key)

    async def positions(self, key: str) -> dict[str, int]:
        # Every write is applied (read-your-writes has its own tests).
        return {position_field("ocpi.tariffs.v1", p): 10**9 for p in range(6)}

    async def page(self, **kwargs: Any) -> Page:
        self.asked = kwargs
        ours = [v for k, v in self.held.items() if k.startswith("ZZ/HUB/")]
        return Page(items=ours, total=3, last=("2026-02-01T10:00:00.000000Z", "ZZ/HUB/OURS-1"))


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


def _held(log: InMemoryEventLog) -> WritePath:
    """The write path holding NL/ABC/TAR-1 and our ZZ/HUB/OURS-1, as their
    PUTs left them."""
    store = InMemoryDecisionStore()
    for cc, pid, tid in (("NL", "ABC", "TAR-1"), ("ZZ", "HUB", "OURS-1")):
        ref = TariffRef(country_code=cc, party_id=pid, tariff_id=tid)
        body = loads_exact(tariff_json(tid, country_code=cc, party_id=pid))
        origin = Origin(Party(country_code=cc, party_id=pid), "seed")
        state = tariffs.evolve(None, tariffs.plan_put(ref, body, None, origin, NOW).event)
        assert state is not None
        store.seed(tariffs.SLICE, ref.tariff_key, state)
    return WritePath(log, store, InMemoryLogHistory(log))


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


@pytest.fixture
def view() -> FakeTariffView:
    return FakeTariffView()


@pytest.fixture
def client(log: InMemoryEventLog, view: FakeTariffView) -> Iterator[TestClient]:
    settings = Settings(party_country_code="ZZ", party_id="HUB", page_limit=1)
    app = create_app(settings, event_log=log, write_path=_held(log))
    as_admin(app)
    app.dependency_overrides[registered_caller] = lambda: Caller(_partner(), "token-c", False)
    app.dependency_overrides[caller] = lambda: Caller(_partner(), "token-c", False)
    app.dependency_overrides[_tariffs] = lambda: view
    with TestClient(app) as c:
        yield c


def test_put_creates_201_then_replaces_200(client: TestClient, log: InMemoryEventLog) -> None:
    created = client.put(f"{BASE}/NL/ABC/TAR-2", content=tariff_json("TAR-2"), headers=JSON)
    replaced = client.put(URL, content=tariff_json("TAR-1"), headers=JSON)
    assert (created.status_code, replaced.status_code) == (201, 200)
    for resp in (created, replaced):
        assert resp.json()["status_code"] == 1000
        assert "data" not in resp.json()
    assert [type(e) for e in log.events] == [TariffPut, TariffPut]
    event = log.events[0]
    assert isinstance(event, TariffPut)
    assert (event.source.country_code, event.source.party_id) == ("NL", "ABC")
    assert event.payload.tariff_id == "TAR-2"


def test_put_keeps_every_digit(client: TestClient, log: InMemoryEventLog) -> None:
    client.put(URL, content=tariff_json("TAR-1"), headers=JSON)
    [event] = log.events
    assert isinstance(event, TariffPut)
    stored = loads_exact(event.model_dump_json())["payload"]["object"]
    assert stored == loads_exact(tariff_json("TAR-1"))
    assert stored["elements"][2]["price_components"][0]["price"] == Decimal("0.123456789012345")


def test_get_returns_the_tariff_and_404_for_unknown(client: TestClient) -> None:
    resp = client.get(f"{BASE}/nl/abc/tar-1")  # CiString
    assert resp.status_code == 200
    data = loads_exact(resp.content)["data"]
    assert data == loads_exact(tariff_json("TAR-1"))
    missing = client.get(f"{BASE}/NL/ABC/NOPE")
    assert (missing.status_code, missing.json()["status_code"]) == (404, 2000)
    assert set(missing.json()) == {"status_code", "status_message", "timestamp"}


def test_delete_records_a_deletion_and_unknown_is_2000(
    client: TestClient, log: InMemoryEventLog
) -> None:
    resp = client.delete(URL)
    assert (resp.status_code, resp.json()["status_code"]) == (200, 1000)
    # A DELETE is no GET: HTTP 200 with the OCPI error (docs/adr/0039 §2);
    # the ops API, ours, keeps its 404 for the same refusal.
    missing = client.delete(f"{BASE}/NL/ABC/NOPE")
    assert (missing.status_code, missing.json()["status_code"]) == (200, 2000)
    ops_missing = client.delete("/ops/tariffs/NOPE")
    assert (ops_missing.status_code, ops_missing.json()["status_code"]) == (404, 2000)
    assert [type(e) for e in log.events] == [TariffDeleted]


def test_patch_is_an_ocpi_error_not_a_framework_body(
    client: TestClient, log: InMemoryEventLog
) -> None:
    resp = client.patch(URL, json={"currency": "USD", "last_updated": "2026-02-01T10:00:00Z"})
    assert resp.status_code == 405
    assert resp.json()["status_code"] == 2000
    assert "PATCH" in resp.json()["status_message"]
    assert resp.headers["Allow"] == "GET, PUT, DELETE"
    assert log.events == []


@pytest.mark.parametrize(
    ("path", "body", "why"),
    [
        ("/NL/ABC/TAR-1", tariff_json("TAR-9"), "id"),
        ("/NL/ABC/TAR-1", tariff_json("TAR-1", party_id="ABD"), "party_id"),
        ("/DE/XYZ/TAR-1", tariff_json("TAR-1", country_code="DE", party_id="XYZ"), "XYZ"),
        ("/NL/ABC/TAR-1", tariff_json("TAR-1", elements="[]"), "elements"),
        ("/NL/ABC/TAR-1", tariff_json("TAR-1", extra='"type": "CHEAP",'), "type"),
        ("/NL/ABC/TAR-1", tariff_json("TAR-1").replace("0.75", '"0.75"'), "price"),
        ("/NL/ABC/TAR-1", tariff_json("TAR-1").replace('"2026-02-01T10:00:00Z"', "null"), "last"),
        ("/NL/ABC/TAR-1", "[]", ""),
    ],
)
def test_bad_input_is_2001_and_writes_nothing(
    client: TestClient, log: InMemoryEventLog, path: str, body: str, why: str
) -> None:
    resp = client.put(BASE + path, content=body, headers=JSON)
    assert resp.status_code == 200  # valid JSON reached the OCPI layer
    assert resp.json()["status_code"] == 2001, resp.json()
    assert why in resp.json()["status_message"]
    assert log.events == []


def test_another_partys_tariff_cannot_be_read_or_deleted(
    client: TestClient, log: InMemoryEventLog
) -> None:
    for resp in (client.get(f"{BASE}/DE/XYZ/TAR-1"), client.delete(f"{BASE}/DE/XYZ/TAR-1")):
        assert resp.json()["status_code"] == 2001
    assert log.events == []


def test_malformed_json_is_400_with_an_envelope(client: TestClient, log: InMemoryEventLog) -> None:
    resp = client.put(URL, content=b"{not json", headers=JSON)
    assert (resp.status_code, resp.json()["status_code"]) == (400, 2000)
    assert log.events == []


def test_over_long_id_is_refused(client: TestClient, log: InMemoryEventLog) -> None:
    # A write reached the OCPI layer: 2001 at HTTP 200 (docs/adr/0039 §2).
    resp = client.put(f"{BASE}/NL/ABC/{'T' * 37}", content=tariff_json("T" * 37), headers=JSON)
    assert (resp.status_code, resp.json()["status_code"]) == (200, 2001)
    assert log.events == []


def test_a_failing_event_log_is_not_acknowledged(client: TestClient, log: InMemoryEventLog) -> None:
    async def broken(events: object) -> list[object]:
        raise TimeoutError("broker away")

    log.append = broken  # type: ignore[method-assign,assignment]
    resp = client.put(URL, content=tariff_json("TAR-1"), headers=JSON)
    assert (resp.status_code, resp.json()["status_code"]) == (200, 3000)


def test_sender_lists_our_tariffs_with_pagination_headers(
    client: TestClient, view: FakeTariffView
) -> None:
    resp = client.get("/ocpi/cpo/2.2.1/tariffs", params={"date_from": "2026-01-01T00:00:00Z"})
    assert resp.status_code == 200
    body = loads_exact(resp.content)
    assert [t["id"] for t in body["data"]] == ["OURS-1"]
    assert (resp.headers["X-Total-Count"], resp.headers["X-Limit"]) == ("3", "1")
    assert 'rel="next"' in resp.headers["Link"]
    assert "offset=1" in resp.headers["Link"] and "cursor=" in resp.headers["Link"]
    assert (view.asked["country_code"], view.asked["party_id"]) == ("ZZ", "HUB")


def test_ops_writes_our_tariffs(client: TestClient, log: InMemoryEventLog) -> None:
    body = tariff_json("OURS-2", country_code="ZZ", party_id="HUB")
    assert client.put("/ops/tariffs/OURS-2", content=body, headers=JSON).status_code == 201
    wrong = client.put("/ops/tariffs/OURS-3", content=body, headers=JSON)
    assert wrong.json()["status_code"] == 2001
    assert client.get("/ops/tariffs/OURS-1").json()["data"]["id"] == "OURS-1"
    assert client.delete("/ops/tariffs/OURS-1").json()["status_code"] == 1000
    assert client.patch("/ops/tariffs/OURS-1", json={}).status_code == 405
    assert [type(e) for e in log.events] == [TariffPut, TariffDeleted]
    assert (log.events[0].source.country_code, log.events[0].source.party_id) == ("ZZ", "HUB")


def test_version_details_publish_both_roles(client: TestClient) -> None:
    resp = client.get("/ocpi/2.2.1")
    tariffs = [e for e in resp.json()["data"]["endpoints"] if e["identifier"] == "tariffs"]
    assert sorted((e["role"], e["url"].split("/ocpi/")[1]) for e in tariffs) == [
        ("RECEIVER", "emsp/2.2.1/tariffs"),
        ("SENDER", "cpo/2.2.1/tariffs"),
    ]


def test_without_a_token_nothing_is_served_or_written(log: InMemoryEventLog) -> None:
    app = create_app(Settings(), event_log=log, write_path=_held(log))
    as_admin(app)
    app.dependency_overrides[_tariffs] = FakeTariffView
    with TestClient(app) as c:
        for resp in (
            c.put(URL, content=tariff_json("TAR-1"), headers=JSON),
            c.get(URL),
            c.get("/ocpi/cpo/2.2.1/tariffs"),
        ):
            assert (resp.status_code, resp.json()["status_code"]) == (401, 2000)
    assert log.events == []


def test_a_tariff_put_then_deleted_is_decided_on_the_write_paths_state(
    client: TestClient, log: InMemoryEventLog
) -> None:
    # The view never sees these writes: each one is decided on the state
    # the write path holds as of the write before.
    url = f"{BASE}/NL/ABC/TAR-3"
    assert client.put(url, content=tariff_json("TAR-3"), headers=JSON).status_code == 201
    deleted = client.delete(url)
    assert (deleted.status_code, deleted.json()["status_code"]) == (200, 1000)
    again = client.delete(url)
    assert (again.status_code, again.json()["status_code"]) == (200, 2000)
    assert client.put(url, content=tariff_json("TAR-3"), headers=JSON).status_code == 201
    assert [type(e) for e in log.events] == [TariffPut, TariffDeleted, TariffPut]


def test_openapi_shows_the_tariff_body_of_every_put(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in (
        "/ocpi/emsp/{version}/tariffs/{country_code}/{party_id}/{tariff_id}",
        "/ops/tariffs/{tariff_id}",
    ):
        body = schema["paths"][path]["put"]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": "#/components/schemas/Tariff"}
    assert "elements" in schema["components"]["schemas"]["Tariff"]["properties"]
