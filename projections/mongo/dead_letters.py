"""MongoDB view of quarantined events: one document per dead letter (one
view's failure to apply one source event), folded from the dead-letter
topic like every other view (docs/adr/0028).

    {_id: "<view>|<topic>/<partition>/<offset>", view, source: {topic,
     partition, offset}, key, value, value_encoding, value_truncated,
     status: "QUARANTINED" | "RESOLVED", error_type, error_message,
     attempts, quarantined_at, last_attempt_at, resolved_at, outcome,
     _positions}

The unresolved ones are counted per view in ``counts`` (projections/mongo/
counts.py; view ``dead_letters``, key the view's name), so a health check
reads a handful of small documents, never the dead letters themselves.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from projections.mongo.counts import Counted
from projections.mongo.folding import Doc, FoldingWriter
from projections.position import Record, already_applied
from schemas.events import EventQuarantined, QuarantinedEventResolved

COLLECTION = "dead_letters"
QUARANTINED = "QUARANTINED"
RESOLVED = "RESOLVED"


def _key(record: Record[Any]) -> str | None:
    event = record.event
    if isinstance(event, EventQuarantined | QuarantinedEventResolved):
        return event.payload.dead_letter_id
    return None


def apply(doc: Doc | None, record: Record[Any]) -> Doc | None:
    """Fold one dead-letter event; the same object when applied before."""
    if doc is not None and already_applied(doc["_positions"], record):
        return doc
    event = record.event
    p = event.payload
    base: Doc = doc or {
        "_id": p.dead_letter_id,
        "view": p.view,
        "source": {
            "topic": p.source_topic,
            "partition": p.source_partition,
            "offset": p.source_offset,
        },
        "attempts": 0,
        "quarantined_at": event.recorded_at,
        "_positions": {},
    }
    positions = {**base["_positions"], record.position_field: record.offset}
    if isinstance(event, EventQuarantined):
        return {
            **base,
            "key": p.source_key,
            "value": p.source_value,
            "value_encoding": p.value_encoding,
            "value_truncated": p.value_truncated,
            "status": QUARANTINED,
            "error_type": p.error_type,
            "error_message": p.error_message,
            "attempts": base["attempts"] + 1,
            "last_attempt_at": event.recorded_at,
            "resolved_at": None,
            "outcome": None,
            "_positions": positions,
        }
    return {
        **base,
        "status": RESOLVED,
        "resolved_at": event.recorded_at,
        "outcome": p.outcome,
        "_positions": positions,
    }


def count_keys(doc: Doc | None) -> frozenset[str]:
    """An unresolved dead letter counts for its view."""
    if doc is None or doc.get("status") != QUARANTINED:
        return frozenset()
    return frozenset({doc["view"]})


class DeadLetterViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        counted = Counted(db, COLLECTION, count_keys)
        super().__init__(
            "mongo.dead_letters",
            db[COLLECTION],
            _key,
            apply,
            reads=(EventQuarantined, QuarantinedEventResolved),
            counted=counted,
        )

    def prepare(self) -> None:
        super().prepare()
        self._coll.create_index([("status", ASCENDING), ("view", ASCENDING), ("_id", ASCENDING)])


class DeadLetterQuery:
    def __init__(self, db: Database[Doc]) -> None:
        self._coll: Collection[Doc] = db[COLLECTION]
        self._counts = Counted(db, COLLECTION, count_keys)

    def list(
        self, *, view: str | None = None, status: str | None = QUARANTINED, limit: int = 1000
    ) -> list[Doc]:
        """Dead letters by id (view, then source position); unresolved ones
        unless ``status`` says otherwise (None: all)."""
        filt: Doc = {}
        if status is not None:
            filt["status"] = status
        if view is not None:
            filt["view"] = view
        return list(self._coll.find(filt, {"_positions": 0}).sort("_id", ASCENDING).limit(limit))

    def get(self, dead_letter_id: str) -> Doc | None:
        return self._coll.find_one({"_id": dead_letter_id}, {"_positions": 0})

    def unresolved_per_view(self) -> dict[str, int]:
        """How many dead letters are unresolved, per view (from the counters
        the projection keeps: a few small documents, whatever the number of
        dead letters). Views with none are left out."""
        totals: dict[str, int] = {}
        for counter in self._counts.counters():
            totals[counter["key"]] = totals.get(counter["key"], 0) + int(counter.get("n") or 0)
        return {view: n for view, n in sorted(totals.items()) if n}
