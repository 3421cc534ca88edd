"""MongoDB view of the audit trail: one document per event an operator's
write recorded (an event whose envelope names an ``actor``, docs/adr/0031),
whatever its topic:

    {_id: "<event_id>", actor: "api_key:k1x...", actor_kind: "api_key",
     actor_id: "k1x...", topic: "ocpi.locations.v1", event_type:
     "LocationObjectPut", aggregate_key: "ZZ/HUB/LOC-1", correlation_id,
     recorded_at, _ts: "2026-12-06T12:00:00.000000Z", position: "topic/0/42"}

An event is written once under its id (a replace of the same content), so
re-delivery and replays leave the view as it was. ``GET /ops/audit`` reads
it newest first, keyset-paginated by ``(_ts, _id)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import DESCENDING, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from projections.position import Record
from schemas.events import EventMeta
from schemas.ocpi.common import sort_stamp

Doc = dict[str, Any]

COLLECTION = "audit"
_NEWEST_FIRST = [("_ts", DESCENDING), ("_id", DESCENDING)]


def entry(record: Record[Any]) -> Doc | None:
    """The audit entry of one record; None for an event no operator asked for."""
    event = record.event
    if not isinstance(event, EventMeta) or event.actor is None:
        return None
    return {
        "_id": str(event.event_id),
        "actor": str(event.actor),
        "actor_kind": event.actor.kind,
        "actor_id": event.actor.id,
        "topic": record.topic,
        "event_type": getattr(event, "event_type", type(event).__name__),
        "aggregate_key": event.aggregate_key,
        "correlation_id": event.correlation_id,
        "recorded_at": event.recorded_at,
        "_ts": sort_stamp(event.recorded_at),
        "position": f"{record.topic}/{record.partition}/{record.offset}",
    }


class AuditViewWriter:
    name = f"mongo.{COLLECTION}"

    def __init__(self, db: Database[Doc]) -> None:
        self._coll = db[COLLECTION]

    def prepare(self) -> None:
        self._coll.create_index(_NEWEST_FIRST)
        for field in ("actor", "topic", "event_type"):
            self._coll.create_index([(field, DESCENDING), *_NEWEST_FIRST])

    def wipe(self) -> None:
        self._coll.delete_many({})

    def apply(self, records: Sequence[Record[object]]) -> int:
        ops = [
            ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for r in records if (doc := entry(r))
        ]
        if ops:
            self._coll.bulk_write(ops, ordered=False)
        return len(ops)


@dataclass(frozen=True)
class AuditPage:
    items: list[Doc]
    # Pass as ``after`` for the next page; None on the last page.
    next_after: str | None


_SEP = "|"


class AuditQuery:
    """What ``GET /ops/audit`` reads, on the API's async client."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll: AsyncCollection[Doc] = db[COLLECTION]

    async def page(
        self,
        *,
        actor: str | None = None,
        topic: str | None = None,
        event_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> AuditPage:
        """Newest first; ``since`` inclusive, ``until`` exclusive (recorded_at)."""
        clauses: list[Doc] = []
        for field, value in (("actor", actor), ("topic", topic), ("event_type", event_type)):
            if value is not None:
                clauses.append({field: value})
        window: Doc = {}
        if since is not None:
            window["$gte"] = sort_stamp(since)
        if until is not None:
            window["$lt"] = sort_stamp(until)
        if window:
            clauses.append({"_ts": window})
        if after:
            ts, _, key = after.partition(_SEP)
            clauses.append({"$or": [{"_ts": {"$lt": ts}}, {"_ts": ts, "_id": {"$lt": key}}]})
        filt: Doc = {"$and": clauses} if clauses else {}
        docs = await self._coll.find(filt).sort(_NEWEST_FIRST).limit(limit + 1).to_list()
        more = len(docs) > limit
        docs = docs[:limit]
        next_after = f"{docs[-1]['_ts']}{_SEP}{docs[-1]['_id']}" if more and docs else None
        items = [
            {
                "event_id": d["_id"],
                **{k: v for k, v in d.items() if not k.startswith("_") and k != "recorded_at"},
                "recorded_at": d["recorded_at"].isoformat(),
            }
            for d in docs
        ]
        return AuditPage(items, next_after)
