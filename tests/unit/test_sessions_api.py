"""The HTTP shell of the Sessions module on the in-memory write path, with a
fake view for reads: envelopes, status codes, ownership, the token a
session bills, date_from, charging preferences."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Caller, caller, registered_caller
from api.deps import _sessions
from api.ocpi.sessions import _our_tokens
from ocpi_hub.settings import Settings
from producers import sessions, tokens
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.partners import PartnerState
from producers.sessions import Billing, PatchSession, PutSession
from producers.write_path import WritePath
from projections.mongo.paging import Page
from projections.position import position_field
from schemas.events import SessionPatched, SessionPut
from schemas.ocpi.credentials import BusinessDetails, CredentialsRole, Role
from tests.ocpi_sessions import AT, period, session
from tests.token_objects import token

BASE = "/ocpi/emsp/2.2.1/sessions"
SENDER = "/ocpi/cpo/2.2.1/sessions"


class FakeSessionView:
    """Holds NL/ABC/S1 (a partner's) and ZZ/HUB/OURS-1 (ours, token of NL/ABD)."""

    pages: list[dict[str, Any]] = []

    def __init__(self) -> None:
        ours = session("OURS-1", country_code="ZZ", party_id="HUB")
        ours["cdr_token"] = {**ours["cdr_token"], "country_code": "NL", "party_id": "ABD"}
        self.held = {"NL/ABC/S1": session(), "ZZ/HUB/OURS-1": ours}

    async def read(self, key: str) -> tuple[Any, dict[str, int]]:
        # Every write is already applied (read-your-writes has its own tests).
        return self.held.get(key), {position_field("ocpi.sessions.v1", 0): 10**9}

    async def page(self, **kwargs: Any) -> Page:
        FakeSessionView.pages.append(kwargs)
        return Page(items=[self.held["ZZ/HUB/OURS-1"]], total=1, last=None)


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


def _write_path(log: InMemoryEventLog) -> WritePath:
    """The write path holding the partner's session NL/ABC/S1 and our token
    ZZ/HUB/OUR-CARD/RFID."""
    store = InMemoryDecisionStore()
    store.seed(sessions.SLICE, "NL/ABC/S1", session())
    ours = tokens.TokenState(token=token("OUR-CARD", country_code="ZZ", party_id="HUB"))
    store.seed(tokens.SLICE, "ZZ/HUB/OUR-CARD/RFID", ours)
    return WritePath(log, store, InMemoryLogHistory(log))


def _app(log: InMemoryEventLog) -> Any:
    app = create_app(
        Settings(party_country_code="ZZ", party_id="HUB"),
        event_log=log,
        write_path=_write_path(log),
    )
    app.dependency_overrides[registered_caller] = lambda: Caller(_partner(), "token-c", False)
    app.dependency_overrides[caller] = lambda: Caller(_partner(), "token-c", False)
    app.dependency_overrides[_sessions] = FakeSessionView
    return app


@pytest.fixture
def client(log: InMemoryEventLog) -> Iterator[TestClient]:
    app = _app(log)
    # Which tokens a session may bill is tested below, with the real check.
    app.dependency_overrides[_our_tokens] = lambda: _bill_anyone
    with TestClient(app) as c:
        yield c


async def _bill_anyone(command: PutSession | PatchSession) -> Billing | None:
    return None


@pytest.fixture
def checking_client(log: InMemoryEventLog) -> Iterator[TestClient]:
    with TestClient(_app(log)) as c:
        yield c


OUR_CARD = {
    "country_code": "ZZ",
    "party_id": "HUB",
    "uid": "OUR-CARD",
    "type": "RFID",
    "contract_id": "ZZ-HUB-C1",
}


@pytest.mark.parametrize(
    ("cdr_token", "code"),
    [
        (OUR_CARD, 1000),
        ({**OUR_CARD, "uid": "NEVER-ISSUED"}, 2004),  # ours, but unknown
        ({**OUR_CARD, "country_code": "DE", "party_id": "MSP"}, 2001),  # another eMSP's
    ],
)
def test_a_partners_session_must_bill_a_token_we_issued(
    checking_client: TestClient, log: InMemoryEventLog, cdr_token: dict[str, Any], code: int
) -> None:
    body = session("S2", cdr_token=cdr_token)
    resp = checking_client.put(f"{BASE}/NL/ABC/S2", json=body)
    assert resp.json()["status_code"] == code, resp.text
    assert len(log.events) == (1 if code == 1000 else 0)


def test_a_patch_changing_the_token_is_checked_too(
    checking_client: TestClient, log: InMemoryEventLog
) -> None:
    stranger = {**OUR_CARD, "country_code": "DE", "party_id": "MSP"}
    patch = {"cdr_token": stranger, "last_updated": "2026-03-01T09:20:00Z"}
    resp = checking_client.patch(f"{BASE}/NL/ABC/S1", json=patch)
    assert resp.json()["status_code"] == 2001 and log.events == []
    # A PATCH that names no token is not asked about one.
    plain = {"kwh": 2, "last_updated": "2026-03-01T09:20:00Z"}
    assert checking_client.patch(f"{BASE}/NL/ABC/S1", json=plain).json()["status_code"] == 1000


def test_put_creates_201_then_replaces_200(client: TestClient, log: InMemoryEventLog) -> None:
    created = client.put(f"{BASE}/NL/ABC/S2", json=session("S2"))
    replaced = client.put(f"{BASE}/nl/abc/s1", json=session("S1", kwh=3))
    assert (created.status_code, replaced.status_code) == (201, 200)
    assert created.json()["status_code"] == 1000 and "data" not in created.json()
    assert [type(e) for e in log.events] == [SessionPut, SessionPut]
    assert [e.aggregate_key for e in log.events] == ["NL/ABC/S2", "NL/ABC/S1"]


def test_patch_records_the_fragment(client: TestClient, log: InMemoryEventLog) -> None:
    body = {
        "charging_periods": [period("2026-03-01T09:15:00Z", 2)],
        "kwh": 2,
        "last_updated": "2026-03-01T09:20:00Z",
    }
    resp = client.patch(f"{BASE}/NL/ABC/S1", json=body, headers={"X-Correlation-ID": "c-7"})
    assert resp.status_code == 200 and resp.json()["status_code"] == 1000
    [event] = log.events
    assert isinstance(event, SessionPatched)
    assert event.payload.patch == body
    assert event.correlation_id == "c-7"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/BE/XYZ/S1", session("S1", country_code="BE", party_id="XYZ")),  # not theirs
        ("PUT", "/NL/ABC/S1", session("OTHER")),  # body names another session
        ("PUT", "/NL/ABC/S1", {**session(), "kwh": -1}),
        ("PATCH", "/NL/ABC/S1", {"kwh": 2}),  # no last_updated
        ("PATCH", "/NL/ABC/NOPE", {"kwh": 2, "last_updated": "2026-03-01T09:20:00Z"}),
    ],
)
def test_bad_writes_get_2001_and_write_nothing(
    client: TestClient, log: InMemoryEventLog, method: str, path: str, body: Any
) -> None:
    resp = client.request(method, f"{BASE}{path}", json=body)
    assert resp.status_code == 200
    assert resp.json()["status_code"] == 2001
    assert log.events == []


def test_get_known_and_unknown(client: TestClient) -> None:
    ok = client.get(f"{BASE}/NL/ABC/s1")
    assert ok.status_code == 200 and ok.json()["data"]["id"] == "S1"
    missing = client.get(f"{BASE}/NL/ABC/S404")
    assert missing.status_code == 404
    assert missing.json()["status_code"] == 2001


def test_sender_list_requires_date_from(client: TestClient) -> None:
    # The list exists: 2001 at HTTP 200 (docs/adr/0039 §2).
    resp = client.get(SENDER)
    assert resp.status_code == 200
    assert resp.json()["status_code"] == 2001
    listed = client.get(SENDER, params={"date_from": "2026-03-01T00:00:00Z"})
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()["data"]] == ["OURS-1"]
    assert listed.headers["X-Total-Count"] == "1"
    asked = FakeSessionView.pages[-1]
    assert (asked["country_code"], asked["party_id"]) == ("ZZ", "HUB")
    assert asked["token_parties"] == ["NL/ABC", "NL/ABD"]


def test_charging_preferences_are_answered_not_capable(client: TestClient) -> None:
    url = f"{SENDER}/OURS-1/charging_preferences"
    resp = client.put(url, json={"profile_type": "FAST", "energy_need": 20})
    assert resp.status_code == 404
    assert resp.json()["status_code"] == 2001
    assert "CHARGING_PREFERENCES_CAPABLE" in resp.json()["status_message"]
    bad = client.put(url, json={"profile_type": "TURBO"})
    assert (bad.status_code, bad.json()["status_code"]) == (200, 2001)
    unknown = client.put(f"{SENDER}/NOPE/charging_preferences", json={"profile_type": "FAST"})
    assert unknown.status_code == 404


def test_version_details_publish_both_interfaces(client: TestClient) -> None:
    data = client.get("/ocpi/2.2.1").json()["data"]
    ids = {(e["identifier"], e["role"]) for e in data["endpoints"]}
    assert {("sessions", "SENDER"), ("sessions", "RECEIVER")} <= ids


def test_a_patch_right_after_the_put_finds_the_session_without_the_view(
    client: TestClient, log: InMemoryEventLog
) -> None:
    # The view does not hold S2 yet; the write path does once the PUT is acknowledged.
    assert client.put(f"{BASE}/NL/ABC/S2", json=session("S2")).status_code == 201
    body = {"charging_periods": [period("2026-03-01T09:15:00Z", 2)], "kwh": 2, "last_updated": AT}
    resp = client.patch(f"{BASE}/NL/ABC/S2", json=body)
    assert (resp.status_code, resp.json()["status_code"]) == (200, 1000), resp.text
    assert [type(e) for e in log.events] == [SessionPut, SessionPatched]
