"""MongoDB view of OCPI Location objects, one document per location.

The document is the OCPI Location as we would serve it, plus ``_id`` (the
aggregate key) and ``_positions`` (the guard, see projections/position.py).
``apply`` is the pure fold, ``LocationViewWriter`` runs it (folding.py), and
``LocationViewQuery`` is what the API reads.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from projections.mongo.folding import Doc, FoldingWriter
from projections.position import Record, already_applied
from schemas.events import EvseStatusResolved
from schemas.events.locations import location_key
from schemas.ocpi.common import fold, format_ocpi_datetime

COLLECTION = "locations"


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


def _key(record: Record[Any]) -> str | None:
    return record.event.aggregate_key if isinstance(record.event, EvseStatusResolved) else None


class LocationViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__("mongo.locations", db[COLLECTION], _key, apply)

    def prepare(self) -> None:
        # Sender list pagination keys (keyset on last_updated, then _id) and
        # the per-party lookups of the receiver interface.
        self._coll.create_index([("last_updated", ASCENDING), ("_id", ASCENDING)])
        self._coll.create_index([("country_code", ASCENDING), ("party_id", ASCENDING)])


def public(doc: Doc) -> Doc:
    """The OCPI object: the stored document without our bookkeeping."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


class LocationViewQuery:
    def __init__(self, db: Database[Doc]) -> None:
        self._coll: Collection[Doc] = db[COLLECTION]

    def get(self, country_code: str, party_id: str, location_id: str) -> Doc | None:
        doc = self._coll.find_one({"_id": location_key(country_code, party_id, location_id)})
        return public(doc) if doc else None
