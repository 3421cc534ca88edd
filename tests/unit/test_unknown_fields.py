"""Liberal in what we accept, exact in what we send (docs/adr/0039).

Every OCPI object a partner sends may carry fields the spec does not name,
at the top and in nested objects: they are accepted, kept with the value
they came with, and given back by the dump we record, serve and push.
Known fields stay strict. Objects we build carry only spec fields.

The same over HTTP between two platforms: tests/e2e/test_unknown_fields.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import ValidationError

from processors.push import plan
from producers import locations
from producers.partner_client import HttpPartnerClient
from producers.write_path import Origin
from schemas.events import Party
from schemas.events.locations import LocationObjectRef
from schemas.ocpi.cdrs import Cdr
from schemas.ocpi.commands import CommandResult, StartSession
from schemas.ocpi.common import unknown_fields
from schemas.ocpi.credentials import Credentials
from schemas.ocpi.locations import Evse, Location, validate_patch
from schemas.ocpi.sessions import Session, merge_session_patch, validate_session_patch
from schemas.ocpi.tariffs import Tariff, loads_exact
from schemas.ocpi.tokens import Token, validate_token_patch
from schemas.ocpi.types import to_json
from tests.cdr_objects import issued_cdr
from tests.ocpi_objects import connector, evse, location
from tests.ocpi_sessions import session
from tests.tariff_objects import tariff_json
from tests.token_objects import token

NOW = datetime(2026, 3, 1, 10, tzinfo=UTC)
CUSTOM = {"x_vendor": {"plan": "gold", "tiers": [1, 2.5, None], "note": None}}


def _with_custom(doc: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**doc, **CUSTOM, **extra}


def test_a_location_keeps_unknown_fields_at_every_level() -> None:
    body = location(
        "LOC1",
        evses=[evse("E1", connectors=[_with_custom(connector("1"), x_plug_colour="blue")])],
        x_rating=4.5,
    )
    body["evses"][0]["x_floor"] = -1
    body["coordinates"] = {**body["coordinates"], "altitude": "3.5"}
    dumped = to_json(Location.model_validate(body))
    assert dumped["x_rating"] == 4.5
    assert dumped["coordinates"]["altitude"] == "3.5"
    assert dumped["evses"][0]["x_floor"] == -1
    assert dumped["evses"][0]["connectors"][0]["x_plug_colour"] == "blue"
    assert dumped["evses"][0]["connectors"][0]["x_vendor"] == CUSTOM["x_vendor"]
    assert unknown_fields(Location.model_validate(body)) == [
        "x_rating",
        "coordinates.altitude",
        "evses[0].x_floor",
        "evses[0].connectors[0].x_plug_colour",
        "evses[0].connectors[0].x_vendor",
    ]


@pytest.mark.parametrize(
    ("doc", "path", "value"),
    [
        ({"max_voltage": "230"}, ("evses", 0, "connectors", 0, "max_voltage"), None),
        ({}, ("evses", 0, "status"), "SLEEPING"),
    ],
)
def test_known_fields_stay_strict_beside_unknown_ones(
    doc: dict[str, Any], path: tuple[Any, ...], value: Any
) -> None:
    body = location(evses=[evse(connectors=[connector(**doc)], x_floor=1)], x_rating=5)
    if value is not None:
        body["evses"][0]["status"] = value
    with pytest.raises(ValidationError) as caught:
        Location.model_validate(body)
    assert [e["loc"] for e in caught.value.errors()] == [path]


def test_a_missing_required_field_is_named_even_with_unknown_ones() -> None:
    body = _with_custom(location())
    del body["address"]
    with pytest.raises(ValidationError) as caught:
        Location.model_validate(body)
    assert [e["loc"] for e in caught.value.errors()] == [("address",)]


def test_a_location_put_records_and_serves_unknown_fields_and_the_push_carries_them() -> None:
    us = Party(country_code="NL", party_id="ABC")
    ref = LocationObjectRef(country_code="NL", party_id="ABC", location_id="LOC1")
    body = _with_custom(location(evses=[_with_custom(evse("E1"))]))
    planned = locations.plan_put(ref, body, None, Origin(us, "c"), NOW)
    recorded = planned.event.payload.object
    assert recorded["x_vendor"] == CUSTOM["x_vendor"]
    assert recorded["evses"][0]["x_vendor"] == CUSTOM["x_vendor"]
    state = locations.evolve(locations.LocationState(), planned.event)
    shown = locations.served(state)
    assert shown is not None and shown["evses"][0]["x_vendor"] == CUSTOM["x_vendor"]
    pushed = plan(planned.event, us)
    assert pushed is not None and pushed.body["x_vendor"] == CUSTOM["x_vendor"]

    # A PATCH may carry unknown fields too: set, replaced, and cleared by null.
    evse_ref = ref.model_copy(update={"evse_uid": "E1"})
    patch_body = {"status": "CHARGING", "x_queue": 2, "last_updated": "2026-01-01T12:05:00Z"}
    patched = locations.plan_patch(evse_ref, patch_body, state.asserted, Origin(us, "c"), NOW)
    assert patched.event.payload.patch["x_queue"] == 2
    state = locations.evolve(state, patched.event)
    assert state.asserted is not None and state.asserted["evses"][0]["x_queue"] == 2
    cleared = {"x_queue": None, "last_updated": "2026-01-01T12:06:00Z"}
    again = locations.plan_patch(evse_ref, cleared, state.asserted, Origin(us, "c"), NOW)
    state = locations.evolve(state, again.event)
    assert state.asserted is not None and "x_queue" not in state.asserted["evses"][0]
    pushed_patch = plan(patched.event, us)
    assert pushed_patch is not None and pushed_patch.body["x_queue"] == 2


def test_an_evse_patch_keeps_unknown_fields() -> None:
    patch = validate_patch(Evse, {"x_queue": {"len": 3}, "last_updated": "2026-01-01T12:00:00Z"})
    assert patch.to_json() == {"x_queue": {"len": 3}, "last_updated": "2026-01-01T12:00:00Z"}


def test_a_tariff_keeps_unknown_fields_with_exact_numbers_as_numbers() -> None:
    text = tariff_json(extra='"x_discount": 0.15, "x_meta": {"rate": 1.5, "n": 2},')
    data = loads_exact(text)
    data["elements"][0]["x_label"] = "day"
    data["elements"][0]["price_components"][0]["x_unit"] = "kWh"
    dumped = to_json(Tariff.model_validate(data))
    assert dumped["x_discount"] == 0.15 and isinstance(dumped["x_discount"], float)
    assert dumped["x_meta"] == {"rate": 1.5, "n": 2}
    assert dumped["elements"][0]["x_label"] == "day"
    assert dumped["elements"][0]["price_components"][0]["x_unit"] == "kWh"
    assert json.loads(json.dumps(dumped)) == dumped
    assert isinstance(data["x_discount"], Decimal)  # the input was exact


def test_a_token_keeps_unknown_fields_and_a_patch_may_carry_them() -> None:
    body = token(energy_contract={"supplier_name": "Green", "x_tariff": "T1"}, x_card_colour="red")
    dumped = to_json(Token.model_validate(body))
    assert dumped["x_card_colour"] == "red"
    assert dumped["energy_contract"]["x_tariff"] == "T1"
    patch = validate_token_patch({"x_card_colour": "blue", "last_updated": "2026-03-02T10:00:00Z"})
    assert patch.values["x_card_colour"] == "blue"


def test_a_session_keeps_unknown_fields_and_a_patch_merges_them() -> None:
    body = session(x_vehicle={"vin": "WVW"}, charging_periods=[])
    body["cdr_token"] = {**body["cdr_token"], "x_group": "fleet"}
    stored = to_json(Session.model_validate(body))
    assert stored["x_vehicle"] == {"vin": "WVW"}
    assert stored["cdr_token"]["x_group"] == "fleet"
    patch = validate_session_patch({"x_soc": 80, "last_updated": "2026-03-01T09:10:00Z"})
    merged = merge_session_patch(stored, patch.to_json())
    assert merged["x_soc"] == 80 and merged["x_vehicle"] == {"vin": "WVW"}
    Session.model_validate(merged)


def test_a_cdr_keeps_unknown_fields() -> None:
    ours = issued_cdr(NOW).payload.cdr
    theirs = {**ours, "x_invoice_ref": "INV-7", "cdr_location": {**ours["cdr_location"], "x": 1}}
    dumped = to_json(Cdr.model_validate(theirs))
    assert dumped["x_invoice_ref"] == "INV-7" and dumped["cdr_location"]["x"] == 1


def test_commands_and_results_keep_unknown_fields() -> None:
    start = StartSession.model_validate(
        {
            "response_url": "https://emsp.example/cb/1",
            "token": _with_custom(token()),
            "location_id": "LOC1",
            "x_priority": 1,
        }
    )
    dumped = to_json(start)
    assert dumped["x_priority"] == 1 and dumped["token"]["x_vendor"] == CUSTOM["x_vendor"]
    result = CommandResult.model_validate({"result": "ACCEPTED", "x_trace": "t1"})
    assert to_json(result)["x_trace"] == "t1"


# --- the objects we build ourselves carry only the spec's fields -------------------


def test_objects_we_build_carry_no_unknown_fields() -> None:
    cdr = Cdr.model_validate(issued_cdr(NOW).payload.cdr)
    assert unknown_fields(cdr) == []


# --- the credentials object of an OCPI test hub (2.1.1 leftovers) ------------------

TEST_HUB_ROLE = {
    "role": "HUB",
    "business_details": {"name": "Test Hub"},
    "party_id": "THB",
    "country_code": "NL",
}


def hub_credentials(url: str) -> dict[str, Any]:
    """A credentials object as a published OCPI test hub sends it: the 2.2.1
    shape plus the 2.1.1 fields ``party_id``, ``country_code`` and
    ``business_details`` at the top level."""
    return {
        "token": "hub-token-c",
        "url": url,
        "roles": [TEST_HUB_ROLE],
        "party_id": "THB",
        "country_code": "NL",
        "business_details": {"name": "Test Hub"},
    }


def test_the_test_hubs_credentials_object_is_a_credentials_object() -> None:
    parsed = Credentials.model_validate(hub_credentials("https://hub.example/versions"))
    assert parsed.roles[0].party_id == "THB"
    assert unknown_fields(parsed) == ["business_details", "country_code", "party_id"]


@pytest.fixture
def hub_answering_credentials() -> Iterator[str]:
    """A party at a local address that answers a credentials POST as the test
    hub does (with its 2.1.1 leftovers)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = json.dumps(
                {
                    "status_code": 1000,
                    "timestamp": "2026-03-01T10:00:00Z",
                    "data": hub_credentials(f"http://127.0.0.1:{port}/versions"),
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/credentials"
    finally:
        server.shutdown()
        server.server_close()


async def test_we_take_the_test_hubs_credentials_as_client(hub_answering_credentials: str) -> None:
    ours = Credentials.model_validate(hub_credentials("https://us.example/versions"))
    client = HttpPartnerClient(allow_private_urls=True)
    theirs = await client.post_credentials(hub_answering_credentials, "token-a", ours)
    assert theirs.token == "hub-token-c" and theirs.roles[0].role == "HUB"
