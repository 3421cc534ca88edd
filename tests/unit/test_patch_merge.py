"""PUT / PATCH merge rules of the Locations module (schemas.ocpi.merge)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.ocpi.common import fold, format_ocpi_datetime, parse_ocpi_datetime
from schemas.ocpi.locations import Connector, Evse, Location, validate_patch
from schemas.ocpi.merge import (
    IdentifierMismatchError,
    MergeError,
    UnknownObjectError,
    apply_patch,
    find_connector,
    find_evse,
    is_stale,
    patch_connector,
    patch_evse,
    patch_location,
    put_connector,
    put_evse,
    put_location,
)
from schemas.ocpi.types import to_json
from tests.unit.test_locations_model import EVSE_A, EVSE_B, KERB_LOCATION, PATCHED_AT

Json = dict[str, Any]

LATER = PATCHED_AT  # newer than anything in KERB_LOCATION
EARLIER = "2010-01-01T00:00:00Z"  # older than anything in KERB_LOCATION
EVSE_C = "KS-0117-3"  # not (yet) in KERB_LOCATION


def evse_of(location: Json, uid: str) -> Json:
    found = find_evse(location, uid)
    assert found is not None
    return found


def connector_of(location: Json, uid: str, connector_id: str) -> Json:
    found = find_connector(location, uid, connector_id)
    assert found is not None
    return found


# ================================================================ apply_patch


def test_absent_fields_are_unchanged_and_present_ones_replaced() -> None:
    current = {"name": "Ahnepark Nord", "city": "Kassel", "last_updated": EARLIER}
    assert apply_patch(current, {"name": "Ahnepark Nord (P+R)", "last_updated": LATER}) == {
        "name": "Ahnepark Nord (P+R)",
        "city": "Kassel",
        "last_updated": LATER,
    }


def test_null_removes_the_field() -> None:
    current = {"name": "Ahnepark Nord", "postal_code": "34127", "last_updated": EARLIER}
    result = apply_patch(current, {"postal_code": None, "state": None, "last_updated": LATER})
    assert result == {"name": "Ahnepark Nord", "last_updated": LATER}


def test_arrays_are_replaced_not_merged() -> None:
    # A list in a PATCH body replaces the stored list whole; ocpi/ocpi#172.
    current = {"id": "2", "tariff_ids": ["KS-AC-DAY", "KS-AC-SLOW"], "last_updated": EARLIER}
    assert apply_patch(current, {"tariff_ids": ["KS-AC-2026"], "last_updated": LATER})[
        "tariff_ids"
    ] == ["KS-AC-2026"]
    assert apply_patch(current, {"tariff_ids": [], "last_updated": LATER})["tariff_ids"] == []


def test_nested_objects_are_replaced_whole() -> None:
    current = {
        "operator": {
            "name": "Fuldastrom Laden",
            "website": "https://fuldastrom.example",
            "logo": {
                "url": "https://fuldastrom.example/logo.png",
                "category": "OPERATOR",
                "type": "png",
            },
        },
        "coordinates": {"latitude": "51.332417", "longitude": "9.468853"},
    }
    result = apply_patch(current, {"operator": {"name": "Nordhessen Netz"}})
    assert result["operator"] == {"name": "Nordhessen Netz"}  # website and logo gone
    assert result["coordinates"] == current["coordinates"]


def test_apply_patch_takes_a_validated_patch() -> None:
    patch = validate_patch(Evse, {"status": "CHARGING", "evse_id": None, "last_updated": LATER})
    current = {"uid": EVSE_A, "evse_id": "DE*OHB*E0117*1", "status": "AVAILABLE"}
    assert apply_patch(current, patch) == {
        "uid": EVSE_A,
        "status": "CHARGING",
        "last_updated": LATER,
    }


def test_apply_patch_never_mutates_its_inputs() -> None:
    current = {"tariff_ids": ["KS-AC-DAY"], "coordinates": {"latitude": "1.00000"}}
    patch = {"facilities": ["WIFI"], "tariff_ids": None}
    before = copy.deepcopy((current, patch))
    result = apply_patch(current, patch)
    assert (current, patch) == before
    assert result == {"coordinates": {"latitude": "1.00000"}, "facilities": ["WIFI"]}
    # What the patch leaves alone is shared, not copied (stored objects are
    # immutable by convention; a deep copy per write was too costly).
    assert result["coordinates"] is current["coordinates"]


# ================================================================ is_stale


@pytest.mark.parametrize(
    ("current", "incoming", "stale"),
    [
        ("2026-03-02T09:05:17Z", "2026-03-02T09:05:16Z", True),
        ("2026-03-02T09:05:17Z", "2026-03-02T09:05:17Z", False),  # equal applies
        ("2026-03-02T09:05:17Z", "2026-03-02T09:05:18Z", False),
        ("2026-03-02T09:05:17.5Z", "2026-03-02T09:05:17Z", True),  # sub-second
        ("2026-03-02T09:05:17", "2026-03-02T09:05:17.000Z", False),  # same instant
        (None, "2026-03-02T09:05:17Z", False),  # nothing stored yet
        (datetime(2026, 3, 2, tzinfo=UTC), "2026-03-01T23:59:59Z", True),
        ("2026-03-02T00:00:00Z", datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC), False),
    ],
)
def test_is_stale(current: Any, incoming: Any, stale: bool) -> None:
    assert is_stale(current, incoming) is stale


# ================================================================ Location


def test_put_location_replaces_it_whole_including_evses() -> None:
    new = copy.deepcopy(KERB_LOCATION)
    new["evses"] = [new["evses"][1]]
    del new["operator"]
    result = put_location(new)
    assert result == new and result is not new
    assert find_evse(result, EVSE_A) is None


def test_patch_location_changes_its_own_fields_only() -> None:
    # A Location-level PATCH (here: a new name) leaves its EVSEs alone.
    result = patch_location(KERB_LOCATION, {"name": "Ahnepark Nord (P+R)", "last_updated": LATER})
    assert result["name"] == "Ahnepark Nord (P+R)"
    assert result["last_updated"] == LATER
    assert result["evses"] == KERB_LOCATION["evses"]
    Location.model_validate(result)


def test_patch_location_accepts_its_own_ids_in_any_case() -> None:
    body = {"country_code": "de", "party_id": "ohb", "id": "ks-0117", "last_updated": LATER}
    assert patch_location(KERB_LOCATION, body)["id"] == "ks-0117"  # stored as received


@pytest.mark.parametrize(
    ("field", "value"), [("id", "LOC2"), ("party_id", "XYZ"), ("country_code", "NL")]
)
def test_patch_location_refuses_another_identity(field: str, value: str) -> None:
    with pytest.raises(IdentifierMismatchError) as caught:
        patch_location(KERB_LOCATION, {field: value, "last_updated": LATER})
    assert caught.value.field == field
    assert isinstance(caught.value, MergeError)


# ================================================================ EVSE


def new_evse(uid: str, stamp: str = LATER, **extra: Any) -> Json:
    return {
        "uid": uid,
        "status": "AVAILABLE",
        "connectors": [
            {
                "id": "1",
                "standard": "IEC_62196_T2_COMBO",
                "format": "CABLE",
                "power_type": "DC",
                "max_voltage": 920,
                "max_amperage": 400,
                "last_updated": stamp,
            }
        ],
        "last_updated": stamp,
        **extra,
    }


def test_put_evse_adds_a_new_evse_at_the_end_and_bumps_the_location() -> None:
    result = put_evse(KERB_LOCATION, new_evse(EVSE_C))
    assert [e["uid"] for e in result["evses"]] == [EVSE_A, EVSE_B, EVSE_C]
    assert result["last_updated"] == LATER
    Location.model_validate(result)


def test_put_evse_replaces_the_same_uid_in_place() -> None:
    result = put_evse(KERB_LOCATION, new_evse(EVSE_A, physical_reference="9"))
    assert result["evses"] == [new_evse(EVSE_A, physical_reference="9"), KERB_LOCATION["evses"][1]]


def test_put_evse_stores_the_uid_as_received() -> None:
    location = put_evse(KERB_LOCATION, new_evse("ab-1"))
    result = put_evse(location, new_evse("AB-1", physical_reference="9"))
    assert [e["uid"] for e in result["evses"]] == [EVSE_A, EVSE_B, "AB-1"]
    assert result["evses"][2]["physical_reference"] == "9"


def test_put_evse_never_moves_the_location_back_in_time() -> None:
    result = put_evse(KERB_LOCATION, new_evse(EVSE_C, stamp=EARLIER))
    assert result["last_updated"] == KERB_LOCATION["last_updated"]
    assert evse_of(result, EVSE_C)["last_updated"] == EARLIER


def test_put_evse_on_a_location_without_evses() -> None:
    location = {k: v for k, v in KERB_LOCATION.items() if k != "evses"}
    assert put_evse(location, new_evse("1"))["evses"] == [new_evse("1")]


def test_patch_evse_status_bumps_the_location() -> None:
    # An EVSE-level PATCH of the status only.
    patch = validate_patch(Evse, {"status": "CHARGING", "last_updated": LATER})
    result = patch_evse(KERB_LOCATION, EVSE_A, patch)
    evse = evse_of(result, EVSE_A)
    assert evse["status"] == "CHARGING"
    assert evse["last_updated"] == LATER
    assert evse["connectors"] == KERB_LOCATION["evses"][0]["connectors"]
    assert result["last_updated"] == LATER
    assert result["evses"][1] == KERB_LOCATION["evses"][1]
    Location.model_validate(result)


def test_patch_evse_finds_the_uid_case_insensitively() -> None:
    location = put_evse(KERB_LOCATION, new_evse("ab-1", stamp=EARLIER))
    result = patch_evse(location, "AB-1", {"status": "REMOVED", "last_updated": LATER})
    assert evse_of(result, "ab-1")["status"] == "REMOVED"
    assert evse_of(result, "ab-1")["uid"] == "ab-1"


def test_patch_evse_unknown_is_an_unknown_object() -> None:
    with pytest.raises(UnknownObjectError) as caught:
        patch_evse(KERB_LOCATION, "9999", {"status": "CHARGING", "last_updated": LATER})
    assert caught.value.kind == "EVSE"
    assert caught.value.path == ("KS-0117", "9999")


def test_patch_evse_refuses_a_body_for_another_evse() -> None:
    with pytest.raises(IdentifierMismatchError):
        patch_evse(KERB_LOCATION, EVSE_A, {"uid": EVSE_B, "last_updated": LATER})


def test_patch_evse_connectors_list_is_replaced() -> None:
    connectors = new_evse("x")["connectors"]
    result = patch_evse(KERB_LOCATION, EVSE_A, {"connectors": connectors, "last_updated": LATER})
    assert evse_of(result, EVSE_A)["connectors"] == connectors


# ================================================================ Connector


def new_connector(connector_id: str, stamp: str = LATER) -> Json:
    return {
        "id": connector_id,
        "standard": "CHADEMO",
        "format": "CABLE",
        "power_type": "DC",
        "max_voltage": 500,
        "max_amperage": 125,
        "last_updated": stamp,
    }


def test_put_connector_replaces_by_id_and_bumps_evse_and_location() -> None:
    result = put_connector(KERB_LOCATION, EVSE_A, new_connector("2"))
    evse = evse_of(result, EVSE_A)
    assert [c["id"] for c in evse["connectors"]] == ["1", "2"]
    assert evse["connectors"][1] == new_connector("2")
    assert evse["last_updated"] == LATER
    assert result["last_updated"] == LATER
    assert result["evses"][1] == KERB_LOCATION["evses"][1]
    Location.model_validate(result)


def test_put_connector_adds_a_new_connector() -> None:
    result = put_connector(KERB_LOCATION, EVSE_B, new_connector("2"))
    assert [c["id"] for c in evse_of(result, EVSE_B)["connectors"]] == ["1", "2"]


def test_put_connector_never_moves_parents_back_in_time() -> None:
    result = put_connector(KERB_LOCATION, EVSE_A, new_connector("3", stamp=EARLIER))
    assert evse_of(result, EVSE_A)["last_updated"] == KERB_LOCATION["evses"][0]["last_updated"]
    assert result["last_updated"] == KERB_LOCATION["last_updated"]


def test_put_connector_on_an_unknown_evse_is_an_unknown_object() -> None:
    with pytest.raises(UnknownObjectError) as caught:
        put_connector(KERB_LOCATION, "9999", new_connector("1"))
    assert caught.value.kind == "EVSE"


def test_patch_connector_tariff_update() -> None:
    # A Connector-level PATCH of tariff_ids only.
    patch = validate_patch(Connector, {"tariff_ids": ["KS-AC-2026"], "last_updated": LATER})
    result = patch_connector(KERB_LOCATION, EVSE_A, "2", patch)
    connector = connector_of(result, EVSE_A, "2")
    assert connector["tariff_ids"] == ["KS-AC-2026"]
    assert connector["standard"] == "IEC_62196_T2"
    assert evse_of(result, EVSE_A)["last_updated"] == LATER
    assert result["last_updated"] == LATER
    assert connector_of(result, EVSE_A, "1") == KERB_LOCATION["evses"][0]["connectors"][0]
    Location.model_validate(result)


@pytest.mark.parametrize(
    ("evse_uid", "connector_id", "kind"), [(EVSE_A, "7", "Connector"), ("9999", "1", "EVSE")]
)
def test_patch_connector_unknown_is_an_unknown_object(
    evse_uid: str, connector_id: str, kind: str
) -> None:
    with pytest.raises(UnknownObjectError) as caught:
        patch_connector(KERB_LOCATION, evse_uid, connector_id, {"last_updated": LATER})
    assert caught.value.kind == kind


def test_patch_connector_refuses_a_body_for_another_connector() -> None:
    with pytest.raises(IdentifierMismatchError):
        patch_connector(KERB_LOCATION, EVSE_A, "1", {"id": "2", "last_updated": LATER})


def test_hierarchy_functions_never_mutate_the_stored_location() -> None:
    before = copy.deepcopy(KERB_LOCATION)
    put_evse(KERB_LOCATION, new_evse(EVSE_A))
    patch_evse(KERB_LOCATION, EVSE_A, {"status": "CHARGING", "last_updated": LATER})
    put_connector(KERB_LOCATION, EVSE_A, new_connector("1"))
    patch_connector(KERB_LOCATION, EVSE_A, "1", {"tariff_ids": [], "last_updated": LATER})
    patch_location(KERB_LOCATION, {"name": None, "last_updated": LATER})
    assert before == KERB_LOCATION


# ================================================================ properties

T0 = datetime(2020, 1, 1, tzinfo=UTC)
stamps = st.integers(0, 10**7).map(lambda s: format_ocpi_datetime(T0 + timedelta(seconds=s)))

FIELDS = [
    "name",
    "address",
    "postal_code",
    "coordinates",
    "operator",
    "facilities",
    "images",
    "publish",
    "charging_when_closed",
    "energy_mix",
    "tariff_ids",
]
scalars = st.one_of(
    st.text(alphabet="abcXYZ09 *-é", max_size=5),
    st.integers(-1000, 1000),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
arrays = st.lists(scalars, max_size=3)
objects = st.dictionaries(
    st.sampled_from(["latitude", "longitude", "name", "url"]), scalars, max_size=3
)
values = st.one_of(scalars, arrays, objects)


def documents(field_values: st.SearchStrategy[Any] = values) -> st.SearchStrategy[Json]:
    return st.builds(
        lambda fields, stamp: {**fields, "id": "LOC1", "last_updated": stamp},
        st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=len(FIELDS)),
        stamps,
    )


def patches(field_values: st.SearchStrategy[Any] = values) -> st.SearchStrategy[Json]:
    return st.builds(
        lambda fields, stamp: {**fields, "last_updated": stamp},
        st.dictionaries(st.sampled_from(FIELDS), st.none() | field_values, max_size=5),
        stamps,
    )


@given(documents(), patches())
def test_prop_absent_fields_are_unchanged(current: Json, patch: Json) -> None:
    result = apply_patch(current, patch)
    for name in set(current) | set(FIELDS):
        if name not in patch:
            assert (name in result) == (name in current)
            assert result.get(name) == current.get(name)


@given(documents(), patches())
def test_prop_null_clears_and_values_replace(current: Json, patch: Json) -> None:
    result = apply_patch(current, patch)
    for name, value in patch.items():
        if value is None:
            assert name not in result
        else:
            assert result[name] == value


@given(documents(), patches())
def test_prop_patch_is_idempotent(current: Json, patch: Json) -> None:
    once = apply_patch(current, patch)
    assert apply_patch(once, patch) == once


@given(documents(arrays), patches(arrays))
def test_prop_arrays_are_replaced_never_merged(current: Json, patch: Json) -> None:
    result = apply_patch(current, patch)
    for name, value in patch.items():
        if isinstance(value, list):
            assert result[name] == value
            assert len(result[name]) == len(value)  # nothing kept from the stored list


@given(documents(), patches(), st.data())
def test_prop_a_newer_patch_on_the_same_keys_wins(
    current: Json, first: Json, data: st.DataObject
) -> None:
    second = {name: data.draw(st.none() | values, label=name) for name in first}
    second["last_updated"] = format_ocpi_datetime(
        parse_ocpi_datetime(first["last_updated"]) + timedelta(seconds=1)
    )
    assert apply_patch(apply_patch(current, first), second) == apply_patch(current, second)


@given(documents(), patches())
def test_prop_apply_patch_does_not_mutate_inputs(current: Json, patch: Json) -> None:
    before = copy.deepcopy((current, patch))
    apply_patch(current, patch)
    assert (current, patch) == before


# ---------------------------------------------------------------- hierarchy

UIDS = ["a1", "B2", "c3", "D4"]  # the EVSE uid pool; drawn in random case below
CONNECTOR_IDS = ["1", "2", "x"]


def any_case(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from([text, text.upper(), text.lower()])


@st.composite
def connectors(draw: st.DrawFn, connector_id: str, newest: int) -> Json:
    return {
        **new_connector(connector_id),
        "max_amperage": draw(st.integers(0, 500)),
        "last_updated": stamp_at(draw(st.integers(0, newest))),
    }


@st.composite
def evses(draw: st.DrawFn, uid: str, newest: int) -> Json:
    at = draw(st.integers(0, newest))
    ids = draw(st.lists(st.sampled_from(CONNECTOR_IDS), min_size=1, max_size=3, unique=True))
    return {
        "uid": uid,
        "status": draw(st.sampled_from(["AVAILABLE", "CHARGING", "REMOVED"])),
        "connectors": [draw(connectors(draw(any_case(c)), at)) for c in ids],
        "last_updated": stamp_at(at),
    }


@st.composite
def locations(draw: st.DrawFn) -> Json:
    at = draw(st.integers(0, 1000))
    uids = draw(st.lists(st.sampled_from(UIDS), min_size=1, max_size=4, unique=True))
    return {
        **{k: v for k, v in KERB_LOCATION.items() if k != "evses"},
        "evses": [draw(evses(draw(any_case(uid)), at)) for uid in uids],
        "last_updated": stamp_at(at),
    }


def stamp_at(seconds: int) -> str:
    return format_ocpi_datetime(T0 + timedelta(seconds=seconds))


@st.composite
def operations(draw: st.DrawFn) -> tuple[str, tuple[Any, ...]]:
    kind = draw(st.sampled_from(["put_evse", "patch_evse", "put_connector", "patch_connector"]))
    uid = draw(st.sampled_from(UIDS).flatmap(any_case))
    at = draw(st.integers(0, 3000))
    if kind == "put_evse":
        return kind, (draw(evses(uid, at)),)
    if kind == "put_connector":
        return kind, (uid, draw(connectors(draw(st.sampled_from(CONNECTOR_IDS)), at)))
    body: Json = {"last_updated": stamp_at(at)}
    if kind == "patch_evse":
        body["status"] = draw(st.sampled_from(["AVAILABLE", "BLOCKED", "OUTOFORDER"]))
        return kind, (uid, body)
    body["tariff_ids"] = draw(
        st.lists(st.sampled_from(["T1", "T2", "T3"]), max_size=2, unique=True)
    )
    return kind, (uid, draw(st.sampled_from(CONNECTOR_IDS).flatmap(any_case)), body)


def receive(location: Json, kind: str, args: tuple[Any, ...]) -> Json:
    """What the Receiver does with one write: skip stale ones, apply the rest
    (an unknown object is refused and changes nothing)."""
    if kind == "put_evse":
        (evse,) = args
        stored = find_evse(location, evse["uid"])
        if stored and is_stale(stored["last_updated"], evse["last_updated"]):
            return location
        return put_evse(location, evse)
    if kind == "patch_evse":
        uid, body = args
        stored = find_evse(location, uid)
        if stored and is_stale(stored["last_updated"], body["last_updated"]):
            return location
        try:
            return patch_evse(location, uid, body)
        except UnknownObjectError:
            assert stored is None
            return location
    if kind == "put_connector":
        uid, connector = args
        stored = find_connector(location, uid, connector["id"])
        if stored and is_stale(stored["last_updated"], connector["last_updated"]):
            return location
        try:
            return put_connector(location, uid, connector)
        except UnknownObjectError:
            assert find_evse(location, uid) is None
            return location
    uid, connector_id, body = args
    stored = find_connector(location, uid, connector_id)
    if stored and is_stale(stored["last_updated"], body["last_updated"]):
        return location
    try:
        return patch_connector(location, uid, connector_id, body)
    except UnknownObjectError:
        assert stored is None
        return location


def check_invariants(location: Json) -> None:
    evses_ = location["evses"]
    assert len({fold(e["uid"]) for e in evses_}) == len(evses_)
    for evse in evses_:
        assert evse["last_updated"] <= location["last_updated"]  # canonical form orders as text
        ids = [fold(c["id"]) for c in evse["connectors"]]
        assert len(set(ids)) == len(ids)
        for connector in evse["connectors"]:
            assert connector["last_updated"] <= evse["last_updated"]
    Location.model_validate(location)


@settings(max_examples=100, deadline=None)
@given(locations(), st.lists(operations(), max_size=8), locations())
def test_prop_hierarchy_writes_keep_the_location_consistent(
    location: Json, ops: list[tuple[str, tuple[Any, ...]]], replacement: Json
) -> None:
    check_invariants(location)
    for kind, args in ops:
        before = location
        location = receive(location, kind, args)
        check_invariants(location)
        # A Location never goes back in time.
        assert location["last_updated"] >= before["last_updated"]
        # A write to one EVSE (or its connectors) leaves the others alone.
        target = fold(args[0]["uid"] if kind == "put_evse" else args[0])
        for evse in before["evses"]:
            if fold(evse["uid"]) != target:
                assert evse_of(location, evse["uid"]) == evse
    # PUT of the Location after anything equals the PUT.
    assert put_location(replacement) == replacement
    assert to_json(Location.model_validate(put_location(replacement))) == replacement
