"""The MySQL operational hierarchy against the real MariaDB: folding through
location state, idempotence, replay equality, and the ops reads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api.ops import evses as evses_api
from api.ops import sites as sites_api
from ocpi_hub.bootstrap import create_mysql_database, drop_mysql_database, mysql_engine
from projections.mysql.migrate import migrate
from projections.mysql.models import (
    buildings,
    connectors,
    evses,
    location_states,
    spaces,
)
from projections.mysql.sites import HierarchyWriter, OpsQuery
from projections.position import Record
from schemas.ocpi.locations import EvseStatus as S
from tests.ops_admin import as_admin
from tests.services import Namespace
from tests.unit.test_mysql_hierarchy import (
    connector,
    evse,
    location,
    naive,
    patch_evse,
    put,
    resolved,
)

KEY = "NL/ABC/LOC1"
TABLES = (location_states, buildings, spaces, evses, connectors)


@pytest.fixture(scope="module")
def engine(namespace: Namespace) -> Iterator[Engine]:
    built = mysql_engine(namespace.settings)
    migrate(built)
    migrate(built)  # idempotent
    yield built
    built.dispose()


@pytest.fixture
def writer(engine: Engine) -> HierarchyWriter:
    w = HierarchyWriter(engine)
    w.prepare()
    w.wipe()
    return w


def dump(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with engine.connect() as conn:
        return {
            t.name: [
                dict(r._mapping) for r in conn.execute(select(t).order_by(*t.primary_key.columns))
            ]
            for t in TABLES
        }


def views(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """The derived tables only (no fold state)."""
    return {name: rows for name, rows in dump(engine).items() if name != "location_states"}


def two_evses(seconds: int = 0) -> dict[str, Any]:
    return location(
        evse(
            "E1",
            seconds=seconds,
            floor_level="1",
            physical_reference="A1",
            connectors=[connector("1", seconds=seconds), connector("2", seconds=seconds)],
        ),
        evse("e2", seconds=seconds, capabilities=["RFID_READER"]),
        seconds=seconds,
    )


def test_a_put_location_becomes_the_four_tables(writer: HierarchyWriter, engine: Engine) -> None:
    assert writer.apply([put(two_evses(), 1)]) == 1
    rows = dump(engine)
    [state] = rows["location_states"]
    assert state["location_key"] == KEY
    assert state["positions_json"] == {"ocpi_locations_v1@0": 1}
    [building] = rows["buildings"]
    assert (building["location_id"], building["city"], building["last_updated"]) == (
        "Loc1",
        "Utrecht",
        naive(0),
    )
    assert [s["space_key"] for s in rows["spaces"]] == [f"{KEY}|1|A1", f"{KEY}|UNASSIGNED"]
    assert [(c["evse_key"], c["evse_uid"], c["status"]) for c in rows["evses"]] == [
        (f"{KEY}/E1", "E1", "AVAILABLE"),
        (f"{KEY}/E2", "e2", "AVAILABLE"),
    ]
    assert rows["evses"][1]["capabilities"] == ["RFID_READER"]
    assert [c["connector_key"] for c in rows["connectors"]] == [
        f"{KEY}/E1/1",
        f"{KEY}/E1/2",
        f"{KEY}/E2/1",
    ]


def test_an_evse_patch_changes_its_row_and_bumps_the_building(
    writer: HierarchyWriter, engine: Engine
) -> None:
    writer.apply([put(two_evses(), 1)])
    before = views(engine)
    writer.apply([patch_evse("E1", {"status": "BLOCKED", "physical_reference": "B7"}, 30, 2)])
    after = views(engine)
    e1 = next(c for c in after["evses"] if c["evse_uid"] == "E1")
    assert (e1["status"], e1["space_key"], e1["last_updated"]) == (
        "BLOCKED",
        f"{KEY}|1|B7",
        naive(30),
    )
    assert after["buildings"][0]["last_updated"] == naive(30)
    assert [s["space_key"] for s in after["spaces"]] == [f"{KEY}|1|B7", f"{KEY}|UNASSIGNED"]
    # The other EVSE and the connectors are as they were.
    assert after["evses"][1] == before["evses"][1]
    assert after["connectors"] == before["connectors"]


def test_a_stale_patch_changes_no_view_row(writer: HierarchyWriter, engine: Engine) -> None:
    writer.apply([put(two_evses(seconds=100), 1)])
    before = dump(engine)
    assert writer.apply([patch_evse("E1", {"status": "OUTOFORDER"}, 50, 2)]) == 1
    after = dump(engine)
    assert views(engine) == {k: v for k, v in before.items() if k != "location_states"}
    # Recorded as seen (the position moved), not applied.
    assert after["location_states"][0]["state_json"] == before["location_states"][0]["state_json"]
    assert after["location_states"][0]["positions_json"] == {"ocpi_locations_v1@0": 2}


def test_a_resolved_status_changes_the_evse_row(writer: HierarchyWriter, engine: Engine) -> None:
    writer.apply([put(two_evses(), 1)])
    writer.apply([resolved("e1", S.CHARGING, 20, 7)])  # uid compared as a CiString
    rows = views(engine)
    e1 = next(c for c in rows["evses"] if c["evse_uid"] == "E1")
    assert (e1["status"], e1["last_updated"]) == ("CHARGING", naive(20))
    assert rows["buildings"][0]["last_updated"] == naive(20)
    writer.apply([resolved("E1", S.AVAILABLE, 10, 8)])  # older than what is shown
    assert views(engine) == rows


def test_statuses_before_the_location_keep_state_but_show_no_building(
    writer: HierarchyWriter, engine: Engine
) -> None:
    writer.apply([resolved("E1", S.CHARGING, 5, 0)])
    rows = dump(engine)
    assert [s["location_key"] for s in rows["location_states"]] == [KEY]
    assert rows["buildings"] == rows["evses"] == []
    writer.apply([put(two_evses(), 0)])
    e1 = next(c for c in views(engine)["evses"] if c["evse_uid"] == "E1")
    assert e1["status"] == "CHARGING"


def test_redelivery_and_older_batches_change_nothing(
    writer: HierarchyWriter, engine: Engine
) -> None:
    batch = [
        put(two_evses(), 1),
        resolved("E1", S.CHARGING, 10, 3),
        patch_evse("e2", {"status": "BLOCKED"}, 11, 2),
        put(location(evse("X"), location_id="Loc2"), 4),
    ]
    assert writer.apply(batch) == 2
    before = dump(engine)
    assert writer.apply(batch) == 0
    assert writer.apply(batch[:2]) == 0
    assert writer.apply(list(reversed(batch))) == 0
    assert writer.apply([Record("ocpi.partners.v1", 0, 9, object())]) == 0  # not ours
    assert dump(engine) == before


def test_a_second_writer_replaying_the_log_builds_equal_rows(
    writer: HierarchyWriter, engine: Engine, namespace: Namespace
) -> None:
    log = [
        put(two_evses(), 0),
        patch_evse("E1", {"status": "BLOCKED"}, 30, 1),
        put(location(evse("X"), location_id="Loc2"), 2),
        patch_evse("E1", {"status": "AVAILABLE"}, 20, 3),  # stale
        resolved("E2", S.CHARGING, 40, 0),
        resolved("X", S.OUTOFORDER, 45, 1, location_id="Loc2"),
    ]
    for start in range(0, len(log), 2):  # live: small batches
        writer.apply(log[start : start + 2])
    other_db = f"{namespace.name}_hier"
    create_mysql_database(namespace.settings, other_db)
    other = mysql_engine(namespace.settings, database=other_db)
    try:
        migrate(other)
        HierarchyWriter(other).apply(log)  # replay: one batch
        assert dump(other) == dump(engine)
    finally:
        other.dispose()
        drop_mysql_database(namespace.settings, other_db)


def test_concurrent_writers_do_not_go_back_in_time(writer: HierarchyWriter, engine: Engine) -> None:
    statuses = [S.AVAILABLE, S.CHARGING, S.BLOCKED, S.OUTOFORDER, S.RESERVED]
    log = [put(two_evses(), 0)] + [
        resolved("E1", status, 10 + i, i) for i, status in enumerate(statuses * 4)
    ]
    writer.apply(log[:1])
    errors: list[BaseException] = []

    def run(batches: list[list[Record[object]]]) -> None:
        try:
            w = HierarchyWriter(engine)
            for batch in batches:
                w.apply(batch)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    # Each writer delivers in log order, as a consumer does; they overlap
    # like a live consumer and a zombie re-delivering from further back.
    small = [log[i : i + 3] for i in range(1, len(log), 3)]
    large = [log[i : i + 7] for i in range(1, len(log), 7)]
    threads = [threading.Thread(target=run, args=(b,)) for b in (small, [log], large, small)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = dump(engine)
    e1 = next(c for c in rows["evses"] if c["evse_uid"] == "E1")
    assert e1["status"] == statuses[-1].value
    assert rows["location_states"][0]["positions_json"]["ocpi_evse-status_v1@0"] == len(log) - 2


# ------------------------------------------------------------------ reads


def fleet(writer: HierarchyWriter) -> None:
    writer.apply(
        [
            put(two_evses(), 0),
            put(location(evse("A"), evse("B"), evse("C"), location_id="Loc2", city="Delft"), 1),
            resolved("E1", S.CHARGING, 5, 0),
            resolved("B", S.CHARGING, 5, 1, location_id="Loc2"),
            resolved("C", S.OUTOFORDER, 5, 2, location_id="Loc2"),
        ]
    )


def test_ops_evses_filter_and_page(writer: HierarchyWriter, engine: Engine) -> None:
    fleet(writer)
    ops = OpsQuery(engine)
    everything = ops.evses(limit=100)
    assert [c["evse_key"] for c in everything.items] == [
        f"{KEY}/E1",
        f"{KEY}/E2",
        "NL/ABC/LOC2/A",
        "NL/ABC/LOC2/B",
        "NL/ABC/LOC2/C",
    ]
    assert everything.next_after is None
    first = everything.items[0]
    assert first["site"] == {"location_key": KEY, "name": "Garage Noord", "city": "Utrecht"}
    assert first["space"]["physical_reference"] == "A1"
    assert [c["connector_id"] for c in first["connectors"]] == ["1", "2"]
    assert (first["status"], first["status_last_updated"]) == ("CHARGING", "2026-03-01T08:00:05Z")
    charging = ops.evses(status="CHARGING")
    assert [c["evse_uid"] for c in charging.items] == ["E1", "B"]
    # Owner filters compare as CiStrings.
    at_loc2 = ops.evses(location_id="loc2", country_code="nl", party_id="abc")
    assert [c["evse_uid"] for c in at_loc2.items] == ["A", "B", "C"]
    assert ops.evses(party_id="XYZ").items == []
    seen: list[str] = []
    after = None
    while True:
        page = ops.evses(limit=2, after=after)
        seen += [c["evse_key"] for c in page.items]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == [c["evse_key"] for c in everything.items]


def test_ops_sites_count_evses_by_status(writer: HierarchyWriter, engine: Engine) -> None:
    fleet(writer)
    writer.apply([resolved("Q", S.CHARGING, 5, 9, location_id="Loc3")])  # no building
    ops = OpsQuery(engine)
    page = ops.sites()
    assert [(s["location_key"], s["city"], s["evses"]) for s in page.items] == [
        (KEY, "Utrecht", {"total": 2, "by_status": {"AVAILABLE": 1, "CHARGING": 1}}),
        (
            "NL/ABC/LOC2",
            "Delft",
            {"total": 3, "by_status": {"AVAILABLE": 1, "CHARGING": 1, "OUTOFORDER": 1}},
        ),
    ]
    assert page.items[0]["coordinates"] == {"latitude": "52.0894440", "longitude": "5.1102780"}
    one = ops.sites(limit=1)
    assert one.next_after == KEY
    assert [s["location_key"] for s in ops.sites(after=one.next_after).items] == ["NL/ABC/LOC2"]


def test_ops_api_answers_in_an_envelope_with_a_next_cursor(
    writer: HierarchyWriter, engine: Engine
) -> None:
    fleet(writer)
    app = FastAPI()
    app.include_router(evses_api.router)
    app.include_router(sites_api.router)
    app.state.container = SimpleNamespace(ops=OpsQuery(engine))
    as_admin(app)
    with TestClient(app) as client:
        resp = client.get("/ops/evses", params={"location_id": "LOC2", "limit": 2})
        assert resp.status_code == 200
        body = resp.json()
        assert body["status_code"] == 1000 and body["timestamp"].endswith("Z")
        assert [c["evse_uid"] for c in body["data"]] == ["A", "B"]
        for field in ("evse_key", "country_code", "party_id", "location_id", "status"):
            assert field in body["data"][0]
        assert resp.headers[evses_api.NEXT_AFTER] == "NL/ABC/LOC2/B"
        rest = client.get(
            "/ops/evses",
            params={"location_id": "LOC2", "after": resp.headers[evses_api.NEXT_AFTER]},
        )
        assert [c["evse_uid"] for c in rest.json()["data"]] == ["C"]
        assert evses_api.NEXT_AFTER not in rest.headers
        sites = client.get("/ops/sites", params={"country_code": "NL"}).json()["data"]
        assert [s["location_id"] for s in sites] == ["Loc1", "Loc2"]
        assert client.get("/ops/evses", params={"status": "NOPE"}).status_code != 200
