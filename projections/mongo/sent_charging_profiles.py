"""MongoDB views of the ChargingProfiles module as eMSP (docs/adr/0043):

- ``sent_charging_profiles``: one document per request we sent, the fold
  of its ``ChargingProfileRequestSent`` and ``ChargingProfileResultReceived``
  (``producers.sent_charging_profiles.SentProfileState``, JSON form);
- ``partner_active_charging_profiles``: one document per CPO session, the
  latest ActiveChargingProfile the CPO PUT to us
  (``ActiveProfileState``).

Fields starting with ``_`` are the view's own. Position-guarded: a replay
from offset zero rebuilds the same documents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from producers.sent_charging_profiles import (
    ActiveProfileState,
    SentProfileState,
    evolve,
    evolve_active,
)
from projections.mongo.folding import Doc, FoldingWriter
from projections.position import Record, already_applied
from schemas.events import (
    ActiveChargingProfileReceived,
    ChargingProfileRequestSent,
    ChargingProfileResultReceived,
    EventMeta,
)

SENT = "sent_charging_profiles"
ACTIVE = "partner_active_charging_profiles"

S = TypeVar("S", bound=BaseModel)


def _folding(
    model: type[S], fold: Callable[[S | None, Any], S | None], folded: tuple[type[EventMeta], ...]
) -> tuple[Callable[[Doc | None, Record[Any]], Doc | None], Callable[[Record[Any]], str | None]]:
    """The apply and key functions of a view of one slice's states."""

    def state(doc: Doc) -> S:
        return model.model_validate({k: v for k, v in doc.items() if not k.startswith("_")})

    def apply(doc: Doc | None, record: Record[Any]) -> Doc | None:
        if doc is not None and already_applied(doc["_positions"], record):
            return doc
        after = fold(state(doc) if doc else None, record.event)
        if after is None:
            return doc
        positions = {**(doc or {}).get("_positions", {}), record.position_field: record.offset}
        return {
            "_id": record.event.aggregate_key,
            **after.model_dump(mode="json"),
            "_positions": positions,
        }

    def key(record: Record[Any]) -> str | None:
        event = record.event
        return event.aggregate_key if isinstance(event, folded) else None

    return apply, key


_SENT_EVENTS = (ChargingProfileRequestSent, ChargingProfileResultReceived)
_ACTIVE_EVENTS = (ActiveChargingProfileReceived,)
_SENT = _folding(SentProfileState, evolve, _SENT_EVENTS)
_ACTIVE = _folding(ActiveProfileState, evolve_active, _ACTIVE_EVENTS)


class SentProfileViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__(f"mongo.{SENT}", db[SENT], _SENT[1], _SENT[0], reads=_SENT_EVENTS)


class ActiveProfileViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__(
            f"mongo.{ACTIVE}", db[ACTIVE], _ACTIVE[1], _ACTIVE[0], reads=_ACTIVE_EVENTS
        )


class StateQuery(Generic[S]):
    """One document by key, as its slice's state, and the positions the view
    applied to it (read-your-writes: api/consistency.py)."""

    def __init__(self, coll: AsyncCollection[Doc], model: type[S]) -> None:
        self._coll = coll
        self._model = model

    async def read(self, key: str) -> tuple[S | None, dict[str, int]]:
        doc = await self._coll.find_one({"_id": key})
        if doc is None:
            return None, {}
        state = self._model.model_validate({k: v for k, v in doc.items() if not k.startswith("_")})
        return state, dict(doc["_positions"])

    async def positions(self, key: str) -> dict[str, int]:
        doc = await self._coll.find_one({"_id": key}, {"_positions": 1})
        return dict(doc.get("_positions") or {}) if doc else {}


def sent_profiles(db: AsyncDatabase[Doc]) -> StateQuery[SentProfileState]:
    return StateQuery(db[SENT], SentProfileState)


def active_profiles(db: AsyncDatabase[Doc]) -> StateQuery[ActiveProfileState]:
    return StateQuery(db[ACTIVE], ActiveProfileState)
