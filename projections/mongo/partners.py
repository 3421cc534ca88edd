"""MongoDB view of partners: their state as the events say, looked up by the
hash of the token they present (authentication) or by partner id."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
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
        super().__init__("mongo.partners", db[COLLECTION], _key, apply)

    def prepare(self) -> None:
        self._coll.create_index([("their_token_hash", ASCENDING)])
        self._coll.create_index([("token_a_hash", ASCENDING)])


class PartnerQuery:
    def __init__(self, db: Database[Doc]) -> None:
        self._coll = db[COLLECTION]

    def get(self, partner_id: str) -> PartnerState | None:
        doc = self._coll.find_one({"_id": partner_id})
        return _state(doc) if doc else None

    def by_token_hash(self, token_hash: str) -> tuple[PartnerState, bool] | None:
        """The partner presenting this token, and whether it is a TOKEN_A."""
        doc = self._coll.find_one({"their_token_hash": token_hash, "status": "registered"})
        if doc:
            return _state(doc), False
        doc = self._coll.find_one({"token_a_hash": token_hash, "status": "invited"})
        return (_state(doc), True) if doc else None

    def all(self) -> list[PartnerState]:
        return [_state(d) for d in self._coll.find().sort("_id", ASCENDING)]
