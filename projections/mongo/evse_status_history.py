"""Each EVSE's resolved statuses, newest kept (docs/adr/0038): the
dashboard's status history of a location shows what our chargers made of
an EVSE beside what its owner stated (``location_history``).

One document per ``EvseStatusResolved`` of ``ocpi.evse-status.v1``, its id
the Kafka position, so a re-delivered event finds its document there and
changes nothing:

    {_id: "<evse key>|<topic@partition>|<offset>", key: "<evse key>",
     location: "<location key>", evse_uid, partition, offset, status,
     reported_status, last_updated, recorded_at, signal, party: "NL-ABC"}

``signal`` is who caused the resolution: ``charger`` (the event's
``cause``), else ``owner`` (``object`` or ``status``), None for events
resolved before ``cause`` existed; ``party`` is the event's source. An EVSE keeps
its newest ``KEPT_PER_EVSE`` entries: after each batch the older ones of
the EVSEs it touched are deleted. A location's key decides its partition,
so an EVSE's entries are ordered by offset alone, and a re-delivered old
event that was pruned before is pruned again in the same batch. Replay
rebuilds the same documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from projections.mongo.folding import Doc
from projections.position import Record
from schemas.events import EvseStatusResolved
from schemas.events.locations import location_key

COLLECTION = "evse_status_history"
# Entries kept per EVSE: the page shows fewer; a deeper past is in the log.
KEPT_PER_EVSE = 200
_DUPLICATE_KEY = 11000


def history_entry(record: Record[Any]) -> Doc | None:
    """The entry of one record; None unless it is a resolved status."""
    event = record.event
    if not isinstance(event, EvseStatusResolved):
        return None
    p = event.payload
    return {
        "_id": f"{p.evse_key}|{record.position_field}|{record.offset}",
        "key": p.evse_key,
        "location": p.location_key,
        "evse_uid": p.evse_uid,
        "partition": record.partition,
        "offset": record.offset,
        "status": p.status.value,
        "reported_status": p.reported_status.value if p.reported_status else None,
        "last_updated": p.last_updated,
        "recorded_at": event.recorded_at,
        "signal": None if p.cause is None else "charger" if p.cause == "charger" else "owner",
        "party": f"{event.source.country_code}-{event.source.party_id}",
    }


class EvseStatusHistoryWriter:
    name = "mongo.evse_status_history"

    def __init__(self, db: Database[Doc], *, kept: int = KEPT_PER_EVSE) -> None:
        self._coll: Collection[Doc] = db[COLLECTION]
        self._kept = kept

    def prepare(self) -> None:
        self._coll.create_index([("key", ASCENDING), ("offset", DESCENDING)])
        self._coll.create_index([("location", ASCENDING), ("offset", DESCENDING)])

    def wipe(self) -> None:
        self._coll.delete_many({})

    def apply(self, records: Sequence[Record[object]]) -> int:
        """Insert one entry per resolved status (an existing one, i.e. a
        re-delivery, is refused as a duplicate id and left as it is), then
        prune the EVSEs touched. The count is of entries inserted, pruned
        ones included."""
        docs = [d for r in records if (d := history_entry(r)) is not None]
        if not docs:
            return 0
        written = len(docs)
        try:
            self._coll.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
            written -= len(errors)
        for key in {d["key"] for d in docs}:
            self._prune(key)
        return written

    def _prune(self, key: str) -> None:
        """Delete the entries of one EVSE beyond its newest ``kept``."""
        oldest_kept = (
            self._coll.find({"key": key}, {"offset": 1})
            .sort("offset", DESCENDING)
            .skip(self._kept - 1)
            .limit(1)
        )
        for doc in oldest_kept:
            self._coll.delete_many({"key": key, "offset": {"$lt": doc["offset"]}})


class EvseStatusHistoryQuery:
    """What the location page reads, on the API's async client."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll: AsyncCollection[Doc] = db[COLLECTION]

    async def recent(
        self, country_code: str, party_id: str, location_id: str, *, limit: int
    ) -> list[Doc]:
        """The newest ``limit`` resolved statuses of a location's EVSEs,
        newest first."""
        found = (
            self._coll.find({"location": location_key(country_code, party_id, location_id)})
            .sort("offset", DESCENDING)
            .limit(limit)
        )
        return [doc async for doc in found]
