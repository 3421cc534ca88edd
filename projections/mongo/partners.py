"""MongoDB view of partners, for readers (the pusher, the command
callbacks, real-time authorization): one document per partner, the slice's
own fold (``producers.partners.evolve``) with its log positions.

Authentication does not read it: the partner behind a token is found in the
decision store, in the same commit as the state (docs/adr/0024).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from producers.partners import PartnerEvent, PartnerState, evolve
from projections.mongo.folding import Doc, FoldingWriter
from projections.position import Record, already_applied
from schemas.events import (
    PartnerCredentialsUpdated,
    PartnerInvited,
    PartnerRegistered,
    PartnerUnregistered,
)

COLLECTION = "partners"
_PARTNER_EVENTS = (
    PartnerInvited,
    PartnerRegistered,
    PartnerCredentialsUpdated,
    PartnerUnregistered,
)


def _key(record: Record[Any]) -> str | None:
    return record.event.aggregate_key if isinstance(record.event, _PARTNER_EVENTS) else None


def _state(doc: Doc) -> PartnerState:
    return PartnerState.model_validate({k: v for k, v in doc.items() if not k.startswith("_")})


def apply(doc: Doc | None, record: Record[PartnerEvent]) -> Doc | None:
    if doc is not None and already_applied(doc["_positions"], record):
        return doc
    state = evolve(_state(doc) if doc else None, record.event)
    return {
        "_id": state.partner_id,
        **state.model_dump(mode="json"),
        "_positions": {**(doc or {}).get("_positions", {}), record.position_field: record.offset},
    }


class PartnerViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__("mongo.partners", db[COLLECTION], _key, apply, reads=_PARTNER_EVENTS)


class PartnerQuery:
    """What the API reads, on its async client (the writer above stays sync)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll = db[COLLECTION]

    async def get(self, partner_id: str) -> PartnerState | None:
        doc = await self._coll.find_one({"_id": partner_id})
        return _state(doc) if doc else None

    async def all(self) -> list[PartnerState]:
        return [_state(d) async for d in self._coll.find().sort("_id", ASCENDING)]
