"""Every version of our tariffs and locations, by when we recorded it
(docs/adr/0016).

The tariffs and locations views hold only the current version; a CDR is
"sealed" with the Location, EVSE and Tariffs as they were at the start of
the session (mod_cdrs, CDR object). These views keep each event of
``ocpi.tariffs.v1`` (``tariff_history``) and each PUT and PATCH of
``ocpi.locations.v1`` (``location_history``) as it was recorded, in chunks
(``projections.mongo.chunks``, docs/adr/0049): per batch, one document per
tariff or location, its ``key`` the aggregate key, each entry

    {offset: <int>, recorded_at: <date>, event: "<JSON>"}

``as_of(..., at)`` folds the entries of one aggregate recorded at or before
``at`` with the slice's own fold, as the current view and the write path do
(``producers.tariffs.evolve``: stale writes ignored, deletions leave a
tombstone; ``producers.locations.evolve``), so "as of an instant" follows
the same rules as "now". A re-delivered batch changes nothing a reader
sees (see chunks). Both are rebuilt by replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.collection import Collection
from pymongo.database import Database

from producers import tariffs
from producers.locations import LocationState, evolve
from projections.mongo import chunks
from projections.mongo.folding import Doc
from projections.position import Record
from schemas.events import (
    EventMeta,
    LocationObjectPatched,
    LocationObjectPut,
    TariffDeleted,
    TariffPut,
    parse_event,
    serialize_event,
)
from schemas.events.locations import location_key
from schemas.events.tariffs import tariff_key

TARIFF_HISTORY = "tariff_history"
LOCATION_HISTORY = "location_history"


def history_chunks(records: Sequence[Record[Any]], types: tuple[type[EventMeta], ...]) -> list[Doc]:
    """The chunks of one batch: an entry per record whose event is one of
    ``types``, holding the event's JSON as the log has it."""
    return chunks.chunks(
        (
            r.event.aggregate_key,
            r,
            {
                "recorded_at": r.event.recorded_at,
                "event": (r.raw or serialize_event(r.event)).decode(),
            },
        )
        for r in records
        if isinstance(r.event, types)
    )


class HistoryWriter:
    def __init__(
        self, name: str, collection: Collection[Doc], types: tuple[type[EventMeta], ...]
    ) -> None:
        self.name = name
        self.event_types = types
        self._coll = collection

    def prepare(self) -> None:
        # An entry per document, as held before chunks: the group is its key.
        chunks.prepare(
            self._coll,
            lambda old: str(old["key"]),
            lambda old: {"recorded_at": old["recorded_at"], "event": old["event"]},
        )

    def wipe(self) -> None:
        self._coll.delete_many({})

    def apply(self, records: Sequence[Record[object]]) -> int:
        """Write a chunk per aggregate of the batch (see chunks.write)."""
        return chunks.write(self._coll, history_chunks(records, self.event_types))


class TariffHistoryWriter(HistoryWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__("mongo.tariff_history", db[TARIFF_HISTORY], (TariffPut, TariffDeleted))


class LocationHistoryWriter(HistoryWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__(
            "mongo.location_history",
            db[LOCATION_HISTORY],
            (LocationObjectPut, LocationObjectPatched),
        )


async def _events(
    coll: AsyncCollection[Doc], key: str, at: datetime | None = None
) -> list[EventMeta]:
    """The events of one aggregate in log order; with ``at``, those
    recorded at or before it."""
    filt: Doc = {"key": key} if at is None else {"key": key, "since": {"$lte": at}}
    found = chunks.entries([chunk async for chunk in coll.find(filt)])
    return [
        parse_event(entry["event"])
        for entry in found
        if at is None or chunks.utc(entry["recorded_at"]) <= at
    ]


class TariffHistoryQuery:
    """What the CDR builder reads (processors/cdr_builder.py), on the
    processors' async client (the writers above stay sync)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll: AsyncCollection[Doc] = db[TARIFF_HISTORY]

    async def as_of(
        self, country_code: str, party_id: str, tariff_id: str, at: datetime
    ) -> Doc | None:
        """The tariff (OCPI JSON) we held at ``at``: None if we held none
        (not published by then, or deleted)."""
        key = tariff_key(country_code, party_id, tariff_id)
        state: tariffs.TariffState | None = None
        for event in await _events(self._coll, key, at):
            state = tariffs.evolve(state, event)
        return tariffs.served(state)


class LocationHistoryQuery:
    """What the CDR builder reads, on the processors' async client."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll: AsyncCollection[Doc] = db[LOCATION_HISTORY]

    async def as_of(
        self, country_code: str, party_id: str, location_id: str, at: datetime
    ) -> Doc | None:
        """The Location (OCPI JSON, as its owner asserted it) we held at
        ``at``. When we recorded nothing at or before ``at`` (a charger clock
        ahead of ours, a session older than our records), the first version
        we recorded after it; None when we never held the location."""
        key = location_key(country_code, party_id, location_id)
        state = LocationState()
        for event in await _events(self._coll, key, at):
            state = evolve(state, event)
        if state.asserted is not None:
            return state.asserted
        for event in await _events(self._coll, key):
            state = evolve(state, event)
            if state.asserted is not None:
                return state.asserted
        return None

    async def recent(
        self, country_code: str, party_id: str, location_id: str, *, limit: int
    ) -> list[LocationObjectPut | LocationObjectPatched]:
        """The newest ``limit`` PUTs and PATCHes of a location, oldest first
        (the dashboard's status history)."""
        key = location_key(country_code, party_id, location_id)
        newest = await chunks.newest(self._coll, key, limit)
        events = [parse_event(entry["event"]) for entry in newest]
        return [e for e in events if isinstance(e, LocationObjectPut | LocationObjectPatched)]
