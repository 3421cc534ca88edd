"""MongoDB view of the received commands (partners sent them to us as CPO),
one document per command id (collection ``received_commands``):

    {_id: "<command id>", command_id, command: "START_SESSION",
     sender: {country_code, party_id}, partner_id, request: {...as received,
     response_url kept...}, response_url, target: {...},
     response: {result, timeout, message?}, deadline, received_at,
     accepted_event_id, reservation_key: "CC/PID/RESERVATION_ID",
     charger_answer: {result, charger_status, message, at},
     deadline_passed_at, result, result_message, decided_by, decided_at,
     _positions: {...}}

The fields are ``producers.received_commands.ReceivedCommandState`` (folded by that
slice's ``evolve`` from ``ocpi.commands.v1``: CommandAccepted,
CommandDeclined, ChargerCommandAnswered, CommandDeadlinePassed,
CommandResultDecided), fields not known yet left out; fields starting with
``_`` are the view's own. Position-guarded like every view, so a replay
rebuilds it. Sent commands (CommandSent, CommandResultReceived) are in
projections/mongo/sent_commands.py.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from producers.received_commands import RECEIVED_COMMAND_EVENTS, ReceivedCommandState, evolve
from projections.mongo.folding import Doc, FoldingWriter
from projections.position import Record, already_applied
from schemas.events.commands import CommandTarget
from schemas.ocpi.commands import CommandType

COLLECTION = "received_commands"


def _state(doc: Doc) -> ReceivedCommandState:
    return ReceivedCommandState.model_validate(
        {k: v for k, v in doc.items() if not k.startswith("_")}
    )


def apply(doc: Doc | None, record: Record[Any]) -> Doc | None:
    """Fold one record into a command document (pure; the same object when
    the record was applied before): the slice's state with its positions."""
    if doc is not None and already_applied(doc["_positions"], record):
        return doc
    after = evolve(_state(doc) if doc is not None else None, record.event)
    if after is None:
        return None
    positions = {**(doc or {}).get("_positions", {}), record.position_field: record.offset}
    return {
        "_id": after.command_id,
        **after.model_dump(exclude_none=True),
        "_positions": positions,
    }


def _key(record: Record[Any]) -> str | None:
    event = record.event
    return event.payload.command_id if isinstance(event, RECEIVED_COMMAND_EVENTS) else None


class ReceivedCommandViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__(
            f"mongo.{COLLECTION}", db[COLLECTION], _key, apply, reads=RECEIVED_COMMAND_EVENTS
        )

    def prepare(self) -> None:
        # CANCEL_RESERVATION finds the reservation it cancels.
        self._coll.create_index([("reservation_key", ASCENDING), ("command", ASCENDING)])


def _public(doc: Doc) -> Doc:
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    for name in ("deadline", "received_at", "decided_at", "deadline_passed_at"):
        if out.get(name) is not None and hasattr(out[name], "isoformat"):
            out[name] = out[name].isoformat()
    answer = out.get("charger_answer")
    if answer and hasattr(answer.get("at"), "isoformat"):
        out["charger_answer"] = {**answer, "at": answer["at"].isoformat()}
    return out


class ReceivedCommandViewQuery:
    """What the API reads, on its async client (the writer above stays sync)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll: AsyncCollection[Doc] = db[COLLECTION]

    async def get(self, command_id: str) -> Doc | None:
        """The command as the view holds it, JSON-ready; None if unknown."""
        return (await self.read(command_id))[0]

    async def read(self, command_id: str) -> tuple[Doc | None, dict[str, int]]:
        """The command, JSON-ready (None if unknown), and the positions the
        view applied to it."""
        doc = await self._coll.find_one({"_id": command_id})
        if doc is None:
            return None, {}
        return _public(doc), dict(doc["_positions"])

    async def positions(self, command_id: str) -> dict[str, int]:
        doc = await self._coll.find_one({"_id": command_id}, {"_positions": 1})
        return dict(doc.get("_positions") or {}) if doc else {}

    async def reservation(self, key: str) -> CommandTarget | None:
        """The target of the latest accepted RESERVE_NOW under this key."""
        doc = await self._coll.find_one(
            {
                "reservation_key": key,
                "command": CommandType.RESERVE_NOW.value,
                "target": {"$ne": None},
            },
            sort=[("received_at", -1)],
        )
        return CommandTarget.model_validate(doc["target"]) if doc else None
