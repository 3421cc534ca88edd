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
at least its newest ``KEPT_PER_EVSE`` entries. Older ones are deleted
lazily: an EVSE is pruned the first time this process writes to it and
then once every ``PRUNE_EVERY`` entries, so it holds up to
``KEPT_PER_EVSE + PRUNE_EVERY`` between prunes. Pruning after every batch
cost the document store a sorted read and a delete per EVSE per batch,
about a fifth of its work under a stream of status changes. When the
collection was empty as this process prepared or wiped it (a first start,
a replay), an EVSE holds only what this process wrote and is not pruned at
first sight (that cost a replay a sorted read per EVSE, for nothing to
delete); if a second projections consumer wrote to an EVSE before its
partition moved here, it may then hold one more interval before its next
prune. Readers ask for
the newest few, and a replay is compared on the newest ``KEPT_PER_EVSE``
(ocpi_hub/compare.py), so what is not yet pruned is never seen. A
location's key decides its partition, so an EVSE's entries are ordered by
offset alone. Replay rebuilds the same newest entries.
"""

from __future__ import annotations

from collections import Counter
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
# Entries an EVSE may gain beyond KEPT_PER_EVSE before it is pruned again.
PRUNE_EVERY = 50
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

    def __init__(
        self, db: Database[Doc], *, kept: int = KEPT_PER_EVSE, prune_every: int = PRUNE_EVERY
    ) -> None:
        self._coll: Collection[Doc] = db[COLLECTION]
        self._kept = kept
        self._prune_every = prune_every
        # Entries written per EVSE since this process last pruned it.
        self._since_prune: dict[str, int] = {}
        # Whether the collection was empty when this process prepared or
        # wiped it: then no EVSE holds entries this process did not count.
        self._started_empty = False

    def prepare(self) -> None:
        self._coll.create_index([("key", ASCENDING), ("offset", DESCENDING)])
        self._coll.create_index([("location", ASCENDING), ("offset", DESCENDING)])
        self._started_empty = self._coll.find_one({}, {"_id": 1}) is None

    def wipe(self) -> None:
        self._coll.delete_many({})
        self._since_prune.clear()
        self._started_empty = True

    def apply(self, records: Sequence[Record[object]]) -> int:
        """Insert one entry per resolved status (an existing one, i.e. a
        re-delivery, is refused as a duplicate id and left as it is), then
        prune the EVSEs that are due. The count is of entries inserted,
        pruned ones included."""
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
        for key, added in Counter(d["key"] for d in docs).items():
            if self._due(key, added):
                self._prune(key)
        return written

    def _due(self, key: str, added: int) -> bool:
        """Whether ``key`` is to be pruned now, counting ``added`` entries.
        An EVSE not seen since this process started is due at once (what an
        earlier process left unpruned is bounded by one interval), unless
        the collection started empty."""
        seen = self._since_prune.get(key)
        first_sight = seen is None and not self._started_empty
        total = (seen or 0) + added
        if first_sight or total >= self._prune_every:
            self._since_prune[key] = 0
            return True
        self._since_prune[key] = total
        return False

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
