"""The OCPI 2.1.1 edge adapter for Sessions and CDRs (docs/adr/0045 §7,
docs/ocpi-versions.md): a round trip keeps every field 2.1.1 can express.

A 2.1.1 Session or CDR embeds the whole Location and names the token by
``auth_id``. In: the location reference is taken from the embedded Location,
the token is the one of ours the caller found for the auth_id (the
``EdgeContext``). Out: the Location comes from our location view (here: the
embedded one as our model holds it, which is what the view serves once the
CPO's Location reached us), reduced to the EVSE and Connector used."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.ocpi.cdrs import Cdr
from schemas.ocpi.locations import Location
from schemas.ocpi.sessions import Session
from schemas.ocpi.tariffs import loads_exact
from schemas.ocpi.v211 import sessions as s211
from schemas.ocpi.wire import EdgeContext, Kind
from tests.unit.test_v211_adapter import (
    NOW,
    OWNER,
    V211,
    ids,
    locations_211,
    maybe,
    normalised,
    stamps,
    tariffs_211,
    without_none,
)

US = {"country_code": "ZZ", "party_id": "EMS"}


def _one_evse(location: dict[str, Any]) -> dict[str, Any]:
    evse = dict(location["evses"][0])
    evse["connectors"] = evse["connectors"][:1]
    return {**location, "evses": [evse]}


embedded = locations_211.filter(lambda loc: bool(loc.get("evses"))).map(_one_evse)
volumes = st.integers(0, 10**6).map(lambda n: Decimal(n).scaleb(-3))
periods = st.lists(
    st.builds(
        lambda at, dims: {"start_date_time": at, "dimensions": dims},
        stamps,
        st.lists(
            st.builds(
                lambda kind, volume: {"type": kind, "volume": volume},
                # FLAT has no 2.2.1 counterpart: lost (tested below).
                st.sampled_from(["ENERGY", "MAX_CURRENT", "MIN_CURRENT", "PARKING_TIME", "TIME"]),
                volumes,
            ),
            min_size=1,
            max_size=3,
        ),
    ),
    min_size=1,
    max_size=3,
)

sessions_211 = st.builds(
    lambda sid, start, end, kwh, auth_id, method, where, meter, cost, status, per, at: without_none(
        {
            "id": sid,
            "start_datetime": min(start, end or start),
            "end_datetime": end and max(start, end),
            "kwh": kwh,
            "auth_id": auth_id,
            "auth_method": method,
            "location": where,
            "meter_id": meter,
            "currency": "EUR",
            "charging_periods": per,
            "total_cost": cost,
            "status": status,
            "last_updated": at,
        }
    ),
    ids,
    stamps,
    maybe(stamps),
    volumes,
    ids,
    st.sampled_from(["AUTH_REQUEST", "WHITELIST"]),
    embedded,
    maybe(ids),
    maybe(volumes),
    st.sampled_from([s.value for s in s211.SessionStatus]),
    maybe(periods),
    stamps,
)

cdrs_211 = st.builds(
    lambda cid, start, stop, auth_id, where, tariffs, per, cost, energy, hours, parking, at: (
        without_none(
            {
                "id": cid,
                "start_date_time": min(start, stop),
                "stop_date_time": max(start, stop),
                "auth_id": auth_id,
                "auth_method": "WHITELIST",
                "location": where,
                "currency": "EUR",
                "tariffs": tariffs,
                "charging_periods": per,
                "total_cost": cost,
                "total_energy": energy,
                "total_time": hours,
                "total_parking_time": parking,
                "remark": "stopped at the charger",
                "last_updated": at,
            }
        )
    ),
    ids,
    stamps,
    stamps,
    ids,
    embedded,
    maybe(st.lists(tariffs_211, min_size=1, max_size=2)),
    periods,
    volumes,
    volumes,
    volumes,
    maybe(volumes),
    stamps,
)


def token_of(auth_id: str) -> dict[str, Any]:
    return {**US, "uid": "04A1B2C3", "type": "RFID", "contract_id": auth_id}


def view_location(theirs: dict[str, Any]) -> dict[str, Any]:
    """The embedded Location as our location view would serve it."""
    ours = V211.object_in(Kind.LOCATION, theirs["location"], owner=OWNER, patch=False, now=NOW)
    return normalised(Location, ours)


def exact(model: Any, body: dict[str, Any]) -> dict[str, Any]:
    """JSON as stored, numbers exact (as the write path reads bodies)."""
    text = model.model_validate(body).model_dump_json(exclude_none=True)
    loaded: dict[str, Any] = loads_exact(text)
    return loaded


@settings(max_examples=60, deadline=None)
@given(sessions_211)
def test_a_211_session_round_trips_through_our_model(theirs: dict[str, Any]) -> None:
    token = token_of(theirs["auth_id"])
    ours = V211.object_in(
        Kind.SESSION, theirs, owner=OWNER, patch=False, now=NOW, context=EdgeContext(token=token)
    )
    stored = exact(Session, ours)
    assert (stored["country_code"], stored["party_id"]) == OWNER
    assert stored["cdr_token"] == token
    where = theirs["location"]
    assert stored["location_id"] == where["id"]
    assert stored["evse_uid"] == where["evses"][0]["uid"]
    assert stored["connector_id"] == where["evses"][0]["connectors"][0]["id"]
    back = V211.object_out(
        Kind.SESSION, stored, patch=False, context=EdgeContext(location=view_location(theirs))
    )
    assert back == exact(s211.Session, theirs)


@settings(max_examples=60, deadline=None)
@given(cdrs_211)
def test_a_211_cdr_round_trips_through_our_model(theirs: dict[str, Any]) -> None:
    token = token_of(theirs["auth_id"])
    ours = V211.object_in(
        Kind.CDR, theirs, owner=OWNER, patch=False, now=NOW, context=EdgeContext(token=token)
    )
    stored = exact(Cdr, ours)
    assert stored["total_cost"] == {"excl_vat": exact(s211.Cdr, theirs)["total_cost"]}
    assert stored["cdr_location"]["evse_uid"] == theirs["location"]["evses"][0]["uid"]
    back = V211.object_out(
        Kind.CDR, stored, patch=False, context=EdgeContext(location=view_location(theirs))
    )
    assert back == exact(s211.Cdr, theirs)


@settings(max_examples=30, deadline=None)
@given(cdrs_211)
def test_a_211_cdr_out_without_the_location_view_keeps_what_the_cdr_says(
    theirs: dict[str, Any],
) -> None:
    ours = V211.object_in(
        Kind.CDR,
        theirs,
        owner=OWNER,
        patch=False,
        now=NOW,
        context=EdgeContext(token=token_of(theirs["auth_id"])),
    )
    back = V211.object_out(Kind.CDR, exact(Cdr, ours), patch=False)
    where, evse = back["location"], back["location"]["evses"][0]
    assert where["id"] == theirs["location"]["id"]
    assert where["address"] == theirs["location"]["address"]
    assert evse["uid"] == theirs["location"]["evses"][0]["uid"]
    assert (
        evse["connectors"][0]["standard"]
        == (theirs["location"]["evses"][0]["connectors"][0]["standard"])
    )


def _our_session() -> dict[str, Any]:
    return {
        "country_code": "NL",
        "party_id": "CPO",
        "id": "S1",
        "start_date_time": "2026-12-01T10:00:00Z",
        "kwh": Decimal("3.5"),
        "cdr_token": {**US, "uid": "04A1", "type": "APP_USER", "contract_id": "ZZ-EMS-C1"},
        "auth_method": "COMMAND",
        "authorization_reference": "REF1",
        "location_id": "L1",
        "evse_uid": "E1",
        "connector_id": "1",
        "currency": "EUR",
        "charging_periods": [
            {
                "start_date_time": "2026-12-01T10:00:00Z",
                "dimensions": [
                    {"type": "ENERGY", "volume": Decimal("3.5")},
                    {"type": "STATE_OF_CHARGE", "volume": Decimal("40")},
                ],
                "tariff_id": "T1",
            },
            {
                "start_date_time": "2026-12-01T10:30:00Z",
                "dimensions": [{"type": "POWER", "volume": Decimal("11")}],
            },
        ],
        "total_cost": {"excl_vat": Decimal("1.20"), "incl_vat": Decimal("1.45")},
        "status": "RESERVATION",
        "last_updated": "2026-12-01T10:30:00Z",
    }


def test_our_session_out_to_211_loses_what_211_cannot_say() -> None:
    out = V211.object_out(Kind.SESSION, _our_session(), patch=False)
    assert out["auth_id"] == "ZZ-EMS-C1"
    assert out["auth_method"] == "AUTH_REQUEST"  # COMMAND: at the eMSP's request
    assert out["status"] == "PENDING"  # no RESERVATION in 2.1.1
    assert out["total_cost"] == Decimal("1.20")  # excl. VAT, as 2.1.1 says
    assert out["start_datetime"] == "2026-12-01T10:00:00Z"
    # Session-only dimensions are not 2.1.1's; a period left without any goes.
    assert out["charging_periods"] == [
        {
            "start_date_time": "2026-12-01T10:00:00Z",
            "dimensions": [{"type": "ENERGY", "volume": Decimal("3.5")}],
        }
    ]
    for gone in ("country_code", "party_id", "authorization_reference", "cdr_token"):
        assert gone not in out
    # Without our location view, only the references can be embedded.
    assert out["location"] == {"id": "L1", "evses": [{"uid": "E1", "connectors": [{"id": "1"}]}]}


def test_a_211_session_patch_converts_field_by_field() -> None:
    patch = {"kwh": 4, "end_datetime": "2026-12-01T11:00:00Z", "total_cost": None}
    ours = V211.object_in(Kind.SESSION, patch, owner=OWNER, patch=True, now=NOW)
    assert ours == {
        "kwh": 4,
        "end_date_time": "2026-12-01T11:00:00Z",
        "total_cost": None,
        "last_updated": "2026-12-06T12:00:00Z",  # 2.1.1 may leave it out
    }
    out = V211.object_out(Kind.SESSION, ours, patch=True)
    assert out == {**patch, "last_updated": "2026-12-06T12:00:00Z"}
    assert "location" not in out  # a PATCH that names no location embeds none


def test_flat_dimensions_have_no_place_in_our_model() -> None:
    period = {
        "start_date_time": "2026-12-01T10:00:00Z",
        "dimensions": [{"type": "FLAT", "volume": 1}, {"type": "ENERGY", "volume": 2}],
    }
    ours = V211.object_in(
        Kind.SESSION, {"charging_periods": [period]}, owner=OWNER, patch=True, now=NOW
    )
    assert ours["charging_periods"][0]["dimensions"] == [{"type": "ENERGY", "volume": 2}]


@pytest.mark.parametrize("kind", [Kind.SESSION, Kind.CDR])
def test_a_221_object_is_refused_at_211(kind: Kind) -> None:
    body = _our_session()
    if kind is Kind.CDR:
        body = {**body, "end_date_time": "2026-12-01T11:00:00Z", "total_energy": 3}
    with pytest.raises(ValidationError) as refused:
        V211.object_in(kind, copy.deepcopy(body), owner=OWNER, patch=False, now=NOW)
    missing = {e["loc"][0] for e in refused.value.errors() if e["type"] == "missing"}
    assert {"auth_id", "location"} <= missing


def test_an_embedded_location_without_its_evse_is_refused() -> None:
    where = {
        "id": "L1",
        "type": "ON_STREET",
        "address": "a",
        "city": "b",
        "postal_code": "1",
        "country": "NLD",
        "coordinates": {"latitude": "52.00000", "longitude": "5.00000"},
        "last_updated": "2026-12-01T10:00:00Z",
    }
    with pytest.raises(ValidationError, match="EVSE"):
        V211.object_in(Kind.SESSION, {"location": where}, owner=OWNER, patch=True, now=NOW)
