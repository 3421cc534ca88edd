"""Every version of every tariff, by when we recorded it (docs/adr/0016).

The tariffs view (``projections.mongo.tariffs``) holds only the current
version; a CDR must be priced with the tariff as it was when the session
started. This view keeps each event of ``ocpi.tariffs.v1`` as it was
recorded, one document per Kafka position:

    {_id: "<tariff key>|<topic@partition>|<offset>", key: "<tariff key>",
     offset: <int>, recorded_at: <date>, event: "<the event as JSON>"}

``TariffHistoryQuery.as_of(key, at)`` folds the events of one tariff
recorded at or before ``at`` with the very fold of the tariffs view
(``tariffs.apply``: stale writes ignored, deletions leave a tombstone), so
"the tariff as of an instant" follows the same rules as "the tariff now".
Writes are idempotent by construction: a position is a document id, and a
re-delivered event rewrites the same document. Rebuilt by replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReplaceOne
from pymongo.collection import Collection
from pymongo.database import Database

from projections.mongo import tariffs
from projections.mongo.folding import Doc
from projections.position import Record
from schemas.events import TariffDeleted, TariffPut, parse_event, serialize_event
from schemas.events.tariffs import tariff_key
from schemas.topics import TARIFFS

COLLECTION = "tariff_history"


def history_doc(record: Record[Any]) -> Doc | None:
    """The history entry of one record; None unless it is a tariff event."""
    event = record.event
    if not isinstance(event, TariffPut | TariffDeleted):
        return None
    return {
        "_id": f"{event.aggregate_key}|{record.position_field}|{record.offset}",
        "key": event.aggregate_key,
        "partition": record.partition,
        "offset": record.offset,
        "recorded_at": event.recorded_at,
        "event": serialize_event(event).decode(),
    }


class TariffHistoryWriter:
    name = "mongo.tariff_history"

    def __init__(self, db: Database[Doc]) -> None:
        self._coll: Collection[Doc] = db[COLLECTION]

    def prepare(self) -> None:
        self._coll.create_index([("key", ASCENDING), ("recorded_at", ASCENDING)])

    def wipe(self) -> None:
        self._coll.delete_many({})

    def apply(self, records: Sequence[Record[object]]) -> int:
        docs = [d for r in records if (d := history_doc(r)) is not None]
        if docs:
            self._coll.bulk_write(
                [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs], ordered=False
            )
        return len(docs)


class TariffHistoryQuery:
    def __init__(self, db: Database[Doc]) -> None:
        self._coll: Collection[Doc] = db[COLLECTION]

    def as_of(self, country_code: str, party_id: str, tariff_id: str, at: datetime) -> Doc | None:
        """The tariff (OCPI JSON) we held at ``at``: None if we held none
        (never published by then, or deleted)."""
        key = tariff_key(country_code, party_id, tariff_id)
        found = self._coll.find({"key": key, "recorded_at": {"$lte": at}}).sort(
            [("partition", ASCENDING), ("offset", ASCENDING)]
        )
        doc: Doc | None = None
        for entry in found:
            record = Record(
                topic=TARIFFS.name,
                partition=entry["partition"],
                offset=entry["offset"],
                event=parse_event(entry["event"]),
            )
            doc = tariffs.apply(doc, record)
        return None if doc is None else doc.get("tariff")
