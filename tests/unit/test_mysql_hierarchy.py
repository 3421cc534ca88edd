"""The OCPI → building/space/EVSE/connector mapping (pure), and the fold a
MySQL writer runs per location."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from producers.locations import served
from projections.mysql.hierarchy import UNASSIGNED, hierarchy_rows, space_key
from projections.mysql.sites import fold_records
from projections.position import Record
from schemas.events import EvseStatusResolved, LocationObjectPatched, LocationObjectPut, Party
from schemas.events.locations import (
    EvseStatusResolvedPayload,
    LocationObjectPatchedPayload,
    LocationObjectPutPayload,
    location_key,
)
from schemas.ocpi.common import format_ocpi_datetime, parse_ocpi_datetime
from schemas.ocpi.locations import EvseStatus, Location
from schemas.ocpi.types import to_json

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
KEY = "NL/ABC/LOC1"
Json = dict[str, Any]


def at(seconds: int) -> str:
    return format_ocpi_datetime(T0 + timedelta(seconds=seconds))


def connector(cid: str = "1", *, seconds: int = 0, **fields: Any) -> Json:
    return {
        "id": cid,
        "standard": "IEC_62196_T2",
        "format": "SOCKET",
        "power_type": "AC_3_PHASE",
        "max_voltage": 400,
        "max_amperage": 32,
        "last_updated": at(seconds),
        **fields,
    }


def evse(uid: str, *, seconds: int = 0, **fields: Any) -> Json:
    return {
        "uid": uid,
        "status": "AVAILABLE",
        "connectors": [connector(seconds=seconds)],
        "last_updated": at(seconds),
        **fields,
    }


def location(*evses: Json, seconds: int = 0, location_id: str = "Loc1", **fields: Any) -> Json:
    """A valid OCPI Location in its stored JSON form."""
    body = {
        "country_code": "nl",
        "party_id": "Abc",
        "id": location_id,
        "publish": True,
        "name": "Garage Noord",
        "address": "Stationsplein 1",
        "city": "Utrecht",
        "postal_code": "3511 ED",
        "country": "NLD",
        "coordinates": {"latitude": "52.089444", "longitude": "5.110278"},
        "time_zone": "Europe/Amsterdam",
        "evses": list(evses),
        "last_updated": at(seconds),
        **fields,
    }
    return to_json(Location.model_validate(body))


def naive(seconds: int) -> datetime:
    return (T0 + timedelta(seconds=seconds)).replace(tzinfo=None)


# ------------------------------------------------------------------ mapping


def test_nothing_asserted_means_no_rows() -> None:
    rows = hierarchy_rows(KEY, None)
    assert (rows.buildings, rows.spaces, rows.evses, rows.connectors) == ([], [], [], [])


def test_the_location_is_one_building_with_values_as_received() -> None:
    [building] = hierarchy_rows(KEY, location(seconds=5)).buildings
    assert building == {
        "location_key": KEY,
        "country_code": "nl",
        "party_id": "Abc",
        "location_id": "Loc1",
        "name": "Garage Noord",
        "address": "Stationsplein 1",
        "city": "Utrecht",
        "postal_code": "3511 ED",
        "country": "NLD",
        "latitude": Decimal("52.089444"),
        "longitude": Decimal("5.110278"),
        "time_zone": "Europe/Amsterdam",
        "publish": True,
        "last_updated": naive(5),
    }


def test_optional_location_fields_are_null_when_absent() -> None:
    body = location()
    del body["name"], body["postal_code"]
    [building] = hierarchy_rows(KEY, body).buildings
    assert (building["name"], building["postal_code"]) == (None, None)


@pytest.mark.parametrize(
    ("floor", "reference", "expected_key", "stored"),
    [
        ("-1", "A12", f"{KEY}|-1|A12", ("-1", "A12")),
        ("2", None, f"{KEY}|2|", ("2", None)),
        (None, "7", f"{KEY}||7", (None, "7")),
        (None, None, f"{KEY}|{UNASSIGNED}", (None, None)),
        ("", "", f"{KEY}|{UNASSIGNED}", (None, None)),  # empty says nothing
        ("1", "a|b/c", f"{KEY}|1|a%7Cb%2Fc", ("1", "a|b/c")),  # no forged separator
        ("1", "bay 3", f"{KEY}|1|bay%203", ("1", "bay 3")),
    ],
)
def test_space_of_an_evse(
    floor: str | None, reference: str | None, expected_key: str, stored: tuple[Any, Any]
) -> None:
    fields: dict[str, Any] = {
        name: value
        for name, value in (("floor_level", floor), ("physical_reference", reference))
        if value is not None
    }
    rows = hierarchy_rows(KEY, location(evse("E1", **fields)))
    assert space_key(KEY, floor, reference) == expected_key
    assert rows.spaces == [
        {
            "space_key": expected_key,
            "location_key": KEY,
            "floor_level": stored[0],
            "physical_reference": stored[1],
        }
    ]
    assert rows.evses[0]["space_key"] == expected_key


def test_evses_in_the_same_place_share_a_space_and_case_matters_there() -> None:
    rows = hierarchy_rows(
        KEY,
        location(
            evse("E1", floor_level="1", physical_reference="A"),
            evse("E2", floor_level="1", physical_reference="A"),
            evse("E3", floor_level="1", physical_reference="a"),  # a string, not a CiString
            evse("E4"),
        ),
    )
    assert [s["space_key"] for s in rows.spaces] == [
        f"{KEY}|1|A",
        f"{KEY}|1|a",
        f"{KEY}|{UNASSIGNED}",
    ]
    assert [c["space_key"] for c in rows.evses] == [
        f"{KEY}|1|A",
        f"{KEY}|1|A",
        f"{KEY}|1|a",
        f"{KEY}|{UNASSIGNED}",
    ]


def test_each_evse_is_a_row_keyed_folded_with_values_as_received() -> None:
    body = location(
        evse(
            "evse-1",
            seconds=3,
            evse_id="NL*ABC*E1",
            status="CHARGING",
            capabilities=["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
            parking_restrictions=["EV_ONLY"],
        ),
        seconds=3,
    )
    [row] = hierarchy_rows(KEY, body).evses
    assert row == {
        "evse_key": f"{KEY}/EVSE-1",
        "location_key": KEY,
        "space_key": f"{KEY}|{UNASSIGNED}",
        "country_code": "nl",
        "party_id": "Abc",
        "location_id": "Loc1",
        "evse_uid": "evse-1",
        "evse_id": "NL*ABC*E1",
        "status": "CHARGING",
        "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
        "parking_restrictions": ["EV_ONLY"],
        "last_updated": naive(3),
    }


def test_each_connector_is_a_row_under_its_evse() -> None:
    body = location(
        evse(
            "E1",
            connectors=[
                connector("c1", max_electric_power=22000),
                connector("2", standard="IEC_62196_T2_COMBO", format="CABLE", power_type="DC"),
            ],
        )
    )
    rows = hierarchy_rows(KEY, body)
    assert rows.connectors == [
        {
            "connector_key": f"{KEY}/E1/C1",
            "evse_key": f"{KEY}/E1",
            "location_key": KEY,
            "connector_id": "c1",
            "standard": "IEC_62196_T2",
            "format": "SOCKET",
            "power_type": "AC_3_PHASE",
            "max_voltage": 400,
            "max_amperage": 32,
            "max_electric_power": 22000,
            "last_updated": naive(0),
        },
        {
            "connector_key": f"{KEY}/E1/2",
            "evse_key": f"{KEY}/E1",
            "location_key": KEY,
            "connector_id": "2",
            "standard": "IEC_62196_T2_COMBO",
            "format": "CABLE",
            "power_type": "DC",
            "max_voltage": 400,
            "max_amperage": 32,
            "max_electric_power": None,
            "last_updated": naive(0),
        },
    ]


def test_a_location_without_evses_is_a_building_only() -> None:
    rows = hierarchy_rows(KEY, location())
    assert len(rows.buildings) == 1
    assert (rows.spaces, rows.evses, rows.connectors) == ([], [], [])


# ------------------------------------------------------------------ folding


def _meta(location_id: str) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4(),
        "aggregate_key": location_key("NL", "ABC", location_id),
        "occurred_at": T0,
        "recorded_at": T0,
        "source": Party(country_code="NL", party_id="ABC"),
        "correlation_id": "c-1",
    }


def put(body: Json, offset: int, *, partition: int = 0) -> Record[object]:
    """A Location PUT of ``body`` (built by ``location``)."""
    location_id = body["id"]
    payload = LocationObjectPutPayload(
        country_code=body["country_code"],
        party_id=body["party_id"],
        location_id=location_id,
        object=body,
        last_updated=parse_ocpi_datetime(body["last_updated"]),
    )
    event = LocationObjectPut(**_meta(location_id), payload=payload)
    return Record("ocpi.locations.v1", partition, offset, event)


def patch_evse(
    uid: str, fields: Json, seconds: int, offset: int, *, location_id: str = "Loc1"
) -> Record[object]:
    stamp = T0 + timedelta(seconds=seconds)
    payload = LocationObjectPatchedPayload(
        country_code="NL",
        party_id="ABC",
        location_id=location_id,
        evse_uid=uid,
        patch={**fields, "last_updated": format_ocpi_datetime(stamp)},
        last_updated=stamp,
    )
    event = LocationObjectPatched(**_meta(location_id), payload=payload)
    return Record("ocpi.locations.v1", 0, offset, event)


def resolved(
    uid: str, status: EvseStatus, seconds: int, offset: int, *, location_id: str = "Loc1"
) -> Record[object]:
    stamp = T0 + timedelta(seconds=seconds)
    payload = EvseStatusResolvedPayload(
        country_code="NL",
        party_id="ABC",
        location_id=location_id,
        evse_uid=uid,
        status=status,
        last_updated=stamp,
        reported_status=status,
    )
    event = EvseStatusResolved(**_meta(location_id), payload=payload)
    return Record("ocpi.evse-status.v1", 0, offset, event)


def test_fold_skips_what_was_applied_and_keeps_positions_per_partition() -> None:
    first = fold_records(
        None, {}, [put(location(evse("E1")), 4), resolved("E1", EvseStatus.CHARGING, 1, 9)]
    )
    assert first.applied == 2 and first.state_changed
    assert first.positions == {"ocpi_locations_v1@0": 4, "ocpi_evse-status_v1@0": 9}
    again = fold_records(first.state.to_json(), first.positions, [put(location(), 4)])
    assert again.applied == 0 and not again.state_changed


def test_a_stale_patch_moves_the_position_but_not_the_state() -> None:
    start = fold_records(None, {}, [put(location(evse("E1", seconds=10), seconds=10), 1)])
    stale = fold_records(
        start.state.to_json(), start.positions, [patch_evse("E1", {"status": "BLOCKED"}, 5, 2)]
    )
    assert stale.applied == 1 and not stale.state_changed
    assert stale.positions["ocpi_locations_v1@0"] == 2


def test_statuses_before_the_location_are_kept_and_shown_once_it_exists() -> None:
    early = fold_records(None, {}, [resolved("E1", EvseStatus.CHARGING, 5, 0)])
    assert early.state_changed and served(early.state) is None
    later = fold_records(early.state.to_json(), early.positions, [put(location(evse("E1")), 0)])
    [row] = hierarchy_rows(KEY, served(later.state)).evses
    assert (row["status"], row["last_updated"]) == ("CHARGING", naive(5))
