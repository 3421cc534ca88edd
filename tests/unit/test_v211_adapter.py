"""The OCPI 2.1.1 edge adapter (docs/adr/0045, docs/ocpi-versions.md):
a round trip through it keeps every field 2.1.1 can express.

Property tests: any valid 2.1.1 Location (with EVSEs and Connectors) or
Token, read into our model, is a valid object of our model, and written
back out to 2.1.1 is the object it was. The reverse holds for what both
versions say: one of our objects, out to 2.1.1 and back, keeps every field
2.1.1 has a place for. Examples pin what 2.1.1 cannot say."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.ocpi.adapters import wire
from schemas.ocpi.locations import Location
from schemas.ocpi.tokens import Token
from schemas.ocpi.v211 import locations as l211
from schemas.ocpi.v211 import tokens as t211
from schemas.ocpi.wire import Kind
from tests.ocpi_objects import connector, evse, location

V211 = wire("2.1.1")
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
OWNER = ("NL", "PEE")

ids = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", min_size=1, max_size=36)
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=40)
stamps = st.datetimes(
    min_value=datetime(2015, 1, 1), max_value=datetime(2026, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))
latitudes = st.integers(-89_000_000, 89_000_000).map(lambda n: f"{n / 1_000_000:.6f}")
longitudes = st.integers(-179_000_000, 179_000_000).map(lambda n: f"{n / 1_000_000:.6f}")


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def without_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def unique_by(key: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item[key].upper() not in seen:
            seen.add(item[key].upper())
            out.append(item)
    return out


def enum_values(enum: Any) -> st.SearchStrategy[str]:
    return st.sampled_from([e.value for e in enum])


connectors_211 = st.builds(
    lambda cid, std, fmt, pt, v, a, tariff, at: without_none(
        {
            "id": cid,
            "standard": std,
            "format": fmt,
            "power_type": pt,
            "voltage": v,
            "amperage": a,
            "tariff_id": tariff,
            "last_updated": at,
        }
    ),
    st.sampled_from(["1", "2", "3"]),
    enum_values(l211.ConnectorType),
    st.sampled_from(["SOCKET", "CABLE"]),
    enum_values(l211.PowerType),
    st.integers(0, 1000),
    st.integers(0, 500),
    maybe(ids),
    stamps,
)

evses_211 = st.builds(
    lambda uid, status, caps, conns, floor, ref, restr, at: without_none(
        {
            "uid": uid,
            "status": status,
            "capabilities": caps,
            "connectors": unique_by("id", conns),
            "floor_level": floor,
            "physical_reference": ref,
            "parking_restrictions": restr,
            "last_updated": at,
        }
    ),
    ids,
    enum_values(l211.EvseStatus),
    maybe(st.lists(enum_values(l211.Capability), max_size=3, unique=True)),
    st.lists(connectors_211, min_size=1, max_size=3),
    maybe(st.text(alphabet="0123456789-", min_size=1, max_size=4)),
    maybe(st.text(alphabet="ABC123", min_size=1, max_size=16)),
    maybe(st.lists(enum_values(l211.ParkingRestriction), max_size=2, unique=True)),
    stamps,
)

hours_211 = st.one_of(
    st.just({"twentyfourseven": True}),
    st.builds(
        lambda day: {
            "regular_hours": [{"weekday": day, "period_begin": "08:00", "period_end": "20:00"}]
        },
        st.integers(1, 7),
    ),
)

mixes_211 = st.builds(
    lambda green, co2, supplier: without_none(
        {
            "is_green_energy": green,
            "energy_sources": [
                {"source": "SOLAR", "percentage": 60},
                {"source": "WIND", "percentage": 40},
            ],
            "environ_impact": [{"source": "CARBON_DIOXIDE", "amount": co2}] if co2 else None,
            "supplier_name": supplier,
        }
    ),
    st.booleans(),
    st.integers(0, 400),
    maybe(words),
)

locations_211 = st.builds(
    lambda lid, kind, name, lat, lon, evses, facilities, hours, closed, mix, extra, at: (
        without_none(
            {
                "id": lid,
                "type": kind,
                "name": name,
                "address": "Stationsplein 1",
                "city": "Utrecht",
                "postal_code": "3511 ED",
                "country": "NLD",
                "coordinates": {"latitude": lat, "longitude": lon},
                "evses": unique_by("uid", evses) if evses is not None else None,
                "operator": {"name": "Peer"},
                "facilities": facilities,
                "time_zone": "Europe/Amsterdam",
                "opening_times": hours,
                "charging_when_closed": closed,
                "energy_mix": mix,
                "x_custom": extra,  # a field no version declares: kept both ways
                "last_updated": at,
            }
        )
    ),
    ids,
    enum_values(l211.LocationType),
    maybe(words),
    latitudes,
    longitudes,
    maybe(st.lists(evses_211, max_size=3)),
    maybe(st.lists(enum_values(l211.Facility), max_size=3, unique=True)),
    maybe(hours_211),
    maybe(st.booleans()),
    maybe(mixes_211),
    maybe(st.integers(0, 9)),
    stamps,
)

tokens_211 = st.builds(
    lambda uid, kind, auth_id, visual, valid, whitelist, language, at: without_none(
        {
            "uid": uid,
            "type": kind,
            "auth_id": auth_id,
            "visual_number": visual,
            "issuer": "Peer",
            "valid": valid,
            "whitelist": whitelist,
            "language": language,
            "last_updated": at,
        }
    ),
    ids,
    enum_values(t211.TokenType),
    ids,
    maybe(ids),
    st.booleans(),
    st.sampled_from(["ALWAYS", "ALLOWED", "ALLOWED_OFFLINE", "NEVER"]),
    maybe(st.sampled_from(["en", "nl", "de"])),
    stamps,
)


def into_ours(kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
    ours: dict[str, Any] = V211.object_in(kind, body, owner=OWNER, patch=False, now=NOW)
    return ours


def normalised(model: Any, body: dict[str, Any]) -> dict[str, Any]:
    """The JSON form our model stores (timestamps canonical, absent stays absent)."""
    dumped: dict[str, Any] = model.model_validate(body).model_dump(mode="json", exclude_none=True)
    return dumped


@settings(max_examples=200, deadline=None)
@given(locations_211)
def test_a_211_location_round_trips_through_our_model(theirs: dict[str, Any]) -> None:
    l211.Location.model_validate(theirs)  # the strategy makes valid 2.1.1 objects
    ours = into_ours(Kind.LOCATION, theirs)
    stored = normalised(Location, ours)  # a valid object of our model
    assert (stored["country_code"], stored["party_id"]) == OWNER
    back = V211.object_out(Kind.LOCATION, stored, patch=False)
    assert back == normalised(l211.Location, theirs)


@settings(max_examples=200, deadline=None)
@given(tokens_211)
def test_a_211_token_round_trips_through_our_model(theirs: dict[str, Any]) -> None:
    ours = into_ours(Kind.TOKEN, theirs)
    stored = normalised(Token, ours)
    assert stored["contract_id"] == theirs["auth_id"]
    assert V211.object_out(Kind.TOKEN, stored, patch=False) == normalised(t211.Token, theirs)


@settings(max_examples=100, deadline=None)
@given(locations_211, st.data())
def test_a_211_patch_of_an_evse_or_connector_round_trips(
    theirs: dict[str, Any], data: st.DataObject
) -> None:
    if not theirs.get("evses"):
        return
    one = data.draw(st.sampled_from(theirs["evses"]))
    fragment = {"status": one["status"], "connectors": one["connectors"]}
    ours = V211.object_in(Kind.EVSE, fragment, owner=OWNER, patch=True, now=NOW)
    assert ours["last_updated"] == "2026-12-06T12:00:00Z"  # 2.1.1 may leave it out; ours may not
    assert {"max_voltage", "max_amperage"} <= set(ours["connectors"][0])
    back = V211.object_out(Kind.EVSE, ours, patch=True)
    assert back == {**fragment, "last_updated": "2026-12-06T12:00:00Z"}


def test_our_location_out_to_211_and_back_keeps_what_211_can_say() -> None:
    ours = location(
        "L1",
        country_code="NL",
        party_id="PEE",
        parking_type="UNDERGROUND_GARAGE",
        postal_code="3511",
        evses=[
            evse(
                "E1",
                capabilities=["RFID_READER", "CHIP_CARD_SUPPORT"],
                connectors=[connector("1", tariff_ids=["T1", "T2"], max_electric_power=22000)],
            )
        ],
        publish=True,
        state="Utrecht",
        facilities=["CAFE", "METRO_STATION"],
        opening_times={"twentyfourseven": True},
    )
    theirs = V211.object_out(Kind.LOCATION, normalised(Location, ours), patch=False)
    l211.Location.model_validate(theirs)
    assert theirs["type"] == "UNDERGROUND_GARAGE"
    assert "country_code" not in theirs and "publish" not in theirs and "state" not in theirs
    assert theirs["facilities"] == ["CAFE"]  # METRO_STATION has no 2.1.1 name
    [e1] = theirs["evses"]
    assert e1["capabilities"] == ["RFID_READER"]
    [c1] = e1["connectors"]
    assert (c1["voltage"], c1["amperage"], c1["tariff_id"]) == (230, 32, "T1")
    assert "max_electric_power" not in c1
    again = normalised(Location, into_ours(Kind.LOCATION, theirs))
    # What 2.1.1 has a place for came back; what it has not is documented as lost.
    assert again["parking_type"] == "UNDERGROUND_GARAGE"
    assert again["evses"][0]["connectors"][0]["tariff_ids"] == ["T1"]
    assert again["opening_times"] == {"twentyfourseven": True}


def test_our_location_without_a_postal_code_goes_out_with_an_empty_one() -> None:
    ours = {k: v for k, v in location("L1").items() if k != "postal_code"}
    theirs = V211.object_out(Kind.LOCATION, ours, patch=False)
    assert theirs["postal_code"] == ""  # required by 2.1.1, absent from ours
    l211.Location.model_validate(theirs)
    cleared = V211.object_out(Kind.LOCATION, {"postal_code": None}, patch=True)
    assert cleared == {"postal_code": ""}
    named = V211.object_out(Kind.LOCATION, {"name": "Station"}, patch=True)
    assert "postal_code" not in named  # a PATCH leaves out what it does not change


def test_location_types_without_a_parking_type() -> None:
    other = into_ours(Kind.LOCATION, {**_minimal_211(), "type": "OTHER"})
    assert "parking_type" not in other and other["type"] == "OTHER"  # kept as an unknown field
    unknown = into_ours(Kind.LOCATION, {**_minimal_211(), "type": "UNKNOWN"})
    assert "parking_type" not in unknown and "type" not in unknown
    motorway = location(parking_type="ALONG_MOTORWAY")
    assert V211.object_out(Kind.LOCATION, motorway, patch=False)["type"] == "OTHER"
    patched = V211.object_in(Kind.LOCATION, {"type": "ON_STREET"}, owner=None, patch=True, now=NOW)
    assert patched["parking_type"] == "ON_STREET" and patched["type"] is None


def test_our_token_out_to_211() -> None:
    ours = {
        "country_code": "ZZ",
        "party_id": "HUB",
        "uid": "APP-1",
        "type": "APP_USER",
        "contract_id": "ZZ-HUB-C1",
        "issuer": "Hub",
        "group_id": "G1",
        "valid": True,
        "whitelist": "ALLOWED",
        "default_profile_type": "GREEN",
        "energy_contract": {"supplier_name": "Green Co"},
        "last_updated": "2026-01-01T00:00:00Z",
    }
    theirs = V211.object_out(Kind.TOKEN, ours, patch=False)
    assert theirs == {
        "uid": "APP-1",
        "type": "OTHER",  # 2.1.1 knows RFID and OTHER only
        "auth_id": "ZZ-HUB-C1",
        "issuer": "Hub",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2026-01-01T00:00:00Z",
    }


def _minimal_211() -> dict[str, Any]:
    return {
        "id": "L1",
        "type": "ON_STREET",
        "address": "Stationsplein 1",
        "city": "Utrecht",
        "postal_code": "3511",
        "country": "NLD",
        "coordinates": {"latitude": "52.089444", "longitude": "5.110000"},
        "time_zone": "Europe/Amsterdam",
        "last_updated": "2026-01-01T00:00:00Z",
    }


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        # 2.2.1 objects at a 2.1.1 endpoint: what 2.1.1 requires is missing.
        (Kind.LOCATION, location(), "type"),
        (Kind.CONNECTOR, connector(), "voltage"),
        (Kind.EVSE, evse(), "voltage"),
        (
            Kind.TOKEN,
            {
                "uid": "T",
                "type": "RFID",
                "contract_id": "C",
                "issuer": "I",
                "valid": True,
                "whitelist": "ALWAYS",
                "last_updated": "2026-01-01T00:00:00Z",
            },
            "auth_id",
        ),
        # 2.2.1-only enum values are not 2.1.1.
        (
            Kind.CONNECTOR,
            {**connector(), "voltage": 1, "amperage": 1, "standard": "GBT_AC"},
            "standard",
        ),
        (Kind.TOKEN, {"uid": "T", "type": "APP_USER"}, "type"),
    ],
)
def test_an_object_of_another_version_is_refused(kind: Kind, body: Any, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        V211.object_in(kind, body, owner=OWNER, patch=False, now=NOW)
    assert field in str(refused.value)


# --- Tariffs ---------------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False)
restrictions_211 = st.builds(
    lambda start, kwh, power, duration, days: without_none(
        {
            "start_time": start,
            "end_time": "23:00" if start else None,
            "max_kwh": kwh,
            "min_power": power,
            "max_duration": duration,
            "day_of_week": days,
        }
    ),
    maybe(st.sampled_from(["07:00", "08:30"])),
    maybe(prices),
    maybe(prices),
    maybe(st.integers(0, 86400)),
    maybe(st.lists(st.sampled_from(["MONDAY", "SUNDAY"]), min_size=1, max_size=2, unique=True)),
)
tariffs_211 = st.builds(
    lambda tid, components, restrictions, alt, at: without_none(
        {
            "id": tid,
            "currency": "EUR",
            "tariff_alt_url": alt,
            "elements": [
                without_none(
                    {
                        "price_components": components,
                        "restrictions": restrictions or None,
                    }
                )
            ],
            "last_updated": at,
        }
    ),
    ids,
    st.lists(
        st.builds(
            lambda kind, price, step: {"type": kind, "price": price, "step_size": step},
            st.sampled_from(["ENERGY", "FLAT", "PARKING_TIME", "TIME"]),
            prices,
            st.integers(1, 900),
        ),
        min_size=1,
        max_size=3,
    ),
    maybe(restrictions_211),
    maybe(st.just("https://peer.example/tariffs")),
    stamps,
)


@settings(max_examples=200, deadline=None)
@given(tariffs_211)
def test_a_211_tariff_round_trips_through_our_model(theirs: dict[str, Any]) -> None:
    from schemas.ocpi.tariffs import Tariff
    from schemas.ocpi.v211.tariffs import Tariff as Tariff211

    ours = into_ours(Kind.TARIFF, theirs)
    stored = Tariff.model_validate(ours).model_dump(mode="json", exclude_none=True)
    assert (stored["country_code"], stored["party_id"]) == OWNER
    back = V211.object_out(Kind.TARIFF, stored, patch=False)
    assert back == Tariff211.model_validate(theirs).model_dump(mode="json", exclude_none=True)


def test_our_tariff_out_to_211_leaves_out_what_it_cannot_restrict() -> None:
    ours = {
        "country_code": "ZZ",
        "party_id": "HUB",
        "id": "T1",
        "currency": "EUR",
        "type": "PROFILE_GREEN",
        "min_price": {"excl_vat": 1},
        "elements": [
            {"price_components": [{"type": "ENERGY", "price": 0.3, "vat": 21, "step_size": 1}]},
            {
                "price_components": [{"type": "TIME", "price": 2, "step_size": 60}],
                "restrictions": {"reservation": "RESERVATION"},
            },
        ],
        "start_date_time": "2026-01-01T00:00:00Z",
        "last_updated": "2026-01-01T00:00:00Z",
    }
    theirs = V211.object_out(Kind.TARIFF, ours, patch=False)
    assert theirs == {
        "id": "T1",
        "currency": "EUR",
        # The reservation element would price every minute in 2.1.1: left out.
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}]}],
        "last_updated": "2026-01-01T00:00:00Z",
    }
