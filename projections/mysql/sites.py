"""The MySQL operational hierarchy (building → space → EVSE → connector),
kept by folding each location's events, and the ops reads over it.

``HierarchyWriter`` handles a batch in one transaction:

1. group the records by location key (the Kafka key of both topics);
2. lock the batch's ``location_states`` rows, creating the missing ones, in
   key order (``INSERT ... ON DUPLICATE KEY UPDATE`` takes the row lock; a
   concurrent writer on the same locations waits for our commit and then
   reads what we wrote). READ COMMITTED: the locking reads see the newest
   rows anyway, and it spares the gap locks that would make writers of
   unrelated locations wait on (or deadlock with) each other;
3. fold each location's records into its state, skipping those at or below
   the stored position (projections/position.py);
4. for each location whose state changed, compare the rows
   ``hierarchy.hierarchy_rows`` gives for the location served before and
   after: rows that differ or are new are upserted, rows that are gone are
   deleted (a status change rewrites one EVSE row and the building's
   ``last_updated``, not the location's every row); store the new state and
   positions.

So a re-delivered batch changes nothing, and a concurrent or zombie writer
can neither interleave with us nor take a location back in time: it folds
from the state we committed. Every step is a fixed number of multi-row
statements per batch (``INSERT ... ON DUPLICATE KEY UPDATE``, ``DELETE ...
IN``), not a statement per record.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select
from sqlalchemy.dialects.mysql import insert

from producers.locations import LocationState, served
from projections.location_folds import LocationFold, LocationFolds, fold_location
from projections.mysql.batches import apply_grouped, upsert
from projections.mysql.hierarchy import HierarchyRows, hierarchy_rows
from projections.mysql.models import (
    HIERARCHY,
    buildings,
    connectors,
    evses,
    location_states,
    spaces,
)
from projections.position import Record
from schemas.events import EvseStatusResolved, LocationObjectPatched, LocationObjectPut
from schemas.ocpi.common import format_ocpi_datetime

Row = dict[str, Any]

_FOLDED = (LocationObjectPut, LocationObjectPatched, EvseStatusResolved)


def _location_key(record: Record[object]) -> str | None:
    event = record.event
    if isinstance(event, _FOLDED):
        key: str = event.payload.location_key
        return key
    return None


def fold_records(
    state_json: dict[str, Any] | None,
    positions: dict[str, int],
    records: Sequence[Record[object]],
) -> LocationFold:
    """Fold one location's records (in log order) into its stored state."""
    return fold_location(state_json, positions, records)


class HierarchyWriter:
    """``folds``: shared with the MongoDB location view writer of the same
    process (projections/location_folds.py). The rows it wrote last for a
    location (``cache_size`` locations) stand in for deriving the rows held
    from the stored state, when that state's positions are the ones they were
    written with."""

    name = "mysql.hierarchy"
    event_types = _FOLDED

    def __init__(
        self, engine: Engine, *, folds: LocationFolds | None = None, cache_size: int = 10_000
    ) -> None:
        self._engine = engine
        self._folds = folds
        self._rows: OrderedDict[str, tuple[dict[str, int], HierarchyRows]] = OrderedDict()
        self._cache_size = cache_size

    def prepare(self) -> None:
        """The tables come from the Alembic migrations."""

    def wipe(self) -> None:
        self._rows.clear()
        with self._engine.begin() as conn:
            for table in (*HIERARCHY, location_states):
                conn.execute(delete(table))

    def apply(self, records: Sequence[Record[object]]) -> int:
        written: list[tuple[str, dict[str, int], HierarchyRows]] = []

        def work(conn: Connection, by_key: dict[str, list[Record[object]]]) -> int:
            written.clear()
            return self._apply(conn, by_key, records, written)

        try:
            count = apply_grouped(self._engine, self.name, records, _location_key, work)
        except BaseException:
            self._rows.clear()
            raise
        for key, positions, rows in written:
            self._rows[key] = (positions, rows)
            self._rows.move_to_end(key)
        while len(self._rows) > self._cache_size:
            self._rows.popitem(last=False)
        return count

    def _held(self, key: str, row: Any) -> HierarchyRows:
        """The rows the stored state gives (this writer is their only writer)."""
        cached = self._rows.get(key)
        if cached is not None and cached[0] == (row.positions_json or {}):
            return cached[1]
        return hierarchy_rows(key, served(LocationState.from_json(row.state_json)))

    def _apply(
        self,
        conn: Connection,
        by_key: dict[str, list[Record[object]]],
        batch: Sequence[Record[object]],
        written: list[tuple[str, dict[str, int], HierarchyRows]],
    ) -> int:
        keys = sorted(by_key)
        # Create the missing state rows and lock all of them, in key order.
        claim = insert(location_states)
        conn.execute(
            claim.on_duplicate_key_update(location_key=claim.inserted.location_key),
            [{"location_key": k, "state_json": None, "positions_json": {}} for k in keys],
        )
        stored = {
            row.location_key: row
            for row in conn.execute(
                select(location_states)
                .where(location_states.c.location_key.in_(keys))
                .with_for_update()
            )
        }
        state_rows: list[Row] = []
        changes = RowChanges()
        for key in keys:
            row = stored[key]
            positions = row.positions_json or {}
            if self._folds is not None:
                folded = self._folds.fold(batch, key, row.state_json, positions, by_key[key])
            else:
                folded = fold_records(row.state_json, positions, by_key[key])
            if not folded.applied:
                continue
            state_rows.append(
                {
                    "location_key": key,
                    "state_json": folded.state.to_json(),
                    "positions_json": folded.positions,
                }
            )
            if folded.state_changed:
                # Only what differs from the rows held is sent.
                after = hierarchy_rows(key, folded.served)
                changes.add(self._held(key, row), after)
                written.append((key, folded.positions, after))
            elif (cached := self._rows.get(key)) is not None and cached[0] == positions:
                written.append((key, folded.positions, cached[1]))  # still the rows held
        changes.write(conn)
        upsert(conn, location_states, state_rows)
        return len(state_rows)


_TABLES = {"buildings": buildings, "spaces": spaces, "evses": evses, "connectors": connectors}


class RowChanges:
    """The derived rows to write and to remove, per table, for a batch."""

    def __init__(self) -> None:
        self.upserts: dict[str, list[Row]] = {name: [] for name in _TABLES}
        self.deletes: dict[str, list[str]] = {name: [] for name in _TABLES}

    def add(self, before: HierarchyRows, after: HierarchyRows) -> None:
        for name, table in _TABLES.items():
            [key] = table.primary_key.columns.keys()
            held = {r[key]: r for r in getattr(before, name)}
            wanted = getattr(after, name)
            self.upserts[name] += [r for r in wanted if held.get(r[key]) != r]
            kept = {r[key] for r in wanted}
            self.deletes[name] += [k for k in held if k not in kept]

    def write(self, conn: Connection) -> None:
        for name, table in _TABLES.items():
            gone = self.deletes[name]
            if gone:
                [column] = table.primary_key.columns
                for first in range(0, len(gone), _CHUNK):
                    conn.execute(delete(table).where(column.in_(gone[first : first + _CHUNK])))
            upsert(conn, table, self.upserts[name])


# Keys per DELETE ... IN statement.
_CHUNK = 1000


# --- reads ---


@dataclass(frozen=True)
class OpsPage:
    items: list[Row]
    # The key to pass as ``after`` for the next page; None on the last page.
    next_after: str | None


def _stamp(value: datetime) -> str:
    return format_ocpi_datetime(value.replace(tzinfo=UTC))


def _page(rows: list[Row], limit: int, key: str) -> tuple[list[Row], str | None]:
    """Rows were read with ``limit + 1``: the extra one says a next page exists."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, str(rows[-1][key])
    return rows, None


class OpsQuery:
    """What the ops API reads: EVSEs with their site and connectors, and
    sites with their EVSEs counted by status. Keyset pagination on the
    primary key, so every page costs the same."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def evses(
        self,
        *,
        status: str | None = None,
        country_code: str | None = None,
        party_id: str | None = None,
        location_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> OpsPage:
        """EVSEs by ``evse_key``; owner filters compare as CiStrings."""
        query = (
            select(
                evses,
                buildings.c.name.label("site_name"),
                buildings.c.city.label("site_city"),
                spaces.c.floor_level,
                spaces.c.physical_reference,
            )
            .join(buildings, buildings.c.location_key == evses.c.location_key)
            .join(spaces, spaces.c.space_key == evses.c.space_key)
            .order_by(evses.c.evse_key)
            .limit(limit + 1)
        )
        filters = {
            "status": status,
            "country_code": country_code,
            "party_id": party_id,
            "location_id": location_id,
        }
        for column, value in filters.items():
            if value is not None:
                query = query.where(evses.c[column] == value)
        if after is not None:
            query = query.where(evses.c.evse_key > after)
        with self._engine.connect() as conn:
            rows, next_after = _page(
                [dict(r._mapping) for r in conn.execute(query)], limit, "evse_key"
            )
            plugs: dict[str, list[Row]] = defaultdict(list)
            if rows:
                found = conn.execute(
                    select(connectors)
                    .where(connectors.c.evse_key.in_([r["evse_key"] for r in rows]))
                    .order_by(connectors.c.connector_key)
                )
                for c in found:
                    plugs[c.evse_key].append(_connector(dict(c._mapping)))
        return OpsPage([_evse(r, plugs[r["evse_key"]]) for r in rows], next_after)

    def status_counts(self) -> dict[str, int]:
        """How many EVSEs are in each status (the dashboard's chart)."""
        query = select(evses.c.status, func.count()).group_by(evses.c.status)
        with self._engine.connect() as conn:
            return {str(status): int(n) for status, n in conn.execute(query)}

    def sites(
        self,
        *,
        country_code: str | None = None,
        party_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> OpsPage:
        """Buildings by ``location_key``, each with its EVSEs per status."""
        query = select(buildings).order_by(buildings.c.location_key).limit(limit + 1)
        if country_code is not None:
            query = query.where(buildings.c.country_code == country_code)
        if party_id is not None:
            query = query.where(buildings.c.party_id == party_id)
        if after is not None:
            query = query.where(buildings.c.location_key > after)
        with self._engine.connect() as conn:
            rows, next_after = _page(
                [dict(r._mapping) for r in conn.execute(query)], limit, "location_key"
            )
            counts: dict[str, dict[str, int]] = defaultdict(dict)
            if rows:
                found = conn.execute(
                    select(evses.c.location_key, evses.c.status, func.count())
                    .where(evses.c.location_key.in_([r["location_key"] for r in rows]))
                    .group_by(evses.c.location_key, evses.c.status)
                )
                for key, status, n in found:
                    counts[key][status] = n
        return OpsPage([_site(r, counts[r["location_key"]]) for r in rows], next_after)


def _evse(row: Row, plugs: list[Row]) -> Row:
    return {
        "evse_key": row["evse_key"],
        "country_code": row["country_code"],
        "party_id": row["party_id"],
        "location_id": row["location_id"],
        "evse_uid": row["evse_uid"],
        "evse_id": row["evse_id"],
        "status": row["status"],
        # The EVSE's last_updated: every status change moves it.
        "status_last_updated": _stamp(row["last_updated"]),
        "last_updated": _stamp(row["last_updated"]),
        "capabilities": row["capabilities"],
        "parking_restrictions": row["parking_restrictions"],
        "site": {
            "location_key": row["location_key"],
            "name": row["site_name"],
            "city": row["site_city"],
        },
        "space": {
            "space_key": row["space_key"],
            "floor_level": row["floor_level"],
            "physical_reference": row["physical_reference"],
        },
        "connectors": plugs,
    }


def _connector(row: Row) -> Row:
    return {
        "connector_id": row["connector_id"],
        "standard": row["standard"],
        "format": row["format"],
        "power_type": row["power_type"],
        "max_voltage": row["max_voltage"],
        "max_amperage": row["max_amperage"],
        "max_electric_power": row["max_electric_power"],
        "last_updated": _stamp(row["last_updated"]),
    }


def _site(row: Row, by_status: dict[str, int]) -> Row:
    return {
        "location_key": row["location_key"],
        "country_code": row["country_code"],
        "party_id": row["party_id"],
        "location_id": row["location_id"],
        "name": row["name"],
        "address": row["address"],
        "city": row["city"],
        "postal_code": row["postal_code"],
        "country": row["country"],
        "coordinates": {"latitude": str(row["latitude"]), "longitude": str(row["longitude"])},
        "time_zone": row["time_zone"],
        "publish": bool(row["publish"]),
        "last_updated": _stamp(row["last_updated"]),
        "evses": {
            "total": sum(by_status.values()),
            "by_status": dict(sorted(by_status.items())),
        },
    }
