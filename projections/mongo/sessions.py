"""MongoDB view of OCPI Session objects, one document per session:

    {_id: "NL/ABC/S1", country_code: "NL", party_id: "ABC",
     session: {...OCPI...} | null, _ts: "<last_updated, fixed width>" | null,
     _positions: {...}}

``_id``, ``country_code`` and ``party_id`` are upper-folded; the served
session keeps identifiers as received. ``_ts`` is the sort and filter key of
the Sender list. ``apply`` is the slice's fold (``producers.sessions.evolve``)
guarded by the Kafka position; ``SessionViewQuery`` is what the API reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from producers.sessions import evolve
from projections.mongo.folding import Doc, FoldingWriter
from projections.mongo.paging import Page, keyset_page
from projections.position import Record, already_applied
from schemas.events import SessionPatched, SessionPut
from schemas.ocpi.common import fold, sort_stamp

COLLECTION = "sessions"


def apply(doc: Doc | None, record: Record[Any]) -> Doc | None:
    """Fold one record into a session document (the same object when the
    record was applied before)."""
    if doc is not None and already_applied(doc["_positions"], record):
        return doc
    event = record.event
    payload = event.payload
    base: Doc = doc or {
        "_id": payload.session_key,
        "country_code": fold(payload.country_code),
        "party_id": fold(payload.party_id),
        "session": None,
        "_positions": {},
    }
    session = evolve(base.get("session"), event)
    return {
        **base,
        "session": session,
        # The eMSP that owns the token: a partner lists only its drivers' sessions.
        "_token_party": token_party(session),
        "_ts": sort_stamp(session["last_updated"]) if session else None,
        "_positions": {**base["_positions"], record.position_field: record.offset},
    }


def token_party(session: Doc | None) -> str | None:
    """``CC/PID`` of the eMSP owning the session's token, upper-folded."""
    if session is None:
        return None
    token = session["cdr_token"]
    return f"{fold(token['country_code'])}/{fold(token['party_id'])}"


def _key(record: Record[Any]) -> str | None:
    event = record.event
    return event.aggregate_key if isinstance(event, SessionPut | SessionPatched) else None


class SessionViewWriter(FoldingWriter):
    def __init__(self, db: Database[Doc]) -> None:
        super().__init__(
            "mongo.sessions", db[COLLECTION], _key, apply, reads=(SessionPut, SessionPatched)
        )

    def prepare(self) -> None:
        # Keyset pagination of one party's sessions (our Sender list).
        keyset = [("_ts", ASCENDING), ("_id", ASCENDING)]
        owner = [("country_code", ASCENDING), ("party_id", ASCENDING)]
        self._coll.create_index([*owner, *keyset])
        self._coll.create_index([*owner, ("_token_party", ASCENDING), *keyset])
        # The dashboard's newest sessions in a state (api/admin/pages.py).
        self._coll.create_index([("session.status", ASCENDING), *keyset])


class SessionViewQuery:
    """What the API reads, on its async client (the writer above stays sync)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._coll: AsyncCollection[Doc] = db[COLLECTION]

    async def read(self, key: str) -> tuple[Doc | None, dict[str, int]]:
        """The served session under a key (None if none) and the positions
        the view has applied to it."""
        doc = await self._coll.find_one({"_id": key}, {"session": 1, "_positions": 1})
        if doc is None:
            return None, {}
        return doc.get("session"), dict(doc.get("_positions") or {})

    async def positions(self, key: str) -> dict[str, int]:
        doc = await self._coll.find_one({"_id": key}, {"_positions": 1})
        return dict(doc.get("_positions") or {}) if doc else {}

    async def page(
        self,
        *,
        country_code: str,
        party_id: str,
        date_from: datetime | None = None,
        date_to: datetime | None = None,
        after: tuple[str, str] | None = None,
        skip: int = 0,
        limit: int,
        token_parties: list[str] | None = None,
    ) -> Page:
        """One party's sessions, oldest ``last_updated`` first (then by key):
        ``date_from`` inclusive, ``date_to`` exclusive (mod_sessions, GET
        "Request Parameters"). ``after``: keyset from the previous page.
        ``token_parties`` (``CC/PID``): only sessions of tokens these eMSPs own."""
        match: Doc = {"country_code": fold(country_code), "party_id": fold(party_id)}
        if token_parties is not None:
            match["_token_party"] = {"$in": sorted({fold(p) for p in token_parties})}
        return await keyset_page(
            self._coll,
            "session",
            match,
            date_from=date_from,
            date_to=date_to,
            after=after,
            skip=skip,
            limit=limit,
        )

    async def recent(
        self,
        *,
        statuses: list[str] | None = None,
        country_code: str | None = None,
        party_id: str | None = None,
        limit: int,
    ) -> list[Doc]:
        """The newest sessions (by ``last_updated``), of any party or of one,
        in one of ``statuses`` if given: the dashboard's lists."""
        match: Doc = {"_ts": {"$ne": None}}
        if statuses:
            match["session.status"] = {"$in": statuses}
        if country_code and party_id:
            match |= {"country_code": fold(country_code), "party_id": fold(party_id)}
        found = (
            self._coll.find(match, {"session": 1})
            .sort([("_ts", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        return [d["session"] async for d in found if d.get("session") is not None]
