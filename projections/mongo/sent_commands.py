"""MongoDB view of the commands we sent as eMSP, one document per command id
(collection ``sent_commands``):

    {_id: "<command id>", command_id, partner_id, command, receiver, request,
     response, response_message, timeout_s, sent_at, result, result_message,
     result_at, _ts: "<sent_at or result_at, fixed width>", _positions: {...}}

The fields are ``producers.sent_commands.SentCommandState`` (the fold of the
command's ``CommandSent`` and ``CommandResultReceived``) in JSON form;
fields starting with ``_`` are the view's own. The first result stands. ``_ts`` orders
the ops list, newest first; a result that came before the record of the send
dates the document until the send is folded. Position-guarded: a replay from
offset zero rebuilds the same documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from producers.sent_commands import SentCommandEvent, SentCommandState, evolve
from projections.mongo.folding import Doc, FoldingWriter
from projections.position import Record, already_applied
from schemas.events import CommandResultReceived, CommandSent
from schemas.ocpi.common import sort_stamp

COLLECTION = "sent_commands"

_FOLDED = (CommandSent, CommandResultReceived)


def apply(doc: Doc | None, record: Record[SentCommandEvent]) -> Doc | None:
    if doc is not None and already_applied(doc["_positions"], record):
        return doc
    after = evolve(_state(doc) if doc else None, record.event)
    stamp = after.sent_at or after.result_at
    return {
        "_id": after.command_id,
        **after.model_dump(mode="json"),
        "_ts": sort_stamp(stamp) if stamp else None,
        "_positions": {**(doc or {}).get("_positions", {}), record.position_field: record.offset},
    }


def _state(doc: Doc) -> SentCommandState:
    return SentCommandState.model_validate({k: v for k, v in doc.items() if not k.startswith("_")})


def _key(record: Record[Any]) -> str | None:
    event = record.event
    return event.aggregate_key if isinstance(event, _FOLDED) else None


class SentCommandViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__(f"mongo.{COLLECTION}", db[COLLECTION], _key, apply, reads=_FOLDED)

    def prepare(self) -> None:
        newest_first = [("_ts", DESCENDING), ("_id", DESCENDING)]
        self._coll.create_index(newest_first)
        self._coll.create_index([("partner_id", DESCENDING), *newest_first])


@dataclass(frozen=True)
class SentPage:
    items: list[SentCommandState]
    # Pass as ``after`` for the next page; None on the last page.
    next_after: str | None


_SEP = "|"


class SentCommandViewQuery:
    """What the API reads, on its async client (the writer above stays sync)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll: AsyncCollection[Doc] = db[COLLECTION]

    async def read(self, command_id: str) -> tuple[SentCommandState | None, dict[str, int]]:
        doc = await self._coll.find_one({"_id": command_id})
        if doc is None:
            return None, {}
        return _state(doc), dict(doc["_positions"])

    async def positions(self, command_id: str) -> dict[str, int]:
        doc = await self._coll.find_one({"_id": command_id}, {"_positions": 1})
        return dict(doc.get("_positions") or {}) if doc else {}

    async def page(self, *, partner_id: str | None, after: str | None, limit: int) -> SentPage:
        """Newest first (by ``_ts``, then id), keyset after ``after``: the
        ``next_after`` of the previous page."""
        filt: Doc = {"_ts": {"$ne": None}}
        if partner_id is not None:
            filt["partner_id"] = partner_id
        if after:
            ts, _, key = after.partition(_SEP)
            filt = {
                **filt,
                "$or": [{"_ts": {"$lt": ts}}, {"_ts": ts, "_id": {"$lt": key}}],
            }
        docs = (
            await self._coll.find(filt)
            .sort([("_ts", DESCENDING), ("_id", DESCENDING)])
            .limit(limit + 1)
            .to_list()
        )
        more = len(docs) > limit
        docs = docs[:limit]
        next_after = f"{docs[-1]['_ts']}{_SEP}{docs[-1]['_id']}" if more and docs else None
        return SentPage([_state(d) for d in docs], next_after)
