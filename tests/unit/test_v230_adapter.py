"""The OCPI 2.3.0 edge adapter (schemas/ocpi/v230/adapter.py, docs/adr/0045 §6).

Properties (hypothesis, reusing the mapping tests' 2.3.0 objects): a 2.3.0
Location, EVSE, Connector, Tariff or Token taken in at a 2.3.0 endpoint is a
valid object of our model, and served back out in 2.3.0 it is what the
partner sent. Then: what 2.3.0 refuses (a 2.2.1 Tariff without
``tax_included``), PATCH fragments, credentials with ``hub_party_id``, the
version details, and a location received in 2.3.0 served to a 2.1.1
partner with everything 2.1.1 can say."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from producers.cdrs import build_cdr
from producers.pricing import COSTS, PricedSession, price_session
from schemas.ocpi import cdrs as core_cdrs
from schemas.ocpi import locations as core_locations
from schemas.ocpi import sessions as core_sessions
from schemas.ocpi import tariffs as core_tariffs
from schemas.ocpi import tokens as core_tokens
from schemas.ocpi.adapters import WIRES, wire
from schemas.ocpi.common import parse_ocpi_datetime
from schemas.ocpi.credentials import Credentials, CredentialsRole, Role
from schemas.ocpi.locations import BusinessDetails
from schemas.ocpi.tariffs import exact_numbers
from schemas.ocpi.types import TokenType
from schemas.ocpi.v230 import cdrs as v230_cdrs
from schemas.ocpi.versions import Endpoint, InterfaceRole
from schemas.ocpi.wire import Kind, highest_common
from tests.cdr_objects import completed_session, priced_location, simple_tariff
from tests.token_objects import token
from tests.unit.test_v230_mapping import (
    FAST,
    STAMPS,
    cdr,
    location,
    open_enum,
    price,
    session_body,
    tariff,
)

Json = dict[str, Any]
V230 = wire("2.3.0")
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
OWNER = ("DE", "V23")


def exact(data: Any) -> Any:
    return exact_numbers(data)


def through(kind: Kind, body: Json, core_model: type[Any]) -> Json:
    """In at a 2.3.0 endpoint, checked as our model (as the slice's decide
    does), and out again in 2.3.0."""
    ours = V230.object_in(kind, body, owner=OWNER, patch=False, now=NOW)
    core_model.model_validate(ours)
    out: Json = V230.object_out(kind, ours, patch=False)
    return out


@FAST
@given(location(v230=True))
def test_a_2_3_0_location_comes_back_as_it_was_sent(body: Json) -> None:
    assert exact(through(Kind.LOCATION, body, core_locations.Location)) == exact(body)


@FAST
@given(location(v230=True))
def test_2_3_0_evses_and_connectors_come_back_as_they_were_sent(body: Json) -> None:
    for evse in body.get("evses") or []:
        assert exact(through(Kind.EVSE, evse, core_locations.Evse)) == exact(evse)
        for connector in evse["connectors"]:
            back = through(Kind.CONNECTOR, connector, core_locations.Connector)
            assert exact(back) == exact(connector)


@FAST
@given(tariff(v230=True))
def test_a_2_3_0_tariff_comes_back_as_it_was_sent(body: Json) -> None:
    assert exact(through(Kind.TARIFF, body, core_tariffs.Tariff)) == exact(body)


@FAST
@given(
    open_enum(TokenType, True),
    st.sampled_from(["EMAID", "RFID", "APP_USER", "X_KEY_FOB"]),
    STAMPS,
    st.booleans(),
)
def test_a_2_3_0_token_comes_back_as_it_was_sent(
    kind: str, other: str, at: str, extra: bool
) -> None:
    body = token("04ABCDEF", type=kind, at=at)
    if extra:
        body["loyalty_id"] = "L-1"  # an unknown field, kept
    assert through(Kind.TOKEN, body, core_tokens.Token) == body
    body = token("04ABCDEF", type=other, at=at)
    assert through(Kind.TOKEN, body, core_tokens.Token) == body


@FAST
@given(price(v230=True), open_enum(TokenType, True))
def test_a_2_3_0_session_comes_back_as_it_was_sent(total: Json, token_type: str) -> None:
    body = session_body(total, token_type)
    assert exact(through(Kind.SESSION, body, core_sessions.Session)) == exact(body)


@FAST
@given(cdr(v230=True))
def test_a_2_3_0_cdr_comes_back_as_it_was_sent(body: Json) -> None:
    assert exact(through(Kind.CDR, body, core_cdrs.Cdr)) == exact(body)


def test_a_session_patch_with_a_2_3_0_price_is_our_price() -> None:
    frag = {
        "total_cost": {"before_taxes": 10, "taxes": [{"name": "VAT", "amount": 2.1}]},
        "last_updated": "2026-03-02T00:00:00Z",
    }
    ours = V230.object_in(Kind.SESSION, frag, owner=None, patch=True, now=NOW)
    assert ours["total_cost"]["excl_vat"] == 10
    assert str(ours["total_cost"]["incl_vat"]) == "12.1"
    assert V230.object_out(Kind.SESSION, ours, patch=True) == frag
    # 2.2.1's Price at the 2.3.0 endpoint is not 2.3.0's.
    with pytest.raises(ValidationError, match="before_taxes"):
        V230.object_in(
            Kind.SESSION,
            {"total_cost": {"excl_vat": 10}, "last_updated": "2026-03-02T00:00:00Z"},
            owner=None,
            patch=True,
            now=NOW,
        )


def test_an_emaid_token_is_other_in_our_model_and_emaid_on_the_wire() -> None:
    ours = V230.object_in(Kind.TOKEN, token(type="EMAID"), owner=OWNER, patch=False, now=NOW)
    assert ours["type"] == "OTHER" and ours["ocpi_v230"] == {"type": "EMAID"}
    # Our authorization answer names the token in 2.3.0's words.
    info = {"allowed": "ALLOWED", "token": ours}
    assert V230.object_out(Kind.AUTHORIZATION, info, patch=False)["token"]["type"] == "EMAID"
    # A 2.2.1 partner sees the stand-in and the kept value as an unknown field.
    assert WIRES["2.2.1"].object_out(Kind.TOKEN, ours, patch=False)["type"] == "OTHER"


def test_a_2_3_0_emsps_authorization_answer_is_read_into_our_model() -> None:
    """What a 2.3.0 eMSP answers our real-time authorization request (the
    gateway asks it when a charger presents its token)."""
    answer = {
        "allowed": "ALLOWED",
        "token": token(type="EMAID"),
        "authorization_reference": "AUTH-1",
        "location": {"location_id": "LOC1", "evse_uids": ["E1"]},
    }
    ours = V230.object_in(Kind.AUTHORIZATION, answer, owner=None, patch=False, now=NOW)
    info = core_tokens.AuthorizationInfo.model_validate(ours)
    assert info.token.type == "OTHER" and ours["token"]["ocpi_v230"] == {"type": "EMAID"}
    assert info.authorization_reference == "AUTH-1"
    # Without its required token it is not an AuthorizationInfo.
    with pytest.raises(ValidationError, match="token"):
        V230.object_in(Kind.AUTHORIZATION, {"allowed": "ALLOWED"}, owner=None, patch=False, now=NOW)


def test_the_2_3_0_only_location_fields_are_kept_in_our_model() -> None:
    body = {
        **_site(),
        "help_phone": "+31201234567",
        "parking_places": [
            {
                "id": "P1",
                "vehicle_types": ["MOTORCYCLE"],
                "restricted_to_type": False,
                "reservation_required": False,
            }
        ],
    }
    body["evses"][0]["parking"] = [{"parking_id": "P1"}]
    ours = V230.object_in(Kind.LOCATION, body, owner=OWNER, patch=False, now=NOW)
    core = core_locations.Location.model_validate(ours)
    assert (core.model_extra or {})["help_phone"] == "+31201234567"
    assert (core.model_extra or {})["parking_places"][0]["vehicle_types"] == ["MOTORCYCLE"]
    assert (core.evses or [])[0].model_extra["parking"] == [{"parking_id": "P1"}]  # type: ignore[index]


def _site() -> Json:
    return {
        "country_code": "DE",
        "party_id": "V23",
        "id": "LOC-1",
        "publish": True,
        "address": "Hauptstrasse 1",
        "city": "Berlin",
        "country": "DEU",
        "coordinates": {"latitude": "52.520008", "longitude": "13.404954"},
        "time_zone": "Europe/Berlin",
        "evses": [
            {
                "uid": "E1",
                "status": "AVAILABLE",
                "connectors": [
                    {
                        "id": "1",
                        "standard": "MCS",
                        "format": "CABLE",
                        "power_type": "DC",
                        "max_voltage": 1000,
                        "max_amperage": 3000,
                        "tariff_ids": ["T1", "T2"],
                        "last_updated": "2026-03-01T09:00:00Z",
                    }
                ],
                "capabilities": ["RFID_READER", "ISO_15118_20_PLUG_AND_CHARGE"],
                "last_updated": "2026-03-01T09:00:00Z",
            }
        ],
        "parking_type": "PARKING_LOT",
        "facilities": ["CAFE"],
        "last_updated": "2026-03-01T09:00:00Z",
    }


# --- what 2.3.0 refuses ----------------------------------------------------


def test_a_2_2_1_tariff_without_tax_included_is_refused_at_2_3_0() -> None:
    body = {
        "country_code": "DE",
        "party_id": "V23",
        "id": "T1",
        "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}]}],
        "last_updated": "2026-03-01T09:00:00Z",
    }
    with pytest.raises(ValidationError, match="tax_included"):
        V230.object_in(Kind.TARIFF, body, owner=OWNER, patch=False, now=NOW)
    # 2.2.1's price limits (excl_vat) are not 2.3.0's PriceLimit either.
    limited = {**body, "tax_included": "NO", "min_price": {"excl_vat": 1}}
    with pytest.raises(ValidationError, match="before_taxes"):
        V230.object_in(Kind.TARIFF, limited, owner=OWNER, patch=False, now=NOW)


def test_a_location_linking_an_unknown_parking_place_is_refused() -> None:
    body = _site()
    body["evses"][0]["parking"] = [{"parking_id": "NOPE"}]
    with pytest.raises(ValidationError, match="parking"):
        V230.object_in(Kind.LOCATION, body, owner=OWNER, patch=False, now=NOW)


def test_a_2_3_0_only_shape_that_2_2_1_refuses_passes_at_2_3_0_only() -> None:
    # An MCS connector: 2.2.1 (our model, Core) refuses the value; 2.3.0 takes it.
    connector = _site()["evses"][0]["connectors"][0]
    with pytest.raises(ValidationError):
        core_locations.Connector.model_validate(connector)
    ours = V230.object_in(Kind.CONNECTOR, connector, owner=OWNER, patch=False, now=NOW)
    assert ours["standard"] == "IEC_62196_T2_COMBO" and ours["ocpi_v230"] == {"standard": "MCS"}


# --- PATCH fragments ---------------------------------------------------------


def test_a_patch_fragment_converts_its_open_enums_and_keeps_the_rest() -> None:
    frag = {"capabilities": ["RFID_READER", "X_NEW"], "last_updated": "2026-03-02T00:00:00Z"}
    ours = V230.object_in(Kind.EVSE, frag, owner=OWNER, patch=True, now=NOW)
    assert ours["capabilities"] == ["RFID_READER"]
    assert ours["ocpi_v230"] == {"capabilities": ["RFID_READER", "X_NEW"]}
    assert V230.object_out(Kind.EVSE, ours, patch=True) == frag
    status = {"status": "CHARGING", "last_updated": "2026-03-02T00:00:00Z"}
    assert V230.object_in(Kind.EVSE, status, owner=OWNER, patch=True, now=NOW) == status
    with pytest.raises(ValidationError):  # 2.3.0 needs last_updated, as 2.2.1
        V230.object_in(Kind.EVSE, {"status": "CHARGING"}, owner=OWNER, patch=True, now=NOW)


# --- a 2.1.1 partner reads what a 2.3.0 partner sent -------------------------


def test_a_location_received_in_2_3_0_goes_to_2_1_1_with_what_2_1_1_can_say() -> None:
    body = {**_site(), "help_phone": "+31201234567", "postal_code": "10115"}
    body["evses"][0]["connectors"][0]["standard"] = "IEC_62196_T2"
    body["evses"][0]["connectors"][0]["power_type"] = "AC_3_PHASE"
    ours = V230.object_in(Kind.LOCATION, body, owner=OWNER, patch=False, now=NOW)
    core_locations.Location.model_validate(ours)
    old = WIRES["2.1.1"].object_out(Kind.LOCATION, ours, patch=False)
    assert (old["id"], old["address"], old["city"], old["postal_code"]) == (
        "LOC-1",
        "Hauptstrasse 1",
        "Berlin",
        "10115",
    )
    assert old["type"] == "PARKING_LOT" and old["facilities"] == ["CAFE"]
    [evse] = old["evses"]
    assert evse["capabilities"] == ["RFID_READER"]  # 2.1.1 lists no ISO 15118 values
    [plug] = evse["connectors"]
    assert (plug["standard"], plug["voltage"], plug["amperage"], plug["tariff_id"]) == (
        "IEC_62196_T2",
        1000,
        3000,
        "T1",
    )
    # It reads back into our model as the same location, what 2.1.1 cannot say aside.
    again = WIRES["2.1.1"].object_in(Kind.LOCATION, old, owner=OWNER, patch=False, now=NOW)
    assert again["coordinates"] == ours["coordinates"] and again["time_zone"] == "Europe/Berlin"
    # The kept 2.3.0 fields travel as unknown fields (2.1.1 keeps them too).
    assert old["help_phone"] == "+31201234567"


# --- handshake ------------------------------------------------------------


def _role(role: Role, party: str = "V23") -> Json:
    return {
        "role": role.value,
        "business_details": {"name": "Partner"},
        "country_code": "DE",
        "party_id": party,
    }


def test_2_3_0_credentials_with_a_hub_party_id_name_the_hub_in_our_model() -> None:
    body = {
        "token": "abc123",
        "url": "https://hub.example.com/ocpi/versions",
        "hub_party_id": "DEHUB",
        "roles": [_role(Role.CPO, "AAA"), _role(Role.EMSP, "BBB")],
    }
    ours = V230.credentials_in(body, None)
    assert [(r.role, r.party_id) for r in ours.roles] == [
        (Role.CPO, "AAA"),
        (Role.EMSP, "BBB"),
        (Role.HUB, "HUB"),
    ]
    # And back: no HUB role in 2.3.0, the hub's party in hub_party_id.
    out = V230.credentials_out(ours)
    assert out["hub_party_id"] == "DEHUB"
    assert [r["role"] for r in out["roles"]] == ["CPO", "EMSP"]
    with pytest.raises(ValidationError):
        V230.credentials_in({**body, "hub_party_id": "TOO-LONG"}, None)


def test_our_2_3_0_credentials_are_2_2_1s_shape() -> None:
    ours = Credentials(
        token="t",
        url="https://us.example.com/ocpi/versions",
        roles=[
            CredentialsRole(
                role=role,
                business_details=BusinessDetails(name="Us"),
                country_code="ZZ",
                party_id="HUB",
            )
            for role in (Role.CPO, Role.EMSP)
        ],
    )
    out = V230.credentials_out(ours)
    assert "hub_party_id" not in out
    assert out == ours.model_dump(mode="json", exclude_none=True)


def test_the_2_3_0_details_list_the_modules_we_serve_in_2_3_0_only() -> None:
    endpoints = [
        Endpoint(identifier=i, role=InterfaceRole.SENDER, url=f"https://us.example.com/{i}")
        for i in ("credentials", "locations", "x_bookings", "chargingprofiles", "hubclientinfo")
    ]
    shown = [e["identifier"] for e in V230.endpoints_out(endpoints, None)]
    assert shown == ["credentials", "locations", "chargingprofiles", "hubclientinfo"]
    # A custom module of theirs (ModuleID is an OpenEnum in 2.3.0) is read.
    details = V230.details_in(
        {
            "version": "2.3.0",
            "endpoints": [
                {"identifier": "payments", "role": "SENDER", "url": "https://p.example.com/p"}
            ],
        },
        None,
    )
    assert details.endpoints[0].identifier == "payments"


def test_negotiation_picks_2_3_0_with_a_2_3_0_partner() -> None:
    ours = ("2.1.1", "2.2.1", "2.3.0")
    assert highest_common(ours, ["2.2.1", "2.3.0"]) == "2.3.0"
    assert highest_common(ours, ["2.1.1", "2.2.1"]) == "2.2.1"
    assert highest_common(("2.1.1", "2.2.1"), ["2.3.0"]) is None


# --- a CDR we price, sent in 2.3.0 ---------------------------------------------


def _our_cdr(energy_vat: str | None) -> tuple[Json, PricedSession]:
    tariff = simple_tariff()
    if energy_vat is not None:
        tariff["elements"][0]["price_components"][1]["vat"] = Decimal(energy_vat)
    built = build_cdr(
        completed_session(),
        priced_location(tariff_ids=["CDR-T1"]),
        {"CDR-T1": tariff},
        issued_at=NOW,
    )
    core_cdrs.Cdr.model_validate(built.cdr)
    priced = price_session(
        core_tariffs.Tariff.model_validate(tariff),
        [core_cdrs.ChargingPeriod.model_validate(p) for p in built.cdr["charging_periods"]],
        start=parse_ocpi_datetime(built.cdr["start_date_time"]),
        end=parse_ocpi_datetime(built.cdr["end_date_time"]),
        time_zone="Europe/Amsterdam",
    )
    return built.cdr, priced


def _lines(price: Any) -> list[tuple[Decimal | None, Decimal]]:
    return [
        (
            None if t.get("percentage") is None else Decimal(str(t["percentage"])),
            Decimal(str(t["amount"])),
        )
        for t in price.get("taxes") or []
        if t["amount"]  # a zero line says nothing
    ]


@pytest.mark.parametrize("energy_vat", [None, "9"])
def test_a_cdr_we_price_goes_out_in_2_3_0_with_our_pricings_tax_lines(
    energy_vat: str | None,
) -> None:
    ours, priced = _our_cdr(energy_vat)
    out = V230.object_out(Kind.CDR, ours, patch=False)
    v230_cdrs.Cdr.model_validate(out)
    for cost in COSTS:
        expected = priced.price_v230(cost)
        sent = out[cost]
        assert Decimal(str(sent["before_taxes"])) == expected.before_taxes, cost
        assert _lines(sent) == [(t.percentage, t.amount) for t in expected.taxes or [] if t.amount]
    assert out["tariffs"][0]["tax_included"] == "NO"
    # Two rates (20 % and 9 %): kept as lines in our CDR; one rate: derived.
    assert ("taxes" in ours["total_cost"]) is (energy_vat is not None)
    if energy_vat is not None:
        assert sorted(p for p, _ in _lines(out["total_cost"])) == [Decimal(9), Decimal(20)]


def test_a_cdr_pushed_to_a_2_3_0_partner_is_in_its_shape() -> None:
    from processors.push import PushRequest, in_version

    ours, _ = _our_cdr("9")
    request = PushRequest(
        method="POST",
        path="",
        body=ours,
        object_key="ZZ/HUB/OS-1",
        last_updated=NOW,
        correlation_id="c",
        event_id="e",
    )
    sent = in_version(request, "cdrs", V230)
    assert sent.body is not None and "excl_vat" not in sent.body["total_cost"]
    assert sorted(p for p, _ in _lines(sent.body["total_cost"])) == [Decimal(9), Decimal(20)]
    assert in_version(request, "cdrs", WIRES["2.2.1"]) is request
