"""Each location's resolved EVSE statuses, newest kept (docs/adr/0038): the
dashboard's status history of a location shows what our chargers made of
an EVSE beside what its owner stated (``location_history``).

An entry per ``EvseStatusResolved`` of ``ocpi.evse-status.v1``, kept in
chunks (``projections.mongo.chunks``, docs/adr/0049): per batch, one
document per location, its ``key`` the location key, each entry

    {offset, evse: "<evse key>", evse_uid, status, reported_status,
     last_updated, recorded_at, signal, party: "NL-ABC"}

``signal`` is who caused the resolution: ``charger`` (the event's
``cause``), else ``owner`` (``object`` or ``status``), None for events
resolved before ``cause`` existed; ``party`` is the event's source.

A location keeps at least its newest ``KEPT_PER_LOCATION`` entries; the
location page shows fewer, and a deeper past is in the log. Older chunks
are deleted lazily, whole: a location is pruned the first time this
process writes to it and then once it has gained ``PRUNE_EVERY`` entries,
so it holds up to ``KEPT_PER_LOCATION + PRUNE_EVERY`` entries and the rest
of one chunk between prunes. Pruning after every batch cost the document
store a sorted read and a delete per location per batch. When the
collection was empty as this process prepared or wiped it (a first start,
a replay), a location holds only what this process wrote and is not pruned
at first sight (that cost a replay a read per location, for nothing to
delete). A location's key decides its partition, so its entries are
ordered by offset alone. Readers ask for the newest few, and a replay is
compared on the newest ``KEPT_PER_LOCATION`` (ocpi_hub/compare.py), so what
is not yet pruned is never seen. Replay rebuilds the same newest entries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.collection import Collection
from pymongo.database import Database

from projections.mongo import chunks
from projections.mongo.folding import Doc
from projections.position import Record
from schemas.events import EvseStatusResolved
from schemas.events.locations import location_key

COLLECTION = "evse_status_history"
# Entries kept per location: the page shows 300; a deeper past is in the log.
KEPT_PER_LOCATION = 1000
# Entries a location may gain beyond KEPT_PER_LOCATION before it is pruned again.
PRUNE_EVERY = 200


_READS = (EvseStatusResolved,)


def history_entry(record: Record[Any]) -> tuple[str, Record[Any], Doc] | None:
    """The location and entry of one record; None unless it is a resolved status."""
    event = record.event
    if not isinstance(event, _READS):
        return None
    p = event.payload
    return (
        p.location_key,
        record,
        {
            "evse": p.evse_key,
            "evse_uid": p.evse_uid,
            "status": p.status.value,
            "reported_status": p.reported_status.value if p.reported_status else None,
            "last_updated": p.last_updated,
            "recorded_at": event.recorded_at,
            "signal": None if p.cause is None else "charger" if p.cause == "charger" else "owner",
            "party": f"{event.source.country_code}-{event.source.party_id}",
        },
    )


def flat(location: str, entry: Doc) -> Doc:
    """An entry as readers take it: with its location and its EVSE as ``key``."""
    shown = {k: v for k, v in entry.items() if k != "evse"}
    return {**shown, "key": entry["evse"], "location": location}


def _entry_of_flat(old: Doc) -> Doc:
    fields = ("evse_uid", "status", "reported_status", "last_updated", "recorded_at", "signal")
    return {"evse": old["key"], **{k: old.get(k) for k in fields}, "party": old.get("party")}


class EvseStatusHistoryWriter:
    name = "mongo.evse_status_history"
    event_types = _READS

    def __init__(
        self, db: Database[Doc], *, kept: int = KEPT_PER_LOCATION, prune_every: int = PRUNE_EVERY
    ) -> None:
        self._coll: Collection[Doc] = db[COLLECTION]
        self._kept = kept
        self._prune_every = prune_every
        # Entries written per location since this process last pruned it.
        self._since_prune: dict[str, int] = {}
        # Whether the collection was empty when this process prepared or
        # wiped it: then no location holds entries this process did not count.
        self._started_empty = False

    def prepare(self) -> None:
        # An entry per document, as held before chunks: keyed by its EVSE.
        chunks.prepare(self._coll, lambda old: str(old["location"]), _entry_of_flat)
        self._started_empty = self._coll.find_one({}, {"_id": 1}) is None

    def wipe(self) -> None:
        self._coll.delete_many({})
        self._since_prune.clear()
        self._started_empty = True

    def apply(self, records: Sequence[Record[object]]) -> int:
        """Write a chunk per location of the batch (see chunks.write), then
        prune the locations that are due. The count is of entries written,
        pruned ones included."""
        docs = chunks.chunks(e for r in records if (e := history_entry(r)) is not None)
        written = chunks.write(self._coll, docs)
        added_to: Counter[str] = Counter()
        for d in docs:
            added_to[d["key"]] += d["n"]
        for key, added in added_to.items():
            if self._due(key, added):
                self._prune(key)
        return written

    def _due(self, key: str, added: int) -> bool:
        """Whether location ``key`` is to be pruned now, counting ``added``
        entries. A location not seen since this process started is due at
        once (what an earlier process left unpruned is bounded by one
        interval), unless the collection started empty."""
        seen = self._since_prune.get(key)
        first_sight = seen is None and not self._started_empty
        total = (seen or 0) + added
        if first_sight or total >= self._prune_every:
            self._since_prune[key] = 0
            return True
        self._since_prune[key] = total
        return False

    def _prune(self, key: str) -> None:
        """Delete the chunks of one location wholly older than its newest
        ``kept`` entries."""
        held = 0
        for chunk in self._coll.find({"key": key}, {"n": 1, "first": 1}).sort("last", DESCENDING):
            held += chunk["n"]
            if held >= self._kept:
                self._coll.delete_many({"key": key, "last": {"$lt": chunk["first"]}})
                return


class EvseStatusHistoryQuery:
    """What the location page reads, on the API's async client."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll: AsyncCollection[Doc] = db[COLLECTION]

    async def recent(
        self, country_code: str, party_id: str, location_id: str, *, limit: int
    ) -> list[Doc]:
        """The newest ``limit`` resolved statuses of a location's EVSEs,
        newest first."""
        key = location_key(country_code, party_id, location_id)
        newest = await chunks.newest(self._coll, key, limit)
        return [flat(key, entry) for entry in reversed(newest)]
