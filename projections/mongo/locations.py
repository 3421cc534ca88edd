"""MongoDB view of OCPI Location objects, one document per location.

The document is the OCPI Location as we would serve it, plus ``_id`` (the
aggregate key) and ``_positions`` (the guard, see projections/position.py).
``apply`` is the pure fold; ``LocationViewWriter`` batches it into one read
and one bulk write per batch; ``LocationViewQuery`` is what the API reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import structlog
from pymongo import ASCENDING, ReplaceOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from projections.position import Record, already_applied
from schemas.events import EvseStatusResolved
from schemas.events.locations import location_key
from schemas.ocpi.common import fold, format_ocpi_datetime

log = structlog.get_logger(__name__)

COLLECTION = "locations"
_DUPLICATE_KEY = 11000
_MAX_ATTEMPTS = 5

Doc = dict[str, Any]


def apply(doc: Doc | None, record: Record[EvseStatusResolved]) -> Doc | None:
    """Fold one resolved EVSE status into a location document.

    Returns the same object when the record was applied before. A write to an
    EVSE bumps the location's ``last_updated`` (mod_locations, "a change to an
    EVSE updates the Location's last_updated").
    """
    if doc is not None and already_applied(doc["_positions"], record):
        return doc
    status = record.event.payload
    stamp = format_ocpi_datetime(status.last_updated)
    base: Doc = doc or {
        "_id": status.location_key,
        "country_code": status.country_code,
        "party_id": status.party_id,
        "id": status.location_id,
        "evses": [],
        "last_updated": stamp,
        "_positions": {},
    }
    evses = [dict(e) for e in base["evses"]]
    for evse in evses:
        if fold(evse["uid"]) == fold(status.evse_uid):
            evse.update(status=status.status.value, last_updated=stamp)
            break
    else:
        evses.append({"uid": status.evse_uid, "status": status.status.value, "last_updated": stamp})
    return {
        **base,
        "evses": evses,
        "last_updated": max(base["last_updated"], stamp),
        "_positions": {**base["_positions"], record.position_field: record.offset},
    }


def _guard(before: Doc | None, after: Doc) -> Doc:
    """Filter that matches only the document as we read it (optimistic
    concurrency keyed on the positions, which every write advances)."""
    filt: Doc = {"_id": after["_id"]}
    old = before["_positions"] if before else {}
    for field in after["_positions"]:
        filt[f"_positions.{field}"] = old.get(field, {"$exists": False})
    return filt


class LocationViewWriter:
    name = "mongo.locations"

    def __init__(self, db: Database[Doc]) -> None:
        self._coll: Collection[Doc] = db[COLLECTION]

    def wipe(self) -> None:
        self._coll.delete_many({})

    def prepare(self) -> None:
        # Sender list pagination keys (keyset on last_updated, then _id) and
        # the per-party lookups of the receiver interface.
        self._coll.create_index([("last_updated", ASCENDING), ("_id", ASCENDING)])
        self._coll.create_index([("country_code", ASCENDING), ("party_id", ASCENDING)])

    def apply(self, records: Sequence[Record[object]]) -> int:
        by_key: dict[str, list[Record[EvseStatusResolved]]] = defaultdict(list)
        for rec in records:
            if isinstance(rec.event, EvseStatusResolved):
                by_key[rec.event.aggregate_key].append(rec)  # type: ignore[arg-type]
        written = 0
        for _ in range(_MAX_ATTEMPTS):
            if not by_key:
                return written
            attempted, conflicts = self._write(by_key)
            written += attempted - len(conflicts)
            by_key = {k: by_key[k] for k in conflicts}
            if conflicts:
                log.warning("projection_conflict_retry", view=self.name, keys=len(conflicts))
        raise RuntimeError(f"{self.name}: documents kept changing under us: {sorted(by_key)[:5]}")

    def _write(self, by_key: dict[str, list[Record[EvseStatusResolved]]]) -> tuple[int, set[str]]:
        """One read, one bulk write; returns (documents attempted, keys that
        conflicted with a concurrent writer and must be read again)."""
        current = {d["_id"]: d for d in self._coll.find({"_id": {"$in": list(by_key)}})}
        ops: list[ReplaceOne[Doc]] = []
        keys: list[str] = []
        for key, recs in by_key.items():
            before = current.get(key)
            after = before
            for rec in recs:
                after = apply(after, rec)
            if after is None or after is before:
                continue
            ops.append(ReplaceOne(_guard(before, after), after, upsert=True))
            keys.append(key)
        if not ops:
            return 0, set()
        try:
            self._coll.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
            return len(ops), {keys[e["index"]] for e in errors}
        return len(ops), set()


def public(doc: Doc) -> Doc:
    """The OCPI object: the stored document without our bookkeeping."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


class LocationViewQuery:
    def __init__(self, db: Database[Doc]) -> None:
        self._coll: Collection[Doc] = db[COLLECTION]

    def get(self, country_code: str, party_id: str, location_id: str) -> Doc | None:
        doc = self._coll.find_one({"_id": location_key(country_code, party_id, location_id)})
        return public(doc) if doc else None
