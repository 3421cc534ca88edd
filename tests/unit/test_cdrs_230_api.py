"""CDRs in OCPI 2.3.0 on the one set of handlers (docs/adr/0045 §6): a 2.3.0
partner's CDR (Price as before_taxes + taxes) is recorded in our model and
served back to it as it was sent; a 2.2.1 CDR at the 2.3.0 endpoint is
refused with nothing recorded. The harness of test_cdr_api, with the caller
registered for 2.3.0."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Caller, registered_caller, route_version
from api.deps import _cdrs
from ocpi_hub.settings import Settings
from producers.decision_store import InMemoryDecisionStore
from producers.log import InMemoryEventLog, InMemoryLogHistory
from producers.write_path import WritePath
from schemas.events import CdrReceived, CdrReconciled
from schemas.ocpi.adapters import wire
from schemas.ocpi.wire import Kind
from tests.cdr_objects import simple_tariff
from tests.ops_admin import as_admin
from tests.unit.test_cdr_api import FakeCdrView, _partner, hold_tariff, log, partner_cdr, store

__all__ = ["log", "store"]  # fixtures of test_cdr_api, used here

URL = "/ocpi/emsp/2.3.0/cdrs"


@pytest.fixture
def client(log: InMemoryEventLog, store: InMemoryDecisionStore) -> Iterator[TestClient]:
    settings = Settings(party_country_code="ZZ", party_id="HUB", public_url="https://hub.test")
    write_path = WritePath(log, store, InMemoryLogHistory(log))
    app = create_app(settings, event_log=log, write_path=write_path)
    as_admin(app)

    def caller(request: Request) -> Caller:
        # As registered_caller does: the route's version, kept on the request.
        version = request.state.ocpi_version = route_version(request)
        partner = _partner().model_copy(update={"version": "2.3.0"})
        return Caller(partner, "token-c", False, version)

    app.dependency_overrides[registered_caller] = caller
    app.dependency_overrides[_cdrs] = lambda: FakeCdrView(log)
    with TestClient(app) as c:
        yield c


def as_230() -> dict[str, object]:
    return wire("2.3.0").object_out(Kind.CDR, partner_cdr(), patch=False)


def test_a_230_cdr_is_recorded_in_our_model_and_served_back_as_sent(
    client: TestClient, log: InMemoryEventLog, store: InMemoryDecisionStore
) -> None:
    hold_tariff(store, simple_tariff(country_code="NL", party_id="CPO"))
    sent = as_230()
    assert "before_taxes" in sent["total_cost"]  # type: ignore[operator]
    resp = client.post(URL, content=json.dumps(sent))
    assert resp.json()["status_code"] == 1000, resp.text
    assert resp.headers["Location"] == "https://hub.test/ocpi/emsp/2.3.0/cdrs/OS-1"
    received, reconciled = log.events
    assert isinstance(received, CdrReceived) and isinstance(reconciled, CdrReconciled)
    total = received.payload.cdr["total_cost"]
    assert Decimal(str(total["excl_vat"])) == Decimal(str(partner_cdr()["total_cost"]["excl_vat"]))
    assert not reconciled.payload.discrepancy
    got = client.get("/ocpi/emsp/2.3.0/cdrs/OS-1")
    assert got.json()["data"] == sent


def test_a_221_cdr_at_the_230_endpoint_is_refused_and_nothing_recorded(
    client: TestClient, log: InMemoryEventLog
) -> None:
    resp = client.post(URL, content=json.dumps(partner_cdr()))
    assert resp.json()["status_code"] == 2001 and "before_taxes" in resp.text
    assert log.events == []
