"""Every version of our tariffs and locations, by when we recorded it
(docs/adr/0016).

The tariffs and locations views hold only the current version; a CDR is
"sealed" with the Location, EVSE and Tariffs as they were at the start of
the session (mod_cdrs, CDR object). These views keep each event of
``ocpi.tariffs.v1`` (``tariff_history``) and each PUT and PATCH of
``ocpi.locations.v1`` (``location_history``) as it was recorded, one
document per Kafka position:

    {_id: "<aggregate key>|<topic@partition>|<offset>", key: "<aggregate key>",
     partition: <int>, offset: <int>, recorded_at: <date>, event: "<JSON>"}

``as_of(..., at)`` folds the events of one aggregate recorded at or before
``at`` with the slice's own fold, as the current view and the write path do
(``producers.tariffs.evolve``: stale writes ignored, deletions leave a
tombstone; ``producers.locations.evolve``), so "as of an instant" follows
the same rules as "now". Writes are idempotent by construction: a position
is a document id, and a re-delivered event finds its document there
already. Both are rebuilt by replay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from producers import tariffs
from producers.locations import LocationState, evolve
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

_DUPLICATE_KEY = 11000

TARIFF_HISTORY = "tariff_history"
LOCATION_HISTORY = "location_history"


def history_doc(record: Record[Any], types: tuple[type[EventMeta], ...]) -> Doc | None:
    """The history entry of one record; None unless its event is one of ``types``."""
    event = record.event
    if not isinstance(event, types):
        return None
    assert isinstance(event, EventMeta)
    return {
        "_id": f"{event.aggregate_key}|{record.position_field}|{record.offset}",
        "key": event.aggregate_key,
        "partition": record.partition,
        "offset": record.offset,
        "recorded_at": event.recorded_at,
        "event": serialize_event(event).decode(),
    }


class HistoryWriter:
    def __init__(
        self, name: str, collection: Collection[Doc], types: tuple[type[EventMeta], ...]
    ) -> None:
        self.name = name
        self._coll = collection
        self._types = types

    def prepare(self) -> None:
        self._coll.create_index([("key", ASCENDING), ("recorded_at", ASCENDING)])

    def wipe(self) -> None:
        self._coll.delete_many({})

    def apply(self, records: Sequence[Record[object]]) -> int:
        """Insert one entry per record. An entry's id is its Kafka position and
        its content follows from the event there, so an entry that exists
        already (a re-delivery) is the same entry: its duplicate-key refusal
        is the idempotence, and a plain insert spares the store the upsert's
        lookup."""
        docs = [d for r in records if (d := history_doc(r, self._types)) is not None]
        if not docs:
            return 0
        try:
            self._coll.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
            return len(docs) - len(errors)
        return len(docs)


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


def _entries(coll: AsyncCollection[Doc], filt: Doc) -> AsyncIterator[Doc]:
    return coll.find(filt).sort([("partition", ASCENDING), ("offset", ASCENDING)])


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
        async for entry in _entries(self._coll, {"key": key, "recorded_at": {"$lte": at}}):
            state = tariffs.evolve(state, parse_event(entry["event"]))
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
        async for entry in _entries(self._coll, {"key": key, "recorded_at": {"$lte": at}}):
            state = evolve(state, parse_event(entry["event"]))
        if state.asserted is not None:
            return state.asserted
        async for entry in _entries(self._coll, {"key": key}):
            state = evolve(state, parse_event(entry["event"]))
            if state.asserted is not None:
                return state.asserted
        return None

    async def recent(
        self, country_code: str, party_id: str, location_id: str, *, limit: int
    ) -> list[LocationObjectPut | LocationObjectPatched]:
        """The newest ``limit`` PUTs and PATCHes of a location, oldest first
        (the dashboard's status history)."""
        key = location_key(country_code, party_id, location_id)
        found = (
            self._coll.find({"key": key})
            .sort([("recorded_at", DESCENDING), ("offset", DESCENDING)])
            .limit(limit)
        )
        newest = [parse_event(entry["event"]) async for entry in found]
        return [e for e in newest[::-1] if isinstance(e, LocationObjectPut | LocationObjectPatched)]
