"""MongoDB view of the charge point registry, one document per charge point
(the shape other slices read, e.g. the Commands receiver resolving a target):

    {_id: "CP-1", charge_point_id: "CP-1", country_code: "ZZ", party_id: "HUB",
     location_id: "Depot-1", location_key: "ZZ/HUB/DEPOT-1", registered: true,
     connectors: [{ocpp_connector_id: 1, evse_uid: "e1", connector_id: "1",
                   evse_key: "E1", connector_key: "1"}],
     password_hash: "pbkdf2_sha256$...", registered_at, updated_at, _positions}

A deregistered charge point keeps its document with ``registered: false``.
Charge point ids are case-sensitive (the OCPP identity); identifiers of the
location keep the case they were given, the ``*_key`` fields are folded.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from producers.charge_points import ChargePointState, evolve
from projections.mongo.folding import Doc, FoldingWriter
from projections.position import Record, already_applied
from schemas.events import ChargePointDeregistered, ChargePointRegistered
from schemas.events.locations import location_key

COLLECTION = "charge_points"
_STATE = frozenset(ChargePointState.model_fields)


def apply(doc: Doc | None, record: Record[Any]) -> Doc | None:
    """Fold one registry record into the document (pure; the same object when
    already applied): the slice's state with its positions."""
    if doc is not None and already_applied(doc["_positions"], record):
        return doc
    before = (
        ChargePointState.model_validate({k: v for k, v in doc.items() if k in _STATE})
        if doc is not None
        else None
    )
    after = evolve(before, record.event)
    if after is None:
        return None
    positions = {**(doc or {}).get("_positions", {}), record.position_field: record.offset}
    return {"_id": after.charge_point_id, **after.model_dump(), "_positions": positions}


def _key(record: Record[Any]) -> str | None:
    event = record.event
    if isinstance(event, ChargePointRegistered | ChargePointDeregistered):
        return event.payload.charge_point_id
    return None


class ChargePointViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__(
            "mongo.charge_points",
            db[COLLECTION],
            _key,
            apply,
            reads=(ChargePointRegistered, ChargePointDeregistered),
        )

    def prepare(self) -> None:
        # The charge points of a location, and the one holding an EVSE.
        self._coll.create_index([("location_key", ASCENDING)])
        self._coll.create_index([("location_key", ASCENDING), ("connectors.evse_key", ASCENDING)])


class ChargePointViewQuery:
    """What the API reads, on its async client (the writer above stays sync)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll: AsyncCollection[Doc] = db[COLLECTION]

    async def read(self, charge_point_id: str) -> tuple[Doc | None, dict[str, int]]:
        """The document (registered or not) and the positions applied to it."""
        doc = await self._coll.find_one({"_id": charge_point_id})
        return doc, dict((doc or {}).get("_positions") or {})

    async def positions(self, charge_point_id: str) -> dict[str, int]:
        doc = await self._coll.find_one({"_id": charge_point_id}, {"_positions": 1})
        return dict(doc.get("_positions") or {}) if doc else {}

    async def at_location(self, country_code: str, party_id: str, location_id: str) -> list[Doc]:
        """Every charge point registered at a location (the hash left out)."""
        key = location_key(country_code, party_id, location_id)
        return await self._coll.find({"location_key": key}, {"password_hash": 0}).to_list()

    async def registered(self, *, location_id: str | None = None, limit: int = 500) -> list[Doc]:
        """Registered charge points by id (the hash left out), at most ``limit``."""
        query: dict[str, Any] = {"registered": True}
        if location_id:
            query["location_id"] = location_id
        found = self._coll.find(query, {"password_hash": 0}).sort("_id", ASCENDING).limit(limit)
        return await found.to_list()

    async def get(self, charge_point_id: str) -> Doc | None:
        """A registered charge point, or None."""
        return await self._coll.find_one({"_id": charge_point_id, "registered": True})
