"""MongoDB view of the commands partners sent us as CPO, one document per
command id (collection ``cpo_commands``):

    {_id: "<command id>", command_id, command: "START_SESSION",
     sender: {country_code, party_id}, partner_id, request: {...as received,
     response_url kept...}, response_url, target: {...} | null,
     response: {result, timeout, message}, deadline, accepted_at,
     reservation_key: "CC/PID/RESERVATION_ID" | null,
     charger_answer: {result, charger_status, message, at} | null,
     deadline_passed_at, result, result_message, decided_by, decided_at,
     _positions: {...}}

Folded from ``ocpi.commands.v1`` (CommandAccepted, CommandDeclined,
ChargerCommandAnswered, CommandDeadlinePassed, CommandResultDecided),
position-guarded like every view, so a replay rebuilds it. Our commands as
eMSP (CommandSent, CommandResultReceived) are not in this view.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database

from projections.mongo.folding import Doc, FoldingWriter
from projections.position import Record, already_applied
from schemas.events import (
    ChargerCommandAnswered,
    CommandAccepted,
    CommandDeadlinePassed,
    CommandDeclined,
    CommandResultDecided,
)
from schemas.events.commands import CommandTarget
from schemas.ocpi.commands import CommandType
from schemas.ocpi.common import fold

COLLECTION = "cpo_commands"

_FOLDED = (
    CommandAccepted,
    CommandDeclined,
    ChargerCommandAnswered,
    CommandDeadlinePassed,
    CommandResultDecided,
)


def _reservation_key(sender: Any, request: dict[str, Any]) -> str | None:
    rid = request.get("reservation_id")
    if rid is None:
        return None
    return f"{fold(sender.country_code)}/{fold(sender.party_id)}/{fold(str(rid))}"


def apply(doc: Doc | None, record: Record[Any]) -> Doc | None:
    """Fold one record into a command document (the same object when the
    record was applied before)."""
    if doc is not None and already_applied(doc["_positions"], record):
        return doc
    event = record.event
    p = event.payload
    base: Doc = doc or {"_id": p.command_id, "command_id": p.command_id, "_positions": {}}
    update: Doc = {}
    if isinstance(event, CommandAccepted | CommandDeclined):
        update = {
            "command": p.command.value,
            "sender": p.sender.model_dump(mode="json"),
            "partner_id": p.partner_id,
            "request": p.request,
            "response_url": p.request.get("response_url"),
            "received_at": p.at,
            "reservation_key": _reservation_key(p.sender, p.request),
        }
        if isinstance(event, CommandAccepted):
            update |= {
                "target": p.target.model_dump(mode="json"),
                "response": {"result": "ACCEPTED", "timeout": p.timeout_s},
                "deadline": p.deadline,
                "accepted_event_id": str(event.event_id),
            }
        else:
            update |= {
                "target": None,
                "response": {"result": p.result.value, "timeout": 0, "message": p.message},
            }
    elif isinstance(event, ChargerCommandAnswered):
        update = {
            "charger_answer": {
                "result": p.result.value,
                "charger_status": p.charger_status,
                "message": p.message,
                "at": p.at,
            }
        }
    elif isinstance(event, CommandDeadlinePassed):
        update = {"deadline_passed_at": base.get("deadline_passed_at") or p.at}
    elif isinstance(event, CommandResultDecided):
        update = {
            "result": p.result.value,
            "result_message": [m.model_dump(mode="json") for m in p.message or ()] or None,
            "decided_by": p.decided_by,
            "decided_at": p.at,
        }
    return {
        **base,
        **update,
        "_positions": {**base["_positions"], record.position_field: record.offset},
    }


def _key(record: Record[Any]) -> str | None:
    event = record.event
    return event.payload.command_id if isinstance(event, _FOLDED) else None


class CommandViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__("mongo.cpo_commands", db[COLLECTION], _key, apply)

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


class CommandViewQuery:
    def __init__(self, db: Database[Doc]) -> None:
        self._coll = db[COLLECTION]

    def get(self, command_id: str) -> Doc | None:
        """The command as the view holds it, JSON-ready; None if unknown."""
        doc = self._coll.find_one({"_id": command_id})
        return _public(doc) if doc else None

    def reservation(self, key: str) -> CommandTarget | None:
        """The target of the latest accepted RESERVE_NOW under this key."""
        doc = self._coll.find_one(
            {
                "reservation_key": key,
                "command": CommandType.RESERVE_NOW.value,
                "target": {"$ne": None},
            },
            sort=[("received_at", -1)],
        )
        return CommandTarget.model_validate(doc["target"]) if doc else None
